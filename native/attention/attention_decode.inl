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

