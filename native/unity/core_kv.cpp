// Unity translation unit: core, the attention planner, the CUDA host glue
// (device calls are stubs without TOKENPRESS_CUDA), the KV operations and policies.
// Compiling a group of sources as one file parses the shared headers once:
// it cuts the CPU build from about 95 to 60 CPU-seconds, which is what makes
// `npm ci` fast on a 2-core machine. Files that compile kernels for an ISA
// (#pragma GCC target) stay separate translation units so that no target
// option can reach generic code. A unit test checks that every source under
// native/ is compiled exactly once. Names with internal linkage must be unique
// across the files of a group.
#include "../core/cpu_features.cpp"
#include "../core/thread_pool.cpp"
#include "../core/buffer.cpp"
#include "../core/byte_buffer.cpp"
#include "../core/machine_limits.cpp"
#include "../attention/attention.cpp"
#include "../cuda/cuda_probe.cpp"
#include "../cuda/cuda_attention.cpp"
#include "../cuda/cuda_kv_cache.cpp"
#include "../cuda/cuda_equal_info.cpp"
#include "../kv/kv_ops.cpp"
#include "../kv/kv_quant.cpp"
#include "../kv/kv_plan.cpp"
#include "../kv/kv_cache.cpp"
#include "../kv/kv_cache_attend.cpp"
#include "../kv/kv_cache_sparse.cpp"
#include "../kv/kv_cache_tidal.cpp"
#include "../sparse/quest.cpp"
#include "../sparse/quest_fold.cpp"
#include "../sparse/quest_score.cpp"
#include "../sparse/tidal.cpp"
#include "../sparse/blocks.cpp"
#include "../kv/kv_cache_compress.cpp"
#include "../kv/kv_cache_spec.cpp"
#include "../kv/kv_quant_attend.cpp"
#include "../kv/policy_registry.cpp"
#include "../kv/policy_streamingllm.cpp"
#include "../kv/policy_knorm.cpp"
#include "../kv/policy_random.cpp"
#include "../kv/policy_tova.cpp"
#include "../kv/policy_h2o.cpp"

#include "../kv/policy_snapkv.cpp"
#include "../kv/policy_expected_attention.cpp"
#include "../kv/policy_speckv.cpp"
#include "../kv/policy_ems.cpp"
#include "../kv/kv_probs.cpp"
#include "../kv/kv_dots.cpp"
#include "../kv/kv_topk.cpp"
