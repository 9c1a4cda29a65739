// trDraft(params), trUpdate(params): Token Recycling over a table the caller
// owns (an Int32Array [vocab, topK], read and written in place). Every field
// is read first (SnapshotParams), then every length is checked here and
// every index by the kernel (native/spec/token_recycling.h).
#include <cstdint>
#include <string>

#include "../spec/token_recycling.h"
#include "../spec/topk_rows.h"
#include "bindings.h"
#include "napi_args.h"

namespace tp::binding {
namespace {

// The table fields shared by both calls: vocab, topK, table (length vocab * topK).
spec::TrTable ReadTrTable(Napi::Object o, TypedArrayView* view) {
  Napi::Env env = o.Env();
  const int64_t vocab = GetInt(o, "vocab");
  const int64_t topk = GetInt(o, "topK");
  if (vocab < 1 || vocab > INT32_MAX) throw Napi::RangeError::New(env, "vocab: expected an integer in [1, 2^31), received " + std::to_string(vocab));
  if (topk < 1 || topk > spec::kMaxTopK) {
    throw Napi::RangeError::New(env, "topK: expected an integer in [1, " + std::to_string(spec::kMaxTopK) + "], received " + std::to_string(topk));
  }
  *view = GetTypedArray(o, "table", napi_int32_array, true);
  if (view->length != vocab * topk) {
    throw Napi::RangeError::New(env, "table: expected vocab * topK = " + std::to_string(vocab * topk) + " entries, received " +
                                         std::to_string(view->length));
  }
  return {static_cast<int32_t*>(view->data), vocab, static_cast<int>(topk)};
}

Napi::Value TrDraft(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = SnapshotParams(info, {"table", "vocab", "topK", "parents", "ranks", "root", "maxNodes", "outTokens", "outParents"});
  TypedArrayView table_view;
  const spec::TrTable table = ReadTrTable(o, &table_view);
  const TypedArrayView parents = GetTypedArray(o, "parents", napi_int32_array, true);
  const TypedArrayView ranks = GetTypedArray(o, "ranks", napi_int32_array, true);
  const int64_t root = GetInt(o, "root");
  const int64_t max_nodes = GetInt(o, "maxNodes");
  const TypedArrayView out_tokens = GetTypedArray(o, "outTokens", napi_int32_array, true);
  const TypedArrayView out_parents = GetTypedArray(o, "outParents", napi_int32_array, true);
  if (parents.length < 1) throw Napi::RangeError::New(env, "parents: expected at least 1 entry (the root), received 0");
  if (ranks.length != parents.length) {
    throw Napi::RangeError::New(env, "ranks: expected " + std::to_string(parents.length) + " entries (one per template node), received " +
                                         std::to_string(ranks.length));
  }
  if (max_nodes < 1) throw Napi::RangeError::New(env, "maxNodes: expected an integer >= 1, received " + std::to_string(max_nodes));
  if (out_tokens.length < max_nodes) {
    throw Napi::RangeError::New(env, "outTokens: expected at least maxNodes = " + std::to_string(max_nodes) + " entries, received " + std::to_string(out_tokens.length));
  }
  if (out_parents.length < max_nodes) {
    throw Napi::RangeError::New(env, "outParents: expected at least maxNodes = " + std::to_string(max_nodes) + " entries, received " + std::to_string(out_parents.length));
  }
  if (root < 0 || root >= table.vocab) {
    throw Napi::RangeError::New(env, "root: expected a token in [0, " + std::to_string(table.vocab) + "), received " + std::to_string(root));
  }
  RefuseOverlap(env, {&out_tokens, &out_parents}, {&table_view, &parents, &ranks});
  const spec::TrTemplate tpl{static_cast<const int32_t*>(parents.data), static_cast<const int32_t*>(ranks.data), parents.length};
  int64_t count = 0;
  const Status s = spec::tr_draft(table, tpl, static_cast<int32_t>(root), max_nodes, static_cast<int32_t*>(out_tokens.data),
                                  static_cast<int32_t*>(out_parents.data), &count);
  if (!s.is_ok()) ThrowStatus(env, s);
  return Napi::Number::New(env, static_cast<double>(count));
}

Napi::Value TrUpdate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = SnapshotParams(info, {"table", "vocab", "topK", "tokens", "logits", "ids", "idsK"});
  TypedArrayView table_view;
  const spec::TrTable table = ReadTrTable(o, &table_view);
  const TypedArrayView tokens = GetTypedArray(o, "tokens", napi_int32_array, true);
  const TypedArrayView logits = GetTypedArray(o, "logits", napi_float32_array, false);
  const TypedArrayView ids = GetTypedArray(o, "ids", napi_int32_array, false);
  if (logits.present == ids.present) throw Napi::TypeError::New(env, "params: expected exactly one of logits or ids");
  RefuseOverlap(env, {&table_view}, {&tokens, &logits, &ids});
  const int64_t nodes = tokens.length;
  Status s;
  if (logits.present) {
    if (logits.length != nodes * table.vocab) {
      throw Napi::RangeError::New(env, "logits: expected nodes * vocab = " + std::to_string(nodes * table.vocab) + " floats, received " +
                                           std::to_string(logits.length));
    }
    s = spec::tr_update_logits(table, static_cast<const int32_t*>(tokens.data), nodes, static_cast<const float*>(logits.data));
  } else {
    const int64_t ids_k = GetInt(o, "idsK");
    if (ids_k < 1 || ids_k > table.topk || ids.length != nodes * ids_k) {
      throw Napi::RangeError::New(env, "ids: expected nodes * k = " + std::to_string(nodes) + " * " + std::to_string(ids_k) + " entries with k in [1, " +
                                           std::to_string(table.topk) + "], received " + std::to_string(ids.length));
    }
    s = spec::tr_update_ids(table, static_cast<const int32_t*>(tokens.data), nodes, static_cast<const int32_t*>(ids.data), ids_k);
  }
  if (!s.is_ok()) ThrowStatus(env, s);
  return env.Undefined();
}

}  // namespace

void RegisterSpecDrafters(Napi::Env env, Napi::Object exports) {
  exports.Set("trDraft", Napi::Function::New(env, Guarded<TrDraft>, "trDraft"));
  exports.Set("trUpdate", Napi::Function::New(env, Guarded<TrUpdate>, "trUpdate"));
}

}  // namespace tp::binding
