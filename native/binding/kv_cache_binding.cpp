// KvCacheHandle: the native KvCache as a JS object (lib/kv/cache.ts wraps it).
// Every method takes one flat params object (lib/native.ts NativeKvCache*).
// A cache runs one operation at a time: a call while an async operation is
// in flight throws an Error with code ERR_CACHE_BUSY (the TS layer queues
// async calls, so users only see this when they mix sync calls in).
#include <algorithm>
#include <atomic>
#include <cmath>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "../core/cpu_features.h"
#include "../cuda/cuda_kv_cache.h"
#include "../cuda/cuda_probe.h"
#include "../kv/kv_cache.h"
#include "async_work.h"
#include "bindings.h"
#include "handles.h"
#include "kv_args.h"
#include "napi_args.h"

namespace tp::binding {
namespace {

using kv::AppendInput;
using kv::AttendInput;
using kv::CacheConfig;
using kv::CompressReport;
using kv::CompressRequest;
using kv::KvCache;
using kv::KvCacheApi;

double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// The params of each method, read in one phase (SnapshotParams) before any
// pointer is taken. Async calls pass a Staging (async_work.h): inputs are
// copied, outputs computed into copies written back when the call settles.
// Sync calls (stage == nullptr) read and write the caller's arrays in place.
constexpr auto kAppendFields = {"layer", "n", "kDtype", "vDtype", "kStrides", "vStrides", "k", "v", "positions", "compress", "compressAt"};
constexpr auto kAttendFields = {"layer", "nHeads", "nQ", "qStrides", "scale", "softcap", "causal",
                                "accumulateMass", "remember", "q", "out", "lse", "sparse", "selected", "selectedCount", "treeParents"};
constexpr auto kCommitFields = {"layers", "treeSize", "accepted"};
constexpr auto kExportFields = {"layer", "dtype", "k", "v", "positions", "counts"};
constexpr auto kCompressFields = {"policy", "sinks", "recent", "window", "kernel", "pooling", "epsilon", "useCovariance",
                                  "useVnorm", "reduction", "seed", "allocation", "keep", "ratio", "beta", "pyramidWindow",
                                  "alpha", "razorSinks", "razorRecent", "merge", "mergeThreshold", "retrieval", "layers",
                                  "drafts"};

Napi::Object Params(const Napi::CallbackInfo& info, std::initializer_list<const char*> fields) {
  return SnapshotParams(info, fields);
}

template <typename T>
T* Pick(Staging* stage, const TypedArrayView& v, bool output) {
  if (!v.present) return nullptr;
  if (stage == nullptr) return static_cast<T*>(v.data);
  return static_cast<T*>(output ? stage->Out(v) : const_cast<void*>(stage->In(v)));
}

struct ParsedAppend {
  int64_t layer = 0;
  AppendInput in;
  std::unique_ptr<Staging> stage;
  bool has_compress = false;  // autoCompress: in.compress points here when run
  CompressRequest compress;
};

struct ParsedAttend {
  int64_t layer = 0;
  AttendInput in;
  std::unique_ptr<Staging> stage;
};

CompressRequest ParseCompress(Napi::Object o, Staging* stage);

ParsedAppend ParseAppend(Napi::Object o, bool async) {
  ParsedAppend p;
  if (async) p.stage = std::make_unique<Staging>();
  // Optional autoCompress request, { compress, compressAt }: its fields are
  // snapshotted and read before any pointer is taken.
  Napi::Value compress = o.Get("compress");
  if (!compress.IsUndefined()) {
    if (!compress.IsObject()) throw Napi::TypeError::New(o.Env(), "compress: expected an object, received " + describe(compress));
    p.compress = ParseCompress(Snapshot(compress.As<Napi::Object>(), kCompressFields), p.stage.get());
    p.in.compress_at = GetInt(o, "compressAt");
    p.has_compress = true;
  }
  p.layer = GetInt(o, "layer");
  p.in.n = GetInt(o, "n");
  p.in.k_dtype = ParseDtype(o, "kDtype");
  p.in.v_dtype = ParseDtype(o, "vDtype");
  ParseStrides(o, "kStrides", &p.in.k_head_stride, &p.in.k_row_stride);
  ParseStrides(o, "vStrides", &p.in.v_head_stride, &p.in.v_row_stride);
  const TypedArrayView k = GetTypedArray(o, "k", FloatArrayType(p.in.k_dtype), true);
  const TypedArrayView v = GetTypedArray(o, "v", FloatArrayType(p.in.v_dtype), true);
  const TypedArrayView pos = GetTypedArray(o, "positions", napi_int32_array, false);
  p.in.k = Pick<const void>(p.stage.get(), k, false); p.in.k_len = k.length;
  p.in.v = Pick<const void>(p.stage.get(), v, false); p.in.v_len = v.length;
  if (pos.present) {
    p.in.positions = Pick<const int32_t>(p.stage.get(), pos, false);
    p.in.positions_len = pos.length;
  }
  return p;
}

// appendRows(layer, n, k, kDtype, kHeadStride, kRowStride, v, vDtype,
// vHeadStride, vRowStride, positions?): the sync append of the hot decode
// path, positional. Every argument is already a value, so no getter or
// Proxy trap can run while it is read (the params-object form has to
// snapshot the object first, which cost several microseconds per call).
// Reads the caller's arrays in place; the same checks as ParseAppend.
DType ArgDtype(Napi::Value v, const char* name) {
  const int64_t code = ToInt(v, name);
  if (code < 0 || code > 2) {
    throw Napi::RangeError::New(v.Env(), std::string(name) + ": expected 0 (f32), 1 (f16) or 2 (bf16), received " + std::to_string(code));
  }
  return static_cast<DType>(code);
}

ParsedAppend ParseAppendArgs(const Napi::CallbackInfo& info) {
  if (info.Length() < 10 || info.Length() > 11) {
    throw Napi::TypeError::New(info.Env(), "appendRows: expected (layer, n, k, kDtype, kHeadStride, kRowStride, v, vDtype, vHeadStride, vRowStride, positions?), received " +
                                               std::to_string(info.Length()) + " arguments");
  }
  ParsedAppend p;
  p.layer = ToInt(info[0], "layer");
  p.in.n = ToInt(info[1], "n");
  p.in.k_dtype = ArgDtype(info[3], "kDtype");
  p.in.k_head_stride = ToInt(info[4], "kStrides");
  p.in.k_row_stride = ToInt(info[5], "kStrides");
  p.in.v_dtype = ArgDtype(info[7], "vDtype");
  p.in.v_head_stride = ToInt(info[8], "vStrides");
  p.in.v_row_stride = ToInt(info[9], "vStrides");
  const TypedArrayView k = ValueTypedArray(info[2], "k", FloatArrayType(p.in.k_dtype), true);
  const TypedArrayView v = ValueTypedArray(info[6], "v", FloatArrayType(p.in.v_dtype), true);
  const TypedArrayView pos = ValueTypedArray(info.Length() > 10 ? info[10] : info.Env().Undefined(), "positions", napi_int32_array, false);
  p.in.k = k.data; p.in.k_len = k.length;
  p.in.v = v.data; p.in.v_len = v.length;
  if (pos.present) {
    p.in.positions = static_cast<const int32_t*>(pos.data);
    p.in.positions_len = pos.length;
  }
  return p;
}

Status RunAppend(KvCacheApi* c, const ParsedAppend& p) {
  AppendInput in = p.in;
  in.compress = p.has_compress ? &p.compress : nullptr;
  return c->append(p.layer, in);
}

ParsedAttend ParseAttend(Napi::Object o, bool async) {
  Napi::Env env = o.Env();
  ParsedAttend p;
  if (async) p.stage = std::make_unique<Staging>();
  p.layer = GetInt(o, "layer");
  p.in.n_heads = GetInt(o, "nHeads");
  p.in.n_q = GetInt(o, "nQ");
  ParseStrides(o, "qStrides", &p.in.q_head_stride, &p.in.q_row_stride);
  p.in.scale = static_cast<float>(GetNumber(o, "scale"));
  p.in.softcap = static_cast<float>(GetNumber(o, "softcap"));
  if (!(p.in.scale >= 0.0f) || !(p.in.softcap >= 0.0f)) throw Napi::RangeError::New(env, "scale, softcap: expected non-negative numbers");
  p.in.causal = GetBool(o, "causal");
  p.in.accumulate_mass = GetBool(o, "accumulateMass");
  p.in.remember = GetBool(o, "remember");
  const TypedArrayView q = GetTypedArray(o, "q", napi_float32_array, true);
  const TypedArrayView out = GetTypedArray(o, "out", napi_float32_array, true);
  const TypedArrayView lse = GetTypedArray(o, "lse", napi_float32_array, false);
  // sparse: Float64Array [method (1 quest, 2 tidal, 3 blocks), budget,
  // pageSize (quest) | blockSize (blocks), sinks, recent, gqa (0 max, 1 sum),
  // selectedStride (the row length of `selected`), tidal role (0 full, 1
  // select, 2 over the kept positions), mix (blocks, a number in [0, 1])].
  const TypedArrayView sparse_args = GetTypedArray(o, "sparse", napi_float64_array, false);
  const TypedArrayView selected = GetTypedArray(o, "selected", napi_int32_array, false);
  const TypedArrayView selected_count = GetTypedArray(o, "selectedCount", napi_int32_array, false);
  const TypedArrayView tree = GetTypedArray(o, "treeParents", napi_int32_array, false);
  RefuseOverlap(env, {&out, &lse, &selected, &selected_count}, {&q, &sparse_args, &tree});
  if (sparse_args.present) {
    if (sparse_args.length != 9) throw Napi::RangeError::New(env, "sparse: expected 9 numbers, received " + std::to_string(sparse_args.length));
    const double* f = static_cast<const double*>(sparse_args.data);
    for (int i = 0; i < 8; ++i) {
      if (!(f[i] == std::floor(f[i]) && std::fabs(f[i]) < 9007199254740992.0)) throw Napi::RangeError::New(env, "sparse: expected integers");
    }
    if (!(f[8] >= 0.0 && f[8] <= 1.0)) throw Napi::RangeError::New(env, "sparse: mix: expected a number from 0 to 1");
    p.in.sparse_method = static_cast<int>(f[0]);
    const sparse::GqaCombine gqa = f[5] == 1 ? sparse::GqaCombine::Sum : f[5] == 0 ? sparse::GqaCombine::Max : static_cast<sparse::GqaCombine>(2);
    p.in.quest.budget = p.in.blocks.budget = p.in.tidal.budget = static_cast<int64_t>(f[1]);
    p.in.quest.page_size = p.in.blocks.block_size = static_cast<int64_t>(f[2]);
    p.in.quest.sinks = p.in.blocks.sinks = p.in.tidal.sinks = static_cast<int64_t>(f[3]);
    p.in.quest.recent = p.in.blocks.recent = p.in.tidal.recent = static_cast<int64_t>(f[4]);
    p.in.quest.gqa = p.in.blocks.gqa = gqa;
    p.in.selected_stride = static_cast<int64_t>(f[6]);
    // A row of `selected` fits in it: nKvHeads * stride cannot wrap in the
    // cache's length check (a stride of 2^52 with 4096 KV heads passed it).
    if (selected.present && (p.in.selected_stride < 0 || p.in.selected_stride > selected.length)) {
      throw Napi::RangeError::New(env, "sparse: selectedStride: expected 0 to selected.length = " + std::to_string(selected.length) + ", received " +
                                           std::to_string(p.in.selected_stride));
    }
    p.in.tidal_role = static_cast<int>(f[7]);
    p.in.blocks.mix = static_cast<float>(f[8]);
  }
  if (selected.present) {
    p.in.selected = Pick<int32_t>(p.stage.get(), selected, true);
    p.in.selected_len = selected.length;
  }
  if (selected_count.present) {
    p.in.selected_count = Pick<int32_t>(p.stage.get(), selected_count, true);
    p.in.selected_count_len = selected_count.length;
  }
  if (tree.present) {
    p.in.tree_parents = Pick<const int32_t>(p.stage.get(), tree, false);
    p.in.tree_len = tree.length;
  }
  p.in.q = Pick<const float>(p.stage.get(), q, false);
  p.in.q_len = q.length;
  p.in.out = Pick<float>(p.stage.get(), out, true);
  p.in.out_len = out.length;
  if (lse.present) {
    p.in.lse = Pick<float>(p.stage.get(), lse, true);
    p.in.lse_len = lse.length;
  }
  return p;
}

struct ParsedExport {
  int64_t layer = 0;
  DType dtype = DType::F32;
  void* k = nullptr;
  void* v = nullptr;
  int64_t kv_len = 0;
  int32_t* positions = nullptr;
  int64_t pos_len = 0;
  float* counts = nullptr;
  int64_t counts_len = 0;
  std::unique_ptr<Staging> stage;
};

ParsedExport ParseExport(Napi::Object o, bool async) {
  Napi::Env env = o.Env();
  ParsedExport p;
  if (async) p.stage = std::make_unique<Staging>();
  p.layer = GetInt(o, "layer");
  p.dtype = ParseDtype(o, "dtype");
  const TypedArrayView k = GetTypedArray(o, "k", FloatArrayType(p.dtype), true);
  const TypedArrayView v = GetTypedArray(o, "v", FloatArrayType(p.dtype), true);
  const TypedArrayView pos = GetTypedArray(o, "positions", napi_int32_array, true);
  const TypedArrayView counts = GetTypedArray(o, "counts", napi_float32_array, false);
  RefuseOverlap(env, {&k, &v, &pos, &counts}, {});
  if (v.length != k.length) throw Napi::RangeError::New(env, "v: expected as many elements as k");
  p.k = Pick<void>(p.stage.get(), k, true);
  p.v = Pick<void>(p.stage.get(), v, true);
  p.kv_len = k.length;
  p.positions = Pick<int32_t>(p.stage.get(), pos, true);
  p.pos_len = pos.length;
  if (counts.present) {
    p.counts = Pick<float>(p.stage.get(), counts, true);
    p.counts_len = counts.length;
  }
  return p;
}

Status RunExport(KvCacheApi* c, const ParsedExport& p) {
  return c->export_layer(p.layer, p.dtype, p.k, p.v, p.kv_len, p.positions, p.pos_len, p.counts, p.counts_len);
}

// stage: where an async call copies the draft query arrays (null: sync).
CompressRequest ParseCompress(Napi::Object o, Staging* stage) {
  Napi::Env env = o.Env();
  CompressRequest r;
  Napi::Value name = o.Get("policy");
  if (!name.IsString()) throw Napi::TypeError::New(env, "policy: expected a string, received " + describe(name));
  r.scorer = name.As<Napi::String>().Utf8Value();
  ParsePolicyOptions(o, &r.options);
  const int64_t alloc = GetInt(o, "allocation");
  if (alloc < 0 || alloc > 3) throw Napi::RangeError::New(env, "allocation: expected 0 to 3, received " + std::to_string(alloc));
  r.allocation = static_cast<kv::Allocation>(alloc);
  r.keep = GetInt(o, "keep");
  r.ratio = GetNumber(o, "ratio");
  r.beta = GetNumber(o, "beta");
  r.pyramid_window = GetInt(o, "pyramidWindow");
  r.alpha = GetNumber(o, "alpha");
  r.razor_sinks = GetInt(o, "razorSinks");
  r.razor_recent = GetInt(o, "razorRecent");
  r.merge = GetBool(o, "merge");
  r.merge_threshold = GetNumber(o, "mergeThreshold");
  const TypedArrayView retrieval = GetTypedArray(o, "retrieval", napi_uint8_array, false);
  if (retrieval.present) {
    const auto* b = static_cast<const uint8_t*>(retrieval.data);
    r.retrieval.assign(b, b + retrieval.length);
  }
  const TypedArrayView layers = GetTypedArray(o, "layers", napi_int32_array, false);
  if (layers.present) {
    const auto* l = static_cast<const int32_t*>(layers.data);
    r.layers.assign(l, l + layers.length);
  }
  Napi::Value drafts = o.Get("drafts");
  if (!drafts.IsUndefined()) {
    if (!drafts.IsArray()) throw Napi::TypeError::New(env, "drafts: expected an array, received " + describe(drafts));
    Napi::Array arr = drafts.As<Napi::Array>();
    r.drafts.resize(arr.Length());
    for (uint32_t i = 0; i < arr.Length(); ++i) {
      Napi::Value e = arr.Get(i);
      if (e.IsUndefined() || e.IsNull()) continue;
      if (!e.IsObject()) throw Napi::TypeError::New(env, "drafts[i]: expected an object or undefined");
      Napi::Object d = e.As<Napi::Object>();
      CompressRequest::Draft& dr = r.drafts[i];
      dr.n_heads = GetInt(d, "nHeads");
      dr.n_draft = GetInt(d, "nDraft");
      ParseStrides(d, "strides", &dr.head_stride, &dr.row_stride);
      const TypedArrayView q = GetTypedArray(d, "q", napi_float32_array, true);
      dr.q = Pick<const float>(stage, q, false);
      dr.len = q.length;
    }
  }
  if (r.pyramid_window < 0 || r.razor_sinks < 0 || r.razor_recent < 0) throw Napi::RangeError::New(env, "pyramidWindow, razorSinks, razorRecent: expected non-negative integers");
  return r;
}

Napi::Object ReportObject(Napi::Env env, const CompressReport& rep, double ms) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("tokensBefore", Napi::Number::New(env, static_cast<double>(rep.tokens_before)));
  o.Set("tokensAfter", Napi::Number::New(env, static_cast<double>(rep.tokens_after)));
  o.Set("bytesBefore", Napi::Number::New(env, static_cast<double>(rep.bytes_before)));
  o.Set("bytesAfter", Napi::Number::New(env, static_cast<double>(rep.bytes_after)));
  o.Set("ms", Napi::Number::New(env, ms));
  o.Set("planMs", Napi::Number::New(env, rep.plan_ms));
  o.Set("applyMs", Napi::Number::New(env, rep.apply_ms));
  o.Set("releaseMs", Napi::Number::New(env, rep.release_ms));
  o.Set("bytesMoved", Napi::Number::New(env, static_cast<double>(rep.bytes_moved)));
  return o;
}

class KvCacheHandle : public Napi::ObjectWrap<KvCacheHandle> {
 public:
  static constexpr const napi_type_tag& kTag = kKvCacheTag;
  static constexpr const char* kClassName = "KvCacheHandle";
  // Methods go through Method<> (handles.h): `this` is checked by its tag.
  static Napi::Function Define(Napi::Env env) {
    using H = KvCacheHandle;
    Napi::Function ctor = DefineClass(env, "KvCacheHandle", {});
    AddMethods(env, ctor,
               {{"append", Method<H, &H::Append>},
                {"appendRows", Method<H, &H::AppendRows>},
                {"appendAsync", Method<H, &H::AppendAsync>},
                {"attend", Method<H, &H::Attend>},
                {"attendAsync", Method<H, &H::AttendAsync>},
                {"compress", Method<H, &H::Compress>},
                {"compressAsync", Method<H, &H::CompressAsync>},
                {"exportLayer", Method<H, &H::Export>},
                {"exportLayerAsync", Method<H, &H::ExportAsync>},
                {"lengths", Method<H, &H::Lengths>},
                {"maxLength", Method<H, &H::MaxLength>},
                {"memoryBytes", Method<H, &H::MemoryBytes>},
                {"clear", Method<H, &H::Clear>},
                {"questSummaries", Method<H, &H::QuestSummaries>},
                {"beginStep", Method<H, &H::BeginStep>},
                {"commitTree", Method<H, &H::CommitTree>},
                {"device", Method<H, &H::Device>}});
    return ctor;
  }

  explicit KvCacheHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<KvCacheHandle>(info) {
    GuardAlloc(info.Env(), [&] { Init(info); });
    TagHandle(info.This(), kTag);
  }

 private:
  void Init(const Napi::CallbackInfo& info) {
    Napi::Object o = SnapshotParams(info, {"nLayers", "nKvHeads", "headDim", "capacity", "dtype", "groupSize", "residual",
                                           "window", "device", "reserve", "speculative"});
    CacheConfig cfg;
    cfg.n_layers = GetInt(o, "nLayers");
    cfg.n_kv_heads = GetInt(o, "nKvHeads");
    cfg.head_dim = GetInt(o, "headDim");
    cfg.capacity = GetInt(o, "capacity");
    const int64_t type = GetInt(o, "dtype");
    if (type < 0 || type > 4) throw Napi::RangeError::New(info.Env(), "dtype: expected 0 to 4, received " + std::to_string(type));
    cfg.type = static_cast<kv::CacheType>(type);
    cfg.group = GetInt(o, "groupSize");
    cfg.residual = GetInt(o, "residual");
    cfg.window = GetInt(o, "window");
    cfg.reserve = o.Get("reserve").IsUndefined() ? 0 : GetInt(o, "reserve");
    cfg.speculative = o.Get("speculative").IsUndefined() ? 0 : GetInt(o, "speculative");
    // device: 0 = cpu, 1 = cuda when a device is present, else the CPU cache
    // (the same results, silently; device() tells which one runs).
    const int64_t device = o.Get("device").IsUndefined() ? 0 : GetInt(o, "device");
    if (device < 0 || device > 1) throw Napi::RangeError::New(info.Env(), "device: expected 0 (cpu) or 1 (cuda), received " + std::to_string(device));
    KvCacheApi* api = nullptr;
    Status s = Status::ok();
    const CudaStatus cs = cuda_status();
    if (device == 1) {  // the same answer with or without a device
      const Status ok = cuda::check_device_kv_config(cfg);
      if (!ok.is_ok()) ThrowStatus(info.Env(), ok);
    }
    if (device == 1 && cs.compiled && cs.device_count > 0) {
      s = cuda::create_device_kv_cache(cfg, &api);
    } else {
      KvCache* cache = nullptr;
      s = KvCache::create(cfg, &cache);
      api = cache;
    }
    if (!s.is_ok()) ThrowStatus(info.Env(), s);
    cache_.reset(api);
  }

 public:

  // Marks the cache busy for the lifetime of the guard (sync calls).
  class Guard {
   public:
    Guard(KvCacheHandle* h, Napi::Env env) : h_(h) { h->Acquire(env); }
    ~Guard() { h_->busy_.store(false); }
   private:
    KvCacheHandle* h_;
  };

  void Acquire(Napi::Env env) {
    bool expected = false;
    if (!busy_.compare_exchange_strong(expected, true)) {
      Napi::Error e = Napi::Error::New(env, "KvCache: an async operation on this cache is in flight; await it first");
      e.Set("code", "ERR_CACHE_BUSY");
      throw e;
    }
  }
  void Release() { busy_.store(false); }
  KvCacheApi* cache() { return cache_.get(); }

 private:
  Napi::Value Append(const Napi::CallbackInfo& info) {
    ParsedAppend p = ParseAppend(Params(info, kAppendFields), false);
    Guard g(this, info.Env());
    const Status s = RunAppend(cache_.get(), p);
    if (!s.is_ok()) ThrowStatus(info.Env(), s);
    return info.Env().Undefined();
  }

  Napi::Value AppendRows(const Napi::CallbackInfo& info) {
    ParsedAppend p = ParseAppendArgs(info);
    Guard g(this, info.Env());
    const Status s = RunAppend(cache_.get(), p);
    if (!s.is_ok()) ThrowStatus(info.Env(), s);
    return info.Env().Undefined();
  }

  Napi::Value Attend(const Napi::CallbackInfo& info) {
    ParsedAttend p = ParseAttend(Params(info, kAttendFields), false);
    Guard g(this, info.Env());
    RefuseDeviceTree(info.Env(), p);
    const Status s = cache_->attend(p.layer, p.in);
    if (!s.is_ok()) ThrowStatus(info.Env(), s);
    return info.Env().Undefined();
  }

  Napi::Value Compress(const Napi::CallbackInfo& info) {
    CompressRequest r = ParseCompress(Params(info, kCompressFields), nullptr);
    Guard g(this, info.Env());
    CompressReport rep;
    const double t0 = now_ms();
    const Status s = cache_->compress(r, &rep);
    if (!s.is_ok()) ThrowStatus(info.Env(), s);
    return ReportObject(info.Env(), rep, now_ms() - t0);
  }

  Napi::Value AppendAsync(const Napi::CallbackInfo& info);
  Napi::Value AttendAsync(const Napi::CallbackInfo& info);
  Napi::Value CompressAsync(const Napi::CallbackInfo& info);

  Napi::Value Export(const Napi::CallbackInfo& info) {
    ParsedExport p = ParseExport(Params(info, kExportFields), false);
    Guard g(this, info.Env());
    const Status s = RunExport(cache_.get(), p);
    if (!s.is_ok()) ThrowStatus(info.Env(), s);
    return info.Env().Undefined();
  }

  Napi::Value ExportAsync(const Napi::CallbackInfo& info);

  // Int32Array [nLayers * nKvHeads] of token counts.
  Napi::Value Lengths(const Napi::CallbackInfo& info) {
    Guard g(this, info.Env());
    const auto& c = cache_->config();
    Napi::Int32Array out = Napi::Int32Array::New(info.Env(), static_cast<size_t>(c.n_layers * c.n_kv_heads));
    for (int64_t l = 0; l < c.n_layers; ++l) {
      for (int64_t h = 0; h < c.n_kv_heads; ++h) out[static_cast<size_t>(l * c.n_kv_heads + h)] = static_cast<int32_t>(cache_->length(l, h));
    }
    return out;
  }

  // Most tokens any head of a layer holds.
  Napi::Value MaxLength(const Napi::CallbackInfo& info) {
    Guard g(this, info.Env());
    const int64_t layer = info.Length() > 0 ? ToInt(info[0], "layer") : -1;
    if (layer < 0 || layer >= cache_->config().n_layers) throw Napi::RangeError::New(info.Env(), "layer: expected 0 to " + std::to_string(cache_->config().n_layers - 1));
    return Napi::Number::New(info.Env(), static_cast<double>(cache_->max_length(layer)));
  }

  Napi::Value MemoryBytes(const Napi::CallbackInfo& info) {
    Guard g(this, info.Env());
    return Napi::Number::New(info.Env(), static_cast<double>(cache_->memory_bytes()));
  }

  // questSummaries(layer) -> { pageSize, pages, kmin, kmax: Float32Array
  // [nKvHeads, pages, headDim], headPages: Int32Array, bytes } (pageSize 0:
  // none yet). CPU and device caches.
  Napi::Value QuestSummaries(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const int64_t layer = info.Length() > 0 ? ToInt(info[0], "layer") : -1;
    Guard g(this, env);
    auto* cpu = dynamic_cast<KvCache*>(cache_.get());
    kv::SummaryExport e;
    const Status s = cpu != nullptr ? cpu->export_summaries(layer, &e) : cuda::export_device_summaries(*cache_, layer, &e);
    if (!s.is_ok()) ThrowStatus(env, s);
    Napi::Object o = Napi::Object::New(env);
    o.Set("pageSize", Napi::Number::New(env, static_cast<double>(e.page_size)));
    o.Set("pages", Napi::Number::New(env, static_cast<double>(e.pages)));
    Napi::Float32Array lo = Napi::Float32Array::New(env, e.lo.size());
    Napi::Float32Array hi = Napi::Float32Array::New(env, e.hi.size());
    std::copy(e.lo.begin(), e.lo.end(), lo.Data());
    std::copy(e.hi.begin(), e.hi.end(), hi.Data());
    Napi::Int32Array hp = Napi::Int32Array::New(env, e.head_pages.size());
    std::copy(e.head_pages.begin(), e.head_pages.end(), hp.Data());
    o.Set("kmin", lo);
    o.Set("kmax", hi);
    o.Set("headPages", hp);
    if (!e.mean.empty()) {
      Napi::Float32Array mean = Napi::Float32Array::New(env, e.mean.size());
      std::copy(e.mean.begin(), e.mean.end(), mean.Data());
      o.Set("kmean", mean);
    }
    o.Set("bytes", Napi::Number::New(env, static_cast<double>(e.bytes)));
    return o;
  }

  // beginStep(): drops the TidalDecode positions selected in the current
  // decode step (a no-op on a device cache, which runs no sparse attend).
  Napi::Value BeginStep(const Napi::CallbackInfo& info) {
    Guard g(this, info.Env());
    if (auto* cpu = dynamic_cast<KvCache*>(cache_.get())) cpu->begin_step();
    return info.Env().Undefined();
  }

  // A device cache runs no tree attend (lib/kv/cache.ts refuses it first).
  void RefuseDeviceTree(Napi::Env env, const ParsedAttend& p) {
    if (p.in.tree_parents && dynamic_cast<KvCache*>(cache_.get()) == nullptr) {
      ThrowStatus(env, Status::unsupported("treeMask: runs on CPU caches only"));
    }
  }

  // commitTree({ layers?: Int32Array, treeSize, accepted: Int32Array }):
  // keeps the accepted nodes of the newest treeSize tokens of every head
  // (rollback: accepted empty). CPU caches; the arrays are copied first.
  Napi::Value CommitTree(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Params(info, kCommitFields);
    const int64_t tree_size = GetInt(o, "treeSize");
    const TypedArrayView layers = GetTypedArray(o, "layers", napi_int32_array, false);
    const TypedArrayView accepted = GetTypedArray(o, "accepted", napi_int32_array, true);
    std::vector<int64_t> ls;
    std::vector<int32_t> acc;
    GuardAlloc(env, [&] {
      if (layers.present) ls.assign(static_cast<const int32_t*>(layers.data), static_cast<const int32_t*>(layers.data) + layers.length);
      acc.assign(static_cast<const int32_t*>(accepted.data), static_cast<const int32_t*>(accepted.data) + accepted.length);
    });
    if (layers.present && ls.empty()) return env.Undefined();  // no layer named: nothing to do
    Guard g(this, env);
    auto* cpu = dynamic_cast<KvCache*>(cache_.get());
    if (cpu == nullptr) ThrowStatus(env, Status::unsupported("commit / rollback: run on CPU caches only"));
    const Status s = cpu->commit_tree(ls, tree_size, acc);
    if (!s.is_ok()) ThrowStatus(env, s);
    return env.Undefined();
  }

  // Where the cache lives: "cpu" or "cuda".
  Napi::Value Device(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), cache_->device()); }

  // clear() or clear(layer).
  Napi::Value Clear(const Napi::CallbackInfo& info) {
    const int64_t layer = info.Length() > 0 && !info[0].IsUndefined() ? ToInt(info[0], "layer") : -1;
    if (layer < -1 || layer >= cache_->config().n_layers) throw Napi::RangeError::New(info.Env(), "layer: expected 0 to " + std::to_string(cache_->config().n_layers - 1));
    Guard g(this, info.Env());
    if (layer < 0) cache_->clear();
    else cache_->clear_layer(layer);
    return info.Env().Undefined();
  }

  std::unique_ptr<KvCacheApi> cache_;
  std::atomic<bool> busy_{false};
};

// One async cache operation: holds the cache object alive, runs `run` off
// the main thread, releases the busy flag when done, writes staged outputs
// back, and settles without ever throwing (async_work.h).
class CacheWorker : public PromiseWork {
 public:
  CacheWorker(Napi::Env env, KvCacheHandle* handle, Napi::Object self)
      : PromiseWork(env, "tokenpress:kvCache"), handle_(handle) {
    self_ = Napi::Persistent(self);
  }

 protected:
  virtual Status RunOn(KvCacheApi* cache) = 0;
  virtual Napi::Value Result(Napi::Env env) { return env.Undefined(); }
  virtual Staging* stage() { return nullptr; }

 private:
  Status Run() override { return RunOn(handle_->cache()); }
  void Finish() override { handle_->Release(); }
  Napi::Value Build(Napi::Env env) override {
    Staging* st = stage();
    if (st != nullptr) {
      const Status c = st->Commit(env);
      if (!c.is_ok()) throw Napi::Error(env, OutputChangedError(env, c));
    }
    return Result(env);
  }

  KvCacheHandle* handle_;
  Napi::ObjectReference self_;
};

Status RunAttend(KvCacheApi* c, const ParsedAttend& p) { return c->attend(p.layer, p.in); }

// An async operation whose parsed params (staged copies inside) run through `run`.
template <typename P, Status (*run)(KvCacheApi*, const P&)>
class ParsedWorker : public CacheWorker {
 public:
  ParsedWorker(Napi::Env env, KvCacheHandle* h, Napi::Object self, P p) : CacheWorker(env, h, self), p_(std::move(p)) {}
  Status RunOn(KvCacheApi* c) override { return run(c, p_); }
  Staging* stage() override { return p_.stage.get(); }
 private:
  P p_;
};

using AppendWorker = ParsedWorker<ParsedAppend, RunAppend>;
using AttendWorker = ParsedWorker<ParsedAttend, RunAttend>;

class CompressWorker : public CacheWorker {
 public:
  CompressWorker(Napi::Env env, KvCacheHandle* h, Napi::Object self, std::pair<CompressRequest, std::unique_ptr<Staging>> p)
      : CacheWorker(env, h, self), r_(std::move(p.first)), stage_(std::move(p.second)) {}
  Status RunOn(KvCacheApi* c) override {
    const double t0 = now_ms();
    const Status s = c->compress(r_, &rep_);
    ms_ = now_ms() - t0;
    return s;
  }
  Napi::Value Result(Napi::Env env) override { return ReportObject(env, rep_, ms_); }
 private:
  CompressRequest r_;
  std::unique_ptr<Staging> stage_;  // the draft query copies
  CompressReport rep_;
  double ms_ = 0;
};

using ExportWorker = ParsedWorker<ParsedExport, RunExport>;

template <typename W, typename P>
Napi::Value Start(const Napi::CallbackInfo& info, KvCacheHandle* h, P parsed) {
  h->Acquire(info.Env());
  W* w = nullptr;
  try {
    w = new W(info.Env(), h, info.This().As<Napi::Object>(), std::move(parsed));
  } catch (...) {
    h->Release();
    throw;
  }
  Napi::Promise promise = w->Promise();
  w->Queue();
  return promise;
}

Napi::Value KvCacheHandle::AppendAsync(const Napi::CallbackInfo& info) {
  return Start<AppendWorker>(info, this, ParseAppend(Params(info, kAppendFields), true));
}
Napi::Value KvCacheHandle::AttendAsync(const Napi::CallbackInfo& info) {
  ParsedAttend p = ParseAttend(Params(info, kAttendFields), true);
  RefuseDeviceTree(info.Env(), p);
  return Start<AttendWorker>(info, this, std::move(p));
}
Napi::Value KvCacheHandle::ExportAsync(const Napi::CallbackInfo& info) {
  return Start<ExportWorker>(info, this, ParseExport(Params(info, kExportFields), true));
}
Napi::Value KvCacheHandle::CompressAsync(const Napi::CallbackInfo& info) {
  std::pair<CompressRequest, std::unique_ptr<Staging>> p;
  p.second = std::make_unique<Staging>();
  p.first = ParseCompress(Params(info, kCompressFields), p.second.get());
  return Start<CompressWorker>(info, this, std::move(p));
}

// Test hook: kvAppendConvertForTest(src: Float32Array, dtype: 1 (f16) | 2
// (bf16), path: 0 scalar | 1 avx2 | 2 avx512) -> Uint16Array, the element
// conversion KvCache.append uses (kv_grow.h), on any bit pattern (append
// itself refuses NaN and infinity, so this is how tests reach those lanes).
// A path the CPU lacks is refused.
Napi::Value AppendConvertForTest(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 3) throw Napi::TypeError::New(env, "kvAppendConvertForTest: expected (src, dtype, path)");
  const int64_t dt = ToInt(info[1], "dtype"), path = ToInt(info[2], "path");
  if (dt != 1 && dt != 2) throw Napi::RangeError::New(env, "dtype: expected 1 (f16) or 2 (bf16)");
  const bool have[3] = {true, cpu_features().avx2 && cpu_features().f16c, cpu_features().avx512f && cpu_features().avx512bw && cpu_features().avx512vl};
  if (path < 0 || path > 2 || !have[path]) throw Napi::RangeError::New(env, "path: expected a conversion path this CPU has (0 scalar, 1 avx2, 2 avx512)");
  const TypedArrayView src = ValueTypedArray(info[0], "src", napi_float32_array, true);
  Napi::Uint16Array out = Napi::Uint16Array::New(env, static_cast<size_t>(src.length));
  kv::convert_elems(src.data, DType::F32, out.Data(), static_cast<DType>(dt), src.length, static_cast<kv::ConvertPath>(path));
  return out;
}

// Test hook: kvQuantizeForTest(k, v: Float32Array [group * headDim], headDim,
// group, bits: 8 | 4, fast: boolean) -> Uint8Array, one KIVI block from the
// CPU quantizer (fast) or the shared per-element one (kv_quant_block.h).
Napi::Value QuantizeForTest(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 6 || !info[5].IsBoolean()) throw Napi::TypeError::New(env, "kvQuantizeForTest: expected (k, v, headDim, group, bits, fast)");
  const int64_t d = ToInt(info[2], "headDim"), g = ToInt(info[3], "group"), bits = ToInt(info[4], "bits");
  if (d < 1 || d > 4096 || g < 1 || g > 4096 || (bits != 8 && bits != 4)) throw Napi::RangeError::New(env, "headDim, group: 1 to 4096; bits: 8 or 4");
  const bool fast = info[5].As<Napi::Boolean>().Value();
  const TypedArrayView k = ValueTypedArray(info[0], "k", napi_float32_array, true);
  const TypedArrayView v = ValueTypedArray(info[1], "v", napi_float32_array, true);
  if (k.length != g * d || v.length != g * d) throw Napi::RangeError::New(env, "k, v: expected group * headDim elements each");
  const kv::QuantLayout L = kv::make_quant_layout(d, g, bits);
  Napi::Uint8Array out = Napi::Uint8Array::New(env, static_cast<size_t>(L.block_bytes));
  const auto* kf = static_cast<const float*>(k.data);
  const auto* vf = static_cast<const float*>(v.data);
  if (fast) kv::quantize_block_fast(L, kf, vf, out.Data());
  else kv::quantize_block_reference(L, kf, vf, out.Data());
  return out;
}

}  // namespace

void RegisterKvCache(Napi::Env env, Napi::Object exports) {
  exports.Set("kvQuantizeForTest", Napi::Function::New(env, QuantizeForTest, "kvQuantizeForTest"));
  exports.Set("KvCacheHandle", KvCacheHandle::Define(env));
  exports.Set("kvAppendConvertForTest", Napi::Function::New(env, AppendConvertForTest, "kvAppendConvertForTest"));
}

}  // namespace tp::binding
