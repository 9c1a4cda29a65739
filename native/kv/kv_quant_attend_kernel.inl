// The quantized decode kernel, included once per ISA inside a namespace that
// provides: dequant_k_rows (rows 0 .. n-1 of a block), dequant_v_row, f16_row
// (fill f32 [headDim]),
// qk_rows (s[r, t] = q[r] . k[t]), pv_rows (acc[r] += sum_t p[r, t] * vrows[t]), softmax_block
// (softmax_update or a vectorized equal), and kHasInt4Step / int4_step_fits /
// step_int4 (an integer path for int4 blocks). No library templates may be
// instantiated here.

// Online softmax: folds scores s [R, G] (n valid per row) into (m, l, acc)
// and turns s into the block's probabilities.
inline void softmax_update(int64_t R, int64_t n, int64_t G, int64_t d, float* s, float* m, float* l, float* acc) {
  for (int64_t r = 0; r < R; ++r) {
    float bm = -INFINITY;
    for (int64_t t = 0; t < n; ++t) bm = s[r * G + t] > bm ? s[r * G + t] : bm;
    if (bm == -INFINITY) {
      for (int64_t t = 0; t < n; ++t) s[r * G + t] = 0.0f;
      continue;
    }
    const float nm = bm > m[r] ? bm : m[r];
    const float corr = m[r] == -INFINITY ? 0.0f : expf(m[r] - nm);
    if (corr != 1.0f) {
      for (int64_t c = 0; c < d; ++c) acc[r * d + c] *= corr;
      l[r] *= corr;
    }
    m[r] = nm;
    for (int64_t t = 0; t < n; ++t) {
      const float p = s[r * G + t] == -INFINITY ? 0.0f : expf(s[r * G + t] - nm);
      s[r * G + t] = p;
      l[r] += p;
    }
  }
}

// One step of up to `group` rows (a quantized block or a piece of the tail),
// in f32: rows dequantized once, used by every query row. vrow: [group, headDim].
inline void step_float(const QuantHeadView& h, const QuantAttendArgs& a, int64_t b0, int64_t n, bool in_blocks, const uint8_t* block,
                       int64_t quant_end, const int64_t* last, float* m, float* l, float* acc, float* vrow, float* s) {
  const QuantLayout& L = *h.layout;
  const int64_t d = L.head_dim, G = L.group, R = a.rows;
  // Scores [R, n]: key rows dequantized into vrow first (free until P . V).
  if (in_blocks) dequant_k_rows(L, block, n, vrow);
  else for (int64_t t = 0; t < n; ++t) f16_row(h.tail_k + (b0 + t - quant_end) * d, d, vrow + t * d);
  qk_rows(R, n, G, d, a.q, vrow, s);
  for (int64_t t = 0; t < n; ++t) {
    const int64_t idx = b0 + t;
    for (int64_t r = 0; r < R; ++r) {
      float x = -INFINITY;
      if (idx <= last[r]) {
        x = s[r * G + t] * a.scale;
        if (a.softcap > 0.0f) x = a.softcap * tanhf(x / a.softcap);
      }
      s[r * G + t] = x;
    }
  }
  softmax_block(R, n, G, d, s, m, l, acc);
  // P . V: value rows dequantized once into vrows [n, headDim], then every
  // query row's weighted sum (pv_rows keeps partial sums in registers).
  for (int64_t t = 0; t < n; ++t) {
    if (in_blocks) dequant_v_row(L, block, t, vrow + t * d);
    else f16_row(h.tail_v + (b0 + t - quant_end) * d, d, vrow + t * d);
  }
  pv_rows(R, n, G, d, s, vrow, acc);
}

// One chunk: rows [t0, t1) of the head (blocks first, then the tail).
// Writes m, l, acc (acc: rows x headDim) for each query row.
inline void chunk_kernel(const QuantHeadView& h, const QuantAttendArgs& a, int64_t t0, int64_t t1, int64_t len,
                         float* m, float* l, float* acc, float* vrow, float* s, float* ws) {
  const QuantLayout& L = *h.layout;
  const int64_t d = L.head_dim, G = L.group, R = a.rows;
  for (int64_t r = 0; r < R; ++r) {
    m[r] = -INFINITY;
    l[r] = 0.0f;
    for (int64_t c = 0; c < d; ++c) acc[r * d + c] = 0.0f;
  }
  const int64_t quant_end = h.n_blocks * G;
  // Last key each row may see (no divisions in the loops below).
  int64_t last[kQuantMaxRows];
  for (int64_t r = 0; r < R; ++r) last[r] = a.causal ? len - a.n_q + r % a.n_q : len - 1;
  // t0 is a multiple of G: each step is one quantized block or a piece of the tail.
  for (int64_t b0 = t0; b0 < t1; b0 += G) {
    const int64_t b1 = b0 + G < t1 ? b0 + G : t1;
    const int64_t n = b1 - b0;
    const bool in_blocks = b0 < quant_end;
    const uint8_t* block = in_blocks ? h.blocks + (b0 / G) * L.block_bytes : nullptr;
    if (kHasInt4Step && in_blocks && int4_step_fits(L)) step_int4(L, block, a, b0, last, m, l, acc, s, ws);
    else step_float(h, a, b0, n, in_blocks, block, quant_end, last, m, l, acc, vrow, s);
  }
}
