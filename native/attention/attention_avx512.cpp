// AVX512 attention kernels. Library headers are included before the target
// pragma so that none of their code is compiled for AVX512; only the kernel
// template below is, inside its own namespace. Chosen at run time.
#include <cmath>
#include <cstdint>

#include "../core/buffer.h"
#include "../core/half.h"
#include "../core/thread_pool.h"
#include "attention_plan.h"

#if defined(__x86_64__) && !defined(TOKENPRESS_DISABLE_SIMD)
#pragma GCC push_options
// GCC 12 flags _mm512_undefined_ps inside its own intrinsic headers.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")
#include <immintrin.h>

namespace tp::attn_avx512 {
#include "ops_avx512.h"
#include "attention_kernel.inl"
}  // namespace tp::attn_avx512

#pragma GCC diagnostic pop
#pragma GCC pop_options
#else
namespace tp::attn_avx512 {
// Never selected: cpu_features reports no SIMD level on this target.
void run(const AttentionPlan& plan) { attn_scalar::run(plan); }
}  // namespace tp::attn_avx512
#endif
