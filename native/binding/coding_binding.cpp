// Coding entry points: Equal-Info windows and plain coding with a built-in
// model (batched over the thread pool), and the raw coder the benchmark
// times. Each has a sync form and an Async form that copies its inputs.
#include <cstring>
#include <functional>
#include <memory>

#include "../coding/coding_batch.h"
#include "../coding/decode_out.h"
#include "../coding/equal_info.h"
#include "../coding/equal_info_slots.h"
#include "../coding/static_coding.h"
#include "../cuda/cuda_equal_info.h"
#include "../cuda/cuda_probe.h"
#include "async_work.h"
#include "bindings.h"
#include "coding_args.h"

namespace tp::binding {

namespace {

using coding::ByteSpan;

// Runs `run` off the main thread, then settles a promise with `build`
// (never throwing: async_work.h).
class CodingWork : public PromiseWork {
 public:
  CodingWork(Napi::Env env, std::function<Status()> run, std::function<Napi::Value(Napi::Env)> build)
      : PromiseWork(env, "tokenpress:coding"), run_(std::move(run)), build_(std::move(build)) {}

 private:
  Status Run() override { return run_(); }
  Napi::Value Build(Napi::Env env) override { return build_(env); }
  std::function<Status()> run_;
  std::function<Napi::Value(Napi::Env)> build_;
};

// Sync calls run inline; Async calls queue a CodingWork. Either way the
// job owns everything it reads (async: copies made before this returns).
template <typename Job>
Napi::Value Dispatch(Napi::Env env, std::shared_ptr<Job> job, bool async) {
  if (!async) {
    Status st = job->run();
    if (!st.is_ok()) ThrowStatus(env, st);
    return job->build(env);
  }
  auto* w = new CodingWork(env, [job] { return job->run(); }, [job](Napi::Env e) { return job->build(e); });
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

std::vector<ByteSpan> Spans(const std::vector<ByteInput>& in) {
  std::vector<ByteSpan> s;
  s.reserve(in.size());
  for (const auto& b : in) s.push_back(b.span());
  return s;
}

Napi::Array ByteArrays(Napi::Env env, const std::vector<std::vector<uint8_t>>& list) {
  Napi::Array a = Napi::Array::New(env, list.size());
  for (size_t i = 0; i < list.size(); i++) a.Set(static_cast<uint32_t>(i), BytesToJs(env, list[i]));
  return a;
}

size_t GetMaxBytes(Napi::Object o) {
  const int64_t m = GetInt(o, "maxBytes");
  if (m < 0) throw Napi::RangeError::New(o.Env(), "maxBytes: expected an integer >= 0, received " + std::to_string(m));
  return static_cast<size_t>(m);
}

struct EncodeJob {
  std::shared_ptr<const coding::ByteModel> model;
  std::vector<ByteInput> docs;
  int window_bits = 0, token_bits = 0;
  std::vector<coding::TokenStream> out;
  Status run() { return coding::equal_info_encode_batch(*model, Spans(docs), window_bits, token_bits, &out); }
  Napi::Value build(Napi::Env env) {
    Napi::Array tokens = Napi::Array::New(env, out.size());
    Napi::Array windows = Napi::Array::New(env, out.size());
    for (size_t i = 0; i < out.size(); i++) {
      tokens.Set(static_cast<uint32_t>(i), TokensToJs(env, out[i].tokens, token_bits));
      windows.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(out[i].windows)));
    }
    Napi::Object r = Napi::Object::New(env);
    r.Set("tokens", tokens);
    r.Set("windows", windows);
    return r;
  }
};

Napi::Value EqualInfoEncode(const Napi::CallbackInfo& info, bool async) {
  Napi::Object p = SnapshotParams(info, {"model", "windowBits", "tokenBits", "docs"});
  auto job = std::make_shared<EncodeJob>();
  job->model = GetModel(p);
  GetWindowParams(p, &job->window_bits, &job->token_bits);
  job->docs = GetByteList(p, "docs", async);
  return Dispatch(info.Env(), job, async);
}

// Token lists -> checked window bits, on the main thread (cheap, and a bad
// list throws before any work starts).
struct WindowBits {
  std::vector<std::vector<uint8_t>> bits;
  std::vector<size_t> windows;
};

WindowBits ParseTokens(Napi::Object p, int window_bits, int token_bits) {
  auto tokens = GetTokenList(p, "tokens");
  WindowBits wb;
  wb.bits.resize(tokens.size());
  wb.windows.resize(tokens.size());
  for (size_t i = 0; i < tokens.size(); i++) {
    Status st = coding::tokens_to_bits(tokens[i].data(), tokens[i].size(), window_bits, token_bits, &wb.bits[i], &wb.windows[i]);
    if (!st.is_ok()) {
      st.message = "tokens[" + std::to_string(i) + "]" + st.message.substr(st.message.find(':'));
      ThrowStatus(p.Env(), st);
    }
  }
  return wb;
}

struct DecodeJob {
  std::shared_ptr<const coding::ByteModel> model;
  WindowBits in;
  int window_bits = 0;
  size_t max_bytes = 0;
  std::vector<std::vector<uint8_t>> out;
  Status run() { return coding::equal_info_decode_batch(*model, in.bits, in.windows, window_bits, max_bytes, &out); }
  Napi::Value build(Napi::Env env) { return ByteArrays(env, out); }
};

Napi::Value EqualInfoDecode(const Napi::CallbackInfo& info, bool async) {
  Napi::Object p = SnapshotParams(info, {"model", "windowBits", "tokenBits", "maxBytes", "tokens"});
  auto job = std::make_shared<DecodeJob>();
  job->model = GetModel(p);
  int token_bits = 0;
  GetWindowParams(p, &job->window_bits, &token_bits);
  job->max_bytes = GetMaxBytes(p);
  job->in = ParseTokens(p, job->window_bits, token_bits);
  return Dispatch(info.Env(), job, async);
}

// Random access: window `index` of one token list, decoded alone.
Napi::Value EqualInfoDecodeWindow(const Napi::CallbackInfo& info) {
  Napi::Object p = SnapshotParams(info, {"model", "windowBits", "tokenBits", "maxBytes", "tokens", "index"});
  auto model = GetModel(p);
  int window_bits = 0, token_bits = 0;
  GetWindowParams(p, &window_bits, &token_bits);
  const size_t max_bytes = GetMaxBytes(p);
  WindowBits wb = ParseTokens(p, window_bits, token_bits);
  if (wb.bits.size() != 1) throw Napi::RangeError::New(info.Env(), "tokens: expected exactly one token array");
  const int64_t index = GetInt(p, "index");
  if (index < 0 || static_cast<size_t>(index) >= wb.windows[0]) {
    throw Napi::RangeError::New(info.Env(), "index: expected a window index in [0, " + std::to_string(wb.windows[0]) +
                                                "), received " + std::to_string(index));
  }
  std::vector<uint8_t> out;
  Status st = coding::equal_info_decode_window(*model, wb.bits[0].data(), wb.bits[0].size(), static_cast<size_t>(index),
                                               window_bits, coding::window_byte_cap(window_bits, max_bytes), &out);
  if (!st.is_ok()) ThrowStatus(info.Env(), st);
  return BytesToJs(info.Env(), out);
}

// Slot decoding (equal_info_slots.h), the device algorithm: on the host
// (equalInfoDecodePortable, for tests without a GPU) or on the CUDA device
// (equalInfoDecodeCuda[Async]). Params as equalInfoDecode plus slotBytes
// (optional, 0 or absent = 4 * windowBits); result { docs, overflowWindows,
// kernelMs } (kernelMs: device time, 0 on the host).
struct SlotDecodeJob {
  // A model collected while this job ran keeps its device copy until here:
  // drop the model first, then the copies no live model uses.
  ~SlotDecodeJob() {
    if (!device) return;
    model.reset();
    cuda::release_unused_device_models();
  }
  std::shared_ptr<const coding::KnModel> model;
  WindowBits in;
  int window_bits = 0;
  size_t max_bytes = 0;
  uint32_t slot_bytes = 0;
  bool device = false;
  std::vector<std::vector<uint8_t>> out;
  size_t overflowed = 0;
  double kernel_ms = 0;
  Status run() {
    if (!device) {
      return coding::equal_info_decode_batch_portable(*model, in.bits, in.windows, window_bits, max_bytes, slot_bytes,
                                                      &out, &overflowed);
    }
    return cuda::decode_windows_on_device(model, in.bits, in.windows, window_bits, max_bytes, slot_bytes, &out,
                                          &overflowed, &kernel_ms);
  }
  Napi::Value build(Napi::Env env) {
    Napi::Object r = Napi::Object::New(env);
    r.Set("docs", ByteArrays(env, out));
    r.Set("overflowWindows", Napi::Number::New(env, static_cast<double>(overflowed)));
    r.Set("kernelMs", Napi::Number::New(env, kernel_ms));
    return r;
  }
};

Napi::Value EqualInfoDecodeSlots(const Napi::CallbackInfo& info, bool device, bool async) {
  Napi::Object p = SnapshotParams(info, {"model", "windowBits", "tokenBits", "maxBytes", "tokens", "slotBytes"});
  auto job = std::make_shared<SlotDecodeJob>();
  job->model = std::static_pointer_cast<const coding::KnModel>(ByteModelHandle::FromValue(p.Get("model"))->model());
  int token_bits = 0;
  GetWindowParams(p, &job->window_bits, &token_bits);
  job->max_bytes = GetMaxBytes(p);
  if (!p.Get("slotBytes").IsUndefined()) {
    const int64_t slot = GetInt(p, "slotBytes");
    if (slot < 0 || slot > (int64_t{1} << 20)) {
      throw Napi::RangeError::New(info.Env(), "slotBytes: expected an integer in [0, 1048576], received " + std::to_string(slot));
    }
    job->slot_bytes = static_cast<uint32_t>(slot);
  }
  job->in = ParseTokens(p, job->window_bits, token_bits);
  job->device = device;
  if (device) {
    const CudaStatus c = cuda_status();
    if (!c.compiled || c.device_count < 1) {
      Napi::Error e = Napi::Error::New(info.Env(), std::string("equalInfoDecodeCuda: no CUDA device available (") +
                                                       (c.compiled ? c.error : std::string("this build has no CUDA backend; npm run build:cuda builds it")) + ")");
      e.Set("code", "ERR_NO_CUDA");
      throw e;
    }
  }
  return Dispatch(info.Env(), job, async);
}

Napi::Value EqualInfoDecodePortable(const Napi::CallbackInfo& info) { return EqualInfoDecodeSlots(info, false, false); }
Napi::Value EqualInfoDecodeCuda(const Napi::CallbackInfo& info, bool async) { return EqualInfoDecodeSlots(info, true, async); }

struct StaticEncodeJob {
  std::shared_ptr<const coding::ByteModel> model;
  std::vector<ByteInput> docs;
  std::vector<std::vector<uint8_t>> out;
  Status run() { return coding::static_encode_batch(*model, Spans(docs), &out); }
  Napi::Value build(Napi::Env env) { return ByteArrays(env, out); }
};

Napi::Value StaticEncode(const Napi::CallbackInfo& info, bool async) {
  Napi::Object p = SnapshotParams(info, {"model", "docs"});
  auto job = std::make_shared<StaticEncodeJob>();
  job->model = GetModel(p);
  job->docs = GetByteList(p, "docs", async);
  return Dispatch(info.Env(), job, async);
}

struct StaticDecodeJob {
  std::shared_ptr<const coding::ByteModel> model;
  std::vector<ByteInput> payloads;
  std::vector<size_t> lengths;
  std::vector<std::vector<uint8_t>> out;
  Status run() { return coding::static_decode_batch(*model, Spans(payloads), lengths, &out); }
  Napi::Value build(Napi::Env env) { return ByteArrays(env, out); }
};

Napi::Value StaticDecode(const Napi::CallbackInfo& info, bool async) {
  Napi::Object p = SnapshotParams(info, {"model", "payloads", "lengths", "maxBytes"});
  auto job = std::make_shared<StaticDecodeJob>();
  job->model = GetModel(p);
  job->payloads = GetByteList(p, "payloads", async);
  Napi::Value lv = p.Get("lengths");
  if (!lv.IsArray() || lv.As<Napi::Array>().Length() != job->payloads.size()) {
    throw Napi::TypeError::New(info.Env(), "lengths: expected an array with one length per payload, received " + describe(lv));
  }
  const size_t max_bytes = GetMaxBytes(p);
  for (uint32_t i = 0; i < job->payloads.size(); i++) {
    const int64_t n = ToInt(lv.As<Napi::Array>().Get(i), "lengths[i]");
    if (n < 0 || static_cast<uint64_t>(n) > max_bytes) {
      throw Napi::RangeError::New(info.Env(), "lengths[" + std::to_string(i) + "]: expected an integer in [0, maxBytes = " +
                                                  std::to_string(max_bytes) + "], received " + std::to_string(n));
    }
    // Each byte narrows the range by at least (T - 255) / T (every other byte
    // keeps a frequency >= 1), so a valid payload of m bytes holds at most
    // (m + 5) * 8 / log2(2^16 / (2^16 - 255)) < (m + 5) * 1423 bytes: a larger
    // claim is refused before anything is allocated.
    const uint64_t most = (static_cast<uint64_t>(job->payloads[i].size) + 5) * 1423;
    if (static_cast<uint64_t>(n) > most) {
      throw Napi::RangeError::New(info.Env(), "lengths[" + std::to_string(i) + "]: expected at most " + std::to_string(most) +
                                                  " bytes (the most a " + std::to_string(job->payloads[i].size) +
                                                  "-byte payload can hold), received " + std::to_string(n));
    }
    job->lengths.push_back(static_cast<size_t>(n));
  }
  return Dispatch(info.Env(), job, async);
}

// The fixed table of the raw coder: 256 frequencies >= 1 summing to 2^totalLog2.
void GetFixedTable(Napi::Object p, std::vector<uint32_t>* freqs, int* total_log2) {
  TypedArrayView f = GetTypedArray(p, "freqs", napi_uint32_array, true);
  if (f.length != coding::kAlphabet) {
    throw Napi::RangeError::New(p.Env(), "freqs: expected 256 entries, received " + std::to_string(f.length));
  }
  freqs->assign(static_cast<uint32_t*>(f.data), static_cast<uint32_t*>(f.data) + coding::kAlphabet);
  *total_log2 = static_cast<int>(GetInt(p, "totalLog2"));
  Status st = coding::check_frequency_table(freqs->data(), *total_log2);
  if (!st.is_ok()) ThrowStatus(p.Env(), st);
}

Napi::Value RawEncode(const Napi::CallbackInfo& info) {
  Napi::Object p = SnapshotParams(info, {"freqs", "totalLog2", "data"});
  std::vector<uint32_t> freqs;
  int total_log2 = 0;
  GetFixedTable(p, &freqs, &total_log2);
  TypedArrayView d = GetTypedArray(p, "data", napi_uint8_array, true);
  std::vector<uint8_t> out;
  Status st = coding::raw_encode(freqs.data(), total_log2, static_cast<uint8_t*>(d.data), static_cast<size_t>(d.length), &out);
  if (!st.is_ok()) ThrowStatus(info.Env(), st);
  return BytesToJs(info.Env(), out);
}

Napi::Value RawDecode(const Napi::CallbackInfo& info) {
  Napi::Object p = SnapshotParams(info, {"freqs", "totalLog2", "payload", "length", "maxBytes"});
  std::vector<uint32_t> freqs;
  int total_log2 = 0;
  GetFixedTable(p, &freqs, &total_log2);
  TypedArrayView d = GetTypedArray(p, "payload", napi_uint8_array, true);
  const int64_t n = GetInt(p, "length");
  const size_t max_bytes = GetMaxBytes(p);
  if (n < 0 || static_cast<uint64_t>(n) > max_bytes) {
    throw Napi::RangeError::New(info.Env(), "length: expected an integer in [0, maxBytes], received " + std::to_string(n));
  }
  // No more than the payload can hold, checked before allocating (decode_out.h).
  Status bound = coding::check_decoded_length("length", static_cast<uint64_t>(n), d.length, total_log2);
  if (!bound.is_ok()) throw Napi::RangeError::New(info.Env(), bound.message);
  Napi::Uint8Array out = Napi::Uint8Array::New(info.Env(), static_cast<size_t>(n));
  Status st = coding::raw_decode(freqs.data(), total_log2, static_cast<uint8_t*>(d.data), static_cast<size_t>(d.length),
                                 n == 0 ? nullptr : out.Data(), static_cast<size_t>(n));
  if (!st.is_ok()) ThrowStatus(info.Env(), st);
  return out;
}

// Entry points: allocation failures become JS errors (GuardAlloc).
template <Napi::Value (*F)(const Napi::CallbackInfo&, bool), bool kAsync>
Napi::Value Entry(const Napi::CallbackInfo& info) {
  return GuardAlloc(info.Env(), [&] { return F(info, kAsync); });
}
template <Napi::Value (*F)(const Napi::CallbackInfo&)>
Napi::Value Entry(const Napi::CallbackInfo& info) {
  return GuardAlloc(info.Env(), [&] { return F(info); });
}

}  // namespace

void RegisterCoding(Napi::Env env, Napi::Object exports) {
  auto set = [&](const char* name, Napi::Value (*fn)(const Napi::CallbackInfo&)) {
    exports.Set(name, Napi::Function::New(env, fn, name));
  };
  set("equalInfoEncode", Entry<EqualInfoEncode, false>);
  set("equalInfoEncodeAsync", Entry<EqualInfoEncode, true>);
  set("equalInfoDecode", Entry<EqualInfoDecode, false>);
  set("equalInfoDecodeAsync", Entry<EqualInfoDecode, true>);
  set("equalInfoDecodeWindow", Entry<EqualInfoDecodeWindow>);
  set("equalInfoDecodePortable", Entry<EqualInfoDecodePortable>);
  set("equalInfoDecodeCuda", Entry<EqualInfoDecodeCuda, false>);
  set("equalInfoDecodeCudaAsync", Entry<EqualInfoDecodeCuda, true>);
  set("staticEncode", Entry<StaticEncode, false>);
  set("staticEncodeAsync", Entry<StaticEncode, true>);
  set("staticDecode", Entry<StaticDecode, false>);
  set("staticDecodeAsync", Entry<StaticDecode, true>);
  set("rawEncode", Entry<RawEncode>);
  set("rawDecode", Entry<RawDecode>);
}

}  // namespace tp::binding
