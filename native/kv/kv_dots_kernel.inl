// The KV scoring kernels of kv_dots.h, written once over the Ops vector
// interface (native/attention/ops_*.h) and compiled per ISA inside
// namespace tp::kv::dots_<isa>. Raw pointers and our own helpers only:
// library templates would be instantiated under ISA-specific flags.
//
// Dots are computed transposed, S^T[key][row] = K . Q^T, with query rows in
// vector lanes (as in the prefill attention kernel): a micro tile holds KT
// keys x NV row vectors in registers over the head dimension, each key
// element broadcast once for NV * W rows. Keys are widened to f32 per tile
// of kTileKeys.

using V = Ops::V;
constexpr int W = Ops::W;
constexpr float kNegInf = -__builtin_huge_valf();
constexpr int64_t kTileKeys = 64;
// Keys per micro tile: KT x QV accumulators, QV query loads and one
// broadcast must fit the register file (AVX-512 6 x 4 + 5 of 32, AVX2 6 x 2
// + 3 of 16), and KT + QV loads feed KT * QV FMAs.
constexpr int KT = W > 1 ? 6 : 4;

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

template <DType D> struct Row;
template <> struct Row<DType::F32> {
  static V load(const void* row, int64_t d) { return Ops::load(static_cast<const float*>(row) + d); }
  static V load_n(const void* row, int64_t d, int n) { return Ops::load_n(static_cast<const float*>(row) + d, n); }
};
template <> struct Row<DType::F16> {
  static V load(const void* row, int64_t d) { return Ops::load_f16(static_cast<const uint16_t*>(row) + d); }
  static V load_n(const void* row, int64_t d, int n) { return Ops::load_f16_n(static_cast<const uint16_t*>(row) + d, n); }
};
template <> struct Row<DType::BF16> {
  static V load(const void* row, int64_t d) { return Ops::load_bf16(static_cast<const uint16_t*>(row) + d); }
  static V load_n(const void* row, int64_t d, int n) { return Ops::load_bf16_n(static_cast<const uint16_t*>(row) + d, n); }
};

inline const void* row_ptr(const KeyRows& x, int64_t head, int64_t pos) {
  return static_cast<const char*>(x.data) +
         (head * x.head_stride + pos * x.row_stride) * static_cast<int64_t>(dtype_size(x.dtype));
}

// Rows [first, first + n) of one head widened to f32: dst[t * dp + j], zero padded to dp.
template <DType D>
void widen_rows(const KeyRows& x, int64_t head, int64_t first, int64_t n, int64_t hd, int64_t dp, float* dst) {
  for (int64_t t = 0; t < n; ++t) {
    const void* row = row_ptr(x, head, first + t);
    float* out = dst + t * dp;
    int64_t d = 0;
    for (; d + W <= hd; d += W) Ops::store(out + d, Row<D>::load(row, d));
    if (d < hd) Ops::store(out + d, Row<D>::load_n(row, d, static_cast<int>(hd - d)));
    for (d = ceil_div(hd, W) * W; d < dp; d += W) Ops::store(out + d, Ops::zero());
  }
}

inline void widen(const KeyRows& x, int64_t head, int64_t first, int64_t n, int64_t hd, int64_t dp, float* dst) {
  switch (x.dtype) {
    case DType::F32: widen_rows<DType::F32>(x, head, first, n, hd, dp, dst); break;
    case DType::F16: widen_rows<DType::F16>(x, head, first, n, hd, dp, dst); break;
    case DType::BF16: widen_rows<DType::BF16>(x, head, first, n, hd, dp, dst); break;
  }
}

// out[t * ld + v * W ..] = sum_d k[t][d] * panel[d * NV * W + v * W ..] for
// nt <= KT keys and the NV row vectors of one packed panel.
template <int NV>
inline void dots_keys(const float* const* k, int nt, const float* panel, int64_t hd, float* out, int64_t ld) {
  V acc[KT][NV];
  for (int t = 0; t < KT; ++t)
    for (int v = 0; v < NV; ++v) acc[t][v] = Ops::zero();
  for (int64_t d = 0; d < hd; ++d) {
    V q[NV];
    for (int v = 0; v < NV; ++v) q[v] = Ops::load(panel + d * NV * W + v * W);
    for (int t = 0; t < KT; ++t) {
      const V kb = Ops::set1(k[t][d]);
      for (int v = 0; v < NV; ++v) acc[t][v] = Ops::fmadd(kb, q[v], acc[t][v]);
    }
  }
  for (int t = 0; t < KT; ++t) {
    if (t >= nt) break;
    for (int v = 0; v < NV; ++v) Ops::store(out + t * ld + v * W, acc[t][v]);
  }
}

// Q^T [hd][ld] (ld a multiple of W) repacked into panels of QV vectors of
// rows (the last one narrower), each [hd][nv * W] contiguous: the micro
// kernel then reads its rows sequentially (a long Q^T row stride such as
// 8 KiB would map every d onto the same L1 sets).
inline void pack_panels(const float* qt, int64_t hd, int64_t ld, float* out) {
  const int64_t nvec = ld / W;
  for (int64_t v0 = 0; v0 < nvec; v0 += Ops::QV) {
    const int64_t width = min64(Ops::QV, nvec - v0) * W;
    float* panel = out + v0 * W * hd;
    for (int64_t d = 0; d < hd; ++d)
      for (int64_t x = 0; x < width; ++x) panel[d * width + x] = qt[d * ld + v0 * W + x];
  }
}

// S^T for nj widened keys (kt, row stride dp) against every row of the
// packed panels qp (ld rows): out[j * ld + r].
inline void dots_tile(const float* kt, int64_t dp, int64_t nj, const float* qp, int64_t ld, int64_t hd, float* out) {
  const int64_t nvec = ld / W;
  for (int64_t v0 = 0; v0 < nvec; v0 += Ops::QV) {
    const int nv = static_cast<int>(min64(Ops::QV, nvec - v0));
    for (int64_t jj = 0; jj < nj; jj += KT) {
      const float* k[KT];
      for (int t = 0; t < KT; ++t) k[t] = kt + min64(jj + t, nj - 1) * dp;
      const int nt = static_cast<int>(min64(KT, nj - jj));
      float* o = out + jj * ld + v0 * W;
      const float* q = qp + v0 * W * hd;
      switch (nv) {  // nv <= Ops::QV: the larger cases exist only on wide ISAs
        case 1: dots_keys<1>(k, nt, q, hd, o, ld); break;
        case 2: dots_keys<2>(k, nt, q, hd, o, ld); break;
        case 3: dots_keys<3>(k, nt, q, hd, o, ld); break;
        default: dots_keys<4>(k, nt, q, hd, o, ld); break;
      }
    }
  }
}

// ===========================================================================
// Softmax mass
struct MassCtx {
  const MassPlan* plan;
  int64_t kvh;  // the KV head in progress (heads run one after another: e holds one)
  int64_t n_chunks, dp;
  const float* qp;  // the head's rows, packed (pack_panels)
  float* kt;  // per worker [kTileKeys][dp]
  int64_t kt_stride;
};

inline float* chunk_stats(const MassPlan& pl, int64_t c) { return pl.stats + c * pl.n_rows_pad * 2; }

// Phase 1, one (KV head, chunk): S^T into e, masks, then per row the chunk
// max m and e = exp(s - m) with its sum l.
void mass_chunk_task(void* raw, int64_t chunk, int worker) {
  const MassCtx& c = *static_cast<const MassCtx*>(raw);
  const MassPlan& pl = *c.plan;
  const int64_t kvh = c.kvh;
  const int64_t j0 = chunk * kDotsChunk, nj = min64(kDotsChunk, pl.n_kv - j0);
  const int64_t ld = pl.n_rows_pad, hd = pl.head_dim;
  const int64_t* limit = pl.limit + kvh * ld;
  float* e = pl.e + j0 * ld;
  float* kt = c.kt + worker * c.kt_stride;
  for (int64_t t0 = 0; t0 < nj; t0 += kTileKeys) {
    const int64_t n = min64(kTileKeys, nj - t0);
    widen(pl.k, kvh, j0 + t0, n, hd, c.dp, kt);
    dots_tile(kt, c.dp, n, c.qp, ld, hd, e + t0 * ld);
  }
  // Causal / padding masks: only rows that stop before the chunk's last key.
  const int64_t last = j0 + nj - 1;
  for (int64_t r = 0; r < ld; ++r) {
    if (limit[r] >= last) continue;
    for (int64_t j = limit[r] + 1 > j0 ? limit[r] + 1 - j0 : 0; j < nj; ++j) e[j * ld + r] = kNegInf;
  }
  float* m = chunk_stats(pl, chunk);
  float* l = m + ld;
  for (int64_t v = 0; v < ld; v += W) {
    V mx = Ops::set1(kNegInf);
    for (int64_t j = 0; j < nj; ++j) mx = Ops::max(mx, Ops::load(e + j * ld + v));
    Ops::store(m + v, mx);
  }
  // l holds the shift first (0 for a row that sees no key: keeps -inf - -inf out).
  for (int64_t r = 0; r < ld; ++r) l[r] = m[r] == kNegInf ? 0.0f : m[r];
  for (int64_t v = 0; v < ld; v += W) {
    const V shift = Ops::load(l + v);
    V sum = Ops::zero();
    for (int64_t j = 0; j < nj; ++j) {
      float* p = e + j * ld + v;
      const V x = Ops::exp(Ops::sub(Ops::load(p), shift));
      Ops::store(p, x);
      sum = Ops::add(sum, x);
    }
    Ops::store(l + v, sum);
  }
}

// Phase 2, the whole KV head, rows in vector lanes: each row's max M and
// sum L over the chunks; the chunk max slot becomes the factor
// exp(m - M) / L (0 for rows that see nothing). tmp: [2 * nRowsPad].
void mass_factors(const MassCtx& c, float* tmp) {
  const MassPlan& pl = *c.plan;
  const int64_t ld = pl.n_rows_pad;
  float* big = tmp;
  float* inv = tmp + ld;
  for (int64_t v = 0; v < ld; v += W) {
    V mx = Ops::set1(kNegInf);
    for (int64_t ch = 0; ch < c.n_chunks; ++ch) mx = Ops::max(mx, Ops::load(chunk_stats(pl, ch) + v));
    Ops::store(big + v, mx);
  }
  for (int64_t r = 0; r < ld; ++r) big[r] = big[r] == kNegInf ? 0.0f : big[r];  // keeps -inf - -inf out
  for (int64_t v = 0; v < ld; v += W) {
    const V b = Ops::load(big + v);
    V total = Ops::zero();
    for (int64_t ch = 0; ch < c.n_chunks; ++ch) {
      const float* st = chunk_stats(pl, ch);
      total = Ops::fmadd(Ops::load(st + ld + v), Ops::exp(Ops::sub(Ops::load(st + v), b)), total);  // exp(-inf) = 0
    }
    Ops::store(inv + v, total);
  }
  for (int64_t r = 0; r < ld; ++r) inv[r] = inv[r] > 0.0f ? 1.0f / inv[r] : 0.0f;
  for (int64_t ch = 0; ch < c.n_chunks; ++ch) {
    float* st = chunk_stats(pl, ch);
    for (int64_t v = 0; v < ld; v += W) {
      Ops::store(st + v, Ops::mul(Ops::exp(Ops::sub(Ops::load(st + v), Ops::load(big + v))), Ops::load(inv + v)));
    }
  }
}

// Phase 3, one (KV head, chunk): acc[p] (+)= reduce_r e[p][r] * factor[r].
void mass_reduce_task(void* raw, int64_t chunk, int /*worker*/) {
  const MassCtx& c = *static_cast<const MassCtx*>(raw);
  const MassPlan& pl = *c.plan;
  const int64_t kvh = c.kvh;
  const int64_t j0 = chunk * kDotsChunk, nj = min64(kDotsChunk, pl.n_kv - j0);
  const int64_t ld = pl.n_rows_pad;
  const float* f = chunk_stats(pl, chunk);
  const float* e = pl.e + j0 * ld;
  float* acc = pl.acc + kvh * pl.n_kv + j0;
  for (int64_t j = 0; j < nj; ++j) {
    const float* row = e + j * ld;
    if (pl.take_max) {
      V mx = Ops::zero();  // probabilities are >= 0
      for (int64_t v = 0; v < ld; v += W) mx = Ops::max(mx, Ops::mul(Ops::load(row + v), Ops::load(f + v)));
      const float x = Ops::hmax(mx);
      acc[j] = x > acc[j] ? x : acc[j];
    } else {
      V sum = Ops::zero();
      for (int64_t v = 0; v < ld; v += W) sum = Ops::fmadd(Ops::load(row + v), Ops::load(f + v), sum);
      acc[j] += Ops::hsum(sum);
    }
  }
}

void run_mass(const MassPlan& pl) {
  ThreadPool& pool = ThreadPool::instance();
  const int workers = pool.size();
  MassCtx c{};
  c.plan = &pl;
  c.n_chunks = ceil_div(pl.n_kv, kDotsChunk);
  c.dp = ceil_div(pl.head_dim, W) * W;
  c.kt_stride = kTileKeys * c.dp;
  FloatBuffer kt(static_cast<size_t>(workers * c.kt_stride));
  c.kt = kt.data();
  FloatBuffer qp(static_cast<size_t>(pl.head_dim * pl.n_rows_pad));
  FloatBuffer tmp(static_cast<size_t>(2 * pl.n_rows_pad));
  c.qp = qp.data();
  for (c.kvh = 0; c.kvh < pl.n_kv_heads; ++c.kvh) {
    pack_panels(pl.qt + c.kvh * pl.head_dim * pl.n_rows_pad, pl.head_dim, pl.n_rows_pad, qp.data());
    pool.parallel_for(c.n_chunks, &mass_chunk_task, &c, workers);
    mass_factors(c, tmp.data());
    pool.parallel_for(c.n_chunks, &mass_reduce_task, &c, workers);
  }
}

// ===========================================================================
// Quadratic-form logits
struct QuadCtx {
  const QuadPlan* plan;
  int64_t n_tiles, dp;
  const float* qp;  // every head's rows, packed (pack_panels), [nKvHeads][headDim * nRowsPad]
  float* scratch;  // per worker: kt [kTileKeys][dp], then s [kTileKeys][nRowsPad]
  int64_t stride;
};

void quad_task(void* raw, int64_t item, int worker) {
  const QuadCtx& c = *static_cast<const QuadCtx*>(raw);
  const QuadPlan& pl = *c.plan;
  const int64_t kvh = item / c.n_tiles, tile = item % c.n_tiles;
  const int64_t n_keys = pl.n_kv - pl.first;
  const int64_t t0 = tile * kTileKeys, nj = min64(kTileKeys, n_keys - t0);
  const int64_t ld = pl.n_rows_pad, hd = pl.head_dim;
  float* kt = c.scratch + worker * c.stride;
  float* s = kt + kTileKeys * c.dp;
  widen(pl.k, kvh, pl.first + t0, nj, hd, c.dp, kt);
  dots_tile(kt, c.dp, nj, c.qp + kvh * hd * ld, ld, hd, s);
  for (int64_t g = 0; g < pl.n_segments; ++g) {
    const float* lin = pl.lin + (kvh * pl.n_segments + g) * ld;
    const float* sq = pl.sq + (kvh * pl.n_segments + g) * ld;
    float* out = pl.logits + (kvh * pl.n_segments + g) * n_keys + t0;
    // The vectors that overlap the segment (the coefficients are 0 elsewhere).
    const int64_t v0 = g * pl.segment / W * W, v1 = ceil_div((g + 1) * pl.segment, W) * W;
    for (int64_t j = 0; j < nj; ++j) {
      const float* row = s + j * ld;
      V acc = Ops::zero();
      for (int64_t v = v0; v < v1; v += W) {
        const V x = Ops::load(row + v);
        acc = Ops::fmadd(Ops::load(lin + v), x, acc);
        acc = Ops::fmadd(Ops::mul(Ops::load(sq + v), x), x, acc);
      }
      out[j] = Ops::hsum(acc);
    }
  }
}

void run_quad(const QuadPlan& pl) {
  ThreadPool& pool = ThreadPool::instance();
  const int workers = pool.size();
  QuadCtx c{};
  c.plan = &pl;
  c.n_tiles = ceil_div(pl.n_kv - pl.first, kTileKeys);
  c.dp = ceil_div(pl.head_dim, W) * W;
  c.stride = kTileKeys * (c.dp + pl.n_rows_pad);
  FloatBuffer scratch(static_cast<size_t>(workers * c.stride));
  c.scratch = scratch.data();
  const int64_t per_head = pl.head_dim * pl.n_rows_pad;
  FloatBuffer qp(static_cast<size_t>(pl.n_kv_heads * per_head));
  for (int64_t h = 0; h < pl.n_kv_heads; ++h) pack_panels(pl.qt + h * per_head, pl.head_dim, pl.n_rows_pad, qp.data() + h * per_head);
  c.qp = qp.data();
  pool.parallel_for(pl.n_kv_heads * c.n_tiles, &quad_task, &c, workers);
}

// ===========================================================================
// Nearest kept key (merge targets)
struct NearestCtx {
  const NearestPlan* plan;
  int64_t n_tiles, dp;
  const float* qp;  // the kept keys, packed (pack_panels)
  float* scratch;  // per worker: kt [kTileKeys][dp], then s [kTileKeys][nRowsPad]
  int64_t stride;
};

void nearest_task(void* raw, int64_t tile, int worker) {
  const NearestCtx& c = *static_cast<const NearestCtx*>(raw);
  const NearestPlan& pl = *c.plan;
  const int64_t e0 = tile * kTileKeys, ne = min64(kTileKeys, pl.n_evicted - e0);
  const int64_t ld = pl.n_rows_pad, hd = pl.head_dim;
  float* kt = c.scratch + worker * c.stride;
  float* s = kt + kTileKeys * c.dp;
  const KeyRows rows{pl.k, DType::F32, 0, hd};
  for (int64_t t = 0; t < ne; ++t) widen_rows<DType::F32>(rows, 0, pl.evicted[e0 + t], 1, hd, c.dp, kt + t * c.dp);
  dots_tile(kt, c.dp, ne, c.qp, ld, hd, s);
  for (int64_t t = 0; t < ne; ++t) {
    float* row = s + t * ld;
    V mx = Ops::set1(kNegInf);
    for (int64_t v = 0; v < ld; v += W) {
      const V x = Ops::mul(Ops::load(row + v), Ops::load(pl.inv_norm + v));
      Ops::store(row + v, x);
      mx = Ops::max(mx, x);
    }
    float big = kNegInf;
    if (pl.n_keep == ld) {
      big = Ops::hmax(mx);
    } else {  // padding lanes hold 0, which may exceed every real similarity
      for (int64_t j = 0; j < pl.n_keep; ++j) big = row[j] > big ? row[j] : big;
    }
    int64_t arg = 0;
    while (arg + 1 < pl.n_keep && !(row[arg] == big)) ++arg;  // the first maximum
    pl.best[e0 + t] = static_cast<int32_t>(arg);
    pl.best_dot[e0 + t] = row[arg];
  }
}

void run_nearest(const NearestPlan& pl) {
  ThreadPool& pool = ThreadPool::instance();
  const int workers = pool.size();
  NearestCtx c{};
  c.plan = &pl;
  c.n_tiles = ceil_div(pl.n_evicted, kTileKeys);
  c.dp = ceil_div(pl.head_dim, W) * W;
  c.stride = kTileKeys * (c.dp + pl.n_rows_pad);
  FloatBuffer scratch(static_cast<size_t>(workers * c.stride));
  c.scratch = scratch.data();
  FloatBuffer qp(static_cast<size_t>(pl.head_dim * pl.n_rows_pad));
  pack_panels(pl.qt, pl.head_dim, pl.n_rows_pad, qp.data());
  c.qp = qp.data();
  pool.parallel_for(c.n_tiles, &nearest_task, &c, workers);
}

// ===========================================================================
// Softmax of rows, summed; row norms
void softmax_sum(const float* logits, int64_t n_seg, int64_t n, float scale, float* out) {
  for (int64_t p = 0; p < n; ++p) out[p] = 0.0f;
  for (int64_t g = 0; g < n_seg; ++g) {
    const float* l = logits + g * n;
    V mx = Ops::set1(kNegInf);
    int64_t p = 0;
    for (; p + W <= n; p += W) mx = Ops::max(mx, Ops::load(l + p));
    float big = Ops::hmax(mx);
    for (; p < n; ++p) big = l[p] > big ? l[p] : big;
    const V bv = Ops::set1(big);
    V sum = Ops::zero();
    for (p = 0; p + W <= n; p += W) sum = Ops::add(sum, Ops::exp(Ops::sub(Ops::load(l + p), bv)));
    float total = Ops::hsum(sum);
    for (; p < n; ++p) total += std::exp(l[p] - big);
    const V f = Ops::set1(scale / total);
    for (p = 0; p + W <= n; p += W) {
      Ops::store(out + p, Ops::fmadd(Ops::exp(Ops::sub(Ops::load(l + p), bv)), f, Ops::load(out + p)));
    }
    for (; p < n; ++p) out[p] += std::exp(l[p] - big) * (scale / total);
  }
}

template <DType D>
void sq_norms(const KeyRows& x, int64_t head, int64_t first, int64_t n, int64_t hd, float* out) {
  for (int64_t t = 0; t < n; ++t) {
    const void* row = row_ptr(x, head, first + t);
    V acc = Ops::zero();
    int64_t d = 0;
    for (; d + W <= hd; d += W) {
      const V v = Row<D>::load(row, d);
      acc = Ops::fmadd(v, v, acc);
    }
    if (d < hd) {
      const V v = Row<D>::load_n(row, d, static_cast<int>(hd - d));
      acc = Ops::fmadd(v, v, acc);
    }
    out[t] = Ops::hsum(acc);
  }
}

void row_sq_norms(const KeyRows& x, int64_t head, int64_t first, int64_t n, int64_t hd, float* out) {
  switch (x.dtype) {
    case DType::F32: sq_norms<DType::F32>(x, head, first, n, hd, out); break;
    case DType::F16: sq_norms<DType::F16>(x, head, first, n, hd, out); break;
    case DType::BF16: sq_norms<DType::BF16>(x, head, first, n, hd, out); break;
  }
}

template <DType D>
void to_f32(const KeyRows& x, int64_t head, int64_t first, int64_t n, int64_t hd, float* out) {
  for (int64_t t = 0; t < n; ++t) {
    const void* row = row_ptr(x, head, first + t);
    float* dst = out + t * hd;
    int64_t d = 0;
    for (; d + W <= hd; d += W) Ops::store(dst + d, Row<D>::load(row, d));
    if (d < hd) {
      float tail[W];
      Ops::store(tail, Row<D>::load_n(row, d, static_cast<int>(hd - d)));
      for (int64_t j = d; j < hd; ++j) dst[j] = tail[j - d];
    }
  }
}

void rows_to_f32(const KeyRows& x, int64_t head, int64_t first, int64_t n, int64_t hd, float* out) {
  switch (x.dtype) {
    case DType::F32: to_f32<DType::F32>(x, head, first, n, hd, out); break;
    case DType::F16: to_f32<DType::F16>(x, head, first, n, hd, out); break;
    case DType::BF16: to_f32<DType::BF16>(x, head, first, n, hd, out); break;
  }
}
