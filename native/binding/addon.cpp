// Module entry point: each area registers its functions on `exports`.
#include <napi.h>

#include "bindings.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  tp::binding::RegisterSystem(env, exports);
  tp::binding::RegisterAttention(env, exports);
  tp::binding::RegisterBench(env, exports);
  tp::binding::RegisterKv(env, exports);
  tp::binding::RegisterKvCache(env, exports);
  tp::binding::RegisterCuda(env, exports);
  tp::binding::RegisterCoding(env, exports);
  tp::binding::RegisterCodingStepper(env, exports);
  tp::binding::RegisterModel(env, exports);
  tp::binding::RegisterCm(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(tokenpress, Init)
