// Async work that survives its environment being torn down, and the staging
// of the buffers it reads and writes.
//
// Teardown: worker.terminate() or process.exit() in a worker stops JS while
// work may still be queued or running. Node then finishes the work and calls
// its completion with JS disabled: every napi call that needs JS fails, and
// node-addon-api turns that failure into a Napi::Error that, thrown out of a
// completion, terminates the process. So every completion and progress
// callback here runs through NoThrow / Settle: a failure to reach JS is
// dropped (there is nobody left to tell).
//
// Buffers (the rule of docs/guarantees.md): an async call copies every input
// array before it returns, and computes into native copies of its output
// arrays, written back on the main thread when it settles. The caller may
// touch, resize, transfer or drop any array while the call runs; an output
// that no longer has its length when the call settles is left alone and the
// promise rejects with code ERR_OUTPUT_CHANGED.
#pragma once
#include "napi_config.h"

#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <system_error>
#include <vector>

#include "../core/status.h"
#include "napi_args.h"

namespace tp::binding {

// Runs f and swallows whatever it throws: for callbacks that run when JS may
// be gone (completions, progress), where an escaping exception aborts.
template <typename F>
void NoThrow(F&& f) noexcept {
  try {
    f();
  } catch (...) {
  }
}

// One progress report to JS with the latest count (AsyncProgressWorker's
// OnProgress): a throw is kept in *error, the completion rejects with it, and
// later reports are dropped. Never throws (JS may be gone).
inline void ReportProgress(Napi::Env env, Napi::FunctionReference& fn, double done, Napi::ObjectReference* error) noexcept {
  if (fn.IsEmpty() || !error->IsEmpty()) return;
  NoThrow([&] {
    Napi::HandleScope scope(env);
    try {
      fn.Call({Napi::Number::New(env, done)});
    } catch (const Napi::Error& e) {
      *error = Napi::Persistent(e.Value());
    }
  });
}

// Runs native work (a worker thread): a failed allocation or a refused thread
// becomes a Status instead of an exception escaping the thread.
template <typename F>
Status RunGuarded(F&& f) noexcept {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return Status::out_of_memory("out of memory");
  } catch (const std::length_error&) {
    return Status::out_of_memory("out of memory: a requested size is too large");
  } catch (const std::system_error& e) {
    return Status::internal(std::string("the system refused a resource: ") + e.what());
  } catch (const std::exception& e) {
    return Status::internal(std::string("native error: ") + e.what());
  } catch (...) {
    return Status::internal("native error");
  }
}

// Settles d with build(env) when s is ok, else rejects it with s; never
// throws. A build that throws rejects with its error; when JS is gone
// (teardown) nothing can be settled and nothing is.
template <typename Build>
void Settle(Napi::Env env, Napi::Promise::Deferred& d, const Status& s, Build&& build) noexcept {
  try {
    Napi::HandleScope scope(env);
    try {
      if (s.is_ok()) d.Resolve(build(env));
      else d.Reject(StatusError(env, s));
    } catch (const Napi::Error& e) {
      NoThrow([&] { d.Reject(e.Value()); });
    } catch (const std::exception& e) {
      NoThrow([&] { d.Reject(Napi::Error::New(env, std::string("native error: ") + e.what()).Value()); });
    }
  } catch (...) {
  }
}

inline void RejectWith(Napi::Env env, Napi::Promise::Deferred& d, const Napi::Error& e) noexcept {
  NoThrow([&] { d.Reject(e.Value()); });
}

// A promise-returning AsyncWorker: Run() off the main thread, then Finish()
// (always, first: release busy flags) and Build() on the main thread.
class PromiseWork : public Napi::AsyncWorker {
 public:
  PromiseWork(Napi::Env env, const char* name) : Napi::AsyncWorker(env, name), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  virtual Status Run() = 0;
  virtual Napi::Value Build(Napi::Env env) { return env.Undefined(); }
  virtual void Finish() {}

 private:
  void Execute() final { status_ = RunGuarded([&] { return Run(); }); }
  void OnOK() final { Complete(); }
  void OnError(const Napi::Error&) final { Complete(); }
  void Complete() noexcept {
    NoThrow([&] { Finish(); });
    Settle(Env(), deferred_, status_, [&](Napi::Env env) { return Build(env); });
  }

  Napi::Promise::Deferred deferred_;
  Status status_;
};

// Native copies of the arrays of one async call (see the file comment).
class Staging {
 public:
  // A copy of an input array; its pointer (nullptr when absent).
  const void* In(const TypedArrayView& v) {
    if (!v.present) return nullptr;
    if (v.length == 0) return v.data;  // the shared empty block
    buffers_.emplace_back(new char[v.bytes()]);
    std::memcpy(buffers_.back().get(), v.data, v.bytes());
    return buffers_.back().get();
  }
  // A copy of an output array, written back by Commit().
  void* Out(const TypedArrayView& v) {
    if (!v.present) return nullptr;
    if (v.length == 0) return v.data;
    void* p = const_cast<void*>(In(v));
    outputs_.push_back({Napi::Persistent(v.value), p, v.bytes(), v.name});
    return p;
  }
  // Main thread: checks every output still has its byte length, then copies
  // the results into all of them (all or none).
  Status Commit(Napi::Env env) {
    std::vector<void*> dst(outputs_.size());
    for (size_t i = 0; i < outputs_.size(); i++) {
      Output& o = outputs_[i];
      void* data = nullptr;
      size_t length = 0;
      napi_typedarray_type type;
      napi_value ab = nullptr;
      size_t offset = 0;
      napi_status st = napi_get_typedarray_info(env, o.ref.Value(), &type, &length, &data, &ab, &offset);
      if (st != napi_ok || data == nullptr || static_cast<size_t>(length * element_size(type)) != o.bytes) {
        return Status::invalid(std::string(o.name) + ": the array was resized, transferred or detached while the call ran; "
                               "its result was not written");
      }
      dst[i] = data;
    }
    for (size_t i = 0; i < outputs_.size(); i++) std::memcpy(dst[i], outputs_[i].copy, outputs_[i].bytes);
    return Status::ok();
  }
  bool has_outputs() const { return !outputs_.empty(); }

 private:
  struct Output {
    Napi::Reference<Napi::Value> ref;
    void* copy;
    size_t bytes;
    const char* name;
  };
  std::vector<std::unique_ptr<char[]>> buffers_;
  std::vector<Output> outputs_;
};

// The rejection of a failed Commit: code ERR_OUTPUT_CHANGED.
inline Napi::Value OutputChangedError(Napi::Env env, const Status& s) {
  Napi::Error e = Napi::Error::New(env, s.message);
  e.Set("code", "ERR_OUTPUT_CHANGED");
  return e.Value();
}

}  // namespace tp::binding
