#include "bindings.h"

namespace tp::binding {
void RegisterBench(Napi::Env env, Napi::Object exports) {}  // TODO(helper)
}  // namespace tp::binding
