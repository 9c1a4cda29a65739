// Block retrieval scores and the stateless block summaries / selection (blocks.h).
#include "blocks.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "../core/checked_math.h"
#include "../core/half.h"
#include "../kv/kv_finite.h"

namespace tp::sparse {
namespace {
float blk_load(const void* base, DType t, int64_t i) {
  switch (t) {
    case DType::F32: return static_cast<const float*>(base)[i];
    case DType::F16: return f16_to_f32(static_cast<const uint16_t*>(base)[i]);
    default: return bf16_to_f32(static_cast<const uint16_t*>(base)[i]);
  }
}

void blk_store(void* base, DType t, int64_t i, float x) {
  switch (t) {
    case DType::F32: static_cast<float*>(base)[i] = x; break;
    case DType::F16: static_cast<uint16_t*>(base)[i] = f32_to_f16(x); break;
    default: static_cast<uint16_t*>(base)[i] = f32_to_bf16(x); break;
  }
}

float combine_block_rows(const float* const* q, int64_t rows, const float* lo, const float* hi, const float* mean, int64_t d, GqaCombine gqa,
                         float mix) {
  float out = block_row_score(q[0], lo, hi, mean, d, mix);
  for (int64_t r = 1; r < rows; ++r) {
    const float b = block_row_score(q[r], lo, hi, mean, d, mix);
    out = gqa == GqaCombine::Max ? std::max(out, b) : out + b;
  }
  return out;
}
}  // namespace

Status check_block_options(const BlockOptions& o, const char* prefix) {
  const std::string at = prefix;
  if (o.block_size < 1 || o.block_size > 65536) return Status::invalid(at + "blockSize: expected an integer from 1 to 65536, received " + num(o.block_size));
  if (o.budget < 1) return Status::invalid(at + "budget: expected an integer >= 1 (tokens), received " + num(o.budget));
  if (o.sinks < 0) return Status::invalid(at + "sinks: expected an integer >= 0, received " + num(o.sinks));
  if (o.recent < 0) return Status::invalid(at + "recent: expected an integer >= 0, received " + num(o.recent));
  if (o.gqa != GqaCombine::Max && o.gqa != GqaCombine::Sum) return Status::invalid(at + "gqa: expected 'max' or 'sum'");
  if (!(o.mix >= 0.0f && o.mix <= 1.0f)) return Status::invalid(at + "mix: expected a number from 0 to 1, received " + kv::js_number(o.mix));
  return Status::ok();
}

float block_row_score(const float* q, const float* lo, const float* hi, const float* mean, int64_t d, float mix) {
  float bound = 0.0f, dot = 0.0f;
  for (int64_t c = 0; c < d; ++c) {
    bound += std::max(q[c] * hi[c], q[c] * lo[c]);
    dot += q[c] * mean[c];
  }
  return mix * bound + (1.0f - mix) * dot;
}

void score_blocks(const PageSummary& s, SummaryFormat f, int64_t d, int64_t block_size, const float* const* q, int64_t rows,
                  GqaCombine gqa, float mix, float* scores, float* buf) {
  const int64_t blocks = page_count(s.rows, block_size);
  float* mean = buf + 2 * d;
  for (int64_t b = 0; b < blocks; ++b) {
    const float *lo, *hi;
    summary_page(s, f, d, b, buf, buf + d, &lo, &hi);
    const bool open = b >= s.stored;
    const float* sum = open ? s.open_sum.data() : s.sums.data() + b * d;
    const float cnt = static_cast<float>(open ? s.rows - b * block_size : block_size);
    for (int64_t c = 0; c < d; ++c) mean[c] = sum[c] / cnt;
    scores[b] = combine_block_rows(q, rows, lo, hi, mean, d, gqa, mix);
  }
}

Status block_summarize(const BlockSummarizeParams& p) {
  const int64_t H = p.n_kv_heads, n = p.n_kv, d = p.head_dim, B = p.block_size;
  if (H < 1 || n < 1 || d < 1) return Status::invalid("k.shape: expected [nKvHeads >= 1, nKv >= 1, headDim >= 1]");
  if (B < 1 || B > 65536) return Status::invalid("options.blockSize: expected an integer from 1 to 65536, received " + num(B));
  const int64_t need = view_span(H, n, d, p.k_head_stride, p.k_row_stride);
  if (need < 0 || need > p.k_len) return Status::invalid("k: expected at least " + num(need) + " elements for its shape and strides, received " + num(p.k_len));
  const int64_t blocks = page_count(n, B);
  const int64_t elems = checked_mul(checked_mul(H, blocks), d);  // checked: a wrapped product must not pass
  if (elems < 0 || p.out_len != elems) return Status::invalid("kmin, kmax, kmean: expected " + num(elems) + " elements each, received " + num(p.out_len));
  std::vector<float> lo(static_cast<size_t>(d)), hi(static_cast<size_t>(d)), sum(static_cast<size_t>(d)), row(static_cast<size_t>(d));
  for (int64_t h = 0; h < H; ++h) {
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t first = b * B, end = std::min(n, first + B);
      std::fill(sum.begin(), sum.end(), 0.0f);
      for (int64_t t = first; t < end; ++t) {
        const int64_t base = h * p.k_head_stride + t * p.k_row_stride;
        for (int64_t c = 0; c < d; ++c) {
          const float x = blk_load(p.k, p.dtype, base + c);
          if (!std::isfinite(x)) return Status::invalid("k[" + num(h) + "][" + num(t) + "][" + num(c) + "]: expected a finite value, received " + kv::js_number(x));
          row[c] = x;
          sum[c] += x;
        }
        fold_rows(row.data(), 1, d, lo.data(), hi.data(), t == first);
      }
      const float cnt = static_cast<float>(end - first);
      for (int64_t c = 0; c < d; ++c) {
        const int64_t at = (h * blocks + b) * d + c;
        blk_store(p.lo, p.dtype, at, lo[c]);
        blk_store(p.hi, p.dtype, at, hi[c]);
        p.mean[at] = sum[c] / cnt;
      }
    }
  }
  return Status::ok();
}

Status block_select(const BlockSelectParams& p, int64_t* n_sel_out) {
  const int64_t H = p.n_kv_heads, d = p.head_dim, n = p.n_kv;
  const Status so = check_block_options(p.opts, "options.");
  if (!so.is_ok()) return so;
  if (H < 1 || p.n_heads < 1 || p.n_heads % H != 0) return Status::invalid("q.shape[0] (nHeads): expected a multiple of nKvHeads = " + num(H) + ", received " + num(p.n_heads));
  if (p.n_q < 1 || d < 1 || n < 1) return Status::invalid("q, summaries: expected nQ >= 1, headDim >= 1 and nKv >= 1");
  const int64_t need = view_span(p.n_heads, p.n_q, d, p.q_head_stride, p.q_row_stride);
  if (need < 0 || need > p.q_len) return Status::invalid("q: expected at least " + num(need) + " elements for its shape and strides, received " + num(p.q_len));
  const QuestOptions po = block_pages(p.opts);
  const int64_t B = p.opts.block_size, blocks = page_count(n, B);
  const int64_t elems = checked_mul(checked_mul(H, blocks), d);  // checked: a wrapped product must not pass
  if (elems < 0 || p.sum_len != elems) return Status::invalid("summaries.kmin, summaries.kmax, summaries.kmean: expected " + num(elems) + " elements each, received " + num(p.sum_len));
  const int64_t count = selected_count(n, p.n_q, po);
  const int64_t room = checked_mul(H, count);
  if (room < 0 || p.indices_len < room) return Status::invalid("indices: expected room for " + num(room) + " elements, received " + num(p.indices_len));
  const int64_t group = p.n_heads / H, rows = group * p.n_q;
  std::vector<const float*> q(static_cast<size_t>(rows));
  std::vector<float> scores(static_cast<size_t>(blocks)), lo(static_cast<size_t>(d)), hi(static_cast<size_t>(d));
  std::vector<int64_t> chosen, scratch;
  std::vector<int32_t> tokens;
  for (int64_t h = 0; h < H; ++h) {
    for (int64_t j = 0; j < group; ++j) {
      for (int64_t i = 0; i < p.n_q; ++i) q[j * p.n_q + i] = p.q + (h * group + j) * p.q_head_stride + i * p.q_row_stride;
    }
    for (int64_t b = 0; b < blocks; ++b) {
      const float* mean = p.mean + (h * blocks + b) * d;
      for (int64_t c = 0; c < d; ++c) {
        lo[c] = blk_load(p.lo, p.dtype, (h * blocks + b) * d + c);
        hi[c] = blk_load(p.hi, p.dtype, (h * blocks + b) * d + c);
        if (!std::isfinite(lo[c]) || !std::isfinite(hi[c]) || lo[c] > hi[c] || !std::isfinite(mean[c])) {
          return Status::invalid("summaries: expected finite kmin <= kmax and a finite kmean, received kmin " + kv::js_number(lo[c]) + ", kmax " +
                                 kv::js_number(hi[c]) + ", kmean " + kv::js_number(mean[c]) + " at [" + num(h) + "][" + num(b) + "][" + num(c) + "]");
        }
      }
      scores[b] = combine_block_rows(q.data(), rows, lo.data(), hi.data(), mean, d, p.opts.gqa, p.opts.mix);
    }
    select_pages(scores.data(), n, p.n_q, po, chosen, scratch);
    tokens.clear();
    pages_to_tokens(chosen, n, B, tokens);
    std::copy(tokens.begin(), tokens.end(), p.indices + h * count);
  }
  *n_sel_out = count;
  return Status::ok();
}

}  // namespace tp::sparse
