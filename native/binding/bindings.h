// Registration functions, one per area (one .cpp file each).
#pragma once
#include "napi_config.h"

namespace tp::binding {

void RegisterSystem(Napi::Env env, Napi::Object exports);     // system_binding.cpp
void RegisterAttention(Napi::Env env, Napi::Object exports);  // attention_binding.cpp
void RegisterBench(Napi::Env env, Napi::Object exports);      // bench_binding.cpp
void RegisterKv(Napi::Env env, Napi::Object exports);         // kv_binding.cpp
void RegisterKvCache(Napi::Env env, Napi::Object exports);    // kv_cache_binding.cpp
void RegisterCuda(Napi::Env env, Napi::Object exports);       // cuda_binding.cpp
void RegisterCoding(Napi::Env env, Napi::Object exports);     // coding_binding.cpp
void RegisterCodingStepper(Napi::Env env, Napi::Object exports);  // coding_stepper_binding.cpp
void RegisterModel(Napi::Env env, Napi::Object exports);      // model_binding.cpp
void RegisterCm(Napi::Env env, Napi::Object exports);         // cm_binding.cpp
void RegisterSparse(Napi::Env env, Napi::Object exports);     // sparse_binding.cpp
void RegisterSparseDeviceModel(Napi::Env env, Napi::Object exports);  // sparse_model_binding.cpp (tests)
void RegisterSpecDrafters(Napi::Env env, Napi::Object exports);  // spec_drafters_binding.cpp
void RegisterTokenizer(Napi::Env env, Napi::Object exports);  // tokenizer_binding.cpp
void RegisterTokenKn(Napi::Env env, Napi::Object exports);  // token_kn_binding.cpp
void RegisterDynamicBpe(Napi::Env env, Napi::Object exports);  // dynamic_bpe_binding.cpp (unity/tokenizer_dynamic.cpp)
void RegisterOmp(Napi::Env env, Napi::Object exports);  // omp_binding.cpp
void RegisterTokenizerSuper(Napi::Env env, Napi::Object exports);  // tokenizer_super_binding.cpp (unity/tokenizer_super.cpp)
void RegisterReduceSelect(Napi::Env env, Napi::Object exports);  // reduce_select_binding.cpp (unity/reduce_select.cpp)
void RegisterReduceTome(Napi::Env env, Napi::Object exports);  // reduce_tome_binding.cpp (unity/reduce_tome.cpp)
void RegisterReduceCluster(Napi::Env env, Napi::Object exports);  // reduce_cluster_binding.cpp (unity/reduce_cluster.cpp)
void RegisterReduceDeviceModel(Napi::Env env, Napi::Object exports);  // reduce_device_model_binding.cpp (unity/reduce_cuda.cpp)

}  // namespace tp::binding
