// reduceTome / reducePool / reduceTransformBuild / reduceTransformApply (and
// their *Async forms): the ToMe group of the visual-token reduction operators
// (native/reduce/tome.h, pool.h, transform.h). Every field of the params
// object is read first (SnapshotParams), every length is re-checked here,
// outputs may not overlap inputs; the async forms copy inputs and outputs
// (async_work.h Staging) and write back when they settle.
#include "napi_config.h"

#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "../reduce/pool.h"
#include "../reduce/tome.h"
#include "../reduce/transform.h"
#include "async_work.h"
#include "bindings.h"
#include "napi_args.h"

namespace tp::binding {
namespace {

[[noreturn]] void Bad(Napi::Env env, const std::string& msg) { throw Napi::RangeError::New(env, msg); }

void CheckLen(Napi::Env env, const TypedArrayView& v, double want, const char* what) {
  if (v.present && static_cast<double>(v.length) != want) {
    Bad(env, std::string(v.name) + ": expected " + what + " = " + std::to_string(static_cast<int64_t>(want)) + " elements, received " +
                 std::to_string(v.length));
  }
}

int64_t Dim(Napi::Object o, const char* name, int64_t lo, int64_t hi) {
  const int64_t v = GetInt(o, name);
  if (v < lo || v > hi) {
    Bad(o.Env(), std::string(name) + ": expected an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], received " +
                     std::to_string(v));
  }
  return v;
}

constexpr int64_t kMaxN = INT32_MAX;
constexpr int64_t kMaxD = int64_t(1) << 24;

// A parsed call: the views (kept for staging) and a runner over pointers.
struct Call {
  std::vector<TypedArrayView> inputs, outputs;
  // Runs the kernel with the (possibly staged) pointers, in the order of inputs then outputs.
  std::function<Status(const std::vector<const void*>&, const std::vector<void*>&)> run;
};

Call ParseTome(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = SnapshotParams(info, {"x", "metric", "sizes", "t", "n", "d", "dm", "r", "classToken", "sketchDim", "outX", "outSizes", "outAssignment"});
  const int64_t t = Dim(o, "t", 0, kMaxN), n = Dim(o, "n", 0, kMaxN), d = Dim(o, "d", 0, kMaxD), dm = Dim(o, "dm", 0, kMaxD);
  const int64_t r = Dim(o, "r", 0, kMaxN);
  const bool cls = GetBool(o, "classToken");
  const int64_t sketch = Dim(o, "sketchDim", 0, kMaxD);
  TypedArrayView x = GetTypedArray(o, "x", napi_float32_array, true);
  TypedArrayView metric = GetTypedArray(o, "metric", napi_float32_array, false);
  TypedArrayView sizes = GetTypedArray(o, "sizes", napi_float32_array, false);
  TypedArrayView ox = GetTypedArray(o, "outX", napi_float32_array, true);
  TypedArrayView os = GetTypedArray(o, "outSizes", napi_float32_array, true);
  TypedArrayView oa = GetTypedArray(o, "outAssignment", napi_int32_array, true);
  const int64_t m = n - tp::reduce::tome_effective_r(n, r, cls);
  const double T = static_cast<double>(t);
  CheckLen(env, x, T * n * d, "t * n * d");
  CheckLen(env, metric, T * n * dm, "t * n * dm");
  if (metric.present && dm < 1 && n > 0 && t > 0) Bad(env, "dm: expected >= 1 with a metric, received " + std::to_string(dm));
  CheckLen(env, sizes, T * n, "t * n");
  CheckLen(env, ox, T * m * d, "t * m * d");
  CheckLen(env, os, T * m, "t * m");
  CheckLen(env, oa, T * n, "t * n");
  RefuseOverlap(env, {&ox, &os, &oa}, {&x, &metric, &sizes});
  Call c;
  c.inputs = {x, metric, sizes};
  c.outputs = {ox, os, oa};
  c.run = [=](const std::vector<const void*>& in, const std::vector<void*>& out) {
    tp::reduce::TomeParams p;
    p.x = static_cast<const float*>(in[0]);
    p.metric = static_cast<const float*>(in[1]);
    p.sizes = static_cast<const float*>(in[2]);
    p.t = t; p.n = n; p.d = d; p.dm = dm; p.r = r; p.class_token = cls; p.sketch_dim = sketch;
    p.out_x = static_cast<float*>(out[0]);
    p.out_sizes = static_cast<float*>(out[1]);
    p.assignment = static_cast<int32_t*>(out[2]);
    return tp::reduce::tome_merge(p);
  };
  return c;
}

Call ParsePool(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = SnapshotParams(info, {"x", "sizes", "positions", "t", "n", "d", "stride", "outX", "outSizes", "outPositions", "outAssignment"});
  const int64_t t = Dim(o, "t", 0, kMaxN), n = Dim(o, "n", 0, kMaxN), d = Dim(o, "d", 0, kMaxD), s = Dim(o, "stride", 1, kMaxN);
  TypedArrayView x = GetTypedArray(o, "x", napi_float32_array, true);
  TypedArrayView sizes = GetTypedArray(o, "sizes", napi_float32_array, false);
  TypedArrayView pos = GetTypedArray(o, "positions", napi_int32_array, false);
  TypedArrayView ox = GetTypedArray(o, "outX", napi_float32_array, true);
  TypedArrayView os = GetTypedArray(o, "outSizes", napi_float32_array, true);
  TypedArrayView op = GetTypedArray(o, "outPositions", napi_int32_array, false);
  TypedArrayView oa = GetTypedArray(o, "outAssignment", napi_int32_array, true);
  const int64_t m = n / s;
  const double T = static_cast<double>(t);
  CheckLen(env, x, T * n * d, "t * n * d");
  CheckLen(env, sizes, T * n, "t * n");
  CheckLen(env, pos, T * n, "t * n");
  CheckLen(env, ox, T * m * d, "t * m * d");
  CheckLen(env, os, T * m, "t * m");
  if (pos.present != op.present) Bad(env, "outPositions: expected exactly when positions is given");
  CheckLen(env, op, T * m, "t * m");
  CheckLen(env, oa, T * n, "t * n");
  RefuseOverlap(env, {&ox, &os, &op, &oa}, {&x, &sizes, &pos});
  Call c;
  c.inputs = {x, sizes, pos};
  c.outputs = {ox, os, op, oa};
  c.run = [=](const std::vector<const void*>& in, const std::vector<void*>& out) {
    tp::reduce::PoolParams p;
    p.x = static_cast<const float*>(in[0]);
    p.sizes = static_cast<const float*>(in[1]);
    p.positions = static_cast<const int32_t*>(in[2]);
    p.t = t; p.n = n; p.d = d; p.stride = s;
    p.out_x = static_cast<float*>(out[0]);
    p.out_sizes = static_cast<float*>(out[1]);
    p.out_positions = static_cast<int32_t*>(out[2]);
    p.assignment = static_cast<int32_t*>(out[3]);
    return tp::reduce::avg_pool_tokens(p);
  };
  return c;
}

Call ParseTransformBuild(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = SnapshotParams(info, {"x", "targets", "t", "m", "n", "d", "topK", "tau", "outW"});
  const int64_t t = Dim(o, "t", 0, kMaxN), m = Dim(o, "m", 0, kMaxN), n = Dim(o, "n", 0, kMaxN), d = Dim(o, "d", 0, kMaxD);
  const int64_t k = Dim(o, "topK", 1, kMaxN);
  const double tau = GetNumber(o, "tau");
  if (!(std::isfinite(tau) && tau > 0)) Bad(env, "tau: expected a finite number > 0, received " + std::to_string(tau));
  TypedArrayView x = GetTypedArray(o, "x", napi_float32_array, true);
  TypedArrayView tg = GetTypedArray(o, "targets", napi_int32_array, true);
  TypedArrayView ow = GetTypedArray(o, "outW", napi_float32_array, true);
  const double T = static_cast<double>(t);
  CheckLen(env, x, T * n * d, "t * n * d");
  CheckLen(env, tg, T * m, "t * m");
  CheckLen(env, ow, T * m * n, "t * m * n");
  RefuseOverlap(env, {&ow}, {&x, &tg});
  Call c;
  c.inputs = {x, tg};
  c.outputs = {ow};
  c.run = [=](const std::vector<const void*>& in, const std::vector<void*>& out) {
    tp::reduce::TransformBuildParams p;
    p.x = static_cast<const float*>(in[0]);
    p.targets = static_cast<const int32_t*>(in[1]);
    p.t = t; p.m = m; p.n = n; p.d = d; p.top_k = k; p.tau = static_cast<float>(tau);
    p.out_w = static_cast<float*>(out[0]);
    return tp::reduce::transform_build(p);
  };
  return c;
}

Call ParseTransformApply(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = SnapshotParams(info, {"w", "x", "sizes", "t", "m", "n", "d", "outX", "outSizes", "outAssignment"});
  const int64_t t = Dim(o, "t", 0, kMaxN), m = Dim(o, "m", 0, kMaxN), n = Dim(o, "n", 0, kMaxN), d = Dim(o, "d", 0, kMaxD);
  TypedArrayView w = GetTypedArray(o, "w", napi_float32_array, true);
  TypedArrayView x = GetTypedArray(o, "x", napi_float32_array, true);
  TypedArrayView sizes = GetTypedArray(o, "sizes", napi_float32_array, false);
  TypedArrayView ox = GetTypedArray(o, "outX", napi_float32_array, true);
  TypedArrayView os = GetTypedArray(o, "outSizes", napi_float32_array, true);
  TypedArrayView oa = GetTypedArray(o, "outAssignment", napi_int32_array, true);
  const double T = static_cast<double>(t);
  CheckLen(env, w, T * m * n, "t * m * n");
  CheckLen(env, x, T * n * d, "t * n * d");
  CheckLen(env, sizes, T * n, "t * n");
  CheckLen(env, ox, T * m * d, "t * m * d");
  CheckLen(env, os, T * m, "t * m");
  CheckLen(env, oa, T * n, "t * n");
  RefuseOverlap(env, {&ox, &os, &oa}, {&w, &x, &sizes});
  Call c;
  c.inputs = {w, x, sizes};
  c.outputs = {ox, os, oa};
  c.run = [=](const std::vector<const void*>& in, const std::vector<void*>& out) {
    tp::reduce::TransformApplyParams p;
    p.w = static_cast<const float*>(in[0]);
    p.x = static_cast<const float*>(in[1]);
    p.sizes = static_cast<const float*>(in[2]);
    p.t = t; p.m = m; p.n = n; p.d = d;
    p.out_x = static_cast<float*>(out[0]);
    p.out_sizes = static_cast<float*>(out[1]);
    p.assignment = static_cast<int32_t*>(out[2]);
    return tp::reduce::transform_apply(p);
  };
  return c;
}

using Parser = Call (*)(const Napi::CallbackInfo&);

template <Parser P>
Napi::Value RunSync(const Napi::CallbackInfo& info) {
  Call c = P(info);
  std::vector<const void*> in;
  std::vector<void*> out;
  for (auto& v : c.inputs) in.push_back(v.present ? v.data : nullptr);
  for (auto& v : c.outputs) out.push_back(v.present ? v.data : nullptr);
  const Status s = RunGuarded([&] { return c.run(in, out); });
  if (!s.is_ok()) ThrowStatus(info.Env(), s);
  return info.Env().Undefined();
}

class ReduceWorker : public PromiseWork {
 public:
  ReduceWorker(Napi::Env env, Call&& c, std::unique_ptr<Staging> stage, std::vector<const void*> in, std::vector<void*> out)
      : PromiseWork(env, "tokenpress:reduce-tome"), call_(std::move(c)), stage_(std::move(stage)), in_(std::move(in)), out_(std::move(out)) {}

 private:
  Status Run() override { return call_.run(in_, out_); }
  Napi::Value Build(Napi::Env env) override {
    const Status c = stage_->Commit(env);
    if (!c.is_ok()) throw Napi::Error(env, OutputChangedError(env, c));
    return env.Undefined();
  }
  Call call_;
  std::unique_ptr<Staging> stage_;
  std::vector<const void*> in_;
  std::vector<void*> out_;
};

template <Parser P>
Napi::Value RunAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Call c;
  auto stage = std::make_unique<Staging>();
  std::vector<const void*> in;
  std::vector<void*> out;
  try {
    GuardAlloc(env, [&] {
      c = P(info);
      for (auto& v : c.inputs) in.push_back(stage->In(v));
      for (auto& v : c.outputs) out.push_back(stage->Out(v));
      return 0;
    });
  } catch (const Napi::Error& e) {
    auto deferred = Napi::Promise::Deferred::New(env);
    deferred.Reject(e.Value());
    return deferred.Promise();
  }
  auto* worker = new ReduceWorker(env, std::move(c), std::move(stage), std::move(in), std::move(out));
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace

void RegisterReduceTome(Napi::Env env, Napi::Object exports) {
  exports.Set("reduceTome", Napi::Function::New(env, Guarded<RunSync<ParseTome>>, "reduceTome"));
  exports.Set("reduceTomeAsync", Napi::Function::New(env, Guarded<RunAsync<ParseTome>>, "reduceTomeAsync"));
  exports.Set("reducePool", Napi::Function::New(env, Guarded<RunSync<ParsePool>>, "reducePool"));
  exports.Set("reducePoolAsync", Napi::Function::New(env, Guarded<RunAsync<ParsePool>>, "reducePoolAsync"));
  exports.Set("reduceTransformBuild", Napi::Function::New(env, Guarded<RunSync<ParseTransformBuild>>, "reduceTransformBuild"));
  exports.Set("reduceTransformBuildAsync", Napi::Function::New(env, Guarded<RunAsync<ParseTransformBuild>>, "reduceTransformBuildAsync"));
  exports.Set("reduceTransformApply", Napi::Function::New(env, Guarded<RunSync<ParseTransformApply>>, "reduceTransformApply"));
  exports.Set("reduceTransformApplyAsync", Napi::Function::New(env, Guarded<RunAsync<ParseTransformApply>>, "reduceTransformApplyAsync"));
}

}  // namespace tp::binding
