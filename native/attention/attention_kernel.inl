// The attention kernels, written once over a small vector interface `Ops`
// (ops_scalar.h, ops_avx2.h, ops_avx512.h) and compiled once per ISA inside
// namespace tp::attn_<isa>. Only raw pointers and our own helpers are used
// here: library templates would be instantiated under ISA-specific flags.
//
// Two paths (see attention.h for the shapes and the visibility rules):
//  - decode (few query rows per KV head): flash-decoding. The keys of each
//    KV head are cut into fixed chunks; each (KV head, chunk) task reads its
//    K and V rows once for all group * nQ query rows and leaves a partial
//    (max, sum, unnormalised output) that a merge step combines by
//    log-sum-exp. Chunks do not depend on the thread count, so neither do
//    the results.
//  - prefill: flash-attention tiles. Each (query head, block of BQ query rows)
//    task walks key tiles of BK keys with an online softmax, skipping tiles a
//    causal mask hides entirely. Scores are computed transposed, S^T[key][row]
//    = K . Q^T, so the softmax bookkeeping runs across rows in vector lanes.
// f16 / bf16 keys and values are widened in registers (decode) or per tile
// (prefill); the cache itself is never expanded.

using V = Ops::V;
constexpr int W = Ops::W;
constexpr float kNegInf = -__builtin_huge_valf();
constexpr float kPosInf = __builtin_huge_valf();
constexpr int64_t kBlockKeys = 64;   // prefill key tile (BK)
constexpr int kMaxPvVectors = 8;      // decode P.V register block (vectors)

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
inline float max_f(float a, float b) { return a > b ? a : b; }

// ---------------------------------------------------------------------------
// Row access by element type. `row` points at element 0 of a row.
template <DType D> struct Row;
template <> struct Row<DType::F32> {
  static V load(const void* row, int64_t d) { return Ops::load(static_cast<const float*>(row) + d); }
  static V load_n(const void* row, int64_t d, int n) { return Ops::load_n(static_cast<const float*>(row) + d, n); }
  static float at(const void* row, int64_t d) { return static_cast<const float*>(row)[d]; }
};
template <> struct Row<DType::F16> {
  static V load(const void* row, int64_t d) { return Ops::load_f16(static_cast<const uint16_t*>(row) + d); }
  static V load_n(const void* row, int64_t d, int n) { return Ops::load_f16_n(static_cast<const uint16_t*>(row) + d, n); }
  static float at(const void* row, int64_t d) { return f16_to_f32(static_cast<const uint16_t*>(row)[d]); }
};
template <> struct Row<DType::BF16> {
  static V load(const void* row, int64_t d) { return Ops::load_bf16(static_cast<const uint16_t*>(row) + d); }
  static V load_n(const void* row, int64_t d, int n) { return Ops::load_bf16_n(static_cast<const uint16_t*>(row) + d, n); }
  static float at(const void* row, int64_t d) { return bf16_to_f32(static_cast<const uint16_t*>(row)[d]); }
};

// Software prefetch of a whole row: one thread alone cannot keep enough
// cache misses in flight to reach the memory bandwidth on row-by-row reads.
constexpr int64_t kPrefetchBytes = 4096;  // how far ahead to prefetch
inline int64_t prefetch_rows(int64_t row_bytes) { return row_bytes >= kPrefetchBytes ? 1 : kPrefetchBytes / row_bytes; }
inline void prefetch_row(const void* row, int64_t bytes) {
  const char* p = static_cast<const char*>(row);
  for (int64_t off = 0; off < bytes; off += 64) __builtin_prefetch(p + off, 0, 3);
}

inline const void* row_ptr(const void* base, DType t, int64_t offset) {
  return static_cast<const char*>(base) + offset * static_cast<int64_t>(dtype_size(t));
}

// K / V row `pos` of KV head `kvh`: one strided tensor, or per-head buffers.
inline const void* k_row(const AttentionParams& p, int64_t kvh, int64_t pos) {
  return p.k_heads ? row_ptr(p.k_heads[kvh], p.k_dtype, pos * p.k_row_stride) : row_ptr(p.k, p.k_dtype, kvh * p.k_head_stride + pos * p.k_row_stride);
}
inline const void* v_row(const AttentionParams& p, int64_t kvh, int64_t pos) {
  return p.v_heads ? row_ptr(p.v_heads[kvh], p.v_dtype, pos * p.v_row_stride) : row_ptr(p.v, p.v_dtype, kvh * p.v_head_stride + pos * p.v_row_stride);
}

// Widens hd elements of a row into dst (f32) and zero-pads dst to dp.
template <DType D>
void widen_row(const void* row, int64_t hd, int64_t dp, float* dst) {
  int64_t d = 0;
  for (; d + W <= hd; d += W) Ops::store(dst + d, Row<D>::load(row, d));
  if (d < hd) Ops::store(dst + d, Row<D>::load_n(row, d, static_cast<int>(hd - d)));
  for (d = ceil_div(hd, W) * W; d < dp; d += W) Ops::store(dst + d, Ops::zero());
}

inline void apply_softcap(float* s, int64_t n, float cap) {
  const float inv = 1.0f / cap;
  for (int64_t j = 0; j < n; ++j) s[j] = cap * std::tanh(s[j] * inv);
}

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
};

inline int64_t partial_stride(const DecodeCtx& c) { return 2 + c.dp; }
inline float* partial_at(const DecodeCtx& c, int64_t kvh, int64_t chunk, int64_t r) {
  const AttentionPlan& pl = *c.plan;
  return c.partial + ((kvh * pl.n_chunks + chunk) * pl.rows + r) * partial_stride(c);
}

// R rows of query times 4 keys: out[t * 4 + kk] = q[t] . k[kk]. Each key
// vector is loaded (and widened) once for all R rows. q rows are zero padded
// to a multiple of W, so only the keys need a partial load at the tail.
template <DType KD, int R>
inline void dot_rows4(const float* const* q, const void* const* k, int64_t hd, float* out) {
  V acc[R][4];
  for (int t = 0; t < R; ++t)
    for (int kk = 0; kk < 4; ++kk) acc[t][kk] = Ops::zero();
  int64_t d = 0;
  for (; d + W <= hd; d += W) {
    V kv[4];
    for (int kk = 0; kk < 4; ++kk) kv[kk] = Row<KD>::load(k[kk], d);
    for (int t = 0; t < R; ++t) {
      const V qv = Ops::load(q[t] + d);
      for (int kk = 0; kk < 4; ++kk) acc[t][kk] = Ops::fmadd(qv, kv[kk], acc[t][kk]);
    }
  }
  if (d < hd) {
    const int n = static_cast<int>(hd - d);
    V kv[4];
    for (int kk = 0; kk < 4; ++kk) kv[kk] = Row<KD>::load_n(k[kk], d, n);
    for (int t = 0; t < R; ++t) {
      const V qv = Ops::load(q[t] + d);
      for (int kk = 0; kk < 4; ++kk) acc[t][kk] = Ops::fmadd(qv, kv[kk], acc[t][kk]);
    }
  }
  if constexpr (R == 4) {
    Ops::hsum16(&acc[0][0], out);
  } else {
    for (int t = 0; t < R; ++t)
      for (int kk = 0; kk < 4; ++kk) out[t * 4 + kk] = Ops::hsum(acc[t][kk]);
  }
}

// Scores of R query rows over the chunk's keys: s[t][j] for j < nj.
// While reading keys, prefetches the keys kPrefetchBytes ahead and, near the
// end, the first value rows (the P.V pass reads them next).
template <DType KD, int R>
void score_rows(const float* const* q, const void* const* krows, const void* const* vrows, int64_t nj, int64_t hd,
                int64_t row_bytes, bool prefetch, float* const* s) {
  float out[R * 4];
  const int64_t ahead = prefetch_rows(row_bytes);
  for (int64_t j = 0; j < nj; j += 4) {
    if (prefetch) {
      for (int64_t a = j + ahead; a < j + ahead + 4; ++a) {
        if (a < nj) prefetch_row(krows[a], row_bytes);
        else if (a - nj < nj) prefetch_row(vrows[a - nj], row_bytes);
      }
    }
    dot_rows4<KD, R>(q, krows + j, hd, out);
    for (int t = 0; t < R; ++t)
      for (int64_t kk = 0; kk < 4 && j + kk < nj; ++kk) s[t][j + kk] = out[t * 4 + kk];
  }
}

// acc[t][0 .. NB*W) = sum_j p[t][j] * v[j][d0 ..] for R rows, the last vector
// holding `last` valid elements. R x NB accumulators stay in registers for
// the whole chunk; each value vector is loaded once for the R rows.
template <DType VD, int NB, int R>
void pv_block(const float* const* p, const void* const* v, int64_t nj, int64_t d0, int last, int64_t prefetch_bytes,
              bool skip_zero, float* const* acc_out) {
  V acc[R][NB];
  for (int t = 0; t < R; ++t)
    for (int b = 0; b < NB; ++b) acc[t][b] = Ops::zero();
  const int64_t ahead = prefetch_bytes > 0 ? prefetch_rows(prefetch_bytes) : 0;
  for (int64_t j = 0; j < nj; ++j) {
    if (prefetch_bytes > 0 && j + ahead < nj) prefetch_row(v[j + ahead], prefetch_bytes);
    if (skip_zero) {  // with masks: skip keys every row has masked
      bool any = false;
      for (int t = 0; t < R; ++t) any |= p[t][j] != 0.0f;
      if (!any) continue;
    }
    V vv[NB];
    for (int b = 0; b < NB - 1; ++b) vv[b] = Row<VD>::load(v[j], d0 + b * W);
    vv[NB - 1] = last == W ? Row<VD>::load(v[j], d0 + (NB - 1) * W) : Row<VD>::load_n(v[j], d0 + (NB - 1) * W, last);
    for (int t = 0; t < R; ++t) {
      const V pj = Ops::set1(p[t][j]);
      for (int b = 0; b < NB; ++b) acc[t][b] = Ops::fmadd(pj, vv[b], acc[t][b]);
    }
  }
  for (int t = 0; t < R; ++t)
    for (int b = 0; b < NB; ++b) Ops::store(acc_out[t] + d0 + b * W, acc[t][b]);
}

// prefetch_bytes: prefetch each value row ahead during the first d block
// (0 when the rows were already read by an earlier pass).
template <DType VD, int R>
void pv_rows(const float* const* p, const void* const* v, int64_t nj, int64_t hd, int64_t prefetch_bytes,
             bool skip_zero, float* const* acc_out) {
  // R x NB accumulators must fit the register file with room for the loads.
  constexpr int kMaxNb = Ops::PV_ACC / R < kMaxPvVectors ? Ops::PV_ACC / R : kMaxPvVectors;
  for (int64_t d0 = 0; d0 < hd; d0 += kMaxNb * W) {
    const int64_t pf = d0 == 0 ? prefetch_bytes : 0;
    const int64_t rem = hd - d0;
    const int nb = static_cast<int>(min64(kMaxNb, ceil_div(rem, W)));
    const int last = static_cast<int>(rem - (nb - 1) * W >= W ? W : rem - (nb - 1) * W);
    switch (nb) {
      case 1: pv_block<VD, 1, R>(p, v, nj, d0, last, pf, skip_zero, acc_out); break;
      case 2: pv_block<VD, 2, R>(p, v, nj, d0, last, pf, skip_zero, acc_out); break;
      case 3: pv_block<VD, 3, R>(p, v, nj, d0, last, pf, skip_zero, acc_out); break;
      case 4: pv_block<VD, 4, R>(p, v, nj, d0, last, pf, skip_zero, acc_out); break;
      case 5: pv_block<VD, 5, R>(p, v, nj, d0, last, pf, skip_zero, acc_out); break;
      case 6: pv_block<VD, 6, R>(p, v, nj, d0, last, pf, skip_zero, acc_out); break;
      case 7: pv_block<VD, 7, R>(p, v, nj, d0, last, pf, skip_zero, acc_out); break;
      default: pv_block<VD, 8, R>(p, v, nj, d0, last, pf, skip_zero, acc_out); break;
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

template <DType KD, DType VD>
void decode_task(void* raw, int64_t item, int worker) {
  const DecodeCtx& c = *static_cast<const DecodeCtx*>(raw);
  const AttentionPlan& pl = *c.plan;
  const AttentionParams& p = *pl.p;
  const int64_t kvh = item / pl.n_chunks, chunk = item % pl.n_chunks;
  const int64_t j0 = chunk * pl.chunk, nj = min64(pl.chunk, pl.n_keys - j0);
  const int64_t hd = p.head_dim;
  float* scores = c.scratch + worker * c.scratch_stride;  // [rows][chunk]

  // Row pointers of this chunk's keys and values (chunk <= kMaxChunk).
  const void* krows[kMaxChunk + 3] = {};
  const void* vrows[kMaxChunk];
  for (int64_t j = 0; j < nj; ++j) {
    const int64_t pos = key_position(pl, kvh, j0 + j);
    krows[j] = k_row(p, kvh, pos);
    vrows[j] = v_row(p, kvh, pos);
  }
  for (int64_t j = nj; j < nj + 3; ++j) krows[j] = krows[nj - 1];  // pad a last group of 4

  const int64_t row_bytes = hd * static_cast<int64_t>(dtype_size(p.k_dtype));
  // Scores for every row, Ops::DR rows at a time (one pass over the keys each).
  const float* qrow[Ops::DR];
  float* srow[Ops::DR];
  for (int64_t r0 = 0; r0 < pl.rows; r0 += Ops::DR) {
    const int nr = static_cast<int>(min64(Ops::DR, pl.rows - r0));
    for (int t = 0; t < nr; ++t) {
      const int64_t r = r0 + t, h = kvh * pl.group + r / p.n_q, i = r % p.n_q;
      qrow[t] = c.qs + (h * p.n_q + i) * c.dp;
      srow[t] = scores + r * pl.chunk;
    }
    const bool pf = r0 == 0;  // the first pass brings the rows in
    switch (nr) {
      case 1: score_rows<KD, 1>(qrow, krows, vrows, nj, hd, row_bytes, pf, srow); break;
      case 2: score_rows<KD, 2>(qrow, krows, vrows, nj, hd, row_bytes, pf, srow); break;
      case 3: score_rows<KD, 3>(qrow, krows, vrows, nj, hd, row_bytes, pf, srow); break;
      default: score_rows<KD, Ops::DR>(qrow, krows, vrows, nj, hd, row_bytes, pf, srow); break;
    }
  }

  // Per row: softcap, masks, then softmax numerators against the chunk max.
  for (int64_t r = 0; r < pl.rows; ++r) {
    const int64_t i = r % p.n_q;
    float* s = scores + r * pl.chunk;
    if (p.softcap > 0.0f) apply_softcap(s, nj, p.softcap);
    // A causal mask that hides nothing in this chunk (plain positions, every
    // key at or before the row's position: all of decode) costs nothing.
    const bool causal_hides = p.causal && (p.indices != nullptr || j0 + nj - 1 > p.n_kv - p.n_q + i);
    if (pl.any_mask || causal_hides) apply_key_bias(pl, kvh, i, j0, nj, s);
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
    if (c.probs) {
      float* dst = c.probs + (kvh * pl.rows + r) * pl.n_keys + j0;
      for (int64_t j = 0; j < nj; ++j) dst[j] = s[j];
    }
  }

  // Unnormalised outputs, Ops::PR rows at a time (one pass over the values each).
  const bool masked = p.causal || pl.any_mask;
  const float* prow[Ops::PR];
  float* arow[Ops::PR];
  for (int64_t r0 = 0; r0 < pl.rows; r0 += Ops::PR) {
    const int nr = static_cast<int>(min64(Ops::PR, pl.rows - r0));
    for (int t = 0; t < nr; ++t) {
      prow[t] = scores + (r0 + t) * pl.chunk;
      arow[t] = partial_at(c, kvh, chunk, r0 + t) + 2;
    }
    const int64_t pf = r0 == 0 ? row_bytes : 0;
    switch (nr) {
      case 1: pv_rows<VD, 1>(prow, vrows, nj, hd, pf, masked, arow); break;
      case 2: pv_rows<VD, 2>(prow, vrows, nj, hd, pf, masked, arow); break;
      case 3: pv_rows<VD, 3>(prow, vrows, nj, hd, pf, masked, arow); break;
      default: pv_rows<VD, Ops::PR>(prow, vrows, nj, hd, pf, masked, arow); break;
    }
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

template <DType KD, DType VD>
void run_decode(const AttentionPlan& pl) {
  const AttentionParams& p = *pl.p;
  ThreadPool& pool = ThreadPool::instance();
  const int workers = pool.size();
  DecodeCtx c{};
  c.plan = &pl;
  c.dp = ceil_div(p.head_dim, W) * W;

  FloatBuffer qs(static_cast<size_t>(p.n_heads * p.n_q * c.dp));
  for (int64_t h = 0; h < p.n_heads; ++h) {
    for (int64_t i = 0; i < p.n_q; ++i) {
      const float* src = p.q + h * p.q_head_stride + i * p.q_row_stride;
      float* dst = qs.data() + (h * p.n_q + i) * c.dp;
      for (int64_t d = 0; d < c.dp; ++d) dst[d] = d < p.head_dim ? src[d] * p.scale : 0.0f;
    }
  }
  c.qs = qs.data();
  c.scratch_stride = pl.rows * pl.chunk;
  FloatBuffer scratch(static_cast<size_t>(workers * c.scratch_stride));
  c.scratch = scratch.data();
  FloatBuffer partial(static_cast<size_t>(p.n_kv_heads * pl.n_chunks * pl.rows * partial_stride(c)));
  c.partial = partial.data();
  FloatBuffer probs(p.key_mass ? static_cast<size_t>(p.n_kv_heads * pl.rows * pl.n_keys) : 0);
  c.probs = p.key_mass ? probs.data() : nullptr;

  pool.parallel_for(p.n_kv_heads * pl.n_chunks, &decode_task<KD, VD>, &c, workers);
  pool.parallel_for(p.n_kv_heads * pl.rows, &decode_merge_task, &c, workers);
  if (p.key_mass) {
    for (int64_t x = 0; x < p.n_kv_heads * p.n_kv; ++x) p.key_mass[x] = 0.0f;
    const int64_t tasks = p.indices ? p.n_kv_heads : p.n_kv_heads * pl.n_chunks;
    pool.parallel_for(tasks, &decode_mass_task, &c, workers);
  }
}

// ===========================================================================
// Prefill path
constexpr int64_t kBlockRows = Ops::QV * W;  // BQ: query rows per task

struct PrefillCtx {
  const AttentionPlan* plan;
  int64_t dp;              // head_dim rounded up to W
  int64_t n_qblocks;
  float* scratch;          // per worker, see PrefillScratch
  int64_t scratch_stride;
  float* logits;           // key mass: per worker [nKeys][BQ] masked logits
  int64_t logits_stride;
  float* mass;             // key mass: per worker [nKvHeads][nKv]
};

struct PrefillScratch {
  float* qt;     // [dp][BQ] scaled Q^T
  float* s;      // [BK][BQ] S^T, then P^T
  float* o;      // [BQ][dp] unnormalised output
  float* m;      // [BQ] running max
  float* l;      // [BQ] running sum
  float* tmp;    // [BQ] tile max, then shifted max
  float* alpha;  // [BQ]
  float* kt;     // [BK][dp] widened keys
  float* vt;     // [BK][dp] widened values
  float* lsum;   // [BQ]

  static int64_t floats(int64_t dp) { return dp * kBlockRows * 2 + kBlockKeys * kBlockRows + 5 * kBlockRows + 2 * kBlockKeys * dp; }
  PrefillScratch(float* base, int64_t dp) {
    qt = base; base += dp * kBlockRows;
    s = base; base += kBlockKeys * kBlockRows;
    o = base; base += kBlockRows * dp;
    m = base; base += kBlockRows;
    l = base; base += kBlockRows;
    tmp = base; base += kBlockRows;
    alpha = base; base += kBlockRows;
    lsum = base; base += kBlockRows;
    kt = base; base += kBlockKeys * dp;
    vt = base;
  }
};

// S^T[jj][0..BQ) (+)= sum_{d in [d0, d1)} K[jj][d] * Q^T[d][0..BQ) for 4 keys
// at once; `accumulate` adds to what s_rows holds (d blocks after the first).
inline void scores_4keys(const float* const* k, const float* qt, int64_t d0, int64_t d1, bool accumulate, float* s_rows) {
  V acc[4][Ops::QV];
  for (int t = 0; t < 4; ++t)
    for (int v = 0; v < Ops::QV; ++v) acc[t][v] = accumulate ? Ops::load(s_rows + t * kBlockRows + v * W) : Ops::zero();
  for (int64_t d = d0; d < d1; ++d) {
    V q[Ops::QV];
    for (int v = 0; v < Ops::QV; ++v) q[v] = Ops::load(qt + d * kBlockRows + v * W);
    for (int t = 0; t < 4; ++t) {
      const V kb = Ops::set1(k[t][d]);
      for (int v = 0; v < Ops::QV; ++v) acc[t][v] = Ops::fmadd(kb, q[v], acc[t][v]);
    }
  }
  for (int t = 0; t < 4; ++t)
    for (int v = 0; v < Ops::QV; ++v) Ops::store(s_rows + t * kBlockRows + v * W, acc[t][v]);
}

// S^T for a key tile, in blocks of kDimBlock head dimensions so the slice of
// Q^T in use (kDimBlock x BQ floats) stays in L1 across all the keys.
constexpr int64_t kDimBlock = 64;
inline void scores_tile(const float* const* krow, const float* qt, int64_t nj, int64_t hd, float* s) {
  for (int64_t d0 = 0; d0 < hd; d0 += kDimBlock) {
    const int64_t d1 = min64(hd, d0 + kDimBlock);
    for (int64_t jj = 0; jj < nj; jj += 4) scores_4keys(krow + jj, qt, d0, d1, d0 > 0, s + jj * kBlockRows);
  }
}

// O[r..r+4)[d0 .. d0+NV*W) += sum_jj P^T[jj][r..r+4) * V[jj][d0 ..].
template <int NV>
inline void pv_4rows(const float* pt, const float* const* v, int64_t nj, int64_t r, int64_t d0, float* o, int64_t dp) {
  V acc[4][NV];
  for (int t = 0; t < 4; ++t)
    for (int b = 0; b < NV; ++b) acc[t][b] = Ops::load(o + (r + t) * dp + d0 + b * W);
  for (int64_t jj = 0; jj < nj; ++jj) {
    V vv[NV];
    for (int b = 0; b < NV; ++b) vv[b] = Ops::load(v[jj] + d0 + b * W);
    const float* prow = pt + jj * kBlockRows + r;
    for (int t = 0; t < 4; ++t) {
      const V pb = Ops::set1(prow[t]);
      for (int b = 0; b < NV; ++b) acc[t][b] = Ops::fmadd(pb, vv[b], acc[t][b]);
    }
  }
  for (int t = 0; t < 4; ++t)
    for (int b = 0; b < NV; ++b) Ops::store(o + (r + t) * dp + d0 + b * W, acc[t][b]);
}

// O += P V for a tile. The d block is the outer loop so its slice of the
// value rows (nj x DV*W floats) stays in L1 while every row group uses it.
inline void pv_tile(const float* pt, const float* const* v, int64_t nj, int64_t nrows, float* o, int64_t dp) {
  int64_t d0 = 0;
  for (; d0 + Ops::DV * W <= dp; d0 += Ops::DV * W)
    for (int64_t r = 0; r < nrows; r += 4) pv_4rows<Ops::DV>(pt, v, nj, r, d0, o, dp);
  for (; d0 < dp; d0 += W)
    for (int64_t r = 0; r < nrows; r += 4) pv_4rows<1>(pt, v, nj, r, d0, o, dp);
}

template <DType KD, DType VD>
void prefill_task(void* raw, int64_t item, int worker) {
  const PrefillCtx& c = *static_cast<const PrefillCtx*>(raw);
  const AttentionPlan& pl = *c.plan;
  const AttentionParams& p = *pl.p;
  const int64_t h = item / c.n_qblocks, qb = item % c.n_qblocks;
  const int64_t kvh = h / pl.group;
  const int64_t i0 = qb * kBlockRows, nrows = min64(kBlockRows, p.n_q - i0);
  const int64_t hd = p.head_dim, dp = c.dp;
  PrefillScratch ws(c.scratch + worker * c.scratch_stride, dp);
  float* logits = c.logits ? c.logits + worker * c.logits_stride : nullptr;

  // Q^T for this block, scaled; rows past nQ are zero.
  for (int64_t d = 0; d < dp; ++d)
    for (int64_t r = 0; r < kBlockRows; ++r)
      ws.qt[d * kBlockRows + r] = (r < nrows && d < hd) ? p.q[h * p.q_head_stride + (i0 + r) * p.q_row_stride + d] * p.scale : 0.0f;
  for (int64_t x = 0; x < kBlockRows * dp; ++x) ws.o[x] = 0.0f;
  for (int64_t r = 0; r < kBlockRows; ++r) {
    ws.m[r] = kNegInf;
    ws.l[r] = 0.0f;
  }

  const int64_t n_tiles = ceil_div(pl.n_keys, kBlockKeys);
  const int64_t last_row_limit = pl.diag + i0 + nrows - 1;  // causal: highest visible position
  const bool direct_k = KD == DType::F32;
  const bool direct_v = VD == DType::F32 && hd == dp;
  for (int64_t t = 0; t < n_tiles; ++t) {
    const int64_t j0 = t * kBlockKeys, nj = min64(kBlockKeys, pl.n_keys - j0);
    int64_t pos[kBlockKeys];
    int64_t min_pos = INT64_MAX, max_pos = -1;
    for (int64_t jj = 0; jj < nj; ++jj) {
      pos[jj] = key_position(pl, kvh, j0 + jj);
      min_pos = pos[jj] < min_pos ? pos[jj] : min_pos;
      max_pos = pos[jj] > max_pos ? pos[jj] : max_pos;
    }
    if (p.causal && min_pos > last_row_limit) {
      if (!p.indices) break;  // positions only grow: every later tile is hidden too
      continue;
    }

    const float* krow[kBlockKeys + 3] = {};
    const float* vrow[kBlockKeys];
    for (int64_t jj = 0; jj < nj; ++jj) {
      const void* kr = k_row(p, kvh, pos[jj]);
      const void* vr = v_row(p, kvh, pos[jj]);
      if (direct_k) {
        krow[jj] = static_cast<const float*>(kr);
      } else {
        widen_row<KD>(kr, hd, dp, ws.kt + jj * dp);
        krow[jj] = ws.kt + jj * dp;
      }
      if (direct_v) {
        vrow[jj] = static_cast<const float*>(vr);
      } else {
        widen_row<VD>(vr, hd, dp, ws.vt + jj * dp);
        vrow[jj] = ws.vt + jj * dp;
      }
    }
    for (int64_t jj = nj; jj < nj + 3; ++jj) krow[jj] = krow[nj - 1];

    // S^T = K Q^T (scaled), then softcap and masks.
    scores_tile(krow, ws.qt, nj, hd, ws.s);
    if (p.softcap > 0.0f) apply_softcap(ws.s, nj * kBlockRows, p.softcap);
    const bool needs_mask = pl.any_mask || (p.causal && max_pos > pl.diag + i0);
    if (needs_mask) {
      for (int64_t jj = 0; jj < nj; ++jj) {
        float* srow = ws.s + jj * kBlockRows;
        for (int64_t r = 0; r < nrows; ++r) {
          const float b = key_bias(pl, i0 + r, pos[jj]);
          srow[r] = b == kNegInf ? kNegInf : srow[r] + b;
        }
      }
    }
    if (logits) {
      for (int64_t jj = 0; jj < nj; ++jj)
        for (int64_t r = 0; r < kBlockRows; ++r) logits[(j0 + jj) * kBlockRows + r] = ws.s[jj * kBlockRows + r];
    }

    // Online softmax across the rows held in vector lanes.
    for (int64_t v = 0; v < kBlockRows; v += W) {
      V mx = Ops::set1(kNegInf);
      for (int64_t jj = 0; jj < nj; ++jj) mx = Ops::max(mx, Ops::load(ws.s + jj * kBlockRows + v));
      Ops::store(ws.tmp + v, mx);
    }
    for (int64_t r = 0; r < kBlockRows; ++r) {
      const float m_new = max_f(ws.m[r], ws.tmp[r]);
      const float shift = m_new == kNegInf ? 0.0f : m_new;  // keeps -inf - -inf out
      ws.alpha[r] = ws.m[r] == kNegInf ? 0.0f : std::exp(ws.m[r] - shift);
      ws.m[r] = m_new;
      ws.tmp[r] = shift;
    }
    for (int64_t v = 0; v < kBlockRows; v += W) {
      const V shift = Ops::load(ws.tmp + v);
      V sum = Ops::zero();
      for (int64_t jj = 0; jj < nj; ++jj) {
        float* sp = ws.s + jj * kBlockRows + v;
        const V e = Ops::exp(Ops::sub(Ops::load(sp), shift));
        Ops::store(sp, e);
        sum = Ops::add(sum, e);
      }
      Ops::store(ws.lsum + v, sum);
    }
    for (int64_t r = 0; r < kBlockRows; ++r) {
      ws.l[r] = ws.l[r] * ws.alpha[r] + ws.lsum[r];
      if (ws.alpha[r] != 1.0f) {
        const V a = Ops::set1(ws.alpha[r]);
        float* orow = ws.o + r * dp;
        for (int64_t d = 0; d < dp; d += W) Ops::store(orow + d, Ops::mul(a, Ops::load(orow + d)));
      }
    }
    pv_tile(ws.s, vrow, nj, nrows, ws.o, dp);
  }

  // Normalise and write out; rows that saw no key get zeros and lse -inf.
  for (int64_t r = 0; r < nrows; ++r) {
    float* out = p.out + (h * p.n_q + i0 + r) * hd;
    const float l = ws.l[r];
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;
    for (int64_t d = 0; d < hd; ++d) out[d] = ws.o[r * dp + d] * inv;
    const float lse = l > 0.0f ? ws.m[r] + std::log(l) : kNegInf;
    if (p.lse) p.lse[h * p.n_q + i0 + r] = lse;
    ws.tmp[r] = l > 0.0f ? lse : kPosInf;  // exp(logit - +inf) = 0 for empty rows
  }
  if (logits) {
    for (int64_t r = nrows; r < kBlockRows; ++r) ws.tmp[r] = kPosInf;
    float* mass = c.mass + worker * (p.n_kv_heads * p.n_kv) + kvh * p.n_kv;
    for (int64_t t = 0; t < n_tiles; ++t) {
      const int64_t j0 = t * kBlockKeys, nj = min64(kBlockKeys, pl.n_keys - j0);
      if (p.causal && (p.indices ? false : j0 > last_row_limit)) break;
      for (int64_t jj = 0; jj < nj; ++jj) {
        const int64_t ps = key_position(pl, kvh, j0 + jj);
        if (p.causal && ps > last_row_limit) continue;  // tile was skipped or key hidden
        const float* lrow = logits + (j0 + jj) * kBlockRows;
        V sum = Ops::zero();
        for (int64_t v = 0; v < kBlockRows; v += W) sum = Ops::add(sum, Ops::exp(Ops::sub(Ops::load(lrow + v), Ops::load(ws.tmp + v))));
        mass[ps] += Ops::hsum(sum);
      }
    }
  }
}

template <DType KD, DType VD>
void run_prefill(const AttentionPlan& pl) {
  const AttentionParams& p = *pl.p;
  ThreadPool& pool = ThreadPool::instance();
  const int workers = pool.size();
  PrefillCtx c{};
  c.plan = &pl;
  c.dp = ceil_div(p.head_dim, W) * W;
  c.n_qblocks = ceil_div(p.n_q, kBlockRows);
  c.scratch_stride = (PrefillScratch::floats(c.dp) + 15) / 16 * 16;
  FloatBuffer scratch(static_cast<size_t>(workers * c.scratch_stride));
  c.scratch = scratch.data();
  FloatBuffer logits(p.key_mass ? static_cast<size_t>(workers * pl.n_keys * kBlockRows) : 0);
  FloatBuffer mass(p.key_mass ? static_cast<size_t>(workers * p.n_kv_heads * p.n_kv) : 0);
  if (p.key_mass) {
    c.logits = logits.data();
    c.logits_stride = pl.n_keys * kBlockRows;
    c.mass = mass.data();
    for (size_t x = 0; x < mass.size(); ++x) c.mass[x] = 0.0f;
  }
  pool.parallel_for(p.n_heads * c.n_qblocks, &prefill_task<KD, VD>, &c, workers);
  if (p.key_mass) {
    const int64_t n = p.n_kv_heads * p.n_kv;
    for (int64_t x = 0; x < n; ++x) {
      float sum = 0.0f;
      for (int w = 0; w < workers; ++w) sum += c.mass[w * n + x];
      p.key_mass[x] = sum;
    }
  }
}

// ===========================================================================
template <DType KD, DType VD>
void run_typed(const AttentionPlan& pl) {
  if (pl.decode) run_decode<KD, VD>(pl);
  else run_prefill<KD, VD>(pl);
}

template <DType KD>
void run_with_k(const AttentionPlan& pl) {
  switch (pl.p->v_dtype) {
    case DType::F32: run_typed<KD, DType::F32>(pl); break;
    case DType::F16: run_typed<KD, DType::F16>(pl); break;
    case DType::BF16: run_typed<KD, DType::BF16>(pl); break;
  }
}

void run(const AttentionPlan& pl) {
  switch (pl.p->k_dtype) {
    case DType::F32: run_with_k<DType::F32>(pl); break;
    case DType::F16: run_with_k<DType::F16>(pl); break;
    case DType::BF16: run_with_k<DType::BF16>(pl); break;
  }
}
