// Prefill path of the attention kernel template (flash-attention tiles);
// included by attention_kernel.inl inside namespace tp::attn_<isa>.
// ===========================================================================
// Prefill path
constexpr int64_t kBlockRows = Ops::QV * W;  // BQ: query rows per task

struct PrefillCtx {
  const AttentionPlan* plan;
  int64_t dp;              // head_dim rounded up to W
  int64_t n_qblocks;
  int64_t heads_per_task;  // query heads of one KV head a task runs together (its K/V tiles widened once)
  float* scratch;          // per worker, see PrefillScratch
  int64_t scratch_stride;
  float* logits;           // key mass: per worker [nKeys][BQ] masked logits
  int64_t logits_stride;
  float* mass;             // key mass: per worker [nKvHeads][nKv]
};

// Per worker: the shared tile buffers, then the running state of each of
// the task's query heads (their Q^T, output, max and sum).
struct PrefillScratch {
  float* s;      // [BK][BQ] S^T, then P^T
  float* tmp;    // [BQ] tile max, then shifted max
  float* alpha;  // [BQ]
  float* lsum;   // [BQ]
  float* kt;     // [BK][dp] widened keys
  float* vt;     // [BK][dp] widened values
  float* heads;  // per head: qt [dp][BQ] scaled Q^T, o [BQ][dp] unnormalised output, m [BQ] running max, l [BQ] running sum
  int64_t dp;

  static int64_t head_floats(int64_t dp) { return 2 * dp * kBlockRows + 2 * kBlockRows; }
  static int64_t floats(int64_t dp, int64_t heads) { return kBlockKeys * kBlockRows + 3 * kBlockRows + 2 * kBlockKeys * dp + heads * head_floats(dp); }
  PrefillScratch(float* base, int64_t dp_) : dp(dp_) {
    s = base; base += kBlockKeys * kBlockRows;
    tmp = base; base += kBlockRows;
    alpha = base; base += kBlockRows;
    lsum = base; base += kBlockRows;
    kt = base; base += kBlockKeys * dp;
    vt = base; base += kBlockKeys * dp;
    heads = base;
  }
  float* qt(int64_t g) const { return heads + g * head_floats(dp); }
  float* o(int64_t g) const { return qt(g) + dp * kBlockRows; }
  float* m(int64_t g) const { return o(g) + kBlockRows * dp; }
  float* l(int64_t g) const { return m(g) + kBlockRows; }
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

// One task: block qb of BQ query rows of heads_per_task query heads that
// share one KV head. Each key tile is read (and widened) once for all of
// them; every head's arithmetic is the same as alone, in the same order.
template <DType KD, DType VD>
void prefill_task(void* raw, int64_t item, int worker) {
  const PrefillCtx& c = *static_cast<const PrefillCtx*>(raw);
  const AttentionPlan& pl = *c.plan;
  const AttentionParams& p = *pl.p;
  const int64_t hpt = c.heads_per_task;
  const int64_t h0 = item / c.n_qblocks * hpt, qb = item % c.n_qblocks;
  const int64_t kvh = h0 / pl.group;
  const int64_t i0 = qb * kBlockRows, nrows = min64(kBlockRows, p.n_q - i0);
  const int64_t hd = p.head_dim, dp = c.dp;
  PrefillScratch ws(c.scratch + worker * c.scratch_stride, dp);
  float* logits = c.logits ? c.logits + worker * c.logits_stride : nullptr;  // key mass: heads_per_task is 1

  // Q^T for this block, scaled; rows past nQ are zero.
  for (int64_t g = 0; g < hpt; ++g) {
    const int64_t h = h0 + g;
    float* qt = ws.qt(g);
    for (int64_t d = 0; d < dp; ++d)
      for (int64_t r = 0; r < kBlockRows; ++r)
        qt[d * kBlockRows + r] = (r < nrows && d < hd) ? p.q[h * p.q_head_stride + (i0 + r) * p.q_row_stride + d] * p.scale : 0.0f;
    float* o = ws.o(g);
    for (int64_t x = 0; x < kBlockRows * dp; ++x) o[x] = 0.0f;
    for (int64_t r = 0; r < kBlockRows; ++r) {
      ws.m(g)[r] = kNegInf;
      ws.l(g)[r] = 0.0f;
    }
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
    const bool needs_mask = mask_reaches(pl, max_pos) || (p.causal && max_pos > pl.diag + i0);

    for (int64_t g = 0; g < hpt; ++g) {
      float* m = ws.m(g);
      float* l = ws.l(g);
      float* o = ws.o(g);
      // S^T = K Q^T (scaled), then softcap and masks.
      scores_tile(krow, ws.qt(g), nj, hd, ws.s);
      if (p.softcap > 0.0f) apply_softcap(ws.s, nj * kBlockRows, p.softcap);
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
        const float m_new = max_f(m[r], ws.tmp[r]);
        const float shift = m_new == kNegInf ? 0.0f : m_new;  // keeps -inf - -inf out
        ws.alpha[r] = m[r] == kNegInf ? 0.0f : std::exp(m[r] - shift);
        m[r] = m_new;
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
        l[r] = l[r] * ws.alpha[r] + ws.lsum[r];
        if (ws.alpha[r] != 1.0f) {
          const V a = Ops::set1(ws.alpha[r]);
          float* orow = o + r * dp;
          for (int64_t d = 0; d < dp; d += W) Ops::store(orow + d, Ops::mul(a, Ops::load(orow + d)));
        }
      }
      pv_tile(ws.s, vrow, nj, nrows, o, dp);
    }
  }

  // Normalise and write out; rows that saw no key get zeros and lse -inf.
  for (int64_t g = 0; g < hpt; ++g) {
    const int64_t h = h0 + g;
    for (int64_t r = 0; r < nrows; ++r) {
      float* out = p.out + (h * p.n_q + i0 + r) * hd;
      const float l = ws.l(g)[r];
      const float inv = l > 0.0f ? 1.0f / l : 0.0f;
      for (int64_t d = 0; d < hd; ++d) out[d] = ws.o(g)[r * dp + d] * inv;
      const float lse = l > 0.0f ? ws.m(g)[r] + std::log(l) : kNegInf;
      if (p.lse) p.lse[h * p.n_q + i0 + r] = lse;
      ws.tmp[r] = l > 0.0f ? lse : kPosInf;  // exp(logit - +inf) = 0 for empty rows (key mass: one head)
    }
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
  // A GQA group's heads share each widened K/V tile; the key mass keeps one
  // head per task (its logits buffer holds one head's tile rows).
  c.heads_per_task = p.key_mass ? 1 : pl.group;
  c.scratch_stride = (PrefillScratch::floats(c.dp, c.heads_per_task) + 15) / 16 * 16;
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
  pool.parallel_for(p.n_heads / c.heads_per_task * c.n_qblocks, &prefill_task<KD, VD>, &c, workers);
  if (p.key_mass) {
    const int64_t n = p.n_kv_heads * p.n_kv;
    for (int64_t x = 0; x < n; ++x) {
      float sum = 0.0f;
      for (int w = 0; w < workers; ++w) sum += c.mass[w * n + x];
      p.key_mass[x] = sum;
    }
  }
}

