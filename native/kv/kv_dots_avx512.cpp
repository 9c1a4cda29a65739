// AVX-512 KV scoring kernels. Library headers are included before the target
// pragma so that none of their code is compiled for AVX-512; only the kernel
// below is, inside its own namespace. Chosen at run time.
#include <cmath>
#include <cstdint>

#include "../core/buffer.h"
#include "../core/half.h"
#include "../core/thread_pool.h"
#include "kv_dots.h"

#if defined(__x86_64__) && !defined(TOKENPRESS_DISABLE_SIMD)
#pragma GCC push_options
// GCC 12 flags _mm512_undefined_ps inside its own intrinsic headers.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")
#include <immintrin.h>

namespace tp::kv::dots_avx512 {
#include "../attention/ops_avx512.h"
#include "kv_dots_kernel.inl"
}  // namespace tp::kv::dots_avx512

#pragma GCC diagnostic pop
#pragma GCC pop_options
#else
namespace tp::kv::dots_avx512 {
// Never selected: cpu_features reports no SIMD level on this target.
void run_mass(const MassPlan& p) { dots_scalar::run_mass(p); }
void run_quad(const QuadPlan& p) { dots_scalar::run_quad(p); }
void rows_to_f32(const KeyRows& x, int64_t h, int64_t f, int64_t n, int64_t d, float* o) { dots_scalar::rows_to_f32(x, h, f, n, d, o); }
void run_nearest(const NearestPlan& p) { dots_scalar::run_nearest(p); }
void softmax_sum(const float* l, int64_t g, int64_t n, float s, float* o) { dots_scalar::softmax_sum(l, g, n, s, o); }
void row_sq_norms(const KeyRows& x, int64_t h, int64_t f, int64_t n, int64_t d, float* o) { dots_scalar::row_sq_norms(x, h, f, n, d, o); }
}  // namespace tp::kv::dots_avx512
#endif
