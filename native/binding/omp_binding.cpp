// ompBatch(params), ompBatchAsync(params, onProgress?): batched OMP for
// tokenizer transplantation (native/text/omp.h). Every field is read first
// (SnapshotParams), then every length is checked here; the async form copies
// its inputs and outputs (async_work.h Staging) and reports progress as the
// number of targets finished.
#include "napi_config.h"

#include <cstdint>
#include <string>
#include <utility>

#include "../text/omp.h"
#include "async_work.h"
#include "bindings.h"
#include "napi_args.h"

namespace tp::binding {
namespace {

struct OmpArgs {
  TypedArrayView atoms, targets, out_indices, out_coeffs, out_counts;
  text::OmpProblem problem;
};

// Reads and checks the params object (names as in lib/native.ts NativeOmpParams).
OmpArgs ParseOmp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = SnapshotParams(info, {"atoms", "nAtoms", "targets", "nTargets", "dim", "k", "gramCacheBytes", "outIndices", "outCoeffs",
                                         "outCounts"});
  OmpArgs a;
  const int64_t n_atoms = GetInt(o, "nAtoms");
  const int64_t n_targets = GetInt(o, "nTargets");
  const int64_t dim = GetInt(o, "dim");
  const int64_t k = GetInt(o, "k");
  const double cache = GetNumber(o, "gramCacheBytes");
  a.atoms = GetTypedArray(o, "atoms", napi_float32_array, true);
  a.targets = GetTypedArray(o, "targets", napi_float32_array, true);
  a.out_indices = GetTypedArray(o, "outIndices", napi_int32_array, true);
  a.out_coeffs = GetTypedArray(o, "outCoeffs", napi_float32_array, true);
  a.out_counts = GetTypedArray(o, "outCounts", napi_int32_array, false);
  if (n_atoms < 0 || n_atoms > INT32_MAX) throw Napi::RangeError::New(env, "nAtoms: expected an integer in [0, 2^31), received " + std::to_string(n_atoms));
  if (n_targets < 0) throw Napi::RangeError::New(env, "nTargets: expected an integer >= 0, received " + std::to_string(n_targets));
  if (dim < 0 || dim > (int64_t(1) << 24)) throw Napi::RangeError::New(env, "dim: expected an integer in [0, 2^24], received " + std::to_string(dim));
  if (k < 1 || k > text::kOmpMaxK) {
    throw Napi::RangeError::New(env, "k: expected an integer in [1, " + std::to_string(text::kOmpMaxK) + "], received " + std::to_string(k));
  }
  if (!(cache >= 0)) throw Napi::RangeError::New(env, "gramCacheBytes: expected a number >= 0, received " + std::to_string(cache));
  // Sizes are bounded (nAtoms < 2^31, dim <= 2^24) so these products fit in int64 when compared as doubles first.
  if (static_cast<double>(n_atoms) * dim != static_cast<double>(a.atoms.length)) {
    throw Napi::RangeError::New(env, "atoms: expected nAtoms * dim = " + std::to_string(n_atoms) + " * " + std::to_string(dim) + " floats, received " +
                                         std::to_string(a.atoms.length));
  }
  if (static_cast<double>(n_targets) * dim != static_cast<double>(a.targets.length)) {
    throw Napi::RangeError::New(env, "targets: expected nTargets * dim = " + std::to_string(n_targets) + " * " + std::to_string(dim) +
                                         " floats, received " + std::to_string(a.targets.length));
  }
  if (static_cast<double>(n_targets) * k != static_cast<double>(a.out_indices.length)) {
    throw Napi::RangeError::New(env, "outIndices: expected nTargets * k = " + std::to_string(n_targets * k) + " entries, received " +
                                         std::to_string(a.out_indices.length));
  }
  if (a.out_coeffs.length != a.out_indices.length) {
    throw Napi::RangeError::New(env, "outCoeffs: expected nTargets * k = " + std::to_string(n_targets * k) + " floats, received " +
                                         std::to_string(a.out_coeffs.length));
  }
  if (a.out_counts.present && a.out_counts.length != n_targets) {
    throw Napi::RangeError::New(env, "outCounts: expected nTargets = " + std::to_string(n_targets) + " entries, received " +
                                         std::to_string(a.out_counts.length));
  }
  RefuseOverlap(env, {&a.out_indices, &a.out_coeffs, &a.out_counts}, {&a.atoms, &a.targets});
  a.problem.n_atoms = n_atoms;
  a.problem.n_targets = n_targets;
  a.problem.dim = dim;
  a.problem.k = static_cast<int>(k);
  a.problem.gram_cache_bytes = cache > 9.0e18 ? INT64_MAX : static_cast<int64_t>(cache);
  return a;
}

Napi::Value OmpBatch(const Napi::CallbackInfo& info) {
  OmpArgs a = ParseOmp(info);
  a.problem.atoms = static_cast<const float*>(a.atoms.data);
  a.problem.targets = static_cast<const float*>(a.targets.data);
  text::OmpResult out;
  out.indices = static_cast<int32_t*>(a.out_indices.data);
  out.coeffs = static_cast<float*>(a.out_coeffs.data);
  out.counts = a.out_counts.present ? static_cast<int32_t*>(a.out_counts.data) : nullptr;
  const Status s = RunGuarded([&] { return text::omp_batch(a.problem, out); });
  if (!s.is_ok()) ThrowStatus(info.Env(), s);
  return info.Env().Undefined();
}

// The async form: inputs and outputs staged (copied), progress(targetsDone).
class OmpWorker : public Napi::AsyncProgressWorker<int64_t> {
 public:
  // Everything that can throw is made by the caller first (see cm_binding.cpp).
  OmpWorker(Napi::Env env, OmpArgs&& args, Staging&& staging, text::OmpResult out, Napi::Promise::Deferred deferred,
            Napi::FunctionReference on_progress)
      : Napi::AsyncProgressWorker<int64_t>(env, "tokenpress:omp"), args_(std::move(args)), staging_(std::move(staging)), out_(out),
        deferred_(deferred), on_progress_(std::move(on_progress)) {}
  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute(const ExecutionProgress& progress) override {
    if (!on_progress_.IsEmpty()) args_.problem.progress = [&progress](int64_t done) { progress.Send(&done, 1); };
    status_ = RunGuarded([&] { return text::omp_batch(args_.problem, out_); });
    args_.problem.progress = nullptr;
  }
  void OnProgress(const int64_t* done, size_t count) override {
    if (count > 0) ReportProgress(Env(), on_progress_, static_cast<double>(done[count - 1]), &callback_error_);
  }
  void OnOK() override {
    if (!callback_error_.IsEmpty()) {
      NoThrow([&] { deferred_.Reject(callback_error_.Value()); });
      return;
    }
    Status s = status_;
    if (s.is_ok()) {
      NoThrow([&] {
        Napi::HandleScope scope(Env());
        const Status c = staging_.Commit(Env());
        if (!c.is_ok()) {
          deferred_.Reject(OutputChangedError(Env(), c));
          s = c;
        }
      });
      if (!s.is_ok()) return;
    }
    Settle(Env(), deferred_, s, [](Napi::Env env) { return env.Undefined(); });
  }
  void OnError(const Napi::Error& e) override { RejectWith(Env(), deferred_, e); }

 private:
  OmpArgs args_;
  Staging staging_;
  text::OmpResult out_;
  Napi::Promise::Deferred deferred_;
  Napi::FunctionReference on_progress_;
  Napi::ObjectReference callback_error_;
  Status status_;
};

Napi::Value Rejected(Napi::Env env, const Napi::Error& e) {
  auto deferred = Napi::Promise::Deferred::New(env);
  deferred.Reject(e.Value());
  return deferred.Promise();
}

Napi::Value OmpBatchAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  OmpArgs a;
  Staging staging;
  text::OmpResult out;
  try {
    GuardAlloc(env, [&] {
      a = ParseOmp(info);
      a.problem.atoms = static_cast<const float*>(staging.In(a.atoms));
      a.problem.targets = static_cast<const float*>(staging.In(a.targets));
      out.indices = static_cast<int32_t*>(staging.Out(a.out_indices));
      out.coeffs = static_cast<float*>(staging.Out(a.out_coeffs));
      out.counts = a.out_counts.present ? static_cast<int32_t*>(staging.Out(a.out_counts)) : nullptr;
      return 0;
    });
  } catch (const Napi::Error& e) {
    return Rejected(env, e);
  }
  Napi::Value on_progress = info.Length() > 1 ? info[1] : env.Undefined();
  if (!on_progress.IsUndefined() && !on_progress.IsFunction()) {
    return Rejected(env, Napi::TypeError::New(env, "onProgress: expected a function, received " + describe(on_progress)));
  }
  Napi::FunctionReference progress;
  if (on_progress.IsFunction()) progress = Napi::Persistent(on_progress.As<Napi::Function>());
  auto* worker = new OmpWorker(env, std::move(a), std::move(staging), out, Napi::Promise::Deferred::New(env), std::move(progress));
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

}  // namespace

void RegisterOmp(Napi::Env env, Napi::Object exports) {
  exports.Set("ompBatch", Napi::Function::New(env, Guarded<OmpBatch>, "ompBatch"));
  exports.Set("ompBatchAsync", Napi::Function::New(env, Guarded<OmpBatchAsync>, "ompBatchAsync"));
}

}  // namespace tp::binding
