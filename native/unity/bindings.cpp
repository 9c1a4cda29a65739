// Unity translation unit: the N-API bindings (napi.h is parsed once instead of once per file).
// Compiling a group of sources as one file parses the shared headers once:
// it cuts the CPU build from about 95 to 60 CPU-seconds, which is what makes
// `npm ci` fast on a 2-core machine. Files that compile kernels for an ISA
// (#pragma GCC target) stay separate translation units so that no target
// option can reach generic code. A unit test checks that every source under
// native/ is compiled exactly once. Names with internal linkage must be unique
// across the files of a group.
#include "../binding/addon.cpp"
#include "../binding/attention_binding.cpp"
#include "../binding/system_binding.cpp"
#include "../binding/bench_binding.cpp"
#include "../binding/kv_binding.cpp"
#include "../binding/kv_cache_binding.cpp"
#include "../binding/cuda_binding.cpp"
#include "../binding/coding_binding.cpp"
#include "../binding/coding_stepper_binding.cpp"
#include "../binding/model_binding.cpp"
#include "../binding/cm_binding.cpp"
#include "../binding/sparse_binding.cpp"
#include "../binding/sparse_model_binding.cpp"
#include "../binding/spec_drafters_binding.cpp"
