// Portable build of the quantized decode kernel (kv_quant_attend_kernel.inl).
#include <cmath>
#include <cstdint>

#include "../core/half.h"
#include "kv_quant_attend.h"

namespace tp::kv::qattn_scalar {

inline void dequant_k_row(const QuantLayout& L, const uint8_t* block, int64_t t, float* out) { dequantize_rows(L, block, t, 1, out, nullptr); }
inline void dequant_v_row(const QuantLayout& L, const uint8_t* block, int64_t t, float* out) { dequantize_rows(L, block, t, 1, nullptr, out); }
inline void f16_row(const uint16_t* x, int64_t d, float* out) {
  for (int64_t c = 0; c < d; ++c) out[c] = f16_to_f32(x[c]);
}
inline float dot(const float* a, const float* b, int64_t d) {
  float s = 0.0f;
  for (int64_t c = 0; c < d; ++c) s += a[c] * b[c];
  return s;
}
inline void axpy(float alpha, const float* x, float* y, int64_t d) {
  for (int64_t c = 0; c < d; ++c) y[c] += alpha * x[c];
}

constexpr bool kHasInt4Step = false;
inline bool int4_step_fits(const QuantLayout&) { return false; }
inline void step_int4(const QuantLayout&, const uint8_t*, const QuantAttendArgs&, int64_t, const int64_t*, float*, float*, float*, float*, float*) {}

#include "kv_quant_attend_kernel.inl"

void run_chunk(const QuantHeadView& h, const QuantAttendArgs& a, int64_t t0, int64_t t1, int64_t len, float* m, float* l, float* acc,
               float* scratch) {
  const int64_t d = h.layout->head_dim;
  chunk_kernel(h, a, t0, t1, len, m, l, acc, scratch, scratch + d, scratch + 2 * d, scratch + 2 * d + a.rows * h.layout->group);
}

}  // namespace tp::kv::qattn_scalar
