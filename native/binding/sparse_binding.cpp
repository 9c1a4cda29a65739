// The stateless sparse forms (lib/sparse/quest.ts, blocks.ts, tidal.ts):
// questSummarize, questSelect, blockSummarize, blockSelect, tidalSelect,
// positional (a Float64Array header, then the arrays). The TS layer
// validates first; every size and index is re-checked here and in
// native/sparse/*.cpp before any buffer is read.
//
// Two rules of their own (docs/guarantees.md):
// - the products of the header's dimensions that a kernel compares with an
//   array length, loops over or allocates are checked here: a product that
//   wraps in int64 would pass the kernels' length checks (a header of 2^52
//   KV heads over empty arrays wrote out of bounds);
// - a failed call leaves its outputs as they were: the kernels check the
//   data (finite keys, summaries, weights) head by head while they write,
//   so the written range is saved first and put back on failure.
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <string>
#include <vector>

#include "../core/checked_math.h"
#include "../sparse/blocks.h"
#include "../sparse/quest.h"
#include "../sparse/tidal.h"
#include "bindings.h"
#include "napi_args.h"

namespace tp::binding {
namespace {

// The header: exactly n numbers, the first `integers` of them integers
// (safe: |x| < 2^53), copied out before any other argument is read.
struct Header {
  TypedArrayView view;
  std::vector<double> f;
  int64_t operator[](size_t i) const { return static_cast<int64_t>(f[i]); }
};

Header ReadHeader(const Napi::CallbackInfo& info, size_t n, const char* fn, size_t integers) {
  Header h;
  h.view = ValueTypedArray(info[0], "header", napi_float64_array, true);
  if (h.view.length != static_cast<int64_t>(n)) {
    throw Napi::RangeError::New(info.Env(), std::string(fn) + ": header: expected " + std::to_string(n) + " numbers, received " + std::to_string(h.view.length));
  }
  const double* f = static_cast<const double*>(h.view.data);
  h.f.assign(f, f + n);
  for (size_t i = 0; i < integers; ++i) {
    if (!(h.f[i] == std::floor(h.f[i]) && std::fabs(h.f[i]) < 9007199254740992.0)) {
      throw Napi::RangeError::New(info.Env(), std::string(fn) + ": header[" + std::to_string(i) + "]: expected an integer, received " +
                                                  Napi::Number::New(info.Env(), h.f[i]).ToString().Utf8Value());
    }
  }
  return h;
}

DType HeaderDtype(Napi::Env env, double code) {
  if (code != 0 && code != 1 && code != 2) throw Napi::RangeError::New(env, "dtype: expected 0 (f32), 1 (f16) or 2 (bf16)");
  return static_cast<DType>(static_cast<int>(code));
}

sparse::GqaCombine HeaderGqa(double code) {
  // An unknown code reaches the kernel, whose option check names it.
  return code == 1 ? sparse::GqaCombine::Sum : code == 0 ? sparse::GqaCombine::Max : static_cast<sparse::GqaCombine>(2);
}

// The product of dims must stay at most kMaxDim (2^40): a kernel compares it
// with an array length, allocates it or loops over it. Negative dims are left
// to the kernel's own checks, which name them.
void CheckProduct(Napi::Env env, const char* what, std::initializer_list<int64_t> dims) {
  int64_t r = 1;
  for (int64_t x : dims) {
    if (x < 0) return;
  }
  for (int64_t x : dims) {
    r = checked_mul(r, x);
    if (r < 0 || r > kMaxDim) {
      throw Napi::RangeError::New(env, std::string(what) + ": expected at most 2^40 elements, received a larger product of the header's dimensions");
    }
  }
}

// Pages (blocks) of n tokens, or 0 where the kernel will refuse the sizes.
int64_t Pages(int64_t n, int64_t page_size) { return n >= 0 && page_size >= 1 && page_size <= 65536 ? sparse::page_count(n, page_size) : 0; }

// Saves the first `bytes` of each output, to put them back when the kernel
// fails (or throws) after writing part of them.
class RestoreOnFailure {
 public:
  void Save(void* data, size_t bytes) {
    if (data == nullptr || bytes == 0) return;
    saved_.push_back({data, std::vector<char>(static_cast<char*>(data), static_cast<char*>(data) + bytes)});
  }
  void Keep() { saved_.clear(); }
  void Restore() {
    for (auto& s : saved_) std::memcpy(s.data, s.bytes.data(), s.bytes.size());
    saved_.clear();
  }
  ~RestoreOnFailure() { Restore(); }

 private:
  struct Saved {
    void* data;
    std::vector<char> bytes;
  };
  std::vector<Saved> saved_;
};

// Runs the kernel; on failure puts the outputs back and throws its status.
template <typename Kernel>
void RunKernel(Napi::Env env, RestoreOnFailure& restore, Kernel&& kernel) {
  const Status s = kernel();
  if (!s.is_ok()) {
    restore.Restore();
    ThrowStatus(env, s);
  }
  restore.Keep();
}

// The k of a summarize call: [nKvHeads, nKv, headDim] header fields 0-2, page
// (block) size 3, dtype 4, strides 5-6.
template <typename Params>
void ReadSummarizeHeader(Napi::Env env, const Header& f, Params& p, int64_t* page_size) {
  p.n_kv_heads = f[0];
  p.n_kv = f[1];
  p.head_dim = f[2];
  *page_size = f[3];
  p.dtype = HeaderDtype(env, f.f[4]);
  p.k_head_stride = f[5];
  p.k_row_stride = f[6];
  CheckProduct(env, "k.shape", {p.n_kv_heads, p.n_kv, p.head_dim});
  CheckProduct(env, "summaries", {p.n_kv_heads, Pages(p.n_kv, *page_size), p.head_dim});
}

// The q and sizes of a select call: header fields 0-7 [nHeads, nKvHeads,
// nQ, headDim, nKv, qHeadStride, qRowStride, dtype].
template <typename Params>
void ReadSelectHeader(Napi::Env env, const Header& f, Params& p, int64_t page_size) {
  p.n_heads = f[0];
  p.n_kv_heads = f[1];
  p.n_q = f[2];
  p.head_dim = f[3];
  p.n_kv = f[4];
  p.q_head_stride = f[5];
  p.q_row_stride = f[6];
  p.dtype = HeaderDtype(env, f.f[7]);
  CheckProduct(env, "q.shape", {p.n_heads, p.n_q, p.head_dim});
  CheckProduct(env, "summaries", {p.n_kv_heads, Pages(p.n_kv, page_size), p.head_dim});
  CheckProduct(env, "indices", {p.n_kv_heads, p.n_kv});
}

// questSummarize(header [nKvHeads, nKv, headDim, pageSize, dtype,
// kHeadStride, kRowStride], k, kmin, kmax)
Napi::Value QuestSummarize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 4) throw Napi::TypeError::New(env, "questSummarize: expected (header, k, kmin, kmax)");
  const Header f = ReadHeader(info, 7, "questSummarize", 7);
  sparse::SummarizeParams p;
  ReadSummarizeHeader(env, f, p, &p.page_size);
  const TypedArrayView k = ValueTypedArray(info[1], "k", FloatArrayType(p.dtype), true);
  const TypedArrayView lo = ValueTypedArray(info[2], "kmin", FloatArrayType(p.dtype), true);
  const TypedArrayView hi = ValueTypedArray(info[3], "kmax", FloatArrayType(p.dtype), true);
  RefuseOverlap(env, {&lo, &hi}, {&k, &f.view});
  if (lo.length != hi.length) throw Napi::RangeError::New(env, "kmin, kmax: expected the same length");
  p.k = k.data;
  p.k_len = k.length;
  p.lo = lo.data;
  p.hi = hi.data;
  p.out_len = lo.length;
  RestoreOnFailure restore;
  restore.Save(lo.data, lo.bytes());
  restore.Save(hi.data, hi.bytes());
  RunKernel(env, restore, [&] { return sparse::summarize(p); });
  return env.Undefined();
}

// questSelect(header [nHeads, nKvHeads, nQ, headDim, nKv, qHeadStride,
// qRowStride, dtype, budget, pageSize, sinks, recent, gqa], q, kmin, kmax,
// indices) -> tokens selected per KV head
Napi::Value QuestSelect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 5) throw Napi::TypeError::New(env, "questSelect: expected (header, q, kmin, kmax, indices)");
  const Header f = ReadHeader(info, 13, "questSelect", 13);
  sparse::SelectParams p;
  p.opts.budget = f[8];
  p.opts.page_size = f[9];
  p.opts.sinks = f[10];
  p.opts.recent = f[11];
  p.opts.gqa = HeaderGqa(f.f[12]);
  ReadSelectHeader(env, f, p, p.opts.page_size);
  const TypedArrayView q = ValueTypedArray(info[1], "q", napi_float32_array, true);
  const TypedArrayView lo = ValueTypedArray(info[2], "summaries.kmin", FloatArrayType(p.dtype), true);
  const TypedArrayView hi = ValueTypedArray(info[3], "summaries.kmax", FloatArrayType(p.dtype), true);
  const TypedArrayView idx = ValueTypedArray(info[4], "indices", napi_int32_array, true);
  RefuseOverlap(env, {&idx}, {&q, &lo, &hi, &f.view});
  if (lo.length != hi.length) throw Napi::RangeError::New(env, "summaries.kmin, summaries.kmax: expected the same length");
  p.q = static_cast<const float*>(q.data);
  p.q_len = q.length;
  p.lo = lo.data;
  p.hi = hi.data;
  p.sum_len = lo.length;
  p.indices = static_cast<int32_t*>(idx.data);
  p.indices_len = idx.length;
  // select() checks every summary before it writes: nothing to put back.
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
  const Header f = ReadHeader(info, 7, "blockSummarize", 7);
  sparse::BlockSummarizeParams p;
  ReadSummarizeHeader(env, f, p, &p.block_size);
  const TypedArrayView k = ValueTypedArray(info[1], "k", FloatArrayType(p.dtype), true);
  const TypedArrayView lo = ValueTypedArray(info[2], "kmin", FloatArrayType(p.dtype), true);
  const TypedArrayView hi = ValueTypedArray(info[3], "kmax", FloatArrayType(p.dtype), true);
  const TypedArrayView mean = ValueTypedArray(info[4], "kmean", napi_float32_array, true);
  RefuseOverlap(env, {&lo, &hi, &mean}, {&k, &f.view});
  if (lo.length != hi.length || lo.length != mean.length) throw Napi::RangeError::New(env, "kmin, kmax, kmean: expected the same length");
  p.k = k.data;
  p.k_len = k.length;
  p.lo = lo.data;
  p.hi = hi.data;
  p.mean = static_cast<float*>(mean.data);
  p.out_len = lo.length;
  RestoreOnFailure restore;
  restore.Save(lo.data, lo.bytes());
  restore.Save(hi.data, hi.bytes());
  restore.Save(mean.data, mean.bytes());
  RunKernel(env, restore, [&] { return sparse::block_summarize(p); });
  return env.Undefined();
}

// The first `count` rows of indices [nKvHeads, count], what a selection
// writes (0 where the kernel refuses the sizes before writing).
size_t IndexBytes(const TypedArrayView& idx, int64_t n_kv_heads, int64_t count) {
  const int64_t n = checked_mul(n_kv_heads, count);
  return n > 0 && n <= idx.length ? static_cast<size_t>(n) * sizeof(int32_t) : 0;
}

// blockSelect(header [nHeads, nKvHeads, nQ, headDim, nKv, qHeadStride,
// qRowStride, dtype, budget, blockSize, sinks, recent, gqa, mix], q, kmin,
// kmax, kmean, indices) -> tokens selected per KV head
Napi::Value BlockSelect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 6) throw Napi::TypeError::New(env, "blockSelect: expected (header, q, kmin, kmax, kmean, indices)");
  const Header f = ReadHeader(info, 14, "blockSelect", 13);
  sparse::BlockSelectParams p;
  p.opts.budget = f[8];
  p.opts.block_size = f[9];
  p.opts.sinks = f[10];
  p.opts.recent = f[11];
  p.opts.gqa = HeaderGqa(f.f[12]);
  if (!(f.f[13] >= 0.0 && f.f[13] <= 1.0)) throw Napi::RangeError::New(env, "options.mix: expected a number from 0 to 1");
  p.opts.mix = static_cast<float>(f.f[13]);
  ReadSelectHeader(env, f, p, p.opts.block_size);
  const TypedArrayView q = ValueTypedArray(info[1], "q", napi_float32_array, true);
  const TypedArrayView lo = ValueTypedArray(info[2], "summaries.kmin", FloatArrayType(p.dtype), true);
  const TypedArrayView hi = ValueTypedArray(info[3], "summaries.kmax", FloatArrayType(p.dtype), true);
  const TypedArrayView mean = ValueTypedArray(info[4], "summaries.kmean", napi_float32_array, true);
  const TypedArrayView idx = ValueTypedArray(info[5], "indices", napi_int32_array, true);
  RefuseOverlap(env, {&idx}, {&q, &lo, &hi, &mean, &f.view});
  if (lo.length != hi.length || lo.length != mean.length) throw Napi::RangeError::New(env, "summaries.kmin, summaries.kmax, summaries.kmean: expected the same length");
  p.q = static_cast<const float*>(q.data);
  p.q_len = q.length;
  p.lo = lo.data;
  p.hi = hi.data;
  p.mean = static_cast<const float*>(mean.data);
  p.sum_len = lo.length;
  p.indices = static_cast<int32_t*>(idx.data);
  p.indices_len = idx.length;
  RestoreOnFailure restore;
  if (sparse::check_block_options(p.opts, "").is_ok()) {
    restore.Save(idx.data, IndexBytes(idx, p.n_kv_heads, sparse::selected_count(p.n_kv, p.n_q, sparse::block_pages(p.opts))));
  }
  int64_t n_sel = 0;
  RunKernel(env, restore, [&] { return sparse::block_select(p, &n_sel); });
  return Napi::Number::New(env, static_cast<double>(n_sel));
}

// tidalSelect(header [nKvHeads, rows, nKv, nQ, budget, sinks, recent, gqa],
// weights, indices) -> tokens selected per KV head
Napi::Value TidalSelect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 3) throw Napi::TypeError::New(env, "tidalSelect: expected (header, weights, indices)");
  const Header f = ReadHeader(info, 8, "tidalSelect", 8);
  sparse::TidalSelectParams p;
  p.n_kv_heads = f[0];
  p.rows = f[1];
  p.n_kv = f[2];
  p.n_q = f[3];
  p.opts.budget = f[4];
  p.opts.sinks = f[5];
  p.opts.recent = f[6];
  p.gqa = HeaderGqa(f.f[7]);
  CheckProduct(env, "weights", {p.n_kv_heads, p.rows, p.n_kv});
  CheckProduct(env, "indices", {p.n_kv_heads, p.n_kv});
  const TypedArrayView w = ValueTypedArray(info[1], "weights", napi_float32_array, true);
  const TypedArrayView idx = ValueTypedArray(info[2], "indices", napi_int32_array, true);
  RefuseOverlap(env, {&idx}, {&w, &f.view});
  p.w = static_cast<const float*>(w.data);
  p.w_len = w.length;
  p.indices = static_cast<int32_t*>(idx.data);
  p.indices_len = idx.length;
  RestoreOnFailure restore;
  if (sparse::check_token_options(p.opts, "").is_ok()) {
    restore.Save(idx.data, IndexBytes(idx, p.n_kv_heads, sparse::token_selected_count(p.n_kv, p.n_q, p.opts)));
  }
  int64_t n_sel = 0;
  RunKernel(env, restore, [&] { return sparse::tidal_select(p, &n_sel); });
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
