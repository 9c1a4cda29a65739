// reduceDivPrune, reduceClsRank, reduceFastvRank, reduceGlobalCom2 and their
// Async forms (issue 19, group `select`; lib/vision/{divprune,vtc-cls,fastv,
// globalcom2}.ts validate first, these re-check every size). Each parser
// reads the params object once (SnapshotParams), checks lengths, and returns
// a Job: its input / output views and the kernel call over their pointers.
// The async form copies inputs and outputs (async_work.h Staging) and writes
// the outputs back when it settles.
#include "napi_config.h"

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../reduce/cls_rank.h"
#include "../reduce/divprune.h"
#include "../reduce/globalcom2.h"
#include "async_work.h"
#include "bindings.h"
#include "napi_args.h"

namespace tp::binding {
namespace {

using Kernel = std::function<Status(const std::vector<const void*>& in, const std::vector<void*>& out)>;

struct ReduceJob {
  std::vector<TypedArrayView> ins, outs;
  Kernel kernel;
};

void NeedLength(Napi::Env env, const TypedArrayView& v, double expected, const std::string& what) {
  if (static_cast<double>(v.length) != expected) {
    throw Napi::RangeError::New(env, std::string(v.name) + ": expected " + what + " = " + std::to_string(static_cast<int64_t>(expected)) +
                                         " elements, received " + std::to_string(v.length));
  }
}

int64_t NeedInt(Napi::Env env, Napi::Object o, const char* name, int64_t lo, int64_t hi) {
  const int64_t v = GetInt(o, name);
  if (v < lo || v > hi) {
    throw Napi::RangeError::New(env, std::string(name) + ": expected an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                                         "], received " + std::to_string(v));
  }
  return v;
}

constexpr int64_t kMaxDim = int64_t(1) << 31;

ReduceJob ParseDivPrune(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = SnapshotParams(info, {"tokens", "t", "n", "dim", "keep", "metricDim", "out"});
  const int64_t t = NeedInt(env, o, "t", 0, kMaxDim), n = NeedInt(env, o, "n", 0, 1 << 20), d = NeedInt(env, o, "dim", 0, 1 << 24);
  const int64_t keep = NeedInt(env, o, "keep", 0, n);
  const int64_t metric_dim = NeedInt(env, o, "metricDim", 0, 1 << 16);
  ReduceJob j;
  j.ins.push_back(GetTypedArray(o, "tokens", napi_float32_array, true));
  j.outs.push_back(GetTypedArray(o, "out", napi_int32_array, true));
  NeedLength(env, j.ins[0], static_cast<double>(t) * n * d, "t * n * dim");
  NeedLength(env, j.outs[0], static_cast<double>(t) * keep, "t * keep");
  RefuseOverlap(env, {&j.outs[0]}, {&j.ins[0]});
  j.kernel = [=](const std::vector<const void*>& in, const std::vector<void*>& out) {
    return reduce::divprune(static_cast<const float*>(in[0]), t, n, d, keep, static_cast<int32_t*>(out[0]), metric_dim);
  };
  return j;
}

ReduceJob ParseClsRank(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = SnapshotParams(info, {"attention", "t", "layers", "n", "start", "end", "keep", "scores", "out"});
  const int64_t t = NeedInt(env, o, "t", 0, kMaxDim), layers = NeedInt(env, o, "layers", 0, 1 << 16), n = NeedInt(env, o, "n", 0, kMaxDim);
  const int64_t start = NeedInt(env, o, "start", 0, layers), end = NeedInt(env, o, "end", start, layers), keep = NeedInt(env, o, "keep", 0, n);
  ReduceJob j;
  j.ins.push_back(GetTypedArray(o, "attention", napi_float32_array, true));
  j.outs.push_back(GetTypedArray(o, "scores", napi_float32_array, true));
  j.outs.push_back(GetTypedArray(o, "out", napi_int32_array, true));
  NeedLength(env, j.ins[0], static_cast<double>(t) * layers * n, "t * layers * n");
  NeedLength(env, j.outs[0], static_cast<double>(t) * n, "t * n");
  NeedLength(env, j.outs[1], static_cast<double>(t) * keep, "t * keep");
  RefuseOverlap(env, {&j.outs[0], &j.outs[1]}, {&j.ins[0]});
  j.kernel = [=](const std::vector<const void*>& in, const std::vector<void*>& out) {
    return reduce::cls_rank(static_cast<const float*>(in[0]), t, layers, n, start, end, keep, static_cast<float*>(out[0]),
                            static_cast<int32_t*>(out[1]));
  };
  return j;
}

ReduceJob ParseFastvRank(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = SnapshotParams(info, {"probs", "t", "heads", "nk", "start", "length", "keep", "scores", "out"});
  const int64_t t = NeedInt(env, o, "t", 0, kMaxDim), heads = NeedInt(env, o, "heads", 1, 1 << 16), nk = NeedInt(env, o, "nk", 0, INT32_MAX);
  const int64_t start = NeedInt(env, o, "start", 0, nk), len = NeedInt(env, o, "length", 0, nk - start), keep = NeedInt(env, o, "keep", 0, len);
  ReduceJob j;
  j.ins.push_back(GetTypedArray(o, "probs", napi_float32_array, true));
  j.outs.push_back(GetTypedArray(o, "scores", napi_float32_array, true));
  j.outs.push_back(GetTypedArray(o, "out", napi_int32_array, true));
  NeedLength(env, j.ins[0], static_cast<double>(t) * heads * nk, "t * heads * nk");
  NeedLength(env, j.outs[0], static_cast<double>(t) * len, "t * length");
  NeedLength(env, j.outs[1], static_cast<double>(t) * keep, "t * keep");
  RefuseOverlap(env, {&j.outs[0], &j.outs[1]}, {&j.ins[0]});
  j.kernel = [=](const std::vector<const void*>& in, const std::vector<void*>& out) {
    return reduce::fastv_rank(static_cast<const float*>(in[0]), t, heads, nk, start, len, keep, static_cast<float*>(out[0]),
                              static_cast<int32_t*>(out[1]));
  };
  return j;
}

ReduceJob ParseGlobalCom2(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = SnapshotParams(info, {"thumb", "side", "crops", "nph", "npw", "h", "w", "base", "temperature", "thumbKeep", "scales",
                                         "cropCounts", "cropKeep", "cropScores"});
  const int64_t side = NeedInt(env, o, "side", 1, 1 << 12), nph = NeedInt(env, o, "nph", 1, 64), npw = NeedInt(env, o, "npw", 1, 64);
  const int64_t h = NeedInt(env, o, "h", 1, 1 << 12), w = NeedInt(env, o, "w", 1, 1 << 12);
  const double base = GetNumber(o, "base"), temperature = GetNumber(o, "temperature");
  if (!(base >= 0 && base <= 1)) throw Napi::RangeError::New(env, "base: expected a number in [0, 1], received " + std::to_string(base));
  if (!(temperature > 0 && temperature < 1e300)) {
    throw Napi::RangeError::New(env, "temperature: expected a finite number > 0, received " + std::to_string(temperature));
  }
  ReduceJob j;
  j.ins.push_back(GetTypedArray(o, "thumb", napi_float32_array, true));
  j.ins.push_back(GetTypedArray(o, "crops", napi_float32_array, true));
  j.outs.push_back(GetTypedArray(o, "thumbKeep", napi_int32_array, true));
  j.outs.push_back(GetTypedArray(o, "scales", napi_float64_array, true));
  j.outs.push_back(GetTypedArray(o, "cropCounts", napi_int32_array, true));
  j.outs.push_back(GetTypedArray(o, "cropKeep", napi_int32_array, true));
  j.outs.push_back(GetTypedArray(o, "cropScores", napi_float32_array, true));
  const double c = static_cast<double>(nph * npw), nc = static_cast<double>(h * w);
  NeedLength(env, j.ins[0], static_cast<double>(side * side), "side * side");
  NeedLength(env, j.ins[1], c * nc, "nph * npw * h * w");
  NeedLength(env, j.outs[0], static_cast<double>(reduce::globalcom2_thumb_keep(side, base)), "int(side * side * base)");
  NeedLength(env, j.outs[1], c, "nph * npw");
  NeedLength(env, j.outs[2], c, "nph * npw");
  NeedLength(env, j.outs[3], c * nc, "nph * npw * h * w");
  NeedLength(env, j.outs[4], c * nc, "nph * npw * h * w");
  RefuseOverlap(env, {&j.outs[0], &j.outs[1], &j.outs[2], &j.outs[3], &j.outs[4]}, {&j.ins[0], &j.ins[1]});
  j.kernel = [=](const std::vector<const void*>& in, const std::vector<void*>& out) {
    reduce::GlobalCom2Args a;
    a.thumb = static_cast<const float*>(in[0]);
    a.side = side;
    a.crops = static_cast<const float*>(in[1]);
    a.nph = nph, a.npw = npw, a.h = h, a.w = w, a.base = base, a.temperature = temperature;
    a.thumb_keep = static_cast<int32_t*>(out[0]);
    a.scales = static_cast<double*>(out[1]);
    a.crop_counts = static_cast<int32_t*>(out[2]);
    a.crop_keep = static_cast<int32_t*>(out[3]);
    a.crop_scores = static_cast<float*>(out[4]);
    return reduce::globalcom2(a);
  };
  return j;
}

template <ReduceJob (*Parse)(const Napi::CallbackInfo&)>
Napi::Value RunSync(const Napi::CallbackInfo& info) {
  ReduceJob j = Parse(info);
  std::vector<const void*> in;
  std::vector<void*> out;
  for (auto& v : j.ins) in.push_back(v.data);
  for (auto& v : j.outs) out.push_back(v.data);
  const Status s = RunGuarded([&] { return j.kernel(in, out); });
  if (!s.is_ok()) ThrowStatus(info.Env(), s);
  return info.Env().Undefined();
}

class ReduceWork : public PromiseWork {
 public:
  ReduceWork(Napi::Env env, ReduceJob&& job, std::unique_ptr<Staging> stage, std::vector<const void*> in, std::vector<void*> out)
      : PromiseWork(env, "tokenpress:reduce"), job_(std::move(job)), stage_(std::move(stage)), in_(std::move(in)), out_(std::move(out)) {}

 private:
  Status Run() override { return job_.kernel(in_, out_); }
  Napi::Value Build(Napi::Env env) override {
    const Status c = stage_->Commit(env);
    if (!c.is_ok()) throw Napi::Error(env, OutputChangedError(env, c));
    return env.Undefined();
  }
  ReduceJob job_;
  std::unique_ptr<Staging> stage_;
  std::vector<const void*> in_;
  std::vector<void*> out_;
};

template <ReduceJob (*Parse)(const Napi::CallbackInfo&)>
Napi::Value RunAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ReduceJob j;
  auto stage = std::make_unique<Staging>();
  std::vector<const void*> in;
  std::vector<void*> out;
  try {
    GuardAlloc(env, [&] {
      j = Parse(info);
      for (auto& v : j.ins) in.push_back(stage->In(v));
      for (auto& v : j.outs) out.push_back(stage->Out(v));
      return 0;
    });
  } catch (const Napi::Error& e) {
    auto deferred = Napi::Promise::Deferred::New(env);
    deferred.Reject(e.Value());
    return deferred.Promise();
  }
  auto* work = new ReduceWork(env, std::move(j), std::move(stage), std::move(in), std::move(out));
  Napi::Promise p = work->Promise();
  work->Queue();
  return p;
}

}  // namespace

void RegisterReduceSelect(Napi::Env env, Napi::Object exports) {
  exports.Set("reduceDivPrune", Napi::Function::New(env, Guarded<RunSync<ParseDivPrune>>, "reduceDivPrune"));
  exports.Set("reduceDivPruneAsync", Napi::Function::New(env, Guarded<RunAsync<ParseDivPrune>>, "reduceDivPruneAsync"));
  exports.Set("reduceClsRank", Napi::Function::New(env, Guarded<RunSync<ParseClsRank>>, "reduceClsRank"));
  exports.Set("reduceClsRankAsync", Napi::Function::New(env, Guarded<RunAsync<ParseClsRank>>, "reduceClsRankAsync"));
  exports.Set("reduceFastvRank", Napi::Function::New(env, Guarded<RunSync<ParseFastvRank>>, "reduceFastvRank"));
  exports.Set("reduceFastvRankAsync", Napi::Function::New(env, Guarded<RunAsync<ParseFastvRank>>, "reduceFastvRankAsync"));
  exports.Set("reduceGlobalCom2", Napi::Function::New(env, Guarded<RunSync<ParseGlobalCom2>>, "reduceGlobalCom2"));
  exports.Set("reduceGlobalCom2Async", Napi::Function::New(env, Guarded<RunAsync<ParseGlobalCom2>>, "reduceGlobalCom2Async"));
}

}  // namespace tp::binding
