// EqualInfoStepper: Equal-Info coding driven by a model that lives in
// JavaScript (bring-your-own model). Each round, pending() lists the streams
// that need a prediction with their contexts (the bytes since their window
// started); advance() takes one row of 256 probabilities per pending stream,
// turns them into masses deterministically (quantize.h) and moves every stream one
// byte. Encoding has one stream per document; decoding one per window, so
// every window of every document advances in the same round.
#include <memory>
#include <string>
#include <vector>

#include "../coding/coding_batch.h"
#include "../coding/equal_info.h"
#include "../coding/quantize.h"
#include "bindings.h"
#include "coding_args.h"
#include "handles.h"

namespace tp::binding {

namespace {

using coding::kAlphabet;

class EqualInfoStepper : public Napi::ObjectWrap<EqualInfoStepper> {
 public:
  static constexpr const napi_type_tag& kTag = kStepperTag;
  static constexpr const char* kClassName = "EqualInfoStepper";
  // Methods go through Method<> (handles.h): `this` is checked by its tag.
  static Napi::Function Define(Napi::Env env) {
    using S = EqualInfoStepper;
    Napi::Function ctor = DefineClass(env, "EqualInfoStepper", {});
    AddMethods(env, ctor,
               {{"pending", Method<S, &S::Pending>}, {"advance", Method<S, &S::Advance>}, {"result", Method<S, &S::Result>}});
    return ctor;
  }

  explicit EqualInfoStepper(const Napi::CallbackInfo& info) : Napi::ObjectWrap<EqualInfoStepper>(info) {
    GuardAlloc(info.Env(), [&] { Init(info); });
    TagHandle(info.This(), kTag);
  }

 private:
  void Init(const Napi::CallbackInfo& info) {
    Napi::Object p = SnapshotParams(info, {"mode", "windowBits", "tokenBits", "docs", "tokens", "maxBytes"});
    GetWindowParams(p, &window_bits_, &token_bits_);
    Napi::Value mode = p.Get("mode");
    const std::string m = mode.IsString() ? mode.As<Napi::String>().Utf8Value() : "";
    if (m == "encode") {
      encode_ = true;
      docs_ = GetByteList(p, "docs", true);
      for (auto& d : docs_) encoders_.emplace_back(d.data, d.size, window_bits_);
    } else if (m == "decode") {
      const int64_t max_bytes = GetInt(p, "maxBytes");
      if (max_bytes < 0) throw Napi::RangeError::New(info.Env(), "maxBytes: expected an integer >= 0");
      max_bytes_ = static_cast<size_t>(max_bytes);
      auto tokens = GetTokenList(p, "tokens");
      bits_.resize(tokens.size());
      for (size_t i = 0; i < tokens.size(); i++) {
        size_t windows = 0;
        Status st = coding::tokens_to_bits(tokens[i].data(), tokens[i].size(), window_bits_, token_bits_, &bits_[i], &windows);
        if (!st.is_ok()) ThrowStatus(info.Env(), st);
        for (size_t w = 0; w < windows; w++) {
          decoders_.emplace_back(bits_[i].data(), bits_[i].size(), w * window_bits_, window_bits_,
                                 coding::window_byte_cap(window_bits_, max_bytes_));
          window_doc_.push_back(i);
        }
      }
    } else {
      throw Napi::TypeError::New(info.Env(), "mode: expected 'encode' or 'decode', received " + describe(mode));
    }
  }

  size_t streams() const { return encode_ ? encoders_.size() : decoders_.size(); }
  bool stream_done(size_t i) const { return encode_ ? encoders_[i].done() : decoders_[i].done(); }

  Napi::Value Pending(const Napi::CallbackInfo& info) { return DoPending(info); }
  Napi::Value Advance(const Napi::CallbackInfo& info) { return DoAdvance(info); }
  Napi::Value Result(const Napi::CallbackInfo& info) { return DoResult(info); }

  // { streams: Uint32Array, contexts: Uint8Array[] }; both empty when done.
  Napi::Value DoPending(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    pending_.clear();
    for (size_t i = 0; i < streams(); i++) {
      if (!stream_done(i)) pending_.push_back(i);
    }
    Napi::Uint32Array ids = Napi::Uint32Array::New(env, pending_.size());
    Napi::Array contexts = Napi::Array::New(env, pending_.size());
    for (size_t k = 0; k < pending_.size(); k++) {
      const size_t i = pending_[k];
      ids[k] = static_cast<uint32_t>(encode_ ? i : window_doc_[i]);
      const uint8_t* c = encode_ ? encoders_[i].context() : decoders_[i].context();
      const size_t n = encode_ ? encoders_[i].context_length() : decoders_[i].context_length();
      Napi::Uint8Array a = Napi::Uint8Array::New(env, n);
      if (n > 0) std::memcpy(a.Data(), c, n);
      contexts.Set(static_cast<uint32_t>(k), a);
    }
    Napi::Object r = Napi::Object::New(env);
    r.Set("streams", ids);
    r.Set("contexts", contexts);
    return r;
  }

  // probs: Float32Array or Float64Array of pending().contexts.length x 256.
  // Every row is checked before any stream moves.
  Napi::Value DoAdvance(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (failed_) throw Napi::Error::New(env, "EqualInfoStepper: a previous step failed");
    if (info.Length() < 1 || !info[0].IsTypedArray()) {
      throw Napi::TypeError::New(env, "probabilities: expected a Float32Array or Float64Array, received " +
                                          (info.Length() < 1 ? std::string("undefined") : describe(info[0])));
    }
    const size_t want = pending_.size() * kAlphabet;
    std::vector<uint32_t> masses(want);  // allocated before the pointer is taken
    const RawTypedArray t = ReadTypedArray(env, info[0], "probabilities");
    if (t.type != napi_float32_array && t.type != napi_float64_array) {
      throw Napi::TypeError::New(env, "probabilities: expected a Float32Array or Float64Array, received " + describe(info[0]));
    }
    const size_t have = t.data == nullptr ? 0 : t.length;
    if (have != want) {
      throw Napi::RangeError::New(env, "probabilities: expected " + std::to_string(want) + " values (256 per pending context), received " +
                                           std::to_string(have));
    }
    for (size_t k = 0; k < pending_.size(); k++) {
      Status st;
      uint32_t* row = masses.data() + k * kAlphabet;
      if (t.type == napi_float32_array) st = coding::probabilities_to_masses(static_cast<const float*>(t.data) + k * kAlphabet, row);
      else st = coding::probabilities_to_masses(static_cast<const double*>(t.data) + k * kAlphabet, row);
      if (!st.is_ok()) {
        st.message = "probabilities row " + std::to_string(k) + ", " + st.message;
        ThrowStatus(env, st);
      }
    }
    for (size_t k = 0; k < pending_.size(); k++) {
      const size_t i = pending_[k];
      Status st = encode_ ? encoders_[i].feed(masses.data() + k * kAlphabet) : decoders_[i].feed(masses.data() + k * kAlphabet);
      if (!st.is_ok()) {
        failed_ = true;
        ThrowStatus(env, st);
      }
    }
    pending_.clear();
    return env.Undefined();
  }

  // Encode: { tokens, windows }; decode: Uint8Array per document.
  Napi::Value DoResult(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    for (size_t i = 0; i < streams(); i++) {
      if (!stream_done(i)) throw Napi::Error::New(env, "EqualInfoStepper: result() before every stream is done");
    }
    if (encode_) {
      Napi::Array tokens = Napi::Array::New(env, encoders_.size());
      Napi::Array windows = Napi::Array::New(env, encoders_.size());
      for (size_t i = 0; i < encoders_.size(); i++) {
        coding::BitWriter& b = encoders_[i].bits();
        std::vector<uint32_t> tok;
        coding::bits_to_tokens(b.bytes(), b.bit_count(), token_bits_, &tok);
        tokens.Set(static_cast<uint32_t>(i), TokensToJs(env, tok, token_bits_));
        windows.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(encoders_[i].windows())));
      }
      Napi::Object r = Napi::Object::New(env);
      r.Set("tokens", tokens);
      r.Set("windows", windows);
      return r;
    }
    std::vector<std::vector<uint8_t>> docs(bits_.size());
    for (size_t w = 0; w < decoders_.size(); w++) {
      auto& out = decoders_[w].output();
      auto& doc = docs[window_doc_[w]];
      if (doc.size() + out.size() > max_bytes_) throw Napi::RangeError::New(env, "tokens: a document decodes to more than maxBytes");
      doc.insert(doc.end(), out.begin(), out.end());
    }
    Napi::Array r = Napi::Array::New(env, docs.size());
    for (size_t i = 0; i < docs.size(); i++) r.Set(static_cast<uint32_t>(i), BytesToJs(env, docs[i]));
    return r;
  }

  int window_bits_ = 0, token_bits_ = 0;
  bool encode_ = false, failed_ = false;
  size_t max_bytes_ = 0;
  std::vector<ByteInput> docs_;
  std::vector<coding::EqualInfoEncoder> encoders_;
  std::vector<std::vector<uint8_t>> bits_;
  std::vector<coding::EqualInfoWindowDecoder> decoders_;
  std::vector<size_t> window_doc_;
  std::vector<size_t> pending_;
};

}  // namespace

void RegisterCodingStepper(Napi::Env env, Napi::Object exports) {
  exports.Set("EqualInfoStepper", EqualInfoStepper::Define(env));
}

}  // namespace tp::binding
