// The one way the bindings include napi.h (first include of every binding
// file): the node-addon-api settings every translation unit must share.
//
// NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS: when a worker is terminated (or
// calls process.exit()) in the middle of a native call, JS execution stops
// and napi calls fail; node-addon-api turns the failure into a Napi::Error,
// and rethrowing it into a dying JS engine fails too. Without this setting
// that second failure throws out of a C callback and terminates the whole
// process; with it, the exception that can no longer be thrown is dropped
// (there is no JS left to receive it).
#pragma once
#ifndef NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS
#define NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS
#endif
#include <napi.h>
