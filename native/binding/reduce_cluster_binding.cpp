// vqToken / recoverableCompress / coreMatch / tokenCorr (+ Async): the clustering group of
// the visual-token reduction operators (native/reduce/{kmeans,recoverable,
// corematch,tokencorr}.h). Every field is read first (SnapshotParams), every length is
// checked here against the sizes; outputs are allocated by the caller
// (lib/vision/*.ts). The async forms copy inputs and outputs (Staging) and
// write the outputs back when the work settles. Frames of a [t, n, dim]
// input run in parallel on the shared pool (a nested parallel_for inside a
// frame runs inline); one frame uses the pool inside dot_matrix instead.
#include "napi_config.h"

#include <cstdint>
#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../core/thread_pool.h"
#include "../reduce/corematch.h"
#include "../reduce/kmeans.h"
#include "../reduce/recoverable.h"
#include "../reduce/tokencorr.h"
#include "async_work.h"
#include "bindings.h"
#include "napi_args.h"

namespace tp::binding {
namespace {

using Job = std::function<Status()>;

// Runs fn(frame) for every frame; the first failing status wins.
Status ForFrames(int64_t frames, const std::function<Status(int64_t)>& fn) {
  if (frames <= 1) return frames == 1 ? fn(0) : Status::ok();
  std::vector<Status> st(frames);
  ThreadPool::instance().parallel_for(frames, [&](int64_t f, int) { st[f] = fn(f); });
  for (const Status& s : st)
    if (!s.is_ok()) return s;
  return Status::ok();
}

void CheckLength(Napi::Env env, const TypedArrayView& v, double expected, const std::string& what) {
  if (v.present && static_cast<double>(v.length) != expected) {
    throw Napi::RangeError::New(env, std::string(v.name) + ": expected " + what + " = " + std::to_string(static_cast<int64_t>(expected)) +
                                         " elements, received " + std::to_string(v.length));
  }
}

int64_t CheckDim(Napi::Env env, Napi::Object o, const char* name, int64_t lo, int64_t hi) {
  const int64_t v = GetInt(o, name);
  if (v < lo || v > hi) {
    throw Napi::RangeError::New(env, std::string(name) + ": expected an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                                         "], received " + std::to_string(v));
  }
  return v;
}

constexpr int64_t kMaxDim = int64_t(1) << 24;
constexpr int64_t kMaxN = int64_t(1) << 30;

// Maps an array to the pointer the kernel uses: in place (sync) or a staged copy (async).
struct Resolver {
  Staging* staging = nullptr;
  template <typename T>
  const T* in(const TypedArrayView& v) const {
    if (!v.present) return nullptr;
    return static_cast<const T*>(staging ? staging->In(v) : v.data);
  }
  template <typename T>
  T* out(const TypedArrayView& v) const {
    if (!v.present) return nullptr;
    return static_cast<T*>(staging ? staging->Out(v) : v.data);
  }
};

// ---------------------------------------------------------------- vqToken
struct VqArgs {
  TypedArrayView tokens, codebook, counts, codes, info;
  int64_t rows = 0, dim = 0;
  reduce::VqTokenOptions opt;
};

VqArgs ParseVq(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = SnapshotParams(info, {"tokens", "rows", "dim", "k", "maxIter", "tol", "seed", "adaptive", "maxK", "outCodebook",
                                         "outCounts", "outCodes", "outInfo"});
  VqArgs a;
  a.rows = CheckDim(env, o, "rows", 0, kMaxN);
  a.dim = CheckDim(env, o, "dim", 1, kMaxDim);
  a.opt.k = static_cast<int>(CheckDim(env, o, "k", 1, 1 << 20));
  a.opt.max_iter = static_cast<int>(CheckDim(env, o, "maxIter", 1, 1 << 20));
  a.opt.tol = GetNumber(o, "tol");
  if (!(a.opt.tol >= 0)) throw Napi::RangeError::New(env, "tol: expected a number >= 0, received " + std::to_string(a.opt.tol));
  a.opt.seed = static_cast<uint32_t>(CheckDim(env, o, "seed", 0, 0xffffffffLL));
  a.opt.adaptive = GetBool(o, "adaptive");
  a.opt.max_k = static_cast<int>(CheckDim(env, o, "maxK", 1, 1 << 20));
  if (a.opt.adaptive && a.opt.max_k < 14) throw Napi::RangeError::New(env, "maxK: expected an integer >= 14 with adaptive K, received " + std::to_string(a.opt.max_k));
  const int64_t cap = a.opt.adaptive ? std::max(a.opt.k, a.opt.max_k) : a.opt.k;
  a.tokens = GetTypedArray(o, "tokens", napi_float32_array, true);
  a.codebook = GetTypedArray(o, "outCodebook", napi_float32_array, true);
  a.counts = GetTypedArray(o, "outCounts", napi_float32_array, true);
  a.codes = GetTypedArray(o, "outCodes", napi_int32_array, true);
  a.info = GetTypedArray(o, "outInfo", napi_int32_array, true);
  CheckLength(env, a.tokens, static_cast<double>(a.rows) * a.dim, "rows * dim");
  CheckLength(env, a.codebook, static_cast<double>(cap) * a.dim, "max(k, maxK) * dim");
  CheckLength(env, a.counts, static_cast<double>(cap), "max(k, maxK)");
  CheckLength(env, a.codes, static_cast<double>(a.rows), "rows");
  CheckLength(env, a.info, 2, "2");
  RefuseOverlap(env, {&a.codebook, &a.counts, &a.codes, &a.info}, {&a.tokens});
  return a;
}

Job BindVq(const VqArgs& a, const Resolver& r) {
  const float* tokens = r.in<float>(a.tokens);
  float* codebook = r.out<float>(a.codebook);
  float* counts = r.out<float>(a.counts);
  int32_t* codes = r.out<int32_t>(a.codes);
  int32_t* info = r.out<int32_t>(a.info);
  const int64_t rows = a.rows, dim = a.dim;
  const reduce::VqTokenOptions opt = a.opt;
  return [=]() {
    int k = 0, it = 0;
    Status s = reduce::vqtoken(tokens, rows, dim, opt, codebook, counts, codes, &k, &it);
    info[0] = k;
    info[1] = it;
    return s;
  };
}

// ---------------------------------------------------- recoverableCompress
struct RecArgs {
  TypedArrayView tokens, keys, cls, text, text_scores;
  TypedArrayView o_tokens, o_sizes, o_assign, o_main, o_centres, o_counts, o_scores;
  int64_t frames = 0, n = 0, dim = 0, key_dim = 0;
  reduce::RecoverableOptions opt;
};

RecArgs ParseRec(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = SnapshotParams(info, {"tokens", "frames", "n", "dim", "keys", "keyDim", "cls", "text", "textScores", "lofNeighbors",
                                         "lofThreshold", "clusterSize", "textWeight", "outTokens", "outSizes", "outAssignment", "outMain",
                                         "outCentres", "outCounts", "outTextScores"});
  RecArgs a;
  a.frames = CheckDim(env, o, "frames", 0, kMaxN);
  a.n = CheckDim(env, o, "n", 0, kMaxN);
  a.dim = CheckDim(env, o, "dim", 1, kMaxDim);
  a.key_dim = CheckDim(env, o, "keyDim", 1, kMaxDim);
  a.opt.lof_neighbors = static_cast<int>(CheckDim(env, o, "lofNeighbors", 1, 1 << 20));
  a.opt.lof_threshold = GetNumber(o, "lofThreshold");
  a.opt.cluster_size = static_cast<int>(CheckDim(env, o, "clusterSize", 0, 1 << 30));
  a.opt.text_weight = GetNumber(o, "textWeight");
  if (!std::isfinite(a.opt.lof_threshold)) throw Napi::RangeError::New(env, "lofThreshold: expected a finite number");
  if (!std::isfinite(a.opt.text_weight)) throw Napi::RangeError::New(env, "textWeight: expected a finite number");
  a.tokens = GetTypedArray(o, "tokens", napi_float32_array, true);
  a.keys = GetTypedArray(o, "keys", napi_float32_array, false);
  a.cls = GetTypedArray(o, "cls", napi_float32_array, true);
  a.text = GetTypedArray(o, "text", napi_float32_array, false);
  a.text_scores = GetTypedArray(o, "textScores", napi_float32_array, false);
  a.o_tokens = GetTypedArray(o, "outTokens", napi_float32_array, true);
  a.o_sizes = GetTypedArray(o, "outSizes", napi_float32_array, true);
  a.o_assign = GetTypedArray(o, "outAssignment", napi_int32_array, true);
  a.o_main = GetTypedArray(o, "outMain", napi_int32_array, true);
  a.o_centres = GetTypedArray(o, "outCentres", napi_int32_array, true);
  a.o_counts = GetTypedArray(o, "outCounts", napi_int32_array, true);
  a.o_scores = GetTypedArray(o, "outTextScores", napi_float32_array, true);
  if (a.text.present == a.text_scores.present) throw Napi::TypeError::New(env, "text, textScores: expected exactly one of them");
  const double fn = static_cast<double>(a.frames) * a.n;
  CheckLength(env, a.tokens, fn * a.dim, "frames * n * dim");
  CheckLength(env, a.keys, fn * a.key_dim, "frames * n * keyDim");
  CheckLength(env, a.cls, fn, "frames * n");
  CheckLength(env, a.text, static_cast<double>(a.frames) * a.dim, "frames * dim");
  CheckLength(env, a.text_scores, fn, "frames * n");
  CheckLength(env, a.o_tokens, static_cast<double>(a.frames) * (a.n + 1) * a.dim, "frames * (n + 1) * dim");
  CheckLength(env, a.o_sizes, static_cast<double>(a.frames) * (a.n + 1), "frames * (n + 1)");
  CheckLength(env, a.o_assign, fn, "frames * n");
  CheckLength(env, a.o_main, fn, "frames * n");
  CheckLength(env, a.o_centres, fn, "frames * n");
  CheckLength(env, a.o_counts, static_cast<double>(a.frames) * 3, "frames * 3");
  CheckLength(env, a.o_scores, fn, "frames * n");
  RefuseOverlap(env, {&a.o_tokens, &a.o_sizes, &a.o_assign, &a.o_main, &a.o_centres, &a.o_counts, &a.o_scores},
                {&a.tokens, &a.keys, &a.cls, &a.text, &a.text_scores});
  return a;
}

Job BindRec(const RecArgs& a, const Resolver& r) {
  const float* x = r.in<float>(a.tokens);
  const float* keys = r.in<float>(a.keys);
  const float* cls = r.in<float>(a.cls);
  const float* text = r.in<float>(a.text);
  const float* ts = r.in<float>(a.text_scores);
  reduce::RecoverableOut out{r.out<float>(a.o_tokens), r.out<float>(a.o_sizes), r.out<int32_t>(a.o_assign),
                             r.out<int32_t>(a.o_main), r.out<int32_t>(a.o_centres), r.out<int32_t>(a.o_counts)};
  float* scores = r.out<float>(a.o_scores);
  const int64_t frames = a.frames, n = a.n, d = a.dim, dk = keys ? a.key_dim : a.dim;
  const reduce::RecoverableOptions opt = a.opt;
  return [=]() {
    return ForFrames(frames, [&](int64_t f) {
      const float* xf = x + f * n * d;
      float* sf = scores + f * n;
      if (text) reduce::recoverable_text_scores(xf, n, d, text + f * d, sf);
      else std::copy(ts + f * n, ts + (f + 1) * n, sf);
      reduce::RecoverableOut o{out.tokens + f * (n + 1) * d, out.sizes + f * (n + 1), out.assignment + f * n,
                               out.main_idx + f * n, out.centre_idx + f * n, out.counts + f * 3};
      return reduce::recoverable_frame(xf, n, d, keys ? keys + f * n * dk : nullptr, dk, cls + f * n, sf, opt, o);
    });
  };
}

// -------------------------------------------------------------- coreMatch
struct CoreArgs {
  TypedArrayView act, up, scores, keep, threshold;
  int64_t frames = 0, rows = 0, inter = 0, query = 0, start = 0, len = 0;
};

CoreArgs ParseCore(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = SnapshotParams(info, {"activations", "up", "frames", "rows", "inter", "query", "start", "len", "outScores", "outKeep",
                                         "outThreshold"});
  CoreArgs a;
  a.frames = CheckDim(env, o, "frames", 0, kMaxN);
  a.rows = CheckDim(env, o, "rows", 1, kMaxN);
  a.inter = CheckDim(env, o, "inter", 1, kMaxDim);
  a.query = CheckDim(env, o, "query", 0, a.rows - 1);
  a.start = CheckDim(env, o, "start", 0, a.rows);
  a.len = CheckDim(env, o, "len", 0, a.rows - a.start);
  a.act = GetTypedArray(o, "activations", napi_float32_array, true);
  a.up = GetTypedArray(o, "up", napi_float32_array, false);
  a.scores = GetTypedArray(o, "outScores", napi_float32_array, true);
  a.keep = GetTypedArray(o, "outKeep", napi_uint8_array, true);
  a.threshold = GetTypedArray(o, "outThreshold", napi_float64_array, true);
  const double total = static_cast<double>(a.frames) * a.rows * a.inter;
  CheckLength(env, a.act, total, "frames * rows * inter");
  CheckLength(env, a.up, total, "frames * rows * inter");
  CheckLength(env, a.scores, static_cast<double>(a.frames) * a.len, "frames * len");
  CheckLength(env, a.keep, static_cast<double>(a.frames) * a.len, "frames * len");
  CheckLength(env, a.threshold, static_cast<double>(a.frames), "frames");
  RefuseOverlap(env, {&a.scores, &a.keep, &a.threshold}, {&a.act, &a.up});
  return a;
}

Job BindCore(const CoreArgs& a, const Resolver& r) {
  const float* act = r.in<float>(a.act);
  const float* up = r.in<float>(a.up);
  float* scores = r.out<float>(a.scores);
  uint8_t* keep = r.out<uint8_t>(a.keep);
  double* thr = r.out<double>(a.threshold);
  const int64_t frames = a.frames, rows = a.rows, inter = a.inter, q = a.query, start = a.start, len = a.len;
  return [=]() {
    return ForFrames(frames, [&](int64_t f) {
      const int64_t off = f * rows * inter;
      float* s = scores + f * len;
      reduce::corematch_scores(act + off, up ? up + off : nullptr, inter, q, start, len, s);
      int64_t rank = 0;
      const double t = reduce::corematch_elbow(s, len, &rank);
      thr[f] = t;
      for (int64_t j = 0; j < len; j++) keep[f * len + j] = s[j] > t ? 1 : 0;
      return Status::ok();
    });
  };
}

// --------------------------------------------------------------- tokenCorr
struct CorrArgs {
  TypedArrayView keys, deep, shallow, keep, info;
  int64_t frames = 0, n = 0, key_dim = 0;
  reduce::TokenCorrOptions opt;
};

CorrArgs ParseCorr(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = SnapshotParams(info, {"keys", "frames", "n", "keyDim", "deep", "shallow", "simThreshold", "countLimit", "iqrFactor", "seed",
                                         "outKeep", "outInfo"});
  CorrArgs a;
  a.frames = CheckDim(env, o, "frames", 0, kMaxN);
  a.n = CheckDim(env, o, "n", 0, kMaxN);
  a.key_dim = CheckDim(env, o, "keyDim", 1, kMaxDim);
  a.opt.sim_threshold = GetNumber(o, "simThreshold");
  a.opt.count_limit = static_cast<int>(CheckDim(env, o, "countLimit", 1, 1 << 30));
  a.opt.iqr_factor = GetNumber(o, "iqrFactor");
  a.opt.seed = static_cast<uint32_t>(CheckDim(env, o, "seed", 0, 0xffffffffLL));
  if (!std::isfinite(a.opt.sim_threshold)) throw Napi::RangeError::New(env, "simThreshold: expected a finite number");
  if (!std::isfinite(a.opt.iqr_factor)) throw Napi::RangeError::New(env, "iqrFactor: expected a finite number");
  a.keys = GetTypedArray(o, "keys", napi_float32_array, true);
  a.deep = GetTypedArray(o, "deep", napi_float32_array, true);
  a.shallow = GetTypedArray(o, "shallow", napi_float32_array, true);
  a.keep = GetTypedArray(o, "outKeep", napi_uint8_array, true);
  a.info = GetTypedArray(o, "outInfo", napi_float64_array, true);
  const double fn = static_cast<double>(a.frames) * a.n;
  CheckLength(env, a.keys, fn * a.key_dim, "frames * n * keyDim");
  CheckLength(env, a.deep, fn, "frames * n");
  CheckLength(env, a.shallow, fn, "frames * n");
  CheckLength(env, a.keep, fn, "frames * n");
  CheckLength(env, a.info, static_cast<double>(a.frames) * 2, "frames * 2");
  RefuseOverlap(env, {&a.keep, &a.info}, {&a.keys, &a.deep, &a.shallow});
  return a;
}

Job BindCorr(const CorrArgs& a, const Resolver& r) {
  const float* keys = r.in<float>(a.keys);
  const float* deep = r.in<float>(a.deep);
  const float* shallow = r.in<float>(a.shallow);
  uint8_t* keep = r.out<uint8_t>(a.keep);
  double* info = r.out<double>(a.info);
  const int64_t frames = a.frames, n = a.n, dk = a.key_dim;
  const reduce::TokenCorrOptions opt = a.opt;
  return [=]() {
    return ForFrames(frames, [&](int64_t f) {
      int64_t kept = 0, rep = 0;
      const Status s = reduce::tokencorr_frame(keys + f * n * dk, n, dk, deep + f * n, shallow + f * n, opt, keep + f * n, &kept, &rep);
      info[f * 2] = static_cast<double>(kept);
      info[f * 2 + 1] = static_cast<double>(rep);
      return s;
    });
  };
}

// ------------------------------------------------------------ sync / async
template <typename Args, Args (*Parse)(const Napi::CallbackInfo&), Job (*Bind)(const Args&, const Resolver&)>
Napi::Value RunSync(const Napi::CallbackInfo& info) {
  Args a = Parse(info);
  Job job = Bind(a, Resolver{});
  const Status s = RunGuarded([&] { return job(); });
  if (!s.is_ok()) ThrowStatus(info.Env(), s);
  return info.Env().Undefined();
}

class ClusterWork : public PromiseWork {
 public:
  ClusterWork(Napi::Env env, std::unique_ptr<Staging> staging) : PromiseWork(env, "tokenpress:reduce-cluster"), staging_(std::move(staging)) {}
  Job job;

 protected:
  Status Run() override { return job(); }
  Napi::Value Build(Napi::Env env) override {
    const Status c = staging_->Commit(env);
    if (!c.is_ok()) throw Napi::Error(env, OutputChangedError(env, c));
    return env.Undefined();
  }

 private:
  std::unique_ptr<Staging> staging_;
};

template <typename Args, Args (*Parse)(const Napi::CallbackInfo&), Job (*Bind)(const Args&, const Resolver&)>
Napi::Value RunAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto staging = std::make_unique<Staging>();
  Job job;
  try {
    GuardAlloc(env, [&] {
      Args a = Parse(info);
      job = Bind(a, Resolver{staging.get()});
      return 0;
    });
  } catch (const Napi::Error& e) {
    auto deferred = Napi::Promise::Deferred::New(env);
    deferred.Reject(e.Value());
    return deferred.Promise();
  }
  auto* work = new ClusterWork(env, std::move(staging));
  work->job = std::move(job);
  Napi::Promise p = work->Promise();
  work->Queue();
  return p;
}

}  // namespace

void RegisterReduceCluster(Napi::Env env, Napi::Object exports) {
  exports.Set("vqToken", Napi::Function::New(env, Guarded<RunSync<VqArgs, ParseVq, BindVq>>, "vqToken"));
  exports.Set("vqTokenAsync", Napi::Function::New(env, Guarded<RunAsync<VqArgs, ParseVq, BindVq>>, "vqTokenAsync"));
  exports.Set("recoverableCompress", Napi::Function::New(env, Guarded<RunSync<RecArgs, ParseRec, BindRec>>, "recoverableCompress"));
  exports.Set("recoverableCompressAsync", Napi::Function::New(env, Guarded<RunAsync<RecArgs, ParseRec, BindRec>>, "recoverableCompressAsync"));
  exports.Set("coreMatch", Napi::Function::New(env, Guarded<RunSync<CoreArgs, ParseCore, BindCore>>, "coreMatch"));
  exports.Set("tokenCorr", Napi::Function::New(env, Guarded<RunSync<CorrArgs, ParseCorr, BindCorr>>, "tokenCorr"));
  exports.Set("tokenCorrAsync", Napi::Function::New(env, Guarded<RunAsync<CorrArgs, ParseCorr, BindCorr>>, "tokenCorrAsync"));
  exports.Set("coreMatchAsync", Napi::Function::New(env, Guarded<RunAsync<CoreArgs, ParseCore, BindCore>>, "coreMatchAsync"));
}

}  // namespace tp::binding
