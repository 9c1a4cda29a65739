// A native KV cache: nLayers x nKvHeads independent token lists, each with
// its own length, so head- and layer-wise budgets really free memory.
//
// Per (layer, head), tokens are stored oldest first:
//   float caches (f32/f16/bf16): rows [len, headDim] of the cache dtype
//   int caches (int8/int4, KIVI): full blocks of `group` quantized tokens,
//     then a tail of up to residual + group - 1 newest tokens in f16
//   pos   i32 [len]  original position of each token
//   mass  f32 [len]  accumulated attention mass (H2O), from attend()
//   count f32 [len]  how many original tokens a row stands for (merging)
// Storage grows geometrically up to `capacity` tokens per (layer, head) and
// shrinks after compression; compaction moves rows in place.
//
// Not thread-safe: the binding serializes calls on one cache.
#pragma once
#include <chrono>
#include <cstdint>
#include <vector>

#include "../core/byte_buffer.h"
#include "../core/dtype.h"
#include "../core/status.h"
#include "kv_cache_api.h"
#include "kv_grow.h"
#include "kv_plan.h"
#include "kv_quant.h"
#include "../sparse/blocks.h"
#include "../sparse/quest.h"
#include "../sparse/tidal.h"

namespace tp::kv {

enum class CacheType : int { F32 = 0, F16 = 1, BF16 = 2, Int8 = 3, Int4 = 4 };

struct CacheConfig {
  int64_t n_layers = 0, n_kv_heads = 0, head_dim = 0, capacity = 0;
  CacheType type = CacheType::F16;
  int64_t group = 32;      // int types: tokens per key group, channels per value group
  int64_t residual = 128;  // int types: newest tokens kept in f16
  int64_t window = 32;     // queries remembered per layer for scoring
  // Tokens per (layer, head) whose storage is allocated and populated at
  // creation and kept through clear() and compression (CPU cache; 0: none):
  // appends up to this length never grow storage.
  int64_t reserve = 0;
  // Int caches: tokens that commit / rollback may drop while restoring the
  // quantized groups and the f16 tail exactly (kv_cache_spec.cpp); 0: none
  // (rows come back from their quantized values).
  int64_t speculative = 0;
};

// Storage grows geometrically and large buffers grow by mremap with their
// new pages populated up front (kv_grow.h), so an append costs O(new tokens).
struct HeadStore {
  GrowBuffer k, v;        // float rows, or the f16 tail of an int cache
  int64_t rows_alloc = 0;  // rows k and v have room for
  GrowBuffer blocks;      // int caches: quantized blocks
  int64_t blocks_alloc = 0, n_blocks = 0;
  int64_t len = 0;        // tokens, blocks included
  std::vector<int32_t, PageAlloc<int32_t>> pos;
  std::vector<float, PageAlloc<float>> mass, count;
  // Int caches with cfg.speculative > 0: f16 copies of the rows of the
  // newest quantized blocks, a ring of spec_blocks blocks (block b in slot
  // b % spec_blocks, [group, headDim] each for k and v), so that commit and
  // rollback can put rows back into the f16 tail exactly. Block b's copy is
  // valid when b >= shadow_from and b >= n_blocks - spec_blocks.
  GrowBuffer shadow_k, shadow_v;
  int64_t shadow_from = 0;
};

// Views of appended rows: [nKvHeads, n, headDim], innermost contiguous.
struct AppendInput {
  int64_t n = 0;
  const void* k = nullptr;
  const void* v = nullptr;
  DType k_dtype = DType::F32, v_dtype = DType::F32;
  int64_t k_head_stride = 0, k_row_stride = 0, k_len = 0;
  int64_t v_head_stride = 0, v_row_stride = 0, v_len = 0;
  const int32_t* positions = nullptr;  // [n] or null: continue the layer's positions
  int64_t positions_len = 0;
  // Decoding-time compression in the same call (autoCompress): once the
  // layer's longest head holds compress_at tokens or more than the capacity,
  // the layer is compressed with this request (its layers are ignored). The
  // append may then overflow the capacity by the incoming tokens while the
  // call runs, if compress->keep + n fits in it. Whatever fails, the append
  // is undone: the call changes nothing. CPU cache only; the device cache
  // ignores it (lib/kv/cache.ts compresses separately there).
  const CompressRequest* compress = nullptr;
  int64_t compress_at = 0;
};

struct AttendInput {
  int64_t n_heads = 0, n_q = 0;
  const float* q = nullptr;  // [nHeads, nQ, headDim]
  int64_t q_head_stride = 0, q_row_stride = 0, q_len = 0;
  float scale = 0.0f;        // 0: 1/sqrt(headDim)
  float softcap = 0.0f;
  bool causal = true;        // the queries are the newest nQ tokens of each head
  bool accumulate_mass = false;
  bool remember = true;      // keep the queries as the observation window
  float* out = nullptr;      // [nHeads, nQ, headDim]
  int64_t out_len = 0;
  float* lse = nullptr;      // [nHeads, nQ] or null
  int64_t lse_len = 0;
  // Speculative decoding: the queries are the newest nQ tokens of each head
  // and form a tree, tree_parents [nQ] (-1 root, else an earlier node): node
  // i sees every older token plus its ancestors and itself (attention.h).
  // Dense attends only, without key mass or remembered queries (rejected
  // nodes must leave no trace); every head must hold at least nQ tokens.
  const int32_t* tree_parents = nullptr;
  int64_t tree_len = 0;
  // Sparse attention (native/sparse): 0 dense, 1 Quest pages, 2 TidalDecode,
  // 3 block retrieval. The CPU cache runs it; the device cache refuses it.
  int sparse_method = 0;
  sparse::QuestOptions quest;
  sparse::BlockOptions blocks;
  // TidalDecode: the layer's role in the decode step (the TS layer derives it
  // from the schedule): 0 full attention, 1 full attention + selection (the
  // selection layer or a re-selection layer), 2 attention over the positions
  // the latest selection of this step kept.
  sparse::TokenSelectOptions tidal;
  int tidal_role = 0;
  // On request, the rows each KV head attended: [nKvHeads, selected_stride]
  // ascending, -1 padded (selected_stride >= the layer's longest head), and
  // their counts [nKvHeads].
  int32_t* selected = nullptr;
  int64_t selected_stride = 0, selected_len = 0;
  int32_t* selected_count = nullptr;
  int64_t selected_count_len = 0;
};

// The Quest page summaries of one layer, decoded to f32 (tests, docs):
// lo, hi [nKvHeads, pages, headDim] with pages = ceil(longest head / P)
// (0 padded), and per head its page count.
struct SummaryExport {
  int64_t page_size = 0;  // 0: the layer has none (no sparse attend yet)
  int64_t pages = 0;
  std::vector<float> lo, hi;
  std::vector<float> mean;  // block retrieval layers: the mean keys, the same shape (else empty)
  std::vector<int32_t> head_pages;
  int64_t bytes = 0;      // memory the layer's summaries hold
};

struct CompressReport {
  int64_t tokens_before = 0, tokens_after = 0;
  int64_t bytes_before = 0, bytes_after = 0;
  double plan_ms = 0, apply_ms = 0;  // scoring + selection (+ merge targets); merge + compaction
  double release_ms = 0;             // shrinking the storage (copies of kept rows, frees)
  int64_t bytes_moved = 0;           // bytes compaction read and wrote (rows, positions, accumulators)
};

// Argument checks every cache implementation runs first (the CPU KvCache and
// the device cache give the same errors): layer, views, finite k / v,
// positions and the capacity left in each head for append; layer, shapes,
// buffers, finite q, scale and softcap for attend.
Status check_append(const KvCacheApi& cache, int64_t layer, const AppendInput& in);
// check_append without the finite scan of k and v (the CPU float cache scans
// each head's rows while it copies them, and bumps no length on failure).
Status check_append_args(const KvCacheApi& cache, int64_t layer, const AppendInput& in);
Status check_attend(const CacheConfig& cfg, int64_t layer, const AttendInput& in);
// Compress: the policy name, budget, allocation options, retrieval flags and
// draft queries; `layers` gets the request's layers (every layer when none),
// checked in range and distinct.
Status check_compress(const CacheConfig& cfg, const CompressRequest& req, std::vector<int64_t>* layers);
// Export: the layer and the sizes of the output buffers.
Status check_export(const KvCacheApi& cache, int64_t layer, int64_t kv_len, int64_t pos_len, const float* counts, int64_t counts_len);

class KvCache final : public KvCacheApi {
 public:
  static Status create(const CacheConfig& cfg, KvCache** out);
  const CacheConfig& config() const override { return cfg_; }
  const char* device() const override { return "cpu"; }

  Status append(int64_t layer, const AppendInput& in) override;
  Status attend(int64_t layer, const AttendInput& in) override;
  // Scores, selects, merges and compacts the given layers (all when empty).
  Status compress(const CompressRequest& req, CompressReport* report) override;
  // Dense copy of one layer: k, v [nKvHeads, maxLen, headDim] as `out_type`
  // (zero padded), positions [nKvHeads, maxLen] (-1 padded), and when given,
  // counts [nKvHeads, maxLen] (tokens each row stands for; 0 padded).
  Status export_layer(int64_t layer, DType out_type, void* k, void* v, int64_t kv_len, int32_t* positions, int64_t pos_len,
                      float* counts = nullptr, int64_t counts_len = 0) const override;

  int64_t length(int64_t layer, int64_t head) const override { return heads_[layer * cfg_.n_kv_heads + head].len; }
  int64_t max_length(int64_t layer) const override;
  int64_t memory_bytes() const override;
  int64_t total_tokens() const override;
  void clear() override;
  void clear_layer(int64_t layer) override;  // layer must be in range
  // Observation window of a layer: the newest `rows` queries given to attend,
  // [nHeads, window, headDim] with rows valid per head (head stride window * headDim).
  const std::vector<float>& window(int64_t layer, int64_t* n_heads, int64_t* rows) const;
  // The layer's Quest page summaries (built by its first sparse attend, then
  // kept up to date by append, compress and clear).
  Status export_summaries(int64_t layer, SummaryExport* out);  // folds a partial page append left first
  // TidalDecode: drops the positions selected in the current decode step.
  void begin_step() { tidal_ = TidalState(); }
  // The layer of the current selection, or -1.
  int64_t tidal_layer() const { return tidal_.layer; }
  // Speculative decoding (kv_cache_spec.cpp): of the newest tree_size tokens
  // of every head of `layers` (all when empty), keep the nodes `accepted`
  // (ascending, distinct, in [0, tree_size)) in that order behind the older
  // tokens and drop the others. rollback = an empty `accepted`. All checks
  // and allocations first: a failed call changes nothing.
  Status commit_tree(const std::vector<int64_t>& layers, int64_t tree_size, const std::vector<int32_t>& accepted);
  // Whether attend accumulated key mass for the layer since its last clear.
  bool has_mass(int64_t layer) const { return mass_seen_[layer] != 0; }

  // Row access used by compression and merging (f32 copies of one head).
  Status read_head(int64_t layer, int64_t head, std::vector<float>& k, std::vector<float>& v) const;

  // A head's rows as [len, headDim] K / V views: the stored rows of a float
  // cache, or f32 copies (into kf, vf) of an int cache's rows.
  struct HeadRows {
    const void* k = nullptr;
    const void* v = nullptr;
    DType dtype = DType::F32;
    int64_t len = 0;
  };
  Status head_rows(int64_t layer, int64_t head, std::vector<float>& kf, std::vector<float>& vf, HeadRows* out) const;

 private:
  explicit KvCache(const CacheConfig& cfg);
  HeadStore& head(int64_t layer, int64_t h) { return heads_[layer * cfg_.n_kv_heads + h]; }
  const HeadStore& head(int64_t layer, int64_t h) const { return heads_[layer * cfg_.n_kv_heads + h]; }
  bool quantized() const { return cfg_.type == CacheType::Int8 || cfg_.type == CacheType::Int4; }
  DType row_dtype() const;  // dtype of k/v rows (f16 for the tail of int caches)
  int64_t row_bytes() const { return cfg_.head_dim * static_cast<int64_t>(dtype_size(row_dtype())); }
  int64_t tail_len(const HeadStore& s) const { return s.len - s.n_blocks * cfg_.group; }

  // What an append changes in a layer, to undo it: lengths, block counts,
  // the f16 tail of int caches (quantizing moves it), the position counter.
  struct AppendMark {
    int64_t next_pos = 0;
    std::vector<int64_t> len, n_blocks;
    std::vector<std::vector<uint8_t>> tail_k, tail_v;
  };
  // A compression planned and reserved (phase 1), ready to apply (phase 2,
  // which cannot fail). Planning changes no token.
  struct PreparedCompress {
    std::vector<int64_t> layers;
    std::vector<std::vector<HeadPlan>> plans;
    std::vector<std::vector<float>> kscratch, vscratch;  // per pool worker
    std::chrono::steady_clock::time_point t0;
  };
  Status append_rows(int64_t layer, const AppendInput& in);
  Status append_float_rows(int64_t layer, const AppendInput& in);  // f32/f16/bf16 caches: checks finite values too
  Status reserve_append(int64_t layer, int64_t n);
  Status reserve_head(HeadStore& s, int64_t n);
  Status check_finite_rows(const AppendInput& in) const;  // int caches: k, v finite (pool for large inputs)
  Status apply_reserve(HeadStore& s);  // cfg_.reserve tokens of room, pages populated
  void reset_head(HeadStore& s);       // empty; keeps the reserved storage
  void append_meta(HeadStore& s, const AppendInput& in, int64_t first);  // positions, mass, counts (reserved)
  Status append_and_compress(int64_t layer, const AppendInput& in);
  Status mark_layer(int64_t layer, AppendMark& m) const;
  void undo_append(int64_t layer, const AppendMark& m);
  Status prepare_compress(const CompressRequest& req, CompressReport* report, PreparedCompress& prep);
  void commit_compress(PreparedCompress& prep, CompressReport* report);
  Status reserve_rows(HeadStore& s, int64_t rows);
  Status reserve_blocks(HeadStore& s, int64_t blocks);
  void shrink(HeadStore& s);
  Status rebuild_head(HeadStore& s, const std::vector<float>& k, const std::vector<float>& v, int64_t len);
  void remember_queries(int64_t layer, const AttendInput& in);
  Status attend_uniform(int64_t layer, const AttendInput& in, int64_t n, float scale);
  Status plan_layer(const CompressRequest& req, int64_t layer, std::vector<HeadPlan>& plans) const;
  void apply_plan(int64_t layer, int64_t h, const HeadPlan& plan, std::vector<float>& k, std::vector<float>& v);
  // Float caches: rows [0, first) stay; row first + j becomes row keep[j]
  // (ascending, keep[j] >= first + j) with its position, mass and count;
  // the head then holds first + n rows. Shared by compaction and commit.
  void keep_rows(HeadStore& s, int64_t first, const int32_t* keep, int64_t n);
  // Int caches: the speculative shadow ring (kv_cache_spec.cpp).
  int64_t spec_blocks() const;
  Status reserve_shadow(HeadStore& s);
  void store_shadow(HeadStore& s, int64_t block, const float* k, const float* v);  // f32 rows holding f16 values
  bool shadow_valid(const HeadStore& s, int64_t block) const;

  // Quest page summaries (kv_cache_sparse.cpp).
  sparse::SummaryFormat summary_format() const;
  sparse::PageSummary& summary(int64_t layer, int64_t h) { return summaries_[layer * cfg_.n_kv_heads + h]; }
  const sparse::PageSummary& summary(int64_t layer, int64_t h) const { return summaries_[layer * cfg_.n_kv_heads + h]; }
  // Rows [first, first + n) of a head as f32 [n, d] (k or v may be null).
  void read_rows_f32(const HeadStore& s, int64_t first, int64_t n, float* k, float* v) const;
  Status sync_summary(int64_t layer, int64_t h);
  // The same up to `rows` rows (append folds rows written but not yet
  // counted), rows from fresh->first on read from the append's input (of the
  // storage's dtype, stride_bytes apart) instead of the storage.
  struct FreshRows {
    const void* rows;
    int64_t first, stride_bytes;
  };
  Status sync_summary(int64_t layer, int64_t h, int64_t rows, const FreshRows* fresh);
  // After an append: rows from `changed[h]` on changed (int caches re-quantize the tail).
  void summaries_after_append(int64_t layer, const std::vector<int64_t>& changed);
  void summaries_rebuild(int64_t layer);  // after compression: best effort
  void summaries_reset(int64_t layer);
  Status attend_quest(int64_t layer, const AttendInput& in, float scale);
  // TidalDecode (kv_cache_tidal.cpp).
  Status attend_tidal(int64_t layer, const AttendInput& in, float scale);
  // Attention of head h's query group over its rows idx[0..m) (ascending),
  // into in.out / in.lse; key mass (when mass_h) per row of the head.
  Status attend_rows(int64_t layer, int64_t h, const AttendInput& in, float scale, const int32_t* idx, int64_t m, float* mass_h);
  // A change of the layer's rows (append, compress, clear) ends the step of
  // a selection made on it.
  void tidal_after_change(int64_t layer) {
    if (tidal_.layer == layer) tidal_ = TidalState();
  }
  struct TidalState {
    int64_t layer = -1;                       // the layer that selected, or -1
    std::vector<int64_t> len;                 // per KV head: its length then
    std::vector<std::vector<int32_t>> idx;    // per KV head: the rows kept (ascending)
    std::vector<std::vector<int32_t>> pos;    // their positions (checked at use)
  };
  TidalState tidal_;

  CacheConfig cfg_;
  QuantLayout qlayout_;
  std::vector<sparse::PageSummary> summaries_;  // per (layer, head)
  std::vector<int64_t> summary_page_;           // per layer: P, or 0 (none)
  std::vector<uint8_t> summary_sums_;           // per layer: the summaries keep key sums (block retrieval)
  std::vector<HeadStore> heads_;
  std::vector<int64_t> next_pos_;  // per layer
  struct Window { int64_t n_heads = 0, rows = 0; std::vector<float> q; };
  std::vector<Window> windows_;    // per layer
  std::vector<uint8_t> mass_seen_; // per layer
};

}  // namespace tp::kv
