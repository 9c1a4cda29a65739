// AVX-512 (F + BW + VL) build of the quantized decode kernel for int8
// blocks: each block's codes are widened to f32 in registers (never stored)
// and used by every query row of the GQA group; the per-channel key scale
// and min, and the per-token value scale and min, are folded into the query
// and the token weights once per block and row:
//   q . k_t = q . kmin + sum_c (q_c kscale_c) code_tc
//   sum_t p_t v_tc = sum_t (p_t vscale_tg) code_tc + sum_t p_t vmin_tg
// The same values as dequantizing first (f32 reassociation only), so the
// int8 results stay within the float kernels' tolerance. No VNNI: an
// integer q . k would need q rounded to int8, which the int8 cache's
// contract (f32 attention over the stored values) does not allow.
// int4 blocks, and int8 layouts this kernel does not take, run the AVX2
// kernel (kv_quant_attend_avx2.cpp: its integer int4 path uses VNNI where
// the CPU has it); the f16 tail of a chunk runs there too and is merged by
// log-sum-exp. Library headers come before the target pragma.
#include <cmath>
#include <cstdint>

#include "../core/half.h"
#include "kv_quant_attend.h"

namespace tp::kv::qattn_avx2 {
void run_chunk(const QuantHeadView&, const QuantAttendArgs&, int64_t, int64_t, int64_t, float*, float*, float*, float*);
}

#if defined(__x86_64__) && !defined(TOKENPRESS_DISABLE_SIMD)
#pragma GCC push_options
// GCC 12 flags _mm512_undefined_ps inside its own intrinsic headers.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")
#include <immintrin.h>

namespace tp::kv::qattn_avx512 {

namespace {

// int8 blocks this kernel takes: 16-channel slices never straddle a value
// channel group (group % 16 == 0), whole vectors per row (headDim % 16 == 0).
bool int8_fits(const QuantLayout& L) {
  return L.bits == 8 && L.group % 16 == 0 && L.group <= 128 && L.head_dim % 16 == 0 && L.head_dim <= 512;
}

inline __m512 load_f16x16(const uint16_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
inline const uint16_t* f16_at(const uint8_t* block, int64_t off) { return reinterpret_cast<const uint16_t*>(block + off); }
// 16 u8 codes as f32.
inline __m512 codes16(const uint8_t* p) {
  return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
}

// exp(x) for x <= 0 (and -inf -> 0): the AVX2 kernel's polynomial, 16 lanes.
inline __m512 exp_neg(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
  const __m512 t = _mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f));
  const __m512 k = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693145751953125f), x);
  const __m512 r2 = _mm512_fnmadd_ps(k, _mm512_set1_ps(1.428606765330187045e-06f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r2, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r2, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r2, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r2, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r2, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(_mm512_mul_ps(p, r2), r2, _mm512_add_ps(r2, _mm512_set1_ps(1.0f)));
  const __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(k), _mm512_set1_epi32(127)), 23);
  return _mm512_mul_ps(p, _mm512_castsi512_ps(e));
}

// Online softmax over one full block: folds scores s [R, G] into (m, l, acc)
// and turns s into the block's probabilities (masked scores, -inf, give 0).
void softmax_block(int64_t R, int64_t G, int64_t d, float* s, float* m, float* l, float* acc) {
  const __m512 ninf = _mm512_set1_ps(-INFINITY);
  for (int64_t r = 0; r < R; ++r) {
    float* sr = s + r * G;
    __m512 mx = ninf;
    for (int64_t t = 0; t < G; t += 16) mx = _mm512_max_ps(mx, _mm512_loadu_ps(sr + t));
    const float bm = _mm512_reduce_max_ps(mx);
    if (bm == -INFINITY) {
      for (int64_t t = 0; t < G; t += 16) _mm512_storeu_ps(sr + t, _mm512_setzero_ps());
      continue;
    }
    const float nm = bm > m[r] ? bm : m[r];
    if (nm != m[r]) {
      const float corr = m[r] == -INFINITY ? 0.0f : expf(m[r] - nm);
      const __m512 c = _mm512_set1_ps(corr);
      float* ar = acc + r * d;
      for (int64_t i = 0; i < d; i += 16) _mm512_storeu_ps(ar + i, _mm512_mul_ps(c, _mm512_loadu_ps(ar + i)));
      l[r] *= corr;
    }
    m[r] = nm;
    const __m512 nmv = _mm512_set1_ps(nm);
    __m512 sum = _mm512_setzero_ps();
    for (int64_t t = 0; t < G; t += 16) {
      const __m512 v = _mm512_loadu_ps(sr + t);
      const __mmask16 live = _mm512_cmp_ps_mask(v, ninf, _CMP_NEQ_OQ);
      const __m512 p = _mm512_maskz_mov_ps(live, exp_neg(_mm512_sub_ps(v, nmv)));
      _mm512_storeu_ps(sr + t, p);
      sum = _mm512_add_ps(sum, p);
    }
    l[r] += _mm512_reduce_add_ps(sum);
  }
}

// Sums of 8 vectors x[0..7] (each 16 partial sums) into out[0..7], in order.
inline void hsum8x16(const __m512* x, float* out) {
  __m256 y[8];
  for (int j = 0; j < 8; ++j) y[j] = _mm256_add_ps(_mm512_castps512_ps256(x[j]), _mm512_extractf32x8_ps(x[j], 1));
  const __m256 h01 = _mm256_hadd_ps(y[0], y[1]), h23 = _mm256_hadd_ps(y[2], y[3]);
  const __m256 h45 = _mm256_hadd_ps(y[4], y[5]), h67 = _mm256_hadd_ps(y[6], y[7]);
  const __m256 u = _mm256_hadd_ps(h01, h23), v = _mm256_hadd_ps(h45, h67);
  _mm256_storeu_ps(out, _mm256_add_ps(_mm256_permute2f128_ps(u, v, 0x20), _mm256_permute2f128_ps(u, v, 0x31)));
}

// Raw key dots of rows r0 .. r0+NR-1 with 4 tokens t0 .. t0+3 of an int8
// block: s[r * G + t] = qs_r . code_t (qs: q * kscale, [R, d]). The 4 token
// rows' codes are widened once and used by every row.
template <int NR>
inline void key_tile(const uint8_t* kc, int64_t d, int64_t G, const float* qs, int64_t r0, int64_t t0, float* s) {
  static_assert(NR == 2 || NR == 4, "row tiles of 2 or 4");
  __m512 x[NR * 4];
  for (int j = 0; j < NR * 4; ++j) x[j] = _mm512_setzero_ps();
  const uint8_t* k0 = kc + t0 * d;
  for (int64_t c = 0; c < d; c += 16) {
    __m512 k[4];
    for (int u = 0; u < 4; ++u) k[u] = codes16(k0 + u * d + c);
    for (int j = 0; j < NR; ++j) {
      const __m512 q = _mm512_loadu_ps(qs + (r0 + j) * d + c);
      for (int u = 0; u < 4; ++u) x[j * 4 + u] = _mm512_fmadd_ps(q, k[u], x[j * 4 + u]);
    }
  }
  for (int j = 0; j < NR; j += 2) {
    float out[8];
    hsum8x16(x + j * 4, out);
    for (int u = 0; u < 4; ++u) {
      s[(r0 + j) * G + t0 + u] = out[u];
      s[(r0 + j + 1) * G + t0 + u] = out[4 + u];
    }
  }
}

// One row, 4 tokens (an odd last row).
inline void key_tile1(const uint8_t* kc, int64_t d, int64_t G, const float* qs, int64_t r, int64_t t0, float* s) {
  __m512 x[4];
  for (int u = 0; u < 4; ++u) x[u] = _mm512_setzero_ps();
  const uint8_t* k0 = kc + t0 * d;
  for (int64_t c = 0; c < d; c += 16) {
    const __m512 q = _mm512_loadu_ps(qs + r * d + c);
    for (int u = 0; u < 4; ++u) x[u] = _mm512_fmadd_ps(q, codes16(k0 + u * d + c), x[u]);
  }
  for (int u = 0; u < 4; ++u) s[r * G + t0 + u] = _mm512_reduce_add_ps(x[u]);
}

// acc[r, c0 .. c0 + 16 NC) += sum_t p[t, r] (vscale[g(c), t] code[t, c]) + vb[r, g(c)]
// for rows r0 .. r0+NR-1: each token's codes are widened and scaled once
// (vscale: f32 [vg, G]) and used by every row. p: [G, R] token-major, so one
// pointer walks it; vb: [R, vg] = sum_t p * vmin.
template <int NR, int NC>
inline void value_tile(const uint8_t* vc, int64_t d, int64_t G, int64_t R, int64_t vg, const float* pt, const float* vsf, const float* vb,
                       int64_t r0, int64_t c0, float* acc) {
  __m512 x[NR * NC];
  const float* vs[NC];
  for (int k = 0; k < NC; ++k) {
    const int64_t g = (c0 + 16 * k) / G;
    vs[k] = vsf + g * G;
    for (int j = 0; j < NR; ++j) {
      x[j * NC + k] = _mm512_add_ps(_mm512_loadu_ps(acc + (r0 + j) * d + c0 + 16 * k), _mm512_set1_ps(vb[(r0 + j) * vg + g]));
    }
  }
  const float* p = pt + r0;
  const uint8_t* vt = vc + c0;
  for (int64_t t = 0; t < G; ++t, p += R, vt += d) {
    __m512 v[NC];
    for (int k = 0; k < NC; ++k) v[k] = _mm512_mul_ps(codes16(vt + 16 * k), _mm512_set1_ps(vs[k][t]));
    for (int j = 0; j < NR; ++j) {
      const __m512 w = _mm512_set1_ps(p[j]);
      for (int k = 0; k < NC; ++k) x[j * NC + k] = _mm512_fmadd_ps(w, v[k], x[j * NC + k]);
    }
  }
  for (int j = 0; j < NR; ++j) {
    for (int k = 0; k < NC; ++k) _mm512_storeu_ps(acc + (r0 + j) * d + c0 + 16 * k, x[j * NC + k]);
  }
}

template <int NR>
inline void value_rows(const uint8_t* vc, int64_t d, int64_t G, int64_t R, int64_t vg, const float* pt, const float* vsf, const float* vb,
                       int64_t r0, float* acc) {
  int64_t c = 0;
  for (; c + 64 <= d; c += 64) value_tile<NR, 4>(vc, d, G, R, vg, pt, vsf, vb, r0, c, acc);
  for (; c < d; c += 16) value_tile<NR, 1>(vc, d, G, R, vg, pt, vsf, vb, r0, c, acc);
}

// One int8 block of G tokens starting at b0, every row. ws: [R, d] qs,
// [R] bias, [G, R] pt, [vg, G] vsf, [R, vg] vb.
void step_int8(const QuantLayout& L, const uint8_t* block, const QuantAttendArgs& a, int64_t b0, const int64_t* last, float* m,
               float* l, float* acc, float* s, float* ws) {
  const int64_t d = L.head_dim, G = L.group, R = a.rows, vg = L.v_groups;
  float* qs = ws;
  float* bias = qs + R * d;
  float* pt = bias + R;
  float* vsf = pt + G * R;
  float* vb = vsf + vg * G;
  const uint16_t* ksc = f16_at(block, L.k_scale);
  const uint16_t* kmn = f16_at(block, L.k_min);
  // qs = q * kscale; bias = q . kmin.
  for (int64_t r = 0; r < R; ++r) {
    const float* q = a.q[r];
    __m512 b = _mm512_setzero_ps();
    for (int64_t c = 0; c < d; c += 16) {
      const __m512 qv = _mm512_loadu_ps(q + c);
      _mm512_storeu_ps(qs + r * d + c, _mm512_mul_ps(qv, load_f16x16(ksc + c)));
      b = _mm512_fmadd_ps(qv, load_f16x16(kmn + c), b);
    }
    bias[r] = _mm512_reduce_add_ps(b);
  }
  // Scores: 4 tokens x up to 4 rows per tile.
  const uint8_t* kc = block + L.k_codes;
  // The block two ahead streams in meanwhile, spread over the key tiles (a
  // prefetch past the head's last block is harmless).
  const uint8_t* pf = block + 2 * L.block_bytes;
  const int64_t pf_lines = (L.block_bytes + 63) / 64, pf_per_tile = (pf_lines + G / 4 - 1) / (G / 4);
  for (int64_t t0 = 0; t0 < G; t0 += 4) {
    for (int64_t i = (t0 / 4) * pf_per_tile, e = i + pf_per_tile < pf_lines ? i + pf_per_tile : pf_lines; i < e; ++i) {
      _mm_prefetch(reinterpret_cast<const char*>(pf + 64 * i), _MM_HINT_T0);
    }
    int64_t r0 = 0;
    for (; r0 + 4 <= R; r0 += 4) key_tile<4>(kc, d, G, qs, r0, t0, s);
    for (; r0 + 2 <= R; r0 += 2) key_tile<2>(kc, d, G, qs, r0, t0, s);
    if (r0 < R) key_tile1(kc, d, G, qs, r0, t0, s);
  }
  // Bias, scale, causal mask, softcap.
  for (int64_t r = 0; r < R; ++r) {
    float* sr = s + r * G;
    const __m512 bv = _mm512_set1_ps(bias[r]), sc = _mm512_set1_ps(a.scale);
    for (int64_t t = 0; t < G; t += 16) _mm512_storeu_ps(sr + t, _mm512_mul_ps(_mm512_add_ps(_mm512_loadu_ps(sr + t), bv), sc));
    if (b0 + G - 1 > last[r] || a.softcap > 0.0f) {
      for (int64_t t = 0; t < G; ++t) {
        if (b0 + t > last[r]) sr[t] = -INFINITY;
        else if (a.softcap > 0.0f) sr[t] = a.softcap * tanhf(sr[t] / a.softcap);
      }
    }
  }
  softmax_block(R, G, d, s, m, l, acc);
  // Values: vb = sum_t p * vmin per (row, group); p token-major [G, R];
  // the value scales as f32 [vg, G].
  const uint16_t* vsc = f16_at(block, L.v_scale);  // [vg, G]
  const uint16_t* vmn = f16_at(block, L.v_min);
  for (int64_t i = 0; i < vg * G; i += 16) _mm512_storeu_ps(vsf + i, load_f16x16(vsc + i));
  for (int64_t r = 0; r < R; ++r) {
    for (int64_t g = 0; g < vg; ++g) {
      __m512 b = _mm512_setzero_ps();
      for (int64_t t = 0; t < G; t += 16) b = _mm512_fmadd_ps(_mm512_loadu_ps(s + r * G + t), load_f16x16(vmn + g * G + t), b);
      vb[r * vg + g] = _mm512_reduce_add_ps(b);
    }
    for (int64_t t = 0; t < G; ++t) pt[t * R + r] = s[r * G + t];
  }
  const uint8_t* vc = block + L.v_codes;
  int64_t r0 = 0;
  for (; r0 + 4 <= R; r0 += 4) value_rows<4>(vc, d, G, R, vg, pt, vsf, vb, r0, acc);
  for (; r0 + 2 <= R; r0 += 2) value_rows<2>(vc, d, G, R, vg, pt, vsf, vb, r0, acc);
  if (r0 < R) value_rows<1>(vc, d, G, R, vg, pt, vsf, vb, r0, acc);
}

}  // namespace

// Workspace floats step_int8 needs beyond the AVX2 kernel's (kv_quant_attend.cpp sizes it).
int64_t workspace_floats(const QuantLayout& L, int64_t rows) {
  return rows * L.head_dim + rows + L.group * rows + L.v_groups * L.group + rows * L.v_groups + 2 * rows * (L.head_dim + 2) + 64;
}

void run_chunk(const QuantHeadView& h, const QuantAttendArgs& a, int64_t t0, int64_t t1, int64_t len, float* m, float* l, float* acc,
               float* scratch) {
  const QuantLayout& L = *h.layout;
  if (!int8_fits(L) || t0 >= h.n_blocks * L.group) {
    qattn_avx2::run_chunk(h, a, t0, t1, len, m, l, acc, scratch);
    return;
  }
  const int64_t d = L.head_dim, G = L.group, R = a.rows;
  for (int64_t r = 0; r < R; ++r) {
    m[r] = -INFINITY;
    l[r] = 0.0f;
    for (int64_t c = 0; c < d; ++c) acc[r * d + c] = 0.0f;
  }
  const int64_t quant_end = h.n_blocks * G;
  int64_t last[kQuantMaxRows];
  for (int64_t r = 0; r < R; ++r) last[r] = a.causal ? len - a.n_q + r % a.n_q : len - 1;
  float* s = scratch;  // [R, G]
  float* ws = s + R * G;
  const int64_t qend = t1 < quant_end ? t1 : quant_end;
  for (int64_t b0 = t0; b0 < qend; b0 += G) step_int8(L, h.blocks + (b0 / G) * L.block_bytes, a, b0, last, m, l, acc, s, ws);
  if (qend >= t1) return;
  // The f16 tail [max(t0, qend), t1): the AVX2 kernel into a second state, merged here.
  float* m2 = ws;
  float* l2 = m2 + R;
  float* acc2 = l2 + R;
  qattn_avx2::run_chunk(h, a, t0 > qend ? t0 : qend, t1, len, m2, l2, acc2, acc2 + R * d);
  for (int64_t r = 0; r < R; ++r) {
    if (m2[r] == -INFINITY) continue;
    const float mx = m2[r] > m[r] ? m2[r] : m[r];
    const float c1 = m[r] == -INFINITY ? 0.0f : expf(m[r] - mx), c2 = expf(m2[r] - mx);
    for (int64_t c = 0; c < d; ++c) acc[r * d + c] = c1 * acc[r * d + c] + c2 * acc2[r * d + c];
    l[r] = c1 * l[r] + c2 * l2[r];
    m[r] = mx;
  }
}

}  // namespace tp::kv::qattn_avx512

#pragma GCC diagnostic pop
#pragma GCC pop_options
#else
namespace tp::kv::qattn_avx512 {
int64_t workspace_floats(const QuantLayout&, int64_t) { return 0; }
// Never selected: cpu_features reports no AVX-512 on this target.
void run_chunk(const QuantHeadView& h, const QuantAttendArgs& a, int64_t t0, int64_t t1, int64_t len, float* m, float* l, float* acc,
               float* scratch) {
  qattn_avx2::run_chunk(h, a, t0, t1, len, m, l, acc, scratch);
}
}  // namespace tp::kv::qattn_avx512
#endif
