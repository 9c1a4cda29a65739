// ByteModel (ByteModelHandle) and trainByteModelAsync: see model_binding.h.
// fromBytes copies the bytes and validates them fully (kn_parse); a bad file
// throws an Error with code ERR_BAD_FILE. Training copies the text on the
// main thread (the caller may reuse or detach its buffer) and runs off the
// event loop.
#include "model_binding.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "../cuda/cuda_equal_info.h"
#include "async_work.h"
#include "bindings.h"
#include "handles.h"
#include "napi_args.h"

namespace tp::binding {
namespace {

using coding::KnModel;
using coding::KnTrainOptions;

// One constructor per Node environment (worker threads load the addon again).
std::mutex g_ctor_mutex;
std::unordered_map<napi_env, Napi::FunctionReference*> g_ctors;

Napi::FunctionReference* Constructor(Napi::Env env) {
  std::lock_guard<std::mutex> lock(g_ctor_mutex);
  auto it = g_ctors.find(env);
  return it == g_ctors.end() ? nullptr : it->second;
}

// Passed through an External from NewInstance to the constructor.
struct PendingModel {
  uint64_t tag;
  std::shared_ptr<const KnModel> model;
};
constexpr uint64_t kPendingTag = 0x6b6e2d6d6f64656cull;

Napi::Error BadFile(Napi::Env env, const std::string& message) {
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", "ERR_BAD_FILE");
  return e;
}

// A Uint8Array argument (not over a SharedArrayBuffer), or a TypeError naming it.
struct Bytes {
  const uint8_t* data;
  size_t size;
};
Bytes BytesArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    throw Napi::TypeError::New(info.Env(), std::string(name) + ": expected a Uint8Array, received " +
                                               (info.Length() > i ? describe(info[i]) : std::string("undefined")));
  }
  const RawTypedArray r = ReadTypedArray(info.Env(), info[i], name);
  static const uint8_t kEmpty[1] = {0};
  return r.data == nullptr ? Bytes{kEmpty, 0} : Bytes{static_cast<const uint8_t*>(r.data), r.length};
}

// Trains off the main thread. onProgress(fraction) hears from it; the first
// error it throws is kept, later progress is not reported, and the promise
// rejects with that error when training ends. Completion and progress never
// throw (async_work.h): after worker.terminate() they find JS gone.
class TrainWorker : public Napi::AsyncProgressWorker<double> {
 public:
  // Everything that can throw (the promise, the callback's reference) is made
  // by the caller first: the base class registers `this` with a thread-safe
  // function whose finalizer would run on freed memory if a later
  // initializer threw (seen under ASan when a worker_thread terminates).
  TrainWorker(Napi::Env env, std::vector<uint8_t> text, KnTrainOptions opts, Napi::Promise::Deferred deferred,
              Napi::FunctionReference on_progress)
      : Napi::AsyncProgressWorker<double>(env, "tokenpress:trainByteModel"),
        text_(std::move(text)),
        opts_(opts),
        deferred_(deferred),
        progress_(std::move(on_progress)) {}
  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute(const ExecutionProgress& progress) override {
    const bool report = !progress_.IsEmpty();
    coding::KnProgress cb = nullptr;
    if (report) cb = [&progress](double f) { progress.Send(&f, 1); };
    status_ = RunGuarded([&] { return KnModel::train(text_.data(), text_.size(), opts_, &model_, cb); });
    std::vector<uint8_t>().swap(text_);
  }
  void OnProgress(const double* data, size_t count) override {
    if (progress_.IsEmpty() || count == 0 || !callback_error_.IsEmpty()) return;
    NoThrow([&] {
      Napi::HandleScope scope(Env());
      try {
        progress_.Call({Napi::Number::New(Env(), data[count - 1])});
      } catch (const Napi::Error& e) {
        callback_error_ = Napi::Persistent(e.Value());
      }
    });
  }
  void OnOK() override {
    if (!callback_error_.IsEmpty()) {
      NoThrow([&] { deferred_.Reject(callback_error_.Value()); });
      return;
    }
    Settle(Env(), deferred_, status_,
           [&](Napi::Env env) { return ByteModelHandle::NewInstance(env, std::shared_ptr<const KnModel>(std::move(model_))); });
  }
  void OnError(const Napi::Error& e) override { RejectWith(Env(), deferred_, e); }

 private:
  std::vector<uint8_t> text_;
  KnTrainOptions opts_;
  Napi::Promise::Deferred deferred_;
  Napi::FunctionReference progress_;
  Napi::ObjectReference callback_error_;
  std::unique_ptr<KnModel> model_;
  Status status_;
};

// trainByteModelAsync(text: Uint8Array, opts: { maxOrder, maxBytes }, onProgress?)
// The options are read first (their getters run), then the text is copied.
Napi::Value TrainByteModelAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto deferred = Napi::Promise::Deferred::New(env);
  try {
    return GuardAlloc(env, [&]() -> Napi::Value {
      if (info.Length() < 2 || !info[1].IsObject()) throw Napi::TypeError::New(env, "opts: expected an object");
      const Napi::Object opts = Snapshot(info[1].As<Napi::Object>(), {"maxOrder", "maxBytes"});
      KnTrainOptions to;
      const int64_t order = GetInt(opts, "maxOrder");
      const int64_t max_bytes = GetInt(opts, "maxBytes");
      if (order < 1 || order > coding::kKnMaxOrderLimit) {
        throw Napi::RangeError::New(env, "maxOrder: expected an integer in [1, " + std::to_string(coding::kKnMaxOrderLimit) +
                                             "], received " + std::to_string(order));
      }
      if (max_bytes < 4096 || max_bytes > (int64_t{1} << 31)) {
        throw Napi::RangeError::New(env, "maxBytes: expected an integer in [4096, 2147483648], received " + std::to_string(max_bytes));
      }
      to.max_order = static_cast<int>(order);
      to.max_bytes = static_cast<uint64_t>(max_bytes);
      Napi::Function cb;
      if (info.Length() > 2 && !info[2].IsUndefined()) {
        if (!info[2].IsFunction()) throw Napi::TypeError::New(env, "onProgress: expected a function, received " + describe(info[2]));
        cb = info[2].As<Napi::Function>();
      }
      const Bytes text = BytesArg(info, 0, "text");
      std::vector<uint8_t> copy(text.data, text.data + text.size);
      Napi::FunctionReference progress;
      if (!cb.IsEmpty()) progress = Napi::Persistent(cb);
      auto* worker = new TrainWorker(env, std::move(copy), to, Napi::Promise::Deferred::New(env), std::move(progress));
      Napi::Promise p = worker->promise();
      worker->Queue();
      return p;
    });
  } catch (const Napi::Error& e) {
    deferred.Reject(e.Value());
    return deferred.Promise();
  }
}

}  // namespace

const napi_type_tag ByteModelHandle::kTag = kByteModelTag;

std::string IdentityHex(uint64_t id) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(id));
  return buf;
}

Napi::Function ByteModelHandle::Init(Napi::Env env) {
  using H = ByteModelHandle;
  Napi::Function ctor = DefineClass(env, "ByteModel", {});
  ctor.DefineProperty(Napi::PropertyDescriptor::Value("fromBytes", Napi::Function::New(env, Guarded<&H::FromBytes>, "fromBytes"),
                                                      static_cast<napi_property_attributes>(napi_writable | napi_configurable)));
  AddMethods(env, ctor,
             {{"serialize", Method<H, &H::Serialize>},
              {"info", Method<H, &H::Info>},
              {"masses", Method<H, &H::Masses>},
              {"evaluate", Method<H, &H::Evaluate>},
              {"benchMasses", Method<H, &H::BenchMasses>}});
  auto* ref = new Napi::FunctionReference(Napi::Persistent(ctor));
  {
    std::lock_guard<std::mutex> lock(g_ctor_mutex);
    g_ctors[env] = ref;
  }
  napi_env raw = env;
  env.AddCleanupHook([raw, ref]() {
    std::lock_guard<std::mutex> lock(g_ctor_mutex);
    g_ctors.erase(raw);
    delete ref;
  });
  return ctor;
}

Napi::Object ByteModelHandle::NewInstance(Napi::Env env, std::shared_ptr<const KnModel> model) {
  Napi::FunctionReference* ctor = Constructor(env);
  if (ctor == nullptr) throw Napi::Error::New(env, "ByteModel: the class is not registered in this environment");
  PendingModel pending{kPendingTag, std::move(model)};
  return ctor->New({Napi::External<PendingModel>::New(env, &pending)});
}

// By the tag set in the constructor (handles.h), never by prototype: a
// KvCacheHandle whose prototype is ByteModel.prototype is refused.
ByteModelHandle* ByteModelHandle::FromValue(Napi::Value v, const char* arg) {
  ByteModelHandle* h = UnwrapChecked<ByteModelHandle>(v, kTag, arg, kClassName);
  if (!h->model_) throw Napi::TypeError::New(v.Env(), std::string(arg) + ": expected a ByteModel, received an empty one");
  return h;
}

ByteModelHandle::~ByteModelHandle() {
  model_.reset();
  cuda::release_unused_device_models();
}

ByteModelHandle::ByteModelHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ByteModelHandle>(info) {
  if (info.Length() == 1 && info[0].IsExternal()) {
    auto* pending = info[0].As<Napi::External<PendingModel>>().Data();
    if (pending != nullptr && pending->tag == kPendingTag) {
      model_ = pending->model;
      TagHandle(info.This(), kTag);
      return;
    }
  }
  throw Napi::TypeError::New(info.Env(), "ByteModel: use ByteModel.fromBytes(bytes) or trainByteModelAsync(text, opts)");
}

Napi::Value ByteModelHandle::FromBytes(const Napi::CallbackInfo& info) {
  const Bytes bytes = BytesArg(info, 0, "bytes");
  std::unique_ptr<KnModel> m;
  Status s;
  try {
    s = KnModel::from_bytes(bytes.data, bytes.size, &m);
  } catch (const std::bad_alloc&) {
    s = Status::out_of_memory("ByteModel.fromBytes: out of memory");
  }
  if (s.code == StatusCode::InvalidArgument) throw BadFile(info.Env(), s.message);
  if (!s.is_ok()) ThrowStatus(info.Env(), s);
  return NewInstance(info.Env(), std::shared_ptr<const KnModel>(std::move(m)));
}

Napi::Value ByteModelHandle::Serialize(const Napi::CallbackInfo& info) {
  const std::vector<uint8_t>& b = model_->bytes();
  Napi::Uint8Array out = Napi::Uint8Array::New(info.Env(), b.size());
  if (!b.empty()) std::copy(b.begin(), b.end(), out.Data());
  return out;
}

Napi::Value ByteModelHandle::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const coding::KnModelInfo& i = model_->info();
  Napi::Object o = Napi::Object::New(env);
  o.Set("kind", "kneser-ney");
  o.Set("maxOrder", i.max_order);
  o.Set("version", i.version);
  o.Set("bytes", static_cast<double>(i.bytes));
  o.Set("identity", IdentityHex(i.identity));
  o.Set("trainedBytes", static_cast<double>(i.trained_bytes));
  Napi::Array ctx = Napi::Array::New(env, i.contexts.size());
  Napi::Array ent = Napi::Array::New(env, i.entries.size());
  for (size_t k = 0; k < i.contexts.size(); ++k) {
    ctx.Set(static_cast<uint32_t>(k), static_cast<double>(i.contexts[k]));
    ent.Set(static_cast<uint32_t>(k), static_cast<double>(i.entries[k]));
  }
  o.Set("contexts", ctx);
  o.Set("entries", ent);
  return o;
}

// masses(ctx: Uint8Array): Uint32Array(256); reads the last maxOrder bytes of ctx.
Napi::Value ByteModelHandle::Masses(const Napi::CallbackInfo& info) {
  Napi::Uint32Array out = Napi::Uint32Array::New(info.Env(), coding::kAlphabet);
  const Bytes ctx = BytesArg(info, 0, "context");  // after the allocation: nothing runs between pointer and use
  const size_t n = ctx.size;
  const int len = static_cast<int>(std::min<size_t>(n, static_cast<size_t>(model_->max_order())));
  model_->masses(ctx.data + (n - len), len, out.Data());
  return out;
}

// The context-restart period of evaluate() / benchMasses(): 0 (never) .. 2^20.
static int64_t WindowArg(const Napi::CallbackInfo& info, size_t index) {
  const int64_t window = info.Length() > index ? ToInt(info[index], "window") : 0;
  if (window < 0 || window > (1 << 20)) {
    throw Napi::RangeError::New(info.Env(), "window: expected an integer in [0, 1048576], received " + std::to_string(window));
  }
  return window;
}

// evaluate(text: Uint8Array, window: number): { bits, positionBits: Float64Array(window) }.
// Code length of text under the model (-log2 of the normalized masses), in
// bits. window 0: byte i sees min(i, maxOrder) bytes of context; window w > 0:
// the context restarts every w bytes (byte i sees i mod w, at most maxOrder),
// and positionBits[p] is the average at window position p. For measuring only
// (double precision logs); the coders use the integer masses.
Napi::Value ByteModelHandle::Evaluate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int64_t window = WindowArg(info, 1);
  const Bytes text = BytesArg(info, 0, "text");
  const uint8_t* t = text.data;
  const size_t n = text.size;
  const int order = model_->max_order();
  std::vector<double> pos_bits(static_cast<size_t>(window), 0.0);
  std::vector<uint64_t> pos_count(static_cast<size_t>(window), 0);
  uint32_t m[coding::kAlphabet];
  double bits = 0;
  for (size_t i = 0; i < n; ++i) {
    const size_t avail = window > 0 ? i % static_cast<size_t>(window) : i;
    const int len = static_cast<int>(std::min<size_t>(avail, static_cast<size_t>(order)));
    model_->masses(t + i - len, len, m);
    uint64_t total = 0;
    for (int s = 0; s < coding::kAlphabet; ++s) total += m[s];
    const double b = -std::log2(static_cast<double>(m[t[i]]) / static_cast<double>(total));
    bits += b;
    if (window > 0) {
      pos_bits[avail] += b;
      ++pos_count[avail];
    }
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("bits", bits);
  Napi::Float64Array pb = Napi::Float64Array::New(env, static_cast<size_t>(window));
  for (size_t p = 0; p < pos_bits.size(); ++p) pb[p] = pos_count[p] ? pos_bits[p] / pos_count[p] : 0.0;
  out.Set("positionBits", pb);
  return out;
}

// benchMasses(text: Uint8Array, window: number): nanoseconds per masses()
// call over text, contexts as in evaluate() (for benchmarks; no logs).
Napi::Value ByteModelHandle::BenchMasses(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int64_t window = WindowArg(info, 1);
  const Bytes text = BytesArg(info, 0, "text");
  const uint8_t* t = text.data;
  const size_t n = text.size;
  const int order = model_->max_order();
  uint32_t m[coding::kAlphabet];
  uint32_t sink = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (size_t i = 0; i < n; ++i) {
    const size_t avail = window > 0 ? i % static_cast<size_t>(window) : i;
    const int len = static_cast<int>(std::min<size_t>(avail, static_cast<size_t>(order)));
    model_->masses(t + i - len, len, m);
    sink += m[t[i]];
  }
  const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
  return Napi::Number::New(env, n == 0 ? 0.0 : ns / static_cast<double>(n) + (sink == 0xffffffffu ? 1e-9 : 0.0));
}

void RegisterModel(Napi::Env env, Napi::Object exports) {
  exports.Set("ByteModel", ByteModelHandle::Init(env));
  exports.Set("trainByteModelAsync", Napi::Function::New(env, Guarded<TrainByteModelAsync>, "trainByteModelAsync"));
}

}  // namespace tp::binding
