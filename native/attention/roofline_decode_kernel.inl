// The roofline decode loop, written once over a tiny vector type W that each
// ISA file defines (W::V, W::N lanes, W::kRegs registers, load / fma / exp /
// hsum ...). Included inside that file's namespace, under its target pragma.
// No library templates here: an instantiation compiled for AVX-512 could be
// merged with the generic one by the linker.
//
// Per KV head and 64-key chunk:
//   1. s[g][j] = (scale * q_g) . k_j     each k_j loaded once for the group
//   2. online softmax: m_g, l_g updated, s turned into p = exp(s - m_g),
//      acc_g rescaled by exp(m_old - m_new)
//   3. acc_g += sum_j p[g][j] v_j        each v_j loaded once per register
//                                        block of the group's accumulators
// out_g = acc_g / l_g.

constexpr int kChunk = 64;

template <bool F16>
inline W::V load_kv(const void* base, int64_t off) {
  if constexpr (F16) {
    return W::load_f16(static_cast<const uint16_t*>(base) + off);
  } else {
    return W::loadu(static_cast<const float*>(base) + off);
  }
}

// Head-dim blocks of W::N lanes per P.V pass, so the group's accumulators
// (G * B vectors), G broadcasts and one V vector stay in registers.
constexpr int v_blocks(int g) {
  const int b = (W::kRegs - 8) / g;
  return b >= 8 ? 8 : b >= 4 ? 4 : b >= 2 ? 2 : 1;
}

template <int G, int B, bool F16>
inline void pv_pass(const void* v, int64_t c0, int n, int d, int b0, const float (*p)[kChunk],
                    float (*acc)[kRooflineMaxHeadDim]) {
  W::V a[G][B];
  for (int g = 0; g < G; ++g) {
    for (int bb = 0; bb < B; ++bb) a[g][bb] = W::load(&acc[g][(b0 + bb) * W::N]);
  }
  for (int j = 0; j < n; ++j) {
    const int64_t row = (c0 + j) * d + static_cast<int64_t>(b0) * W::N;
    W::V pj[G];
    for (int g = 0; g < G; ++g) pj[g] = W::set1(p[g][j]);
    for (int bb = 0; bb < B; ++bb) {
      const W::V x = load_kv<F16>(v, row + bb * W::N);
      for (int g = 0; g < G; ++g) a[g][bb] = W::fma(pj[g], x, a[g][bb]);
    }
  }
  for (int g = 0; g < G; ++g) {
    for (int bb = 0; bb < B; ++bb) W::store(&acc[g][(b0 + bb) * W::N], a[g][bb]);
  }
}

template <int G, bool F16>
void head_group(const float* q, const void* k, const void* v, float* out, int64_t nkv, int d, float scale) {
  const int nb = d / W::N;
  alignas(64) float qs[G][kRooflineMaxHeadDim];
  alignas(64) float acc[G][kRooflineMaxHeadDim];
  alignas(64) float s[G][kChunk];
  float m[G], l[G];
  for (int g = 0; g < G; ++g) {
    for (int i = 0; i < d; ++i) {
      qs[g][i] = q[g * d + i] * scale;
      acc[g][i] = 0.0f;
    }
    m[g] = -INFINITY;
    l[g] = 0.0f;
  }
  for (int64_t c0 = 0; c0 < nkv; c0 += kChunk) {
    const int n = nkv - c0 < kChunk ? static_cast<int>(nkv - c0) : kChunk;
    // 1. scores, W::N keys at a time: each key's G dot-product vectors
    // (two accumulators each where registers allow, halving the FMA chain)
    // are parked in `part`, then one transposing reduction turns the N
    // vectors of a row g into the N scores (no per-key horizontal sum).
    for (int j0 = 0; j0 < n; j0 += W::N) {
      const int m = n - j0 < W::N ? n - j0 : W::N;
      W::V part[G][W::N];
      for (int jj = 0; jj < m; ++jj) {
        const int64_t row = (c0 + j0 + jj) * d;
        constexpr bool kSplit = 2 * G + 4 <= W::kRegs - 4;
        W::V a[G], b2[G];
        for (int g = 0; g < G; ++g) {
          a[g] = W::zero();
          b2[g] = W::zero();
        }
        int b = 0;
        if (kSplit) {
          for (; b + 2 <= nb; b += 2) {
            const W::V x0 = load_kv<F16>(k, row + b * W::N);
            const W::V x1 = load_kv<F16>(k, row + (b + 1) * W::N);
            for (int g = 0; g < G; ++g) {
              a[g] = W::fma(W::load(&qs[g][b * W::N]), x0, a[g]);
              b2[g] = W::fma(W::load(&qs[g][(b + 1) * W::N]), x1, b2[g]);
            }
          }
        }
        for (; b < nb; ++b) {
          const W::V x = load_kv<F16>(k, row + b * W::N);
          for (int g = 0; g < G; ++g) a[g] = W::fma(W::load(&qs[g][b * W::N]), x, a[g]);
        }
        for (int g = 0; g < G; ++g) part[g][jj] = kSplit ? W::add(a[g], b2[g]) : a[g];
      }
      for (int g = 0; g < G; ++g) {
        for (int jj = m; jj < W::N; ++jj) part[g][jj] = W::zero();
        W::store(&s[g][j0], W::reduce_n(part[g]));
      }
    }
    // 2. online softmax (the tail of a short chunk is padded with -inf, then zeroed)
    for (int g = 0; g < G; ++g) {
      for (int j = n; j < kChunk; ++j) s[g][j] = -INFINITY;
      W::V mx = W::load(&s[g][0]);
      for (int j = W::N; j < kChunk; j += W::N) mx = W::max(mx, W::load(&s[g][j]));
      const float cmax = W::hmax(mx);
      const float mnew = cmax > m[g] ? cmax : m[g];
      const float corr = __builtin_expf(m[g] - mnew);  // 0 on the first chunk (m = -inf)
      const W::V mv = W::set1(mnew);
      for (int j = 0; j < kChunk; j += W::N) W::store(&s[g][j], W::exp(W::sub(W::load(&s[g][j]), mv)));
      for (int j = n; j < kChunk; ++j) s[g][j] = 0.0f;
      W::V sum = W::load(&s[g][0]);
      for (int j = W::N; j < kChunk; j += W::N) sum = W::add(sum, W::load(&s[g][j]));
      l[g] = l[g] * corr + W::hsum(sum);
      m[g] = mnew;
      if (corr != 1.0f) {
        const W::V cv = W::set1(corr);
        for (int b = 0; b < nb; ++b) W::store(&acc[g][b * W::N], W::mul(W::load(&acc[g][b * W::N]), cv));
      }
    }
    // 3. P.V. Where the whole group's accumulators would only fit for part of
    // a value row, pairs of query rows take whole rows instead (V read row
    // after row: reading half rows was 20-30% slower for GQA on Zen 5).
    constexpr int B = v_blocks(G);
    if constexpr (G > 2 && B < 8 && v_blocks(2) == 8) {
      for (int g0 = 0; g0 < G; g0 += 2) {
        int b0 = 0;
        for (; b0 + 8 <= nb; b0 += 8) pv_pass<2, 8, F16>(v, c0, n, d, b0, s + g0, acc + g0);
        for (; b0 < nb; ++b0) pv_pass<2, 1, F16>(v, c0, n, d, b0, s + g0, acc + g0);
      }
    } else {
      int b0 = 0;
      for (; b0 + B <= nb; b0 += B) pv_pass<G, B, F16>(v, c0, n, d, b0, s, acc);
      for (; b0 < nb; ++b0) pv_pass<G, 1, F16>(v, c0, n, d, b0, s, acc);
    }
  }
  for (int g = 0; g < G; ++g) {
    const float inv = 1.0f / l[g];
    for (int i = 0; i < d; ++i) out[g * d + i] = acc[g][i] * inv;
  }
}

template <bool F16>
void head_all(const RooflineHead& h) {
  // Groups other than 1, 2, 4, 8 run as several passes (more K/V traffic).
  int g0 = 0;
  while (g0 < h.group) {
    const int rem = h.group - g0;
    const int sub = rem >= 8 ? 8 : rem >= 4 ? 4 : rem >= 2 ? 2 : 1;
    const float* q = h.q + static_cast<int64_t>(g0) * h.headDim;
    float* out = h.out + static_cast<int64_t>(g0) * h.headDim;
    switch (sub) {
      case 8: head_group<8, F16>(q, h.k, h.v, out, h.nKv, h.headDim, h.scale); break;
      case 4: head_group<4, F16>(q, h.k, h.v, out, h.nKv, h.headDim, h.scale); break;
      case 2: head_group<2, F16>(q, h.k, h.v, out, h.nKv, h.headDim, h.scale); break;
      default: head_group<1, F16>(q, h.k, h.v, out, h.nKv, h.headDim, h.scale); break;
    }
    g0 += sub;
  }
}

inline void run_head(const RooflineHead& h) {
  if (h.f16) {
    head_all<true>(h);
  } else {
    head_all<false>(h);
  }
}
