// The stateless Quest form (lib/sparse/quest.ts): questSummarize and
// questSelect, positional (a Float64Array header, then the arrays). The TS
// layer validates first; every size and index is re-checked here and in
// native/sparse/quest.cpp before any buffer is read.
#include <cmath>
#include <string>

#include "../sparse/blocks.h"
#include "../sparse/quest.h"
#include "../sparse/tidal.h"
#include "bindings.h"
#include "napi_args.h"

namespace tp::binding {
namespace {

const double* Header(const Napi::CallbackInfo& info, size_t n, const char* fn) {
  const TypedArrayView h = ValueTypedArray(info[0], "header", napi_float64_array, true);
  if (h.length != static_cast<int64_t>(n)) throw Napi::RangeError::New(info.Env(), std::string(fn) + ": header: expected " + std::to_string(n) + " numbers");
  const double* f = static_cast<const double*>(h.data);
  for (size_t i = 0; i < n; ++i) {
    if (!(f[i] == std::floor(f[i]) && std::fabs(f[i]) < 9007199254740992.0)) {
      throw Napi::RangeError::New(info.Env(), std::string(fn) + ": header: expected integers");
    }
  }
  return f;
}

DType HeaderDtype(Napi::Env env, double code) {
  if (code != 0 && code != 1 && code != 2) throw Napi::RangeError::New(env, "dtype: expected 0 (f32), 1 (f16) or 2 (bf16)");
  return static_cast<DType>(static_cast<int>(code));
}

// questSummarize(header [nKvHeads, nKv, headDim, pageSize, dtype,
// kHeadStride, kRowStride], k, kmin, kmax)
Napi::Value QuestSummarize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 4) throw Napi::TypeError::New(env, "questSummarize: expected (header, k, kmin, kmax)");
  const double* f = Header(info, 7, "questSummarize");
  sparse::SummarizeParams p;
  p.n_kv_heads = static_cast<int64_t>(f[0]);
  p.n_kv = static_cast<int64_t>(f[1]);
  p.head_dim = static_cast<int64_t>(f[2]);
  p.page_size = static_cast<int64_t>(f[3]);
  p.dtype = HeaderDtype(env, f[4]);
  p.k_head_stride = static_cast<int64_t>(f[5]);
  p.k_row_stride = static_cast<int64_t>(f[6]);
  const TypedArrayView k = ValueTypedArray(info[1], "k", FloatArrayType(p.dtype), true);
  const TypedArrayView lo = ValueTypedArray(info[2], "kmin", FloatArrayType(p.dtype), true);
  const TypedArrayView hi = ValueTypedArray(info[3], "kmax", FloatArrayType(p.dtype), true);
  RefuseOverlap(env, {&lo, &hi}, {&k});
  if (SharesBuffer(lo, hi)) throw Napi::RangeError::New(env, "kmin, kmax: expected separate buffers");
  if (lo.length != hi.length) throw Napi::RangeError::New(env, "kmin, kmax: expected the same length");
  p.k = k.data;
  p.k_len = k.length;
  p.lo = lo.data;
  p.hi = hi.data;
  p.out_len = lo.length;
  const Status s = sparse::summarize(p);
  if (!s.is_ok()) ThrowStatus(env, s);
  return env.Undefined();
}

// questSelect(header [nHeads, nKvHeads, nQ, headDim, nKv, qHeadStride,
// qRowStride, dtype, budget, pageSize, sinks, recent, gqa], q, kmin, kmax,
// indices) -> tokens selected per KV head
Napi::Value QuestSelect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 5) throw Napi::TypeError::New(env, "questSelect: expected (header, q, kmin, kmax, indices)");
  const double* f = Header(info, 13, "questSelect");
  sparse::SelectParams p;
  p.n_heads = static_cast<int64_t>(f[0]);
  p.n_kv_heads = static_cast<int64_t>(f[1]);
  p.n_q = static_cast<int64_t>(f[2]);
  p.head_dim = static_cast<int64_t>(f[3]);
  p.n_kv = static_cast<int64_t>(f[4]);
  p.q_head_stride = static_cast<int64_t>(f[5]);
  p.q_row_stride = static_cast<int64_t>(f[6]);
  p.dtype = HeaderDtype(env, f[7]);
  p.opts.budget = static_cast<int64_t>(f[8]);
  p.opts.page_size = static_cast<int64_t>(f[9]);
  p.opts.sinks = static_cast<int64_t>(f[10]);
  p.opts.recent = static_cast<int64_t>(f[11]);
  p.opts.gqa = f[12] == 1 ? sparse::GqaCombine::Sum : f[12] == 0 ? sparse::GqaCombine::Max : static_cast<sparse::GqaCombine>(2);
  const TypedArrayView q = ValueTypedArray(info[1], "q", napi_float32_array, true);
  const TypedArrayView lo = ValueTypedArray(info[2], "summaries.kmin", FloatArrayType(p.dtype), true);
  const TypedArrayView hi = ValueTypedArray(info[3], "summaries.kmax", FloatArrayType(p.dtype), true);
  const TypedArrayView idx = ValueTypedArray(info[4], "indices", napi_int32_array, true);
  RefuseOverlap(env, {&idx}, {&q, &lo, &hi});
  if (lo.length != hi.length) throw Napi::RangeError::New(env, "summaries.kmin, summaries.kmax: expected the same length");
  p.q = static_cast<const float*>(q.data);
  p.q_len = q.length;
  p.lo = lo.data;
  p.hi = hi.data;
  p.sum_len = lo.length;
  p.indices = static_cast<int32_t*>(idx.data);
  p.indices_len = idx.length;
  int64_t n_sel = 0;
  const Status s = sparse::select(p, &n_sel);
  if (!s.is_ok()) ThrowStatus(env, s);
  return Napi::Number::New(env, static_cast<double>(n_sel));
}

// blockSummarize(header [nKvHeads, nKv, headDim, blockSize, dtype,
// kHeadStride, kRowStride], k, kmin, kmax, kmean)
Napi::Value BlockSummarize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 5) throw Napi::TypeError::New(env, "blockSummarize: expected (header, k, kmin, kmax, kmean)");
  const double* f = Header(info, 7, "blockSummarize");
  sparse::BlockSummarizeParams p;
  p.n_kv_heads = static_cast<int64_t>(f[0]);
  p.n_kv = static_cast<int64_t>(f[1]);
  p.head_dim = static_cast<int64_t>(f[2]);
  p.block_size = static_cast<int64_t>(f[3]);
  p.dtype = HeaderDtype(env, f[4]);
  p.k_head_stride = static_cast<int64_t>(f[5]);
  p.k_row_stride = static_cast<int64_t>(f[6]);
  const TypedArrayView k = ValueTypedArray(info[1], "k", FloatArrayType(p.dtype), true);
  const TypedArrayView lo = ValueTypedArray(info[2], "kmin", FloatArrayType(p.dtype), true);
  const TypedArrayView hi = ValueTypedArray(info[3], "kmax", FloatArrayType(p.dtype), true);
  const TypedArrayView mean = ValueTypedArray(info[4], "kmean", napi_float32_array, true);
  RefuseOverlap(env, {&lo, &hi, &mean}, {&k});
  if (SharesBuffer(lo, hi) || SharesBuffer(lo, mean) || SharesBuffer(hi, mean)) throw Napi::RangeError::New(env, "kmin, kmax, kmean: expected separate buffers");
  if (lo.length != hi.length || lo.length != mean.length) throw Napi::RangeError::New(env, "kmin, kmax, kmean: expected the same length");
  p.k = k.data;
  p.k_len = k.length;
  p.lo = lo.data;
  p.hi = hi.data;
  p.mean = static_cast<float*>(mean.data);
  p.out_len = lo.length;
  const Status s = sparse::block_summarize(p);
  if (!s.is_ok()) ThrowStatus(env, s);
  return env.Undefined();
}

// blockSelect(header [nHeads, nKvHeads, nQ, headDim, nKv, qHeadStride,
// qRowStride, dtype, budget, blockSize, sinks, recent, gqa, mix], q, kmin,
// kmax, kmean, indices) -> tokens selected per KV head
Napi::Value BlockSelect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 6) throw Napi::TypeError::New(env, "blockSelect: expected (header, q, kmin, kmax, kmean, indices)");
  const TypedArrayView hv = ValueTypedArray(info[0], "header", napi_float64_array, true);
  if (hv.length != 14) throw Napi::RangeError::New(env, "blockSelect: header: expected 14 numbers");
  const double* f = static_cast<const double*>(hv.data);
  for (int i = 0; i < 13; ++i) {
    if (!(f[i] == std::floor(f[i]) && std::fabs(f[i]) < 9007199254740992.0)) throw Napi::RangeError::New(env, "blockSelect: header: expected integers");
  }
  sparse::BlockSelectParams p;
  p.n_heads = static_cast<int64_t>(f[0]);
  p.n_kv_heads = static_cast<int64_t>(f[1]);
  p.n_q = static_cast<int64_t>(f[2]);
  p.head_dim = static_cast<int64_t>(f[3]);
  p.n_kv = static_cast<int64_t>(f[4]);
  p.q_head_stride = static_cast<int64_t>(f[5]);
  p.q_row_stride = static_cast<int64_t>(f[6]);
  p.dtype = HeaderDtype(env, f[7]);
  p.opts.budget = static_cast<int64_t>(f[8]);
  p.opts.block_size = static_cast<int64_t>(f[9]);
  p.opts.sinks = static_cast<int64_t>(f[10]);
  p.opts.recent = static_cast<int64_t>(f[11]);
  p.opts.gqa = f[12] == 1 ? sparse::GqaCombine::Sum : f[12] == 0 ? sparse::GqaCombine::Max : static_cast<sparse::GqaCombine>(2);
  p.opts.mix = static_cast<float>(f[13]);
  if (!(f[13] >= 0.0 && f[13] <= 1.0)) throw Napi::RangeError::New(env, "options.mix: expected a number from 0 to 1");
  const TypedArrayView q = ValueTypedArray(info[1], "q", napi_float32_array, true);
  const TypedArrayView lo = ValueTypedArray(info[2], "summaries.kmin", FloatArrayType(p.dtype), true);
  const TypedArrayView hi = ValueTypedArray(info[3], "summaries.kmax", FloatArrayType(p.dtype), true);
  const TypedArrayView mean = ValueTypedArray(info[4], "summaries.kmean", napi_float32_array, true);
  const TypedArrayView idx = ValueTypedArray(info[5], "indices", napi_int32_array, true);
  RefuseOverlap(env, {&idx}, {&q, &lo, &hi, &mean});
  if (lo.length != hi.length || lo.length != mean.length) throw Napi::RangeError::New(env, "summaries.kmin, summaries.kmax, summaries.kmean: expected the same length");
  p.q = static_cast<const float*>(q.data);
  p.q_len = q.length;
  p.lo = lo.data;
  p.hi = hi.data;
  p.mean = static_cast<const float*>(mean.data);
  p.sum_len = lo.length;
  p.indices = static_cast<int32_t*>(idx.data);
  p.indices_len = idx.length;
  int64_t n_sel = 0;
  const Status s = sparse::block_select(p, &n_sel);
  if (!s.is_ok()) ThrowStatus(env, s);
  return Napi::Number::New(env, static_cast<double>(n_sel));
}

// tidalSelect(header [nKvHeads, rows, nKv, nQ, budget, sinks, recent, gqa],
// weights, indices) -> tokens selected per KV head
Napi::Value TidalSelect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 3) throw Napi::TypeError::New(env, "tidalSelect: expected (header, weights, indices)");
  const double* f = Header(info, 8, "tidalSelect");
  sparse::TidalSelectParams p;
  p.n_kv_heads = static_cast<int64_t>(f[0]);
  p.rows = static_cast<int64_t>(f[1]);
  p.n_kv = static_cast<int64_t>(f[2]);
  p.n_q = static_cast<int64_t>(f[3]);
  p.opts.budget = static_cast<int64_t>(f[4]);
  p.opts.sinks = static_cast<int64_t>(f[5]);
  p.opts.recent = static_cast<int64_t>(f[6]);
  p.gqa = f[7] == 1 ? sparse::GqaCombine::Sum : f[7] == 0 ? sparse::GqaCombine::Max : static_cast<sparse::GqaCombine>(2);
  const TypedArrayView w = ValueTypedArray(info[1], "weights", napi_float32_array, true);
  const TypedArrayView idx = ValueTypedArray(info[2], "indices", napi_int32_array, true);
  RefuseOverlap(env, {&idx}, {&w});
  p.w = static_cast<const float*>(w.data);
  p.w_len = w.length;
  p.indices = static_cast<int32_t*>(idx.data);
  p.indices_len = idx.length;
  int64_t n_sel = 0;
  const Status s = sparse::tidal_select(p, &n_sel);
  if (!s.is_ok()) ThrowStatus(env, s);
  return Napi::Number::New(env, static_cast<double>(n_sel));
}

}  // namespace

void RegisterSparse(Napi::Env env, Napi::Object exports) {
  exports.Set("questSummarize", Napi::Function::New(env, Guarded<QuestSummarize>, "questSummarize"));
  exports.Set("questSelect", Napi::Function::New(env, Guarded<QuestSelect>, "questSelect"));
  exports.Set("blockSummarize", Napi::Function::New(env, Guarded<BlockSummarize>, "blockSummarize"));
  exports.Set("blockSelect", Napi::Function::New(env, Guarded<BlockSelect>, "blockSelect"));
  exports.Set("tidalSelect", Napi::Function::New(env, Guarded<TidalSelect>, "tidalSelect"));
}

}  // namespace tp::binding
