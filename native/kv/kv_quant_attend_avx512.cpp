// AVX-512 (F + BW + VL) build of the quantized decode kernel. Storage is
// KIVI's (Liu et al. 2024, "KIVI: A Tuning-Free Asymmetric 2bit Quantization
// for KV Cache"): keys per channel over groups of `group` tokens, values per
// token over groups of `group` channels, asymmetric (min, scale) in f16;
// layouts in kv_quant.h.
//
// int8 blocks: each block's codes are widened to f32 in registers (never
// stored) and used by every query row of the GQA group; the per-channel key
// scale and min, and the per-token value scale and min, are folded into the
// query and the token weights once per block and row:
//   q . k_t = q . kmin + sum_c (q_c kscale_c) code_tc
//   sum_t p_t v_tc = sum_t (p_t vscale_tg) code_tc + sum_t p_t vmin_tg
// The same values as dequantizing first (f32 reassociation only), so the
// int8 results stay within the float kernels' tolerance. No VNNI: an
// integer q . k would need q rounded to int8, which the int8 cache's
// contract (f32 attention over the stored values) does not allow.
//
// int4 blocks (group 32, headDim % 32 == 0, <= 256) on CPUs with AVX-512
// VNNI: the integer kernel of kv_quant_attend_avx2.cpp (same contract: q *
// kscale rounded to int8 per block and row, token weights p * vscale rounded
// to u8 per row and channel group, everything else f32) on 512-bit vectors:
//   keys    one vector = one channel octet of two token octets (the two
//           32-byte pieces of the layout side by side), so each query byte
//           quad is an embedded broadcast of vpdpbusd and the 16 int32 lanes
//           are 16 tokens' dots (no reduction); high nibbles are masked in
//           place (x & 0xf0 = 16 * code) and their sum shifted right by 4.
//   values  two token pairs' code bytes interleaved (vpunpck*wd) so each
//           int32 lane holds one channel's 4 tokens: one vpdpbusd per 16
//           channels x 4 tokens and row, u8 weights (8 bits: the int32 sums
//           cannot overflow, so the step is pmax / 255 per row and the
//           block's largest value scale per group); the float accumulators
//           stay in that lane order over the chunk and are put back in
//           channel order once at its end.
// int4 blocks without VNNI, and int8 / int4 layouts these kernels do not
// take, run the AVX2 kernel; the f16 tail of a chunk runs there too and is
// merged by log-sum-exp. Library headers come before the target pragma.
#include <cmath>
#include <cstdint>

#include "../core/cpu_features.h"
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

// Online softmax: raise one row's running max to cover a block whose max is
// block_max (finite), rescaling its d accumulators and its sum by
// exp(m_old - m_new). Returns that factor (1 when the max did not move).
inline float raise_running_max(float& m, float& l, float* acc_row, int64_t d, float block_max) {
  const float nm = block_max > m ? block_max : m;
  if (nm == m) return 1.0f;
  const float corr = m == -INFINITY ? 0.0f : expf(m - nm);
  const __m512 c = _mm512_set1_ps(corr);
  for (int64_t i = 0; i < d; i += 16) _mm512_storeu_ps(acc_row + i, _mm512_mul_ps(c, _mm512_loadu_ps(acc_row + i)));
  l *= corr;
  m = nm;
  return corr;
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
    raise_running_max(m[r], l[r], acc + r * d, d, bm);
    const __m512 nmv = _mm512_set1_ps(m[r]);
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

// ---- int4, AVX-512 VNNI ------------------------------------------------------
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")

namespace {

// The blocks the AVX2 kernel's integer path takes (kv_quant_attend_avx2.cpp
// int4_step_fits): the same shapes, so which rounding applies depends only on
// the ISA level and the CPU.
bool int4_fits(const QuantLayout& L) { return L.bits == 4 && L.group == 32 && L.head_dim % 32 == 0 && L.head_dim <= 256; }

// Workspace floats of an int4 chunk (R rows): vbs [R, vg, 16] (kept over the
// chunk), then per block vsn, vmf [vg, 32], alpha, kb, pmax [R], beta [R, vg],
// q8 [R, d] bytes, wq [R, vg, 32] bytes (+ 64 bytes: the last row's narrow
// table load reads past it).
int64_t int4_workspace_floats(const QuantLayout& L, int64_t R) {
  const int64_t d = L.head_dim, vg = L.v_groups;
  return 16 * R * vg + 64 * vg + 3 * R + R * vg + (R * d + 3) / 4 + 8 * R * vg + 16 + 64;
}

// acc += u8 (a) x s8 (b) dot of 4 bytes per int32 lane. Inline asm: GCC 12's
// intrinsic copies the accumulators between registers on every iteration
// of the loops below.
inline __m512i dpbusd(__m512i acc, __m512i a, __m512i b) {
  __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b));
  return acc;
}

// Online softmax over one block of 32 scores per row, as softmax_block above,
// also giving each row's largest and summed probability in the block (0 for
// a row the block does not reach).
// vbs [R, vg, 16] (the rows' value-min sums, see step_int4) is rescaled with acc.
void softmax32(int64_t R, int64_t d, int64_t vg, float* s, float* m, float* l, float* acc, float* vbs, float* pmax) {
  const __m512 ninf = _mm512_set1_ps(-INFINITY);
  for (int64_t r = 0; r < R; ++r) {
    float* sr = s + r * 32;
    const __m512 s0 = _mm512_loadu_ps(sr), s1 = _mm512_loadu_ps(sr + 16);
    const float bm = _mm512_reduce_max_ps(_mm512_max_ps(s0, s1));
    if (bm == -INFINITY) {
      _mm512_storeu_ps(sr, _mm512_setzero_ps());
      _mm512_storeu_ps(sr + 16, _mm512_setzero_ps());
      pmax[r] = 0.0f;
      continue;
    }
    const float corr = raise_running_max(m[r], l[r], acc + r * d, d, bm);
    if (corr != 1.0f) {  // the value-min sums scale with the accumulators
      const __m512 c = _mm512_set1_ps(corr);
      float* vr = vbs + r * vg * 16;
      for (int64_t i = 0; i < vg * 16; i += 16) _mm512_storeu_ps(vr + i, _mm512_mul_ps(c, _mm512_loadu_ps(vr + i)));
    }
    const __m512 nmv = _mm512_set1_ps(m[r]);
    const __m512 p0 = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(s0, ninf, _CMP_NEQ_OQ), exp_neg(_mm512_sub_ps(s0, nmv)));
    const __m512 p1 = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(s1, ninf, _CMP_NEQ_OQ), exp_neg(_mm512_sub_ps(s1, nmv)));
    _mm512_storeu_ps(sr, p0);
    _mm512_storeu_ps(sr + 16, p1);
    l[r] += _mm512_reduce_add_ps(_mm512_add_ps(p0, p1));
    pmax[r] = _mm512_reduce_max_ps(_mm512_max_ps(p0, p1));  // the largest weight exactly (no second exp)
  }
}

// Integer key dots of rows r0 .. r0+NR-1 with 16 tokens (token octets o and
// o + 1: kc0, kc1 point at their codes [headDim / 8 channel octets, 8 tokens,
// 4 bytes]): lane i of the result is token i's q8 . codes. q8: [R, d] int8.
// pf: lines of the block two ahead to prefetch, pf_n of them per channel octet.
template <int NR>
inline void key_dots(const uint8_t* kc0, const uint8_t* kc1, int64_t d, const int8_t* q8, int64_t r0, __m512i* out, const uint8_t* pf,
                     int64_t pf_n) {
  const __m512i lo_mask = _mm512_set1_epi8(0x0f), hi_mask = _mm512_set1_epi8(static_cast<char>(0xf0));
  __m512i lo[NR], hi[NR];
  for (int j = 0; j < NR; ++j) lo[j] = hi[j] = _mm512_setzero_si512();
  const int64_t octets = d / 8;
  for (int64_t k = 0; k < octets; ++k) {
    for (int64_t i = 0; i < pf_n; ++i) _mm_prefetch(reinterpret_cast<const char*>(pf + 64 * (k * pf_n + i)), _MM_HINT_T0);
    const __m512i x = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(kc0 + 32 * k))),
                                         _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kc1 + 32 * k)), 1);
    const __m512i xl = _mm512_and_si512(x, lo_mask), xh = _mm512_and_si512(x, hi_mask);  // xh = 16 * high nibble
    for (int j = 0; j < NR; ++j) {
      int32_t ql, qh;
      std::memcpy(&ql, q8 + (r0 + j) * d + 8 * k, 4);
      std::memcpy(&qh, q8 + (r0 + j) * d + 8 * k + 4, 4);
      lo[j] = dpbusd(lo[j], xl, _mm512_set1_epi32(ql));
      hi[j] = dpbusd(hi[j], xh, _mm512_set1_epi32(qh));
    }
  }
  // Exact: hi[j] is 16 times an integer.
  for (int j = 0; j < NR; ++j) out[j] = _mm512_add_epi32(lo[j], _mm512_srai_epi32(hi[j], 4));
}

// Value sums of rows r0 .. r0+NR-1 over one block for channel blocks 2mb and
// 2mb + 1 (the second absent when !wide): per token quad, the two pairs' 64
// code bytes, nibbles split and interleaved so that int32 lane i of u[k]
// holds 4 tokens' codes of one channel, dotted with the row's u8 weights of
// those tokens in that lane's channel group (wq: [R, vg, 32 tokens]).
// Accumulates f32 acc (lane order, see scrambled_channel) += beta * sum.
template <int NR>
inline void value_sums(const uint8_t* vc, int64_t pair_bytes, bool wide, const uint8_t* wq, int64_t vg, int64_t mb, int64_t r0,
                       const float* beta, float* acc, int64_t d) {
  const __m512i nib = _mm512_set1_epi8(0x0f);
  const __m512i half = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 8, 8, 8, 8, 8, 8, 8, 8);
  __m512i tab[NR], u[NR][4];
  for (int j = 0; j < NR; ++j) {
    tab[j] = _mm512_loadu_si512(wq + ((r0 + j) * vg + 2 * mb) * 32);  // groups 2mb, 2mb + 1: 16 token-quad dwords
    for (int k = 0; k < 4; ++k) u[j][k] = _mm512_setzero_si512();
  }
  const uint8_t* base = vc + mb * 64;
  for (int64_t qd = 0; qd < 8; ++qd) {
    const uint8_t* pa = base + 2 * qd * pair_bytes;
    const __m512i A = wide ? _mm512_loadu_si512(pa) : _mm512_zextsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(pa)));
    const __m512i B = wide ? _mm512_loadu_si512(pa + pair_bytes)
                           : _mm512_zextsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(pa + pair_bytes)));
    const __m512i al = _mm512_and_si512(A, nib), ah = _mm512_and_si512(_mm512_srli_epi16(A, 4), nib);
    const __m512i bl = _mm512_and_si512(B, nib), bh = _mm512_and_si512(_mm512_srli_epi16(B, 4), nib);
    const __m512i c[4] = {_mm512_unpacklo_epi16(al, bl), _mm512_unpackhi_epi16(al, bl), _mm512_unpacklo_epi16(ah, bh),
                          _mm512_unpackhi_epi16(ah, bh)};
    const __m512i idx = _mm512_add_epi32(half, _mm512_set1_epi32(static_cast<int>(qd)));
    for (int j = 0; j < NR; ++j) {
      const __m512i w = _mm512_permutexvar_epi32(idx, tab[j]);
      for (int k = 0; k < 4; ++k) u[j][k] = dpbusd(u[j][k], w, c[k]);
    }
  }
  for (int j = 0; j < NR; ++j) {
    const int64_t r = r0 + j;
    float* o = acc + r * d + mb * 64;
    const float b0 = beta[r * vg + 2 * mb];
    if (wide) {
      const __m512 bv = _mm512_insertf32x8(_mm512_set1_ps(b0), _mm256_set1_ps(beta[r * vg + 2 * mb + 1]), 1);
      for (int k = 0; k < 4; ++k) _mm512_storeu_ps(o + 16 * k, _mm512_fmadd_ps(bv, _mm512_cvtepi32_ps(u[j][k]), _mm512_loadu_ps(o + 16 * k)));
    } else {
      const __m256 bv = _mm256_set1_ps(b0);
      for (int k = 0; k < 4; ++k) {
        _mm256_storeu_ps(o + 8 * k, _mm256_fmadd_ps(bv, _mm256_cvtepi32_ps(_mm512_castsi512_si256(u[j][k])), _mm256_loadu_ps(o + 8 * k)));
      }
    }
  }
}

// Puts rows [0, R) of acc back in channel order from value_sums' lane order
// and adds each row's value-min sum of every channel group (vbs [R, vg, 16]).
// Lane order, per 64 channels mb (32 at the end when d % 64 == 32): vector k
// of `lanes` (16, or 8 when narrow) floats; lane i = 4 L + pos holds channel
// (2 mb + L / 2) * 32 + (L % 2) * 8 + {0, 4, 16, 20}[k] + pos.
void finish_int4_chunk(int64_t R, int64_t d, int64_t vg, float* acc, const float* vbs, float* tmp) {
  static constexpr int kOff[4] = {0, 4, 16, 20};
  for (int64_t r = 0; r < R; ++r) {
    float* a = acc + r * d;
    for (int64_t i = 0; i < d; ++i) tmp[i] = a[i];
    for (int64_t mb = 0; 64 * mb < d; ++mb) {
      const int64_t lanes = 64 * mb + 64 <= d ? 16 : 8;
      const float* src = tmp + 64 * mb;
      for (int64_t k = 0; k < 4; ++k) {
        for (int64_t i = 0; i < lanes; ++i) {
          const int64_t L = i >> 2;
          a[(2 * mb + (L >> 1)) * 32 + (L & 1) * 8 + kOff[k] + (i & 3)] = src[k * lanes + i];
        }
      }
    }
    for (int64_t g = 0; g < vg; ++g) {
      const __m512 b = _mm512_set1_ps(_mm512_reduce_add_ps(_mm512_loadu_ps(vbs + (r * vg + g) * 16)));
      for (int64_t c = 32 * g; c < 32 * g + 32; c += 16) _mm512_storeu_ps(a + c, _mm512_add_ps(_mm512_loadu_ps(a + c), b));
    }
  }
}

// q' = q * kscale rounded to int8 per row (step max |q'| / 127, nearest) into
// q8 [R, d]; alpha = step * scale, kb = (q . kmin) * scale per row. ND = d / 16
// vectors per row stay in registers.
template <int ND>
void quantize_queries(const QuantAttendArgs& a, const uint16_t* ksc, const uint16_t* kmn, int8_t* q8, float* alpha, float* kb) {
  constexpr int64_t d = 16 * ND;
  __m512 ks[ND], km[ND];
  for (int i = 0; i < ND; ++i) {
    ks[i] = load_f16x16(ksc + 16 * i);
    km[i] = load_f16x16(kmn + 16 * i);
  }
  for (int64_t r = 0; r < a.rows; ++r) {
    const float* q = a.q[r];
    __m512 x[ND];
    __m512 mx = _mm512_setzero_ps(), bias = _mm512_setzero_ps();
    for (int i = 0; i < ND; ++i) {
      const __m512 qv = _mm512_loadu_ps(q + 16 * i);
      x[i] = _mm512_mul_ps(qv, ks[i]);
      mx = _mm512_max_ps(mx, _mm512_abs_ps(x[i]));
      bias = _mm512_fmadd_ps(qv, km[i], bias);
    }
    const float amax = _mm512_reduce_max_ps(mx);
    const float step = amax > 0.0f ? amax / 127.0f : 1.0f;
    const __m512 inv = _mm512_set1_ps(1.0f / step);
    for (int i = 0; i < ND; ++i) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(q8 + r * d + 16 * i), _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(x[i], inv))));
    }
    alpha[r] = step * a.scale;
    kb[r] = _mm512_reduce_add_ps(bias) * a.scale;
  }
}

// One int4 block of 32 tokens starting at b0, every row; acc in value_sums'
// lane order, and vbs [R, vg, 16] += p * vmin per row and channel group
// (reduced once per chunk: finish_int4_chunk). ws: int4_workspace_floats.
__attribute__((noinline)) void step_int4(const QuantLayout& L, const uint8_t* block, const QuantAttendArgs& a, int64_t b0, const int64_t* last,
                                         float* m, float* l, float* acc, float* s, float* ws) {
  constexpr int64_t G = 32;
  const int64_t d = L.head_dim, R = a.rows, vg = L.v_groups;
  float* vbs = ws;  // [R, vg, 16], kept over the chunk
  float* vsn = vbs + 16 * R * vg;  // value scale / the block's largest in its group, [vg, 32]
  float* vmf = vsn + 32 * vg;
  float* alpha = vmf + 32 * vg;
  float* kb = alpha + R;
  float* pmax = kb + R;
  float* beta = pmax + R;  // [R, vg]
  auto* q8 = reinterpret_cast<int8_t*>(beta + R * vg);  // [R, d]
  uint8_t* wq = reinterpret_cast<uint8_t*>(beta + R * vg + (R * d + 3) / 4);  // [R, vg, 32]
  const uint16_t* ksc = f16_at(block, L.k_scale);
  const uint16_t* kmn = f16_at(block, L.k_min);
  switch (d / 16) {
    case 2: quantize_queries<2>(a, ksc, kmn, q8, alpha, kb); break;
    case 4: quantize_queries<4>(a, ksc, kmn, q8, alpha, kb); break;
    case 6: quantize_queries<6>(a, ksc, kmn, q8, alpha, kb); break;
    case 8: quantize_queries<8>(a, ksc, kmn, q8, alpha, kb); break;
    case 10: quantize_queries<10>(a, ksc, kmn, q8, alpha, kb); break;
    case 12: quantize_queries<12>(a, ksc, kmn, q8, alpha, kb); break;
    case 14: quantize_queries<14>(a, ksc, kmn, q8, alpha, kb); break;
    default: quantize_queries<16>(a, ksc, kmn, q8, alpha, kb); break;
  }
  // Scores, 16 tokens x up to 4 rows at a time; the block two ahead streams
  // in meanwhile (a prefetch past the head's last block is harmless). The
  // prefetch matters: without it the step took twice as long at 32k tokens
  // on Zen 5 (the access order inside a block defeats the hardware prefetcher).
  const uint8_t* kc = block + L.k_codes;
  const uint8_t* pf = block + 2 * L.block_bytes;
  const int64_t pf_lines = L.block_bytes / 64, octets = d / 8;
  const int64_t pf_n = (pf_lines + 2 * octets - 1) / (2 * octets);
  for (int64_t o = 0; o < 4; o += 2) {
    const uint8_t* kc0 = kc + o * L.k_octet_bytes;
    const uint8_t* kc1 = kc0 + L.k_octet_bytes;
    for (int64_t r0 = 0; r0 < R; r0 += 4) {
      const int64_t nr = R - r0 < 4 ? R - r0 : 4;
      const uint8_t* p = pf + (o / 2) * octets * pf_n * 64;
      const int64_t n_pf = r0 == 0 ? pf_n : 0;
      __m512i dots[4];
      switch (nr) {
        case 1: key_dots<1>(kc0, kc1, d, q8, r0, dots, p, n_pf); break;
        case 2: key_dots<2>(kc0, kc1, d, q8, r0, dots, p, n_pf); break;
        case 3: key_dots<3>(kc0, kc1, d, q8, r0, dots, p, n_pf); break;
        default: key_dots<4>(kc0, kc1, d, q8, r0, dots, p, n_pf); break;
      }
      for (int64_t j = 0; j < nr; ++j) {
        const int64_t r = r0 + j;
        _mm512_storeu_ps(s + r * G + 8 * o, _mm512_fmadd_ps(_mm512_set1_ps(alpha[r]), _mm512_cvtepi32_ps(dots[j]), _mm512_set1_ps(kb[r])));
      }
    }
  }
  // Causal mask, softcap.
  for (int64_t r = 0; r < R; ++r) {
    if (b0 + G - 1 > last[r] || a.softcap > 0.0f) {
      float* sr = s + r * G;
      for (int64_t t = 0; t < G; ++t) {
        if (b0 + t > last[r]) sr[t] = -INFINITY;
        else if (a.softcap > 0.0f) sr[t] = a.softcap * tanhf(sr[t] / a.softcap);
      }
    }
  }
  softmax32(R, d, vg, s, m, l, acc, vbs, pmax);
  // Token weights w = p * vscale per (row, channel group g), rounded to u8
  // with step vsmax_g * pmax_r / 255 (vsmax_g: the block's largest value
  // scale in group g): every weight is <= 255, and a channel's int32 sum
  // over the block at most 32 * 255 * 15.
  const uint16_t* vsc = f16_at(block, L.v_scale);  // [vg, G]
  const uint16_t* vmn = f16_at(block, L.v_min);
  float vsmax[8];
  for (int64_t g = 0; g < vg; ++g) {
    const __m512 v0 = load_f16x16(vsc + g * G), v1 = load_f16x16(vsc + g * G + 16);
    vsmax[g] = _mm512_reduce_max_ps(_mm512_max_ps(v0, v1));
    const __m512 inv = _mm512_set1_ps(vsmax[g] > 0.0f ? 1.0f / vsmax[g] : 0.0f);
    _mm512_storeu_ps(vsn + g * G, _mm512_mul_ps(v0, inv));
    _mm512_storeu_ps(vsn + g * G + 16, _mm512_mul_ps(v1, inv));
    _mm512_storeu_ps(vmf + g * G, load_f16x16(vmn + g * G));
    _mm512_storeu_ps(vmf + g * G + 16, load_f16x16(vmn + g * G + 16));
  }
  for (int64_t r = 0; r < R; ++r) {
    const __m512 p0 = _mm512_loadu_ps(s + r * G), p1 = _mm512_loadu_ps(s + r * G + 16);
    const float f = pmax[r] / 255.0f;
    const __m512 inv = _mm512_set1_ps(f > 0.0f ? 1.0f / f : 0.0f);
    const __m512 q0 = _mm512_mul_ps(p0, inv), q1 = _mm512_mul_ps(p1, inv);
    for (int64_t g = 0; g < vg; ++g) {
      uint8_t* dst = wq + (r * vg + g) * G;
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), _mm512_cvtusepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(q0, _mm512_loadu_ps(vsn + g * G)))));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 16),
                       _mm512_cvtusepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(q1, _mm512_loadu_ps(vsn + g * G + 16)))));
      beta[r * vg + g] = vsmax[g] * f;
      float* vr = vbs + (r * vg + g) * 16;
      _mm512_storeu_ps(vr, _mm512_fmadd_ps(p1, _mm512_loadu_ps(vmf + g * G + 16), _mm512_fmadd_ps(p0, _mm512_loadu_ps(vmf + g * G), _mm512_loadu_ps(vr))));
    }
  }
  // Values: per pair of channel blocks (64 channels), up to 4 rows at a time.
  const uint8_t* vc = block + L.v_codes;
  for (int64_t mb = 0; 2 * mb < vg; ++mb) {
    const bool wide = 2 * mb + 1 < vg;
    for (int64_t r0 = 0; r0 < R; r0 += 4) {
      switch (R - r0 < 4 ? R - r0 : 4) {
        case 1: value_sums<1>(vc, L.v_pair_bytes, wide, wq, vg, mb, r0, beta, acc, d); break;
        case 2: value_sums<2>(vc, L.v_pair_bytes, wide, wq, vg, mb, r0, beta, acc, d); break;
        case 3: value_sums<3>(vc, L.v_pair_bytes, wide, wq, vg, mb, r0, beta, acc, d); break;
        default: value_sums<4>(vc, L.v_pair_bytes, wide, wq, vg, mb, r0, beta, acc, d); break;
      }
    }
  }
}

}  // namespace

#pragma GCC pop_options

// Workspace floats step_int8 / step_int4 need beyond the AVX2 kernel's (kv_quant_attend.cpp sizes it).
int64_t workspace_floats(const QuantLayout& L, int64_t rows) {
  const int64_t int8 = rows * L.head_dim + rows + L.group * rows + L.v_groups * L.group + rows * L.v_groups + 2 * rows * (L.head_dim + 2) + 64;
  const int64_t int4 = int4_workspace_floats(L, rows) + 2 * rows * (L.head_dim + 2);
  return int8 > int4 ? int8 : int4;
}

void run_chunk(const QuantHeadView& h, const QuantAttendArgs& a, int64_t t0, int64_t t1, int64_t len, float* m, float* l, float* acc,
               float* scratch) {
  const QuantLayout& L = *h.layout;
  const bool int8 = int8_fits(L), int4 = !int8 && int4_fits(L) && cpu_features().avx512vnni;
  if (!(int8 || int4) || t0 >= h.n_blocks * L.group) {
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
  if (int8) {
    for (int64_t b0 = t0; b0 < qend; b0 += G) step_int8(L, h.blocks + (b0 / G) * L.block_bytes, a, b0, last, m, l, acc, s, ws);
  } else {
    for (int64_t i = 0; i < 16 * R * L.v_groups; ++i) ws[i] = 0.0f;
    for (int64_t b0 = t0; b0 < qend; b0 += G) step_int4(L, h.blocks + (b0 / G) * L.block_bytes, a, b0, last, m, l, acc, s, ws);
    finish_int4_chunk(R, d, L.v_groups, acc, ws, ws + 16 * R * L.v_groups);
  }
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
