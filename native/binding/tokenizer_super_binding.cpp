// bpeEncodePieces, countTokenPairs, trainSuperMerges(Async): the native side of
// lib/tokenizer/supertokens.ts (kernels in native/text/bpe_merges.h). Every
// field is read first (SnapshotParams), every length is checked here and
// every id by the kernel. Offsets and counts are copied into int64 vectors
// before the kernel runs, and the trainer copies tokens and vocabulary bytes
// before its first progress callback, so a callback cannot change what it reads.
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "../text/bpe_merges.h"
#include "async_work.h"
#include "bindings.h"
#include "napi_args.h"

namespace tp::binding {
namespace {

// An Int32Array of non-decreasing offsets [n + 1] starting at 0 and ending at `total`, as int64.
std::vector<int64_t> ReadOffsets(Napi::Env env, const TypedArrayView& v, int64_t total, const char* name) {
  if (v.length < 1) throw Napi::RangeError::New(env, std::string(name) + ": expected at least 1 entry (0), received 0");
  const int32_t* p = static_cast<const int32_t*>(v.data);
  std::vector<int64_t> out(static_cast<size_t>(v.length));
  for (int64_t i = 0; i < v.length; ++i) {
    out[i] = p[i];
    if ((i == 0 && p[i] != 0) || (i > 0 && p[i] < p[i - 1])) {
      throw Napi::RangeError::New(env, std::string(name) + ": expected non-decreasing offsets from 0, received " + std::to_string(p[i]) + " at " + std::to_string(i));
    }
  }
  if (out.back() != total) {
    throw Napi::RangeError::New(env, std::string(name) + ": expected the last offset to equal " + std::to_string(total) + ", received " + std::to_string(out.back()));
  }
  return out;
}

Napi::Int32Array ToInt32Array(Napi::Env env, const int32_t* p, size_t n) {
  Napi::Int32Array a = Napi::Int32Array::New(env, n);
  std::copy(p, p + n, a.Data());
  return a;
}

Napi::Value BpeEncodePieces(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = SnapshotParams(info, {"merges", "nIds", "byteIds", "bytes", "pieceOffsets"});
  const int64_t n_ids = GetInt(o, "nIds");
  const TypedArrayView merges = GetTypedArray(o, "merges", napi_int32_array, true);
  const TypedArrayView byte_ids = GetTypedArray(o, "byteIds", napi_int32_array, true);
  const TypedArrayView bytes = GetTypedArray(o, "bytes", napi_uint8_array, true);
  const TypedArrayView offsets = GetTypedArray(o, "pieceOffsets", napi_int32_array, true);
  if (n_ids < 1 || n_ids > INT32_MAX) throw Napi::RangeError::New(env, "nIds: expected an integer in [1, 2^31), received " + std::to_string(n_ids));
  if (merges.length % 3 != 0) throw Napi::RangeError::New(env, "merges: expected (left, right, result) triples, received " + std::to_string(merges.length) + " entries");
  if (byte_ids.length != 256) throw Napi::RangeError::New(env, "byteIds: expected 256 entries, received " + std::to_string(byte_ids.length));
  const int32_t* bid = static_cast<const int32_t*>(byte_ids.data);
  for (int i = 0; i < 256; ++i) {
    if (bid[i] < 0 || bid[i] >= n_ids) throw Napi::RangeError::New(env, "byteIds: expected ids in [0, nIds), received " + std::to_string(bid[i]) + " at " + std::to_string(i));
  }
  const std::vector<int64_t> off = ReadOffsets(env, offsets, bytes.length, "pieceOffsets");
  text::MergeTable table;
  Status s = text::build_merge_table(static_cast<const int32_t*>(merges.data), merges.length / 3, n_ids, &table);
  if (!s.is_ok()) ThrowStatus(env, s);
  std::vector<int32_t> ids;
  std::vector<int64_t> ends;
  s = text::bpe_encode_pieces(table, bid, static_cast<const uint8_t*>(bytes.data), off.data(), static_cast<int64_t>(off.size()) - 1, &ids, &ends);
  if (!s.is_ok()) ThrowStatus(env, s);
  if (ids.size() > static_cast<size_t>(INT32_MAX)) ThrowStatus(env, Status::invalid("bytes: expected under 2^31 tokens of output"));
  std::vector<int32_t> ends32(ends.begin(), ends.end());
  Napi::Object out = Napi::Object::New(env);
  out.Set("ids", ToInt32Array(env, ids.data(), ids.size()));
  out.Set("ends", ToInt32Array(env, ends32.data(), ends32.size()));
  return out;
}

// tokens Int32Array, offsets Int32Array [n + 1], counts Int32Array [n] (each >= 1, checked by the kernel).
struct ChunkArgs {
  TypedArrayView tokens;
  std::vector<int64_t> offsets, counts;
  text::Chunks view() const {
    return {static_cast<const int32_t*>(tokens.data), offsets.data(), counts.data(), static_cast<int64_t>(counts.size())};
  }
};

ChunkArgs ReadChunks(Napi::Object o) {
  Napi::Env env = o.Env();
  ChunkArgs c;
  c.tokens = GetTypedArray(o, "tokens", napi_int32_array, true);
  const TypedArrayView offsets = GetTypedArray(o, "offsets", napi_int32_array, true);
  const TypedArrayView counts = GetTypedArray(o, "counts", napi_int32_array, true);
  c.offsets = ReadOffsets(env, offsets, c.tokens.length, "offsets");
  if (counts.length != offsets.length - 1) {
    throw Napi::RangeError::New(env, "counts: expected one count per chunk (" + std::to_string(offsets.length - 1) + "), received " + std::to_string(counts.length));
  }
  const int32_t* cp = static_cast<const int32_t*>(counts.data);
  c.counts.assign(cp, cp + counts.length);
  return c;
}

Napi::Value CountTokenPairs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = SnapshotParams(info, {"tokens", "offsets", "counts", "nIds"});
  const int64_t n_ids = GetInt(o, "nIds");
  if (n_ids < 1 || n_ids > INT32_MAX) throw Napi::RangeError::New(env, "nIds: expected an integer in [1, 2^31), received " + std::to_string(n_ids));
  const ChunkArgs c = ReadChunks(o);
  std::unordered_map<uint64_t, int64_t> counts;
  const Status s = text::count_pairs(c.view(), n_ids, &counts);
  if (!s.is_ok()) ThrowStatus(env, s);
  std::vector<std::pair<uint64_t, int64_t>> sorted(counts.begin(), counts.end());
  std::sort(sorted.begin(), sorted.end());
  Napi::Int32Array left = Napi::Int32Array::New(env, sorted.size()), right = Napi::Int32Array::New(env, sorted.size());
  Napi::Float64Array count = Napi::Float64Array::New(env, sorted.size());
  for (size_t i = 0; i < sorted.size(); ++i) {
    left[i] = static_cast<int32_t>(sorted[i].first >> 32);
    right[i] = static_cast<int32_t>(sorted[i].first & 0xffffffffu);
    count[i] = static_cast<double>(sorted[i].second);
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("left", left);
  out.Set("right", right);
  out.Set("count", count);
  return out;
}

Napi::Value TrainSuperMerges(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = SnapshotParams(info, {"tokens", "offsets", "counts", "vocabBytes", "vocabOffsets", "nMerges", "maxWords", "minCount", "onProgress"});
  const ChunkArgs c = ReadChunks(o);
  const TypedArrayView vocab_bytes = GetTypedArray(o, "vocabBytes", napi_uint8_array, true);
  const TypedArrayView vocab_offsets = GetTypedArray(o, "vocabOffsets", napi_int32_array, true);
  const int64_t n_merges = GetInt(o, "nMerges");
  const int64_t max_words = GetInt(o, "maxWords");
  const int64_t min_count = GetInt(o, "minCount");
  Napi::Value cb = o.Get("onProgress");
  if (!cb.IsUndefined() && !cb.IsFunction()) throw Napi::TypeError::New(env, "onProgress: expected a function or undefined, received " + describe(cb));
  const std::vector<int64_t> voff = ReadOffsets(env, vocab_offsets, vocab_bytes.length, "vocabOffsets");
  const int64_t n_vocab = static_cast<int64_t>(voff.size()) - 1;
  if (n_vocab < 1) throw Napi::RangeError::New(env, "vocabOffsets: expected at least one token, received none");
  if (n_merges < 0 || n_merges > INT32_MAX - n_vocab) throw Napi::RangeError::New(env, "nMerges: expected an integer in [0, 2^31 - vocabulary size), received " + std::to_string(n_merges));
  if (max_words < 0 || max_words > 1000000) throw Napi::RangeError::New(env, "maxWords: expected an integer in [0, 1e6], received " + std::to_string(max_words));
  if (min_count < 1) throw Napi::RangeError::New(env, "minCount: expected an integer >= 1, received " + std::to_string(min_count));
  text::SuperTrainConfig cfg{static_cast<const uint8_t*>(vocab_bytes.data), voff.data(), n_vocab, n_merges, static_cast<int>(max_words), min_count};
  std::function<bool(int64_t)> progress;
  if (cb.IsFunction()) {
    Napi::Function fn = cb.As<Napi::Function>();
    progress = [env, fn](int64_t done) {
      Napi::Value r = fn.Call({Napi::Number::New(env, static_cast<double>(done))});
      return !(r.IsBoolean() && !r.As<Napi::Boolean>().Value());
    };
  }
  std::vector<int32_t> pairs;
  std::vector<int64_t> counts;
  const Status s = text::train_super_merges(c.view(), cfg, progress, &pairs, &counts);
  if (!s.is_ok()) ThrowStatus(env, s);
  Napi::Float64Array count = Napi::Float64Array::New(env, counts.size());
  for (size_t i = 0; i < counts.size(); ++i) count[i] = static_cast<double>(counts[i]);
  Napi::Object out = Napi::Object::New(env);
  out.Set("pairs", ToInt32Array(env, pairs.data(), pairs.size()));
  out.Set("counts", count);
  return out;
}

// The async form: every input copied into the request on the main thread;
// training runs off it, onProgress(done) hears from it every 64 merges (its
// return value is ignored; a callback that throws rejects the promise at the end).
struct SuperTrainRequest {
  std::vector<int32_t> tokens;
  std::vector<int64_t> offsets, counts, vocab_offsets;
  std::vector<uint8_t> vocab_bytes;
  int64_t n_merges = 0, min_count = 1;
  int max_words = 0;
};

class SuperTrainWorker : public Napi::AsyncProgressWorker<int64_t> {
 public:
  // The promise and the callback's reference are made by the caller first (see CmWorker in cm_binding.cpp).
  SuperTrainWorker(Napi::Env env, SuperTrainRequest&& r, Napi::Promise::Deferred deferred, Napi::FunctionReference on_progress)
      : Napi::AsyncProgressWorker<int64_t>(env, "tokenpress:supertokens"), r_(std::move(r)), deferred_(deferred), on_progress_(std::move(on_progress)) {}
  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute(const ExecutionProgress& progress) override {
    std::function<bool(int64_t)> cb;
    if (!on_progress_.IsEmpty()) cb = [&progress](int64_t done) { progress.Send(&done, 1); return true; };
    status_ = RunGuarded([&] {
      const text::Chunks chunks{r_.tokens.data(), r_.offsets.data(), r_.counts.data(), static_cast<int64_t>(r_.counts.size())};
      const text::SuperTrainConfig cfg{r_.vocab_bytes.data(), r_.vocab_offsets.data(), static_cast<int64_t>(r_.vocab_offsets.size()) - 1,
                                       r_.n_merges, r_.max_words, r_.min_count};
      return text::train_super_merges(chunks, cfg, cb, &pairs_, &merge_counts_);
    });
  }
  void OnProgress(const int64_t* done, size_t count) override {
    if (count > 0) ReportProgress(Env(), on_progress_, static_cast<double>(*done), &callback_error_);
  }
  void OnOK() override {
    if (!callback_error_.IsEmpty()) {
      NoThrow([&] { deferred_.Reject(callback_error_.Value()); });
      return;
    }
    Settle(Env(), deferred_, status_, [&](Napi::Env env) {
      Napi::Float64Array count = Napi::Float64Array::New(env, merge_counts_.size());
      for (size_t i = 0; i < merge_counts_.size(); ++i) count[i] = static_cast<double>(merge_counts_[i]);
      Napi::Object out = Napi::Object::New(env);
      out.Set("pairs", ToInt32Array(env, pairs_.data(), pairs_.size()));
      out.Set("counts", count);
      return out;
    });
  }
  void OnError(const Napi::Error& e) override { RejectWith(Env(), deferred_, e); }

 private:
  SuperTrainRequest r_;
  Napi::Promise::Deferred deferred_;
  Napi::FunctionReference on_progress_;
  Napi::ObjectReference callback_error_;
  Status status_;
  std::vector<int32_t> pairs_;
  std::vector<int64_t> merge_counts_;
};

Napi::Value TrainSuperMergesAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Promise::Deferred deferred = Napi::Promise::Deferred::New(env);
  SuperTrainRequest r;
  Napi::FunctionReference progress;
  try {
    GuardAlloc(env, [&] {
      Napi::Object o = SnapshotParams(info, {"tokens", "offsets", "counts", "vocabBytes", "vocabOffsets", "nMerges", "maxWords", "minCount", "onProgress"});
      const ChunkArgs c = ReadChunks(o);
      const TypedArrayView vocab_bytes = GetTypedArray(o, "vocabBytes", napi_uint8_array, true);
      const TypedArrayView vocab_offsets = GetTypedArray(o, "vocabOffsets", napi_int32_array, true);
      r.n_merges = GetInt(o, "nMerges");
      const int64_t max_words = GetInt(o, "maxWords");
      r.min_count = GetInt(o, "minCount");
      Napi::Value cb = o.Get("onProgress");
      if (!cb.IsUndefined() && !cb.IsFunction()) throw Napi::TypeError::New(env, "onProgress: expected a function or undefined, received " + describe(cb));
      r.vocab_offsets = ReadOffsets(env, vocab_offsets, vocab_bytes.length, "vocabOffsets");
      const int64_t n_vocab = static_cast<int64_t>(r.vocab_offsets.size()) - 1;
      if (n_vocab < 1) throw Napi::RangeError::New(env, "vocabOffsets: expected at least one token, received none");
      if (r.n_merges < 0 || r.n_merges > INT32_MAX - n_vocab) throw Napi::RangeError::New(env, "nMerges: expected an integer in [0, 2^31 - vocabulary size), received " + std::to_string(r.n_merges));
      if (max_words < 0 || max_words > 1000000) throw Napi::RangeError::New(env, "maxWords: expected an integer in [0, 1e6], received " + std::to_string(max_words));
      if (r.min_count < 1) throw Napi::RangeError::New(env, "minCount: expected an integer >= 1, received " + std::to_string(r.min_count));
      r.max_words = static_cast<int>(max_words);
      const int32_t* tp = static_cast<const int32_t*>(c.tokens.data);
      r.tokens.assign(tp, tp + c.tokens.length);
      r.offsets = c.offsets;
      r.counts = c.counts;
      const uint8_t* vp = static_cast<const uint8_t*>(vocab_bytes.data);
      r.vocab_bytes.assign(vp, vp + vocab_bytes.length);
      if (r.vocab_bytes.empty()) r.vocab_bytes.push_back(0);  // a valid pointer for an all-empty vocabulary
      if (cb.IsFunction()) progress = Napi::Persistent(cb.As<Napi::Function>());
    });
  } catch (const Napi::Error& e) {
    deferred.Reject(e.Value());
    return deferred.Promise();
  }
  auto* worker = new SuperTrainWorker(env, std::move(r), deferred, std::move(progress));
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

}  // namespace

void RegisterTokenizerSuper(Napi::Env env, Napi::Object exports) {
  exports.Set("bpeEncodePieces", Napi::Function::New(env, Guarded<BpeEncodePieces>, "bpeEncodePieces"));
  exports.Set("countTokenPairs", Napi::Function::New(env, Guarded<CountTokenPairs>, "countTokenPairs"));
  exports.Set("trainSuperMerges", Napi::Function::New(env, Guarded<TrainSuperMerges>, "trainSuperMerges"));
  exports.Set("trainSuperMergesAsync", Napi::Function::New(env, Guarded<TrainSuperMergesAsync>, "trainSuperMergesAsync"));
}

}  // namespace tp::binding
