// Portable build of the quantized decode kernel (kv_quant_attend_kernel.inl).
#include <cmath>
#include <cstdint>

#include "../core/half.h"
#include "kv_quant_attend.h"

namespace tp::kv::qattn_scalar {

inline void dequant_k_rows(const QuantLayout& L, const uint8_t* block, int64_t n, float* out) { dequantize_rows(L, block, 0, n, out, nullptr); }
inline void dequant_v_row(const QuantLayout& L, const uint8_t* block, int64_t t, float* out) { dequantize_rows(L, block, t, 1, nullptr, out); }
inline void f16_row(const uint16_t* x, int64_t d, float* out) {
  for (int64_t c = 0; c < d; ++c) out[c] = f16_to_f32(x[c]);
}
// s[r * G + t] = q[r] . k[t] for r < R, t < n (k [n, d]).
inline void qk_rows(int64_t R, int64_t n, int64_t G, int64_t d, const float* const* q, const float* k, float* s) {
  for (int64_t r = 0; r < R; ++r) {
    for (int64_t t = 0; t < n; ++t) {
      float x = 0.0f;
      for (int64_t c = 0; c < d; ++c) x += q[r][c] * k[t * d + c];
      s[r * G + t] = x;
    }
  }
}

// acc[r] += sum_t s[r * G + t] * vrows[t] for r < R, t < n (vrows [n, d]).
inline void pv_rows(int64_t R, int64_t n, int64_t G, int64_t d, const float* s, const float* vrows, float* acc) {
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t r = 0; r < R; ++r) {
      const float p = s[r * G + t];
      if (p == 0.0f) continue;
      for (int64_t c = 0; c < d; ++c) acc[r * d + c] += p * vrows[t * d + c];
    }
  }
}

constexpr bool kHasInt4Step = false;
inline bool int4_step_fits(const QuantLayout&) { return false; }
inline void step_int4(const QuantLayout&, const uint8_t*, const QuantAttendArgs&, int64_t, const int64_t*, float*, float*, float*, float*, float*) {}

inline void softmax_block(int64_t R, int64_t n, int64_t G, int64_t d, float* s, float* m, float* l, float* acc);

#include "kv_quant_attend_kernel.inl"

inline void softmax_block(int64_t R, int64_t n, int64_t G, int64_t d, float* s, float* m, float* l, float* acc) {
  softmax_update(R, n, G, d, s, m, l, acc);
}

void run_chunk(const QuantHeadView& h, const QuantAttendArgs& a, int64_t t0, int64_t t1, int64_t len, float* m, float* l, float* acc,
               float* scratch) {
  const int64_t d = h.layout->head_dim;
  const int64_t G = h.layout->group;
  chunk_kernel(h, a, t0, t1, len, m, l, acc, scratch, scratch + G * d, scratch + G * d + a.rows * G);
}

}  // namespace tp::kv::qattn_scalar
