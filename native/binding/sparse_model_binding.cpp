// Test-only bindings of the device Quest's shared code (native/sparse/
// quest_hd.h, quest_u8_hd.h: TP_HD, also compiled into the CUDA kernels),
// run on the host beside the CPU Quest so that test/unit/
// sparse-quest-device.test.ts checks the GPU's arithmetic and selection
// without a GPU: questDeviceModel (summaries, scores, radix top-k) and
// questU8Model (the U8 summaries of int caches). Positional, a Float64Array
// header first; every size is checked before a buffer is read.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "../core/half.h"
#include "../sparse/quest.h"
#include "../sparse/quest_hd.h"
#include "../sparse/quest_score.h"
#include "../sparse/quest_u8_hd.h"
#include "bindings.h"
#include "napi_args.h"

namespace tp::binding {
namespace {

// The header: exactly n integers from 0 to 2^31 - 1, copied out first.
std::vector<double> ModelHeader(const Napi::CallbackInfo& info, size_t n, const char* fn) {
  const TypedArrayView h = ValueTypedArray(info[0], "header", napi_float64_array, true);
  if (h.length != static_cast<int64_t>(n)) throw Napi::RangeError::New(info.Env(), std::string(fn) + ": header: expected " + std::to_string(n) + " numbers");
  const double* p = static_cast<const double*>(h.data);
  std::vector<double> f(p, p + n);
  for (size_t i = 0; i < n; ++i) {
    if (!(f[i] == std::floor(f[i]) && f[i] >= 0 && f[i] <= 2147483647.0)) {
      throw Napi::RangeError::New(info.Env(), std::string(fn) + ": header[" + std::to_string(i) + "]: expected an integer from 0 to 2^31 - 1");
    }
  }
  return f;
}

DType ModelDtype(Napi::Env env, double code) {
  if (code != 0 && code != 1 && code != 2) throw Napi::RangeError::New(env, "dtype: expected 0 (f32), 1 (f16) or 2 (bf16)");
  return static_cast<DType>(static_cast<int>(code));
}

// questDeviceModel(header [nHeads, nKvHeads, nQ, headDim, nKv, dtype, budget,
// pageSize, sinks, recent, gqa], k [nKvHeads, nKv, headDim] (contiguous), q
// f32 [nHeads, nQ, headDim] (contiguous); outputs kmin, kmax [nKvHeads,
// pages, headDim] (k's dtype), scores, cpuScores f32 [nKvHeads, pages],
// indices, cpuIndices i32 [nKvHeads, nSel]) -> nSel. Tests only: the device
// Quest's TP_HD code run on the host (sparse/quest_hd.h: the summary fold,
// the weights, the page score, the radix top-k) beside the CPU Quest on the
// same summaries (bound_weights + score_rows, select_pages).
Napi::Value QuestDeviceModel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 9) throw Napi::TypeError::New(env, "questDeviceModel: expected (header, k, q, kmin, kmax, scores, cpuScores, indices, cpuIndices)");
  const std::vector<double> f = ModelHeader(info, 11, "questDeviceModel");
  const int64_t nh = static_cast<int64_t>(f[0]), H = static_cast<int64_t>(f[1]), nq = static_cast<int64_t>(f[2]);
  const int64_t d = static_cast<int64_t>(f[3]), n = static_cast<int64_t>(f[4]);
  const DType dt = ModelDtype(env, f[5]);
  sparse::QuestOptions o;
  o.budget = static_cast<int64_t>(f[6]);
  o.page_size = static_cast<int64_t>(f[7]);
  o.sinks = static_cast<int64_t>(f[8]);
  o.recent = static_cast<int64_t>(f[9]);
  o.gqa = f[10] == 1 ? sparse::GqaCombine::Sum : f[10] == 0 ? sparse::GqaCombine::Max : static_cast<sparse::GqaCombine>(2);
  const Status so = sparse::check_quest_options(o, "options.");
  if (!so.is_ok()) ThrowStatus(env, so);
  if (H < 1 || nh < 1 || nh % H != 0 || nq < 1 || d < 1 || d > 4096 || n < 1 || n > (int64_t(1) << 24) || nh * nq > 4096) {
    throw Napi::RangeError::New(env, "questDeviceModel: header: expected nHeads a multiple of nKvHeads >= 1, nQ >= 1, headDim 1..4096, nKv 1..2^24");
  }
  const int64_t P = o.page_size, pages = sparse::page_count(n, P), R = nh / H * nq;
  const int gqa = static_cast<int>(o.gqa);
  const int64_t count = sparse::selected_count(n, nq, o);
  const TypedArrayView k = ValueTypedArray(info[1], "k", FloatArrayType(dt), true);
  const TypedArrayView q = ValueTypedArray(info[2], "q", napi_float32_array, true);
  const TypedArrayView lo = ValueTypedArray(info[3], "kmin", FloatArrayType(dt), true);
  const TypedArrayView hi = ValueTypedArray(info[4], "kmax", FloatArrayType(dt), true);
  const TypedArrayView sc = ValueTypedArray(info[5], "scores", napi_float32_array, true);
  const TypedArrayView csc = ValueTypedArray(info[6], "cpuScores", napi_float32_array, true);
  const TypedArrayView idx = ValueTypedArray(info[7], "indices", napi_int32_array, true);
  const TypedArrayView cpu = ValueTypedArray(info[8], "cpuIndices", napi_int32_array, true);
  RefuseOverlap(env, {&lo, &hi, &sc, &csc, &idx, &cpu}, {&k, &q});  // outputs apart from one another and from the inputs
  if (k.length != H * n * d) throw Napi::RangeError::New(env, "k: expected " + std::to_string(H * n * d) + " elements, received " + std::to_string(k.length));
  if (q.length != nh * nq * d) throw Napi::RangeError::New(env, "q: expected " + std::to_string(nh * nq * d) + " elements, received " + std::to_string(q.length));
  if (lo.length != H * pages * d || hi.length != lo.length) throw Napi::RangeError::New(env, "kmin, kmax: expected " + std::to_string(H * pages * d) + " elements each");
  if (sc.length != H * pages || csc.length != H * pages) throw Napi::RangeError::New(env, "scores, cpuScores: expected " + std::to_string(H * pages) + " elements each");
  if (idx.length != H * count || cpu.length != H * count) throw Napi::RangeError::New(env, "indices, cpuIndices: expected " + std::to_string(H * count) + " elements each");
  const size_t es = dt == DType::F32 ? 4 : 2;
  const int code = static_cast<int>(dt);
  const int64_t pairs = sparse::hd::effective_rows(R, gqa);
  std::vector<float> lof(static_cast<size_t>(d)), hif(static_cast<size_t>(d)), ab(static_cast<size_t>(pairs * 2 * d)), cab(ab.size());
  std::vector<const float*> rows(static_cast<size_t>(R));
  std::vector<int64_t> chosen, scratch;
  std::vector<int32_t> tokens;
  float* scores = static_cast<float*>(sc.data);
  float* cpu_scores = static_cast<float*>(csc.data);
  for (int64_t h = 0; h < H; ++h) {
    // Summaries: the device's fold (quest_summary_kernel), stored in k's dtype.
    for (int64_t pg = 0; pg < pages; ++pg) {
      for (int64_t t = pg * P; t < std::min(n, (pg + 1) * P); ++t) {
        const sparse::hd::RowLoad row{static_cast<const uint8_t*>(k.data) + static_cast<size_t>((h * n + t) * d) * es, code};
        for (int64_t c = 0; c < d; ++c) {
          const float x = row(c);
          if (!std::isfinite(x)) throw Napi::RangeError::New(env, "k: expected finite values");
          sparse::hd::fold(x, &lof[c], &hif[c], t == pg * P);
        }
      }
      for (int64_t c = 0; c < d; ++c) {
        const int64_t at = (h * pages + pg) * d + c;
        if (dt == DType::F32) {
          static_cast<float*>(lo.data)[at] = lof[c];
          static_cast<float*>(hi.data)[at] = hif[c];
        } else {
          static_cast<uint16_t*>(lo.data)[at] = dt == DType::F16 ? f32_to_f16(lof[c]) : f32_to_bf16(lof[c]);
          static_cast<uint16_t*>(hi.data)[at] = dt == DType::F16 ? f32_to_f16(hif[c]) : f32_to_bf16(hif[c]);
        }
      }
    }
    // Scores: the device's (weights a channel at a time, the page score) and the CPU's.
    const sparse::hd::QueryRows qr{static_cast<const float*>(q.data) + h * R * d, d};
    for (int64_t c = 0; c < d; ++c) sparse::hd::weights_channel(qr, R, d, gqa, c, ab.data());
    for (int64_t r = 0; r < R; ++r) rows[r] = static_cast<const float*>(q.data) + (h * R + r) * d;
    sparse::bound_weights(rows.data(), R, d, o.gqa, cab.data());
    const size_t head_off = static_cast<size_t>(h * pages * d) * es;
    for (int64_t pg = 0; pg < pages; ++pg) {
      const size_t off = head_off + static_cast<size_t>(pg * d) * es;
      const sparse::hd::RowLoad l{static_cast<const uint8_t*>(lo.data) + off, code};
      const sparse::hd::RowLoad u{static_cast<const uint8_t*>(hi.data) + off, code};
      scores[h * pages + pg] = sparse::hd::page_score(l, u, ab.data(), pairs, d);
    }
    sparse::score_rows(static_cast<const uint8_t*>(lo.data) + head_off, static_cast<const uint8_t*>(hi.data) + head_off, dt, pages, d, cab.data(),
                       sparse::bound_pairs(R, o.gqa), cpu_scores + h * pages);
    // Selections: the device's radix top-k on its scores, the CPU's select_pages on its own
    // (the plan's count first: model_select writes that many).
    const sparse::hd::PagePlan plan = sparse::hd::plan_pages(n, nq, o.budget, P, o.sinks, o.recent);
    if (sparse::hd::selected_tokens(plan, n, P) != count) throw Napi::Error::New(env, "questDeviceModel: the device plan selects another count than the CPU");
    const int64_t m = sparse::hd::model_select(scores + h * pages, n, nq, o.budget, P, o.sinks, o.recent, static_cast<int32_t*>(idx.data) + h * count);
    sparse::select_pages(cpu_scores + h * pages, n, nq, o, chosen, scratch);
    tokens.clear();
    sparse::pages_to_tokens(chosen, n, P, tokens);
    if (m != count || static_cast<int64_t>(tokens.size()) != count) {
      throw Napi::Error::New(env, "questDeviceModel: selected " + std::to_string(m) + " (model) and " + std::to_string(tokens.size()) + " (CPU) tokens, expected " + std::to_string(count));
    }
    std::copy(tokens.begin(), tokens.end(), static_cast<int32_t*>(cpu.data) + h * count);
  }
  return Napi::Number::New(env, static_cast<double>(count));
}

// questU8Model(header [nKvHeads, nKv, headDim, pageSize], k f32 [nKvHeads,
// nKv, headDim] (contiguous), kmin, kmax f32 [nKvHeads, pages, headDim]).
// Tests only: the device's U8 summaries of an int cache's dequantized keys
// (sparse/quest_u8_hd.h, as quest_summary_u8_kernel runs it), decoded to f32:
// completed pages from their codes, the partial page exact.
Napi::Value QuestU8Model(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 4) throw Napi::TypeError::New(env, "questU8Model: expected (header, k, kmin, kmax)");
  const std::vector<double> f = ModelHeader(info, 4, "questU8Model");
  const int64_t H = static_cast<int64_t>(f[0]), n = static_cast<int64_t>(f[1]), d = static_cast<int64_t>(f[2]), P = static_cast<int64_t>(f[3]);
  if (H < 1 || H > 4096 || n < 1 || n > (int64_t(1) << 24) || d < 1 || d > 4096 || P < 1 || P > 65536) {
    throw Napi::RangeError::New(env, "questU8Model: header: expected nKvHeads 1..4096, nKv 1..2^24, headDim 1..4096, pageSize 1..65536");
  }
  const int64_t pages = sparse::page_count(n, P);
  const TypedArrayView k = ValueTypedArray(info[1], "k", napi_float32_array, true);
  const TypedArrayView lo = ValueTypedArray(info[2], "kmin", napi_float32_array, true);
  const TypedArrayView hi = ValueTypedArray(info[3], "kmax", napi_float32_array, true);
  RefuseOverlap(env, {&lo, &hi}, {&k});
  if (k.length != H * n * d) throw Napi::RangeError::New(env, "k: expected " + std::to_string(H * n * d) + " elements, received " + std::to_string(k.length));
  if (lo.length != H * pages * d || hi.length != lo.length) throw Napi::RangeError::New(env, "kmin, kmax: expected " + std::to_string(H * pages * d) + " elements each");
  const float* kd = static_cast<const float*>(k.data);
  float* out_lo = static_cast<float*>(lo.data);
  float* out_hi = static_cast<float*>(hi.data);
  std::vector<float> l(static_cast<size_t>(d)), u(static_cast<size_t>(d));
  std::vector<uint8_t> cl(static_cast<size_t>(d)), cu(static_cast<size_t>(d));
  for (int64_t h = 0; h < H; ++h) {
    for (int64_t pg = 0; pg < pages; ++pg) {
      const int64_t r0 = pg * P, r1 = std::min(n, r0 + P);
      for (int64_t r = r0; r < r1; ++r) {
        for (int64_t c = 0; c < d; ++c) {
          const float x = kd[(h * n + r) * d + c];
          if (!std::isfinite(x)) throw Napi::RangeError::New(env, "k: expected finite values");
          sparse::hd::fold(x, &l[c], &u[c], r == r0);
        }
      }
      float* ol = out_lo + (h * pages + pg) * d;
      float* oh = out_hi + (h * pages + pg) * d;
      if (r1 - r0 < P) {
        std::copy(l.begin(), l.end(), ol);
        std::copy(u.begin(), u.end(), oh);
        continue;
      }
      float base = l[0], top = u[0];
      for (int64_t c = 1; c < d; ++c) {
        base = l[c] < base ? l[c] : base;
        top = top < u[c] ? u[c] : top;
      }
      const float step = sparse::hd::u8_step(base, top);
      for (int64_t c = 0; c < d; ++c) {
        sparse::hd::u8_codes(l[c], u[c], base, step, &cl[c], &cu[c]);
        ol[c] = sparse::hd::U8Load{cl.data(), base, step}(c);
        oh[c] = sparse::hd::U8Load{cu.data(), base, step}(c);
      }
    }
  }
  return env.Undefined();
}

}  // namespace

void RegisterSparseDeviceModel(Napi::Env env, Napi::Object exports) {
  exports.Set("questDeviceModel", Napi::Function::New(env, Guarded<QuestDeviceModel>, "questDeviceModel"));
  exports.Set("questU8Model", Napi::Function::New(env, Guarded<QuestU8Model>, "questU8Model"));
}

}  // namespace tp::binding
