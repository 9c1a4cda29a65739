// Module entry point: each area registers its functions on `exports`.
#include "napi_config.h"

#include <mutex>

#include "bindings.h"

#if defined(__unix__) || defined(__APPLE__)
#include <dlfcn.h>
#endif

namespace {

// Keeps this library loaded until the process exits. Node unloads (dlclose)
// an addon when the last environment that loaded it ends: a worker_thread
// that loads tokenpress, then exits or is terminated, while the main thread
// never loaded it. The persistent thread pool (native/core/thread_pool.h)
// runs code of this library, so unloading it would crash those threads.
// RTLD_NODELETE on our own path takes a reference that is never dropped.
void PinLibrary() {
#if defined(__unix__) || defined(__APPLE__)
  static std::once_flag once;  // one pin per process is enough
  std::call_once(once, [] {
    Dl_info info;
    if (dladdr(reinterpret_cast<void*>(&PinLibrary), &info) != 0 && info.dli_fname != nullptr) {
      dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
    }
  });
#endif
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  PinLibrary();
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
  tp::binding::RegisterSparse(env, exports);
  tp::binding::RegisterSparseDeviceModel(env, exports);
  tp::binding::RegisterSpecDrafters(env, exports);
  tp::binding::RegisterTokenizer(env, exports);
  tp::binding::RegisterTokenKn(env, exports);
  tp::binding::RegisterDynamicBpe(env, exports);
  tp::binding::RegisterOmp(env, exports);
  tp::binding::RegisterTokenizerSuper(env, exports);
  tp::binding::RegisterReduceSelect(env, exports);
  tp::binding::RegisterReduceTome(env, exports);
  tp::binding::RegisterReduceCluster(env, exports);
  tp::binding::RegisterReduceDeviceModel(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(tokenpress, Init)
