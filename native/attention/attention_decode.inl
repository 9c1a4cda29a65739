// Decode path of the attention kernel template (flash-decoding); included by
// attention_kernel.inl inside namespace tp::attn_<isa>, after the shared helpers.
// ===========================================================================
// Decode path
struct DecodeCtx {
  const AttentionPlan* plan;
  const float* qs;       // [nHeads][nQ][dp], scaled, zero padded
  int64_t dp;
  float* scratch;        // per worker: scores [rows][chunk]
  int64_t scratch_stride;
  float* partial;        // [nKvHeads][nChunks][rows][2 + dp]: max, sum, acc
  float* probs;          // key mass only: [nKvHeads][rows][nKeys]
  int64_t task_chunks;   // (KV head, chunk) items per task
};

inline int64_t partial_stride(const DecodeCtx& c) { return 2 + c.dp; }
inline float* partial_at(const DecodeCtx& c, int64_t kvh, int64_t chunk, int64_t r) {
  const AttentionPlan& pl = *c.plan;
  return c.partial + ((kvh * pl.n_chunks + chunk) * pl.rows + r) * partial_stride(c);
}

// Rows of one chunk of K or V: row j is at base + pos(j) * stride bytes, with
// pos(j) = idx[j] for sparse selections and j otherwise (base already points
// at the chunk's first key then). No per-row pointer tables.
struct RowSrc {
  const char* base;
  int64_t stride;      // bytes between consecutive positions
  const int32_t* idx;  // chunk's selected positions, or null
  const void* row(int64_t j) const { return base + (idx ? static_cast<int64_t>(idx[j]) : j) * stride; }
};

// Keys per sub-block: the score passes of every row block and the P.V passes
// of every d block re-read a sub-block while it sits in L1 (64 rows of
// 128 f32 are 32 KiB).
constexpr int64_t kSubKeys = 64;

// Software prefetch distance of the decode stream, bytes ahead of the row
// being read (0: hardware prefetch only).
// On Zen 5 any distance from 0 to 32 KiB (and an L2-only hint) measured the
// same; 2 KiB is kept for cores whose hardware prefetchers stop at 4 KiB
// page edges (the rows of one chunk span 16 to 32 pages).
constexpr int64_t kDecodePrefetchBytes = 2048;

// Query rows per score / P.V pass are at most 4 on every ISA.
constexpr int kMaxPassRows = 4;
static_assert(Ops::DR <= kMaxPassRows && Ops::PR <= kMaxPassRows, "row arrays hold 4 rows");

// The rows a pass reads next, in order: segment a (the rows of this pass)
// then segment b (the rows the next pass reads), so the stream never stalls
// at a pass boundary. at(i) prefetches row i of that sequence, if any.
struct PrefetchSeq {
  RowSrc a;
  int64_t na, a_bytes;
  RowSrc b;
  int64_t nb, b_bytes;
  int64_t ahead;  // rows ahead of the row being read
  void at(int64_t i) const {
    if (i < na) prefetch_row(a.row(i), a_bytes);
    else if (i - na < nb) prefetch_row(b.row(i - na), b_bytes);
  }
};
inline int64_t prefetch_ahead_rows(int64_t row_bytes) {
  return row_bytes >= kDecodePrefetchBytes ? 1 : kDecodePrefetchBytes / row_bytes;
}

// R x KG dot products of one group of KG keys: out[t * KG + kk] = q[t] . k[kk].
// Each key row is read start to end, one after the other (a purely
// sequential stream, which the hardware prefetchers follow: reading the KG
// rows column by column was 8-16% slower for GQA on Zen 5); each key vector
// is used for all R rows as soon as it is loaded, the query vectors coming
// from L1. Key kk's row is rows[kk] (kTable) or first + kk * stride, reached
// by one pointer stepping through the rows (the empty asm keeps the compiler
// from hoisting KG row pointers into registers, which would spill). q rows
// are zero padded to a multiple of W, so only keys need a tail load.
// NV > 0: hd is exactly NV vectors, known at compile time, so the d loop
// unrolls and the R x KG accumulators stay in registers (with a run-time hd
// they spilled around every key and each key's FMA chains ran back to back:
// about half the FMA rate once K is in cache, as gathered rows are). The
// sums are the same FMAs in the same order either way.
template <DType KD, int R, bool kTable, int NV>
inline void score_group(const float* const* q, const char* first, int64_t stride, const char* const* rows,
                        int64_t hd, float* out) {
  constexpr int KG = Ops::SACC / R;
  constexpr int64_t esize = KD == DType::F32 ? 4 : 2;
  const int tail = NV > 0 ? 0 : static_cast<int>(hd % W);
  const int64_t hd_full = NV > 0 ? int64_t{NV} * W : hd - tail;
  V acc[Ops::SACC];
  _Pragma("GCC unroll 32")
  for (int a = 0; a < Ops::SACC; ++a) acc[a] = Ops::zero();
  const char* row = first;
  _Pragma("GCC unroll 32")
  for (int kk = 0; kk < KG; ++kk) {
    const char* rp = kTable ? rows[kk] : row;
    int64_t dd = 0;
    _Pragma("GCC unroll 16")
    for (; dd < hd_full; dd += W) {
      const V kv = Row<KD>::load(rp + dd * esize, 0);
      _Pragma("GCC unroll 32")
      for (int t = 0; t < R; ++t) acc[t * KG + kk] = Ops::fmadd(Ops::load(q[t] + dd), kv, acc[t * KG + kk]);
    }
    if (tail) {
      const V kv = Row<KD>::load_n(rp + dd * esize, 0, tail);
      _Pragma("GCC unroll 32")
      for (int t = 0; t < R; ++t) acc[t * KG + kk] = Ops::fmadd(Ops::load(q[t] + dd), kv, acc[t * KG + kk]);
    }
    if (!kTable) {
      row += stride;
      __asm__("" : "+r"(row));
    }
  }
  Ops::hsum_acc(acc, out);
}

// Scores of R query rows against nj keys: s[t][j] = q[t] . k[j], KG = SACC / R
// keys at a time, each loaded once for all R rows; one transposed reduction
// (Ops::hsum_acc) per group yields SACC scores at once. Strided rows go
// through one stepping pointer; indexed rows, and the last partial group
// (its missing rows repeat the last key, their scores dropped), through a
// small table.
template <DType KD, int R, int NV>
void score_keys(const float* const* q, const RowSrc& k, int64_t nj, int64_t hd, const PrefetchSeq* pf, int64_t pf_base,
                float* const* s) {
  constexpr int KG = Ops::SACC / R;
  float out[Ops::SACC];
  for (int64_t j = 0; j < nj; j += KG) {
    if (pf)
      for (int kk = 0; kk < KG; ++kk) pf->at(pf_base + j + kk + pf->ahead);
    // Gathered rows (sparse selections): every page of K and of V starts a
    // new stream that the hardware prefetchers pick up late, and the P.V
    // pass stalled on the V rows (69% of its samples on AMD EPYC Zen 3). So
    // the score pass pulls the V row of each key it scores into L2 (pf->b is
    // this chunk's V when pf is the score pass's sequence): 20-25% off a
    // one-thread Quest attend at 32k (docs/sparse.md).
    if (pf && k.idx) {
      for (int kk = 0; kk < KG && pf_base + j + kk < pf->nb; ++kk) {
        const char* vr = static_cast<const char*>(pf->b.row(pf_base + j + kk));
        for (int64_t off = 0; off < pf->b_bytes; off += 64) __builtin_prefetch(vr + off, 0, 2);
      }
    }
    const int n = static_cast<int>(min64(KG, nj - j));
    if (!k.idx && n == KG) {
      score_group<KD, R, false, NV>(q, k.base + j * k.stride, k.stride, nullptr, hd, out);
    } else {
      const char* rows[KG];
      _Pragma("GCC unroll 32")
      for (int kk = 0; kk < KG; ++kk) rows[kk] = static_cast<const char*>(k.row(kk < n ? j + kk : nj - 1));
      score_group<KD, R, true, NV>(q, nullptr, 0, rows, hd, out);
    }
    if (n == KG) {  // whole rows of KG scores: fixed-size copies (vector moves)
      _Pragma("GCC unroll 32")
      for (int t = 0; t < R; ++t) __builtin_memcpy(s[t] + j, out + t * KG, KG * sizeof(float));
    } else {
      for (int t = 0; t < R; ++t)
        for (int kk = 0; kk < n; ++kk) s[t][j + kk] = out[t * KG + kk];
    }
  }
}

// score_keys for nr (1..4) rows, with hd fixed at compile time for the
// common head sizes (64 and 128 on the SIMD ISAs).
template <DType KD, int NV>
void score_rows_nv(int nr, const float* const* q, const RowSrc& k, int64_t nj, int64_t hd, const PrefetchSeq* pf,
                   int64_t pf_base, float* const* s) {
  switch (nr) {
    case 1: score_keys<KD, 1, NV>(q, k, nj, hd, pf, pf_base, s); break;
    case 2: score_keys<KD, 2, NV>(q, k, nj, hd, pf, pf_base, s); break;
    case 3: score_keys<KD, 3, NV>(q, k, nj, hd, pf, pf_base, s); break;
    default: score_keys<KD, 4, NV>(q, k, nj, hd, pf, pf_base, s); break;
  }
}
template <DType KD>
void score_rows(int nr, const float* const* q, const RowSrc& k, int64_t nj, int64_t hd, const PrefetchSeq* pf,
                int64_t pf_base, float* const* s) {
  if constexpr (W > 1) {
    if (hd == 128) return score_rows_nv<KD, 128 / W>(nr, q, k, nj, hd, pf, pf_base, s);
    if (hd == 64) return score_rows_nv<KD, 64 / W>(nr, q, k, nj, hd, pf, pf_base, s);
  }
  score_rows_nv<KD, 0>(nr, q, k, nj, hd, pf, pf_base, s);
}

// acc[t][d0 .. d0 + NB*W) += sum_j p[t][j] * v[j][d0 ..] for R rows, the last
// vector holding `last` valid elements. The R x NB accumulators are loaded
// from and stored back to the partial once per call (a sub-block of keys);
// each value vector is loaded once for the R rows.
template <DType VD, int NB, int R, bool kFull, bool kIndexed>
void pv_block(const float* const* p, const RowSrc& v, int64_t nj, int64_t d0, int last, const PrefetchSeq* pf,
              int64_t pf_base, bool skip_zero, float* const* acc_io) {
  constexpr int64_t esize = VD == DType::F32 ? 4 : 2;
  V acc[R * NB];
  _Pragma("GCC unroll 32")
  for (int a = 0; a < R * NB; ++a) acc[a] = Ops::load(acc_io[a / NB] + d0 + (a % NB) * W);  // padded to W
  // Strided rows: one pointer at element d0 of row j, stepped by the stride,
  // so the NB loads use constant offsets.
  const char* vrow = v.base + d0 * esize;
  for (int64_t j = 0; j < nj; ++j) {
    if (pf) pf->at(pf_base + j + pf->ahead);
    const char* vp = kIndexed ? v.base + static_cast<int64_t>(v.idx[j]) * v.stride + d0 * esize : vrow;
    if (!kIndexed) {
      vrow += v.stride;
      __asm__("" : "+r"(vrow));
    }
    bool any = true;
    if (skip_zero) {  // with masks: skip keys every row has masked
      any = false;
      _Pragma("GCC unroll 32")
      for (int t = 0; t < R; ++t) any |= p[t][j] != 0.0f;
    }
    if (any) {
      V vv[NB];
      _Pragma("GCC unroll 32")
      for (int b = 0; b < NB; ++b) {
        vv[b] = kFull || b < NB - 1 ? Row<VD>::load(vp, b * W) : Row<VD>::load_n(vp, b * W, last);
      }
      _Pragma("GCC unroll 32")
      for (int t = 0; t < R; ++t) {
        const V pj = Ops::set1(p[t][j]);
        _Pragma("GCC unroll 32")
        for (int b = 0; b < NB; ++b) acc[t * NB + b] = Ops::fmadd(pj, vv[b], acc[t * NB + b]);
      }
    }
  }
  _Pragma("GCC unroll 32")
  for (int a = 0; a < R * NB; ++a) Ops::store(acc_io[a / NB] + d0 + (a % NB) * W, acc[a]);
}

template <DType VD, int NB, int R>
void pv_block(const float* const* p, const RowSrc& v, int64_t nj, int64_t d0, int last, const PrefetchSeq* pf,
              int64_t pf_base, bool skip_zero, float* const* acc_io) {
  if (v.idx) {
    if (last == W) pv_block<VD, NB, R, true, true>(p, v, nj, d0, last, pf, pf_base, skip_zero, acc_io);
    else pv_block<VD, NB, R, false, true>(p, v, nj, d0, last, pf, pf_base, skip_zero, acc_io);
  } else {
    if (last == W) pv_block<VD, NB, R, true, false>(p, v, nj, d0, last, pf, pf_base, skip_zero, acc_io);
    else pv_block<VD, NB, R, false, false>(p, v, nj, d0, last, pf, pf_base, skip_zero, acc_io);
  }
}

// P.V of R rows over nj keys, in d blocks of at most PV_ACC / R vectors.
// Only the first d block prefetches (later blocks re-read the rows from L1).
template <DType VD, int R>
void pv_keys(const float* const* p, const RowSrc& v, int64_t nj, int64_t hd, const PrefetchSeq* pf, int64_t pf_base,
             bool skip_zero, float* const* acc_io) {
  constexpr int kMaxNb = Ops::PV_ACC / R < kMaxPvVectors ? Ops::PV_ACC / R : kMaxPvVectors;
  for (int64_t d0 = 0; d0 < hd; d0 += kMaxNb * W) {
    const PrefetchSeq* pfd = d0 == 0 ? pf : nullptr;
    const int64_t rem = hd - d0;
    const int nb = static_cast<int>(min64(kMaxNb, ceil_div(rem, W)));
    const int last = static_cast<int>(rem - (nb - 1) * W >= W ? W : rem - (nb - 1) * W);
    switch (nb) {
      case 1: pv_block<VD, 1, R>(p, v, nj, d0, last, pfd, pf_base, skip_zero, acc_io); break;
      case 2: pv_block<VD, 2, R>(p, v, nj, d0, last, pfd, pf_base, skip_zero, acc_io); break;
      case 3: pv_block<VD, 3, R>(p, v, nj, d0, last, pfd, pf_base, skip_zero, acc_io); break;
      case 4: pv_block<VD, 4, R>(p, v, nj, d0, last, pfd, pf_base, skip_zero, acc_io); break;
      case 5: pv_block<VD, 5, R>(p, v, nj, d0, last, pfd, pf_base, skip_zero, acc_io); break;
      case 6: pv_block<VD, 6, R>(p, v, nj, d0, last, pfd, pf_base, skip_zero, acc_io); break;
      case 7: pv_block<VD, 7, R>(p, v, nj, d0, last, pfd, pf_base, skip_zero, acc_io); break;
      default: pv_block<VD, 8, R>(p, v, nj, d0, last, pfd, pf_base, skip_zero, acc_io); break;
    }
  }
}

// Masks (causal / bool / additive / tree) for one query row over a run of keys.
inline void apply_key_bias(const AttentionPlan& pl, int64_t kvh, int64_t i, int64_t j0, int64_t nj, float* s) {
  for (int64_t j = 0; j < nj; ++j) {
    const float b = key_bias(pl, i, key_position(pl, kvh, j0 + j));
    s[j] = b == kNegInf ? kNegInf : s[j] + b;
  }
}

// Softmax numerators in place: s[j] = exp(s[j] - m); returns their sum.
inline float exp_shift_sum(float* s, int64_t n, float m) {
  const V mv = Ops::set1(m);
  V sum = Ops::zero();
  int64_t j = 0;
  for (; j + W <= n; j += W) {
    const V e = Ops::exp(Ops::sub(Ops::load(s + j), mv));
    Ops::store(s + j, e);
    sum = Ops::add(sum, e);
  }
  float total = Ops::hsum(sum);
  for (; j < n; ++j) {
    const float e = s[j] < -3.0e38f ? 0.0f : std::exp(s[j] - m);
    s[j] = e;
    total += e;
  }
  return total;
}

inline float row_max(const float* s, int64_t n) {
  V mx = Ops::set1(kNegInf);
  int64_t j = 0;
  for (; j + W <= n; j += W) mx = Ops::max(mx, Ops::load(s + j));
  float m = Ops::hmax(mx);
  for (; j < n; ++j) m = max_f(m, s[j]);
  return m;
}

// K and V rows of chunk `chunk` of KV head kvh: strided from the chunk start,
// or through the selected indices.
inline void chunk_rows(const AttentionPlan& pl, int64_t kvh, int64_t chunk, RowSrc* k, RowSrc* v, int64_t* nj) {
  const AttentionParams& p = *pl.p;
  const int64_t j0 = chunk * pl.chunk;
  *nj = min64(pl.chunk, pl.n_keys - j0);
  const int32_t* idx = p.indices ? p.indices + kvh * p.n_sel + j0 : nullptr;
  const int64_t first = idx ? 0 : j0;
  *k = RowSrc{static_cast<const char*>(k_row(p, kvh, first)), p.k_row_stride * static_cast<int64_t>(dtype_size(p.k_dtype)), idx};
  *v = RowSrc{static_cast<const char*>(v_row(p, kvh, first)), p.v_row_stride * static_cast<int64_t>(dtype_size(p.v_dtype)), idx};
}

inline RowSrc sub_rows(const RowSrc& src, int64_t s0) {
  return src.idx ? RowSrc{src.base, src.stride, src.idx + s0} : RowSrc{src.base + s0 * src.stride, src.stride, nullptr};
}

// One (KV head, chunk): scores, softmax numerators and the unnormalised
// output of every row into the chunk's partials. next_k / next_nj: the keys
// of the chunk this worker reads next (prefetched at the end of the P.V
// pass), next_nj = 0 for none.
template <DType KD, DType VD>
void decode_chunk(const DecodeCtx& c, int64_t kvh, int64_t chunk, float* scores, const RowSrc& next_k, int64_t next_nj) {
  const AttentionPlan& pl = *c.plan;
  const AttentionParams& p = *pl.p;
  const int64_t j0 = chunk * pl.chunk;
  const int64_t hd = p.head_dim;
  RowSrc ksrc, vsrc;
  int64_t nj = 0;
  chunk_rows(pl, kvh, chunk, &ksrc, &vsrc, &nj);
  const int64_t k_bytes = hd * static_cast<int64_t>(dtype_size(p.k_dtype));
  const int64_t v_bytes = hd * static_cast<int64_t>(dtype_size(p.v_dtype));
  const bool prefetch = kDecodePrefetchBytes > 0;
  // The score pass streams K then runs into V; the P.V pass streams V then
  // runs into the next chunk's K.
  const PrefetchSeq pf_k{ksrc, nj, k_bytes, vsrc, nj, v_bytes, prefetch ? prefetch_ahead_rows(k_bytes) : 0};
  const PrefetchSeq pf_v{vsrc, nj, v_bytes, next_k, next_nj, k_bytes, prefetch ? prefetch_ahead_rows(v_bytes) : 0};

  // Scores for every row: per sub-block of keys, Ops::DR rows at a time.
  for (int64_t s0 = 0; s0 < nj; s0 += kSubKeys) {
    const int64_t ns = min64(kSubKeys, nj - s0);
    const RowSrc ksub = sub_rows(ksrc, s0);
    for (int64_t r0 = 0; r0 < pl.rows; r0 += Ops::DR) {
      const int nr = static_cast<int>(min64(Ops::DR, pl.rows - r0));
      const float* qrow[kMaxPassRows];
      float* srow[kMaxPassRows];
      for (int t = 0; t < nr; ++t) {
        const int64_t r = r0 + t, h = kvh * pl.group + r / p.n_q, i = r % p.n_q;
        qrow[t] = c.qs + (h * p.n_q + i) * c.dp;
        srow[t] = scores + r * pl.chunk + s0;
      }
      const PrefetchSeq* pf = prefetch && r0 == 0 ? &pf_k : nullptr;  // the first pass brings the rows in
      score_rows<KD>(nr, qrow, ksub, ns, hd, pf, s0, srow);
    }
  }

  // The chunk's last key position (gathered rows: the largest index).
  int64_t last_pos = j0 + nj - 1;
  if (ksrc.idx) {
    int32_t mx = 0;
    for (int64_t j = 0; j < nj; ++j) mx = ksrc.idx[j] > mx ? ksrc.idx[j] : mx;
    last_pos = mx;
  }
  // Per row: softcap, masks, then softmax numerators against the chunk max.
  for (int64_t r = 0; r < pl.rows; ++r) {
    const int64_t i = r % p.n_q;
    float* s = scores + r * pl.chunk;
    if (p.softcap > 0.0f) apply_softcap(s, nj, p.softcap);
    // A causal mask that hides nothing in this chunk (every key at or before
    // the row's position: all of decode, gathered rows included) costs nothing.
    const bool causal_hides = p.causal && last_pos > p.n_kv - p.n_q + i;
    if (mask_reaches(pl, last_pos) || causal_hides) apply_key_bias(pl, kvh, i, j0, nj, s);
    float* part = partial_at(c, kvh, chunk, r);
    const float m = row_max(s, nj);
    if (m == kNegInf) {  // this query sees no key of the chunk
      part[0] = kNegInf;
      part[1] = 0.0f;
      for (int64_t j = 0; j < nj; ++j) s[j] = 0.0f;
    } else {
      part[0] = m;
      part[1] = exp_shift_sum(s, nj, m);
    }
    for (int64_t d = 0; d < c.dp; ++d) part[2 + d] = 0.0f;  // P.V accumulates here
    if (c.probs) {
      float* dst = c.probs + (kvh * pl.rows + r) * pl.n_keys + j0;
      for (int64_t j = 0; j < nj; ++j) dst[j] = s[j];
    }
  }

  // Unnormalised outputs: per sub-block of values, Ops::PR rows at a time.
  const bool masked = p.causal || pl.any_mask;
  for (int64_t s0 = 0; s0 < nj; s0 += kSubKeys) {
    const int64_t ns = min64(kSubKeys, nj - s0);
    const RowSrc vsub = sub_rows(vsrc, s0);
    for (int64_t r0 = 0; r0 < pl.rows; r0 += Ops::PR) {
      const int nr = static_cast<int>(min64(Ops::PR, pl.rows - r0));
      const float* prow[kMaxPassRows];
      float* arow[kMaxPassRows];
      for (int t = 0; t < nr; ++t) {
        prow[t] = scores + (r0 + t) * pl.chunk + s0;
        arow[t] = partial_at(c, kvh, chunk, r0 + t) + 2;
      }
      const PrefetchSeq* pf = prefetch && r0 == 0 ? &pf_v : nullptr;
      switch (nr) {
        case 1: pv_keys<VD, 1>(prow, vsub, ns, hd, pf, s0, masked, arow); break;
        case 2: pv_keys<VD, 2>(prow, vsub, ns, hd, pf, s0, masked, arow); break;
        case 3: pv_keys<VD, 3>(prow, vsub, ns, hd, pf, s0, masked, arow); break;
        default: pv_keys<VD, 4>(prow, vsub, ns, hd, pf, s0, masked, arow); break;
      }
    }
  }
}

// One task: a run of c.task_chunks consecutive (KV head, chunk) items, read
// as one stream by one worker. The grouping changes only who computes a
// chunk, never how: the results do not depend on the thread count.
template <DType KD, DType VD>
void decode_task(void* raw, int64_t task, int worker) {
  const DecodeCtx& c = *static_cast<const DecodeCtx*>(raw);
  const AttentionPlan& pl = *c.plan;
  float* scores = c.scratch + worker * c.scratch_stride;  // [rows][chunk]
  const int64_t total = pl.p->n_kv_heads * pl.n_chunks;
  const int64_t first = task * c.task_chunks, last = min64(first + c.task_chunks, total);
  for (int64_t item = first; item < last; ++item) {
    RowSrc next_k{nullptr, 0, nullptr}, next_v{nullptr, 0, nullptr};
    int64_t next_nj = 0;
    if (item + 1 < last) chunk_rows(pl, (item + 1) / pl.n_chunks, (item + 1) % pl.n_chunks, &next_k, &next_v, &next_nj);
    decode_chunk<KD, VD>(c, item / pl.n_chunks, item % pl.n_chunks, scores, next_k, next_nj);
  }
}

// Combines the chunk partials of one (KV head, row) by log-sum-exp; leaves in
// each partial's sum slot the factor exp(m_chunk - lse) the key mass needs.
void decode_merge_task(void* raw, int64_t item, int /*worker*/) {
  const DecodeCtx& c = *static_cast<const DecodeCtx*>(raw);
  const AttentionPlan& pl = *c.plan;
  const AttentionParams& p = *pl.p;
  const int64_t kvh = item / pl.rows, r = item % pl.rows;
  const int64_t h = kvh * pl.group + r / p.n_q, i = r % p.n_q;
  const int64_t hd = p.head_dim;
  float* out = p.out + (h * p.n_q + i) * hd;

  float m = kNegInf;
  for (int64_t ch = 0; ch < pl.n_chunks; ++ch) m = max_f(m, partial_at(c, kvh, ch, r)[0]);
  if (m == kNegInf) {
    for (int64_t d = 0; d < hd; ++d) out[d] = 0.0f;
    if (p.lse) p.lse[h * p.n_q + i] = kNegInf;
    for (int64_t ch = 0; ch < pl.n_chunks; ++ch) partial_at(c, kvh, ch, r)[1] = 0.0f;
    return;
  }
  float l = 0.0f;
  for (int64_t ch = 0; ch < pl.n_chunks; ++ch) {
    const float* part = partial_at(c, kvh, ch, r);
    if (part[0] != kNegInf) l += part[1] * std::exp(part[0] - m);
  }
  const float inv_l = 1.0f / l;
  for (int64_t d = 0; d < hd; ++d) out[d] = 0.0f;
  for (int64_t ch = 0; ch < pl.n_chunks; ++ch) {
    float* part = partial_at(c, kvh, ch, r);
    const float w = part[0] == kNegInf ? 0.0f : std::exp(part[0] - m) * inv_l;
    part[1] = w;  // exp(m_chunk - lse): turns chunk numerators into probabilities
    if (w == 0.0f) continue;
    const float* acc = part + 2;
    for (int64_t d = 0; d < hd; ++d) out[d] += w * acc[d];
  }
  if (p.lse) p.lse[h * p.n_q + i] = m + std::log(l);
}

// key_mass[kvh][pos] for one task: a (KV head, chunk) without indices (every
// position owned by one task), a whole KV head with indices (repeats add up).
void decode_mass_task(void* raw, int64_t item, int /*worker*/) {
  const DecodeCtx& c = *static_cast<const DecodeCtx*>(raw);
  const AttentionPlan& pl = *c.plan;
  const AttentionParams& p = *pl.p;
  const bool by_head = p.indices != nullptr;
  const int64_t kvh = by_head ? item : item / pl.n_chunks;
  const int64_t first = by_head ? 0 : item % pl.n_chunks;
  const int64_t last = by_head ? pl.n_chunks : first + 1;
  float* mass = p.key_mass + kvh * p.n_kv;
  for (int64_t ch = first; ch < last; ++ch) {
    const int64_t j0 = ch * pl.chunk, nj = min64(pl.chunk, pl.n_keys - j0);
    for (int64_t j = 0; j < nj; ++j) {
      float sum = 0.0f;
      for (int64_t r = 0; r < pl.rows; ++r) {
        sum += c.probs[(kvh * pl.rows + r) * pl.n_keys + j0 + j] * partial_at(c, kvh, ch, r)[1];
      }
      mass[key_position(pl, kvh, j0 + j)] += sum;
    }
  }
}

// K + V bytes up to which a decode call runs on the calling thread alone:
// about 4 us of reading for one Zen 5 core, less than the pool's wake-up.
constexpr int64_t kInlineDecodeBytes = int64_t{128} << 10;

template <DType KD, DType VD>
void run_decode(const AttentionPlan& pl) {
  const AttentionParams& p = *pl.p;
  ThreadPool& pool = ThreadPool::instance();
  // A small call runs on the calling thread: waking the pool (a futex wake
  // and wait per worker, several microseconds) costs more than reading this
  // little K/V, and decode results do not depend on the worker count
  // (test/unit/attention-decode-threads.test.ts).
  const int64_t kv_bytes = p.n_kv_heads * pl.n_keys * p.head_dim *
                           static_cast<int64_t>(dtype_size(p.k_dtype) + dtype_size(p.v_dtype));
  const int workers = kv_bytes <= kInlineDecodeBytes ? 1 : pool.size();
  DecodeCtx c{};
  c.plan = &pl;
  c.dp = ceil_div(p.head_dim, W) * W;

  // Scratch lives per calling thread across calls (thread_scratch): slots
  // 0 Q, 1 per-worker scores, 2 partials, 3 probabilities for key mass.
  float* qs = thread_scratch(0, static_cast<size_t>(p.n_heads * p.n_q * c.dp));
  for (int64_t h = 0; h < p.n_heads; ++h) {
    for (int64_t i = 0; i < p.n_q; ++i) {
      const float* src = p.q + h * p.q_head_stride + i * p.q_row_stride;
      float* dst = qs + (h * p.n_q + i) * c.dp;
      for (int64_t d = 0; d < c.dp; ++d) dst[d] = d < p.head_dim ? src[d] * p.scale : 0.0f;
    }
  }
  c.qs = qs;
  c.scratch_stride = pl.rows * pl.chunk;
  float* scratch = thread_scratch(1, static_cast<size_t>(workers * c.scratch_stride));
  c.scratch = scratch;
  float* partial = thread_scratch(2, static_cast<size_t>(p.n_kv_heads * pl.n_chunks * pl.rows * partial_stride(c)));
  c.partial = partial;
  float* probs = p.key_mass ? thread_scratch(3, static_cast<size_t>(p.n_kv_heads * pl.rows * pl.n_keys)) : nullptr;
  c.probs = probs;

  // Runs of consecutive chunks per task (each read as one stream), about
  // eight tasks per worker for balance; one run per worker when alone.
  const int64_t items = p.n_kv_heads * pl.n_chunks;
  c.task_chunks = workers == 1 ? items : (items + 8 * workers - 1) / (8 * workers);
  pool.parallel_for(ceil_div(items, c.task_chunks), &decode_task<KD, VD>, &c, workers);
  pool.parallel_for(p.n_kv_heads * pl.rows, &decode_merge_task, &c, workers);
  if (p.key_mass) {
    for (int64_t x = 0; x < p.n_kv_heads * p.n_kv; ++x) p.key_mass[x] = 0.0f;
    const int64_t tasks = p.indices ? p.n_kv_heads : p.n_kv_heads * pl.n_chunks;
    pool.parallel_for(tasks, &decode_mass_task, &c, workers);
  }
}

