// compressAdaptive / decompressAdaptive (and their Async forms): the
// context-mixing coder of native/coding/cm_codec.h.
//
//   compressAdaptive(data: Uint8Array, opts?: { memoryLog2?: number }) -> Uint8Array
//   decompressAdaptive(payload: Uint8Array, n: number, opts?) -> Uint8Array (n bytes)
//
// n is re-checked here before anything is allocated: an integer in
// [0, kCmMaxLength] (2^31 - 1) and at most kCmMaxExpansion times the payload
// length (no stream from the encoder expands more; see cm_codec.h). Async
// forms copy their inputs on the main thread and run one worker thread.
#include <cstring>
#include <string>
#include <vector>

#include "../coding/cm_codec.h"
#include "async_work.h"
#include "bindings.h"
#include "napi_args.h"

namespace tp::binding {
namespace {

struct CmRequest {
  std::vector<uint8_t> input;  // copy (async) of the data or payload
  const uint8_t* data = nullptr;
  size_t length = 0;
  size_t original_length = 0;  // decompress only
  coding::CmOptions options;
};

void ReadBytes(const Napi::CallbackInfo& info, size_t index, const char* name, bool copy, CmRequest* r) {
  Napi::Value v = index < info.Length() ? info[index] : info.Env().Undefined();
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    throw Napi::TypeError::New(info.Env(), std::string(name) + ": expected a Uint8Array, received " + describe(v));
  }
  const RawTypedArray a = ReadTypedArray(info.Env(), v, name);
  r->length = a.data == nullptr ? 0 : a.length;
  static const uint8_t kEmpty[1] = {0};
  r->data = r->length == 0 ? kEmpty : static_cast<const uint8_t*>(a.data);
  if (r->length > coding::kCmMaxLength) {
    throw Napi::RangeError::New(info.Env(), std::string(name) + ": expected at most " + std::to_string(coding::kCmMaxLength) +
                                                " bytes, received " + std::to_string(r->length));
  }
  if (copy) {
    r->input.assign(r->data, r->data + r->length);
    r->data = r->input.empty() ? kEmpty : r->input.data();
  }
}

void ReadOptions(const Napi::CallbackInfo& info, size_t index, CmRequest* r) {
  if (index >= info.Length() || info[index].IsUndefined()) return;
  if (!info[index].IsObject()) throw Napi::TypeError::New(info.Env(), "opts: expected an object, received " + describe(info[index]));
  Napi::Object o = Snapshot(info[index].As<Napi::Object>(), {"memoryLog2"});
  Napi::Value m = o.Get("memoryLog2");
  if (m.IsUndefined()) return;
  const int64_t v = ToInt(m, "memoryLog2");
  if (v < coding::kCmMinMemoryLog2 || v > coding::kCmMaxMemoryLog2) {
    throw Napi::RangeError::New(info.Env(), "memoryLog2: expected an integer in [" + std::to_string(coding::kCmMinMemoryLog2) + ", " +
                                                std::to_string(coding::kCmMaxMemoryLog2) + "], received " + std::to_string(v));
  }
  r->options.memory_log2 = static_cast<int>(v);
}

void ReadOriginalLength(const Napi::CallbackInfo& info, size_t index, CmRequest* r) {
  Napi::Value v = index < info.Length() ? info[index] : info.Env().Undefined();
  const int64_t n = ToInt(v, "originalLength");
  if (n < 0 || static_cast<uint64_t>(n) > coding::cm_max_original_length(r->length)) {
    throw Napi::RangeError::New(info.Env(), "originalLength: expected an integer in [0, " +
                                                std::to_string(coding::cm_max_original_length(r->length)) + "] for a payload of " +
                                                std::to_string(r->length) + " bytes, received " + std::to_string(n));
  }
  r->original_length = static_cast<size_t>(n);
}

// The options object first (its getters run), the bytes last: no JS runs
// between taking the bytes' pointer and using it.
CmRequest ParseCompress(const Napi::CallbackInfo& info, bool copy) {
  CmRequest r;
  ReadOptions(info, 1, &r);
  ReadBytes(info, 0, "data", copy, &r);
  return r;
}

CmRequest ParseDecompress(const Napi::CallbackInfo& info, bool copy) {
  CmRequest r;
  ReadOptions(info, 2, &r);
  ReadBytes(info, 0, "payload", copy, &r);
  ReadOriginalLength(info, 1, &r);
  return r;
}

Napi::Uint8Array ToUint8Array(Napi::Env env, const std::vector<uint8_t>& bytes) {
  Napi::Uint8Array out = Napi::Uint8Array::New(env, bytes.size());
  if (!bytes.empty()) std::memcpy(out.Data(), bytes.data(), bytes.size());
  return out;
}

// Decompresses into a vector first, so a failed call hands back nothing.
Status RunDecompress(const CmRequest& r, std::vector<uint8_t>* out) {
  try {
    out->assign(r.original_length, 0);
  } catch (const std::bad_alloc&) {
    return Status::out_of_memory("decompressAdaptive: could not allocate " + std::to_string(r.original_length) + " bytes");
  }
  return coding::cm_decompress(r.data, r.length, r.options, out->data(), out->size());
}

Napi::Value CompressAdaptive(const Napi::CallbackInfo& info) {
  const CmRequest r = ParseCompress(info, false);
  std::vector<uint8_t> out;
  const Status s = coding::cm_compress(r.data, r.length, r.options, &out);
  if (!s.is_ok()) ThrowStatus(info.Env(), s);
  return ToUint8Array(info.Env(), out);
}

Napi::Value DecompressAdaptive(const Napi::CallbackInfo& info) {
  const CmRequest r = ParseDecompress(info, false);
  std::vector<uint8_t> out;
  const Status s = RunDecompress(r, &out);
  if (!s.is_ok()) ThrowStatus(info.Env(), s);
  return ToUint8Array(info.Env(), out);
}

// Runs off the main thread; an optional onProgress(bytesDone) callback hears
// from it every 1 MiB (a callback that throws rejects the promise at the end).
class CmWorker : public Napi::AsyncProgressWorker<size_t> {
 public:
  // Everything that can throw (the promise, the callback's reference) is made
  // by the caller first: the base class registers `this` with a thread-safe
  // function whose finalizer would run on freed memory if a later
  // initializer threw (seen under ASan when a worker_thread terminates).
  CmWorker(Napi::Env env, CmRequest&& request, bool decompress, Napi::Promise::Deferred deferred, Napi::FunctionReference on_progress)
      : Napi::AsyncProgressWorker<size_t>(env, "tokenpress:cm"), request_(std::move(request)), decompress_(decompress),
        deferred_(deferred), on_progress_(std::move(on_progress)) {
    if (!request_.input.empty()) request_.data = request_.input.data();
  }
  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute(const ExecutionProgress& progress) override {
    if (!on_progress_.IsEmpty()) request_.options.progress = [&progress](size_t done) { progress.Send(&done, 1); };
    status_ = RunGuarded([&] {
      return decompress_ ? RunDecompress(request_, &output_) : coding::cm_compress(request_.data, request_.length, request_.options, &output_);
    });
    request_.options.progress = nullptr;
  }
  // Progress and completion never throw (async_work.h): after
  // worker.terminate() they find JS gone.
  void OnProgress(const size_t* done, size_t count) override {
    if (count > 0) ReportProgress(Env(), on_progress_, static_cast<double>(*done), &callback_error_);
  }
  void OnOK() override {
    if (!callback_error_.IsEmpty()) NoThrow([&] { deferred_.Reject(callback_error_.Value()); });
    else Settle(Env(), deferred_, status_, [&](Napi::Env env) { return ToUint8Array(env, output_); });
  }
  void OnError(const Napi::Error& e) override { RejectWith(Env(), deferred_, e); }

 private:
  CmRequest request_;
  bool decompress_;
  Napi::Promise::Deferred deferred_;
  Napi::FunctionReference on_progress_;
  Napi::ObjectReference callback_error_;
  Status status_;
  std::vector<uint8_t> output_;
};

Napi::Value Rejected(Napi::Env env, const Napi::Error& e) {
  auto deferred = Napi::Promise::Deferred::New(env);
  deferred.Reject(e.Value());
  return deferred.Promise();
}

Napi::Value Queue(const Napi::CallbackInfo& info, bool decompress) {
  Napi::Env env = info.Env();
  CmRequest r;
  try {
    GuardAlloc(env, [&] { r = decompress ? ParseDecompress(info, true) : ParseCompress(info, true); });
  } catch (const Napi::Error& e) {
    return Rejected(env, e);
  }
  const size_t progress_arg = decompress ? 3 : 2;  // after (data, opts) or (payload, n, opts)
  Napi::Value on_progress = progress_arg < info.Length() ? info[progress_arg] : env.Undefined();
  if (!on_progress.IsUndefined() && !on_progress.IsFunction()) {
    return Rejected(env, Napi::TypeError::New(env, "onProgress: expected a function, received " + describe(on_progress)));
  }
  Napi::FunctionReference progress;
  if (on_progress.IsFunction()) progress = Napi::Persistent(on_progress.As<Napi::Function>());
  auto* worker = new CmWorker(env, std::move(r), decompress, Napi::Promise::Deferred::New(env), std::move(progress));
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

Napi::Value CompressAdaptiveAsync(const Napi::CallbackInfo& info) { return Queue(info, false); }
Napi::Value DecompressAdaptiveAsync(const Napi::CallbackInfo& info) { return Queue(info, true); }

}  // namespace

void RegisterCm(Napi::Env env, Napi::Object exports) {
  exports.Set("compressAdaptive", Napi::Function::New(env, Guarded<CompressAdaptive>, "compressAdaptive"));
  exports.Set("compressAdaptiveAsync", Napi::Function::New(env, Guarded<CompressAdaptiveAsync>, "compressAdaptiveAsync"));
  exports.Set("decompressAdaptive", Napi::Function::New(env, Guarded<DecompressAdaptive>, "decompressAdaptive"));
  exports.Set("decompressAdaptiveAsync", Napi::Function::New(env, Guarded<DecompressAdaptiveAsync>, "decompressAdaptiveAsync"));
}

}  // namespace tp::binding
