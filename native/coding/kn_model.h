// KnModel: the built-in static byte model, interpolated Kneser-Ney over byte
// n-grams with modified (D1, D2, D3+) discounts per order.
//
// Orders: order k predicts a byte from the k bytes before it (k = 0..maxOrder).
// For a query with len bytes of context, order len is the top order and uses
// raw counts; orders below it use continuation counts (how many distinct bytes
// precede the n-gram), the Kneser-Ney rule. Every order keeps both kinds of
// counts, because the coders query short contexts all the time (the context
// resets at each Equal-Info window, so any order can be the top one).
//
//   P_k(b | c) = max(n_k(c b) - D_k(n), 0) / n_k(c) + gamma_k(c) P_{k-1}(b | c')
//   gamma_k(c) = (D1 N1(c) + D2 N2(c) + D3 N3+(c)) / n_k(c),   P_{-1}(b) = 1/256
//
// where c' drops the oldest byte of c, n_k are raw counts at the top order and
// continuation counts below it, Nr(c) counts the bytes seen r times (3+: at
// least 3) after c, and D are Chen & Goodman's estimates from count-of-counts
// (stored in the file as 16.16 fixed point). A context missing from the model
// (never seen, or pruned) contributes nothing: its weight passes down.
//
// Everything masses() computes is integer arithmetic on the file's integers,
// so the numbers are the same on every machine. The model is immutable once
// built, so masses() is thread-safe.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "../core/status.h"
#include "byte_model.h"
#include "kn_query.h"
#include "page_array.h"

namespace tp::coding {

constexpr int kKnMaxOrderLimit = 12;      // orders a file may have (1..12)
constexpr uint32_t kKnFileVersion = 1;
static_assert(kKnMaxOrderLimit == kKnQueryMaxOrder, "kn_query.h sizes its arrays by the order limit");    // the file format version this code writes and reads

struct KnTrainOptions {
  int max_order = 6;                  // 1..kKnMaxOrderLimit
  uint64_t max_bytes = 8000000;       // the serialized model's size limit (pruning fits it)
};

// Plain tables of one model: what the file stores and training produces.
// Contexts of order k are sorted by (parent, x): parent indexes the order
// k-1 context that is this context without its oldest byte, x is that
// oldest byte. Order 0 has exactly one context (the empty one).
struct KnOrderTable {
  std::vector<uint32_t> parent;       // [nContexts] (order 0: {0})
  std::vector<uint8_t> x;             // [nContexts] (order 0: {0})
  std::vector<uint32_t> entry_begin;  // [nContexts + 1] into sym/raw/cont
  std::vector<uint8_t> sym;           // [nEntries] next byte, increasing within a context
  std::vector<uint32_t> raw;          // [nEntries] raw count >= 1
  std::vector<uint32_t> cont;         // [nEntries] continuation count <= raw (empty for the top order)
  uint32_t d_raw[3] = {0, 0, 0};      // D1, D2, D3+ for raw counts, 16.16 fixed point, D_r <= r
  uint32_t d_cont[3] = {0, 0, 0};     // the same for continuation counts
  size_t contexts() const { return parent.size(); }
  size_t entries() const { return sym.size(); }
};

struct KnTables {
  int max_order = 0;
  uint64_t trained_bytes = 0;
  std::vector<KnOrderTable> orders;  // [max_order + 1]
};

struct KnModelInfo {
  int max_order = 0;
  uint32_t version = kKnFileVersion;
  uint64_t bytes = 0;          // serialized size
  uint64_t identity = 0;       // the file's hash field: FNV-1a 64 of every other byte of the file
  uint64_t trained_bytes = 0;  // length of the training text
  std::vector<uint64_t> contexts;  // [max_order + 1]
  std::vector<uint64_t> entries;   // [max_order + 1]
};

using KnProgress = std::function<void(double fraction)>;

class KnModel final : public ByteModel {
 public:
  // Trains on text[0..n): counts every n-gram occurrence (raw counts of
  // order k from positions i >= k, continuation counts from i >= k + 1),
  // estimates the discounts on the full counts, then prunes the contexts with
  // the smallest counts (highest order first on ties; a kept context always
  // keeps its shorter parent) until the file fits opts.max_bytes.
  // Deterministic in (text, opts). progress (optional) gets fractions 0..1.
  static Status train(const uint8_t* text, size_t n, const KnTrainOptions& opts, std::unique_ptr<KnModel>* out,
                      const KnProgress& progress = nullptr);
  // Parses and validates a serialized model (any bytes: hostile input gives
  // an InvalidArgument status with a message, never a crash).
  static Status from_bytes(const uint8_t* data, size_t n, std::unique_ptr<KnModel>* out);

  int max_order() const override { return max_order_; }
  void masses(const uint8_t* ctx, int len, uint32_t* masses) const override;

  // The query structures as plain arrays (host pointers into this model,
  // valid while it lives): what a device copy uploads (kn_query.h).
  const KnView& view() const { return view_; }

  const std::vector<uint8_t>& bytes() const { return bytes_; }
  uint64_t identity() const { return identity_; }
  const KnModelInfo& info() const { return info_; }

 private:
  KnModel() = default;
  void build(const KnTables& t);  // the query structures below, from validated tables
  void set_view();                // view_ from the arrays below

  // Query structures. Orders 0 and 1 (and the uniform order -1) are folded
  // into dense rows (rows1_), and so is order 2 for its most frequent
  // contexts (rows2_). Each context of order >= 2 is one record in
  // blob_ (32-bit words): [k | nRaw << 8 | nCont << 20] [gammaRaw] [gammaCont]
  // [its k bytes, oldest first, packed in words] [raw entries] [continuation
  // entries], an entry being (e << 8 | byte) with e = floor(2^24 max(n - D, 0) / n(c))
  // and the gammas in 2^31 units. slots_ is an open-addressing hash table
  // of (fingerprint << 32 | record offset) keyed by the context bytes, so a
  // query looks up all its orders at once (independent memory accesses)
  // instead of walking a trie one dependent miss after another. The query
  // itself is kn_masses (kn_query.h), over view().
  int max_order_ = 0;
  PageArray<uint32_t> blob_;       // blob_[0] is unused: offset 0 means "absent"
  PageArray<uint64_t> slots_;      // [2^slot_bits_], 0 = empty
  int slot_bits_ = 0;
  uint32_t root_raw_[kAlphabet];   // order 0 (+ uniform) dense, raw counts, 2^31 = 1
  uint32_t root_cont_[kAlphabet];  // order 0 (+ uniform) dense, continuation counts
  PageArray<uint32_t> rows1_;      // [2][256 contexts][256]: order 1 over order 0, raw / continuation counts, 2^31 = 1
  static constexpr size_t kMaxDense2 = 4096;  // dense order-2 rows: at most 8 MB
  PageArray<uint32_t> rows2_;      // [nDense2][2][256]: order 2 over order 1, raw / continuation counts
  std::vector<int32_t> idx2_;      // [older byte << 8 | recent byte] -> dense order-2 row, or -1
  std::vector<uint8_t> bytes_;
  uint64_t identity_ = 0;
  KnModelInfo info_;
  KnView view_;  // pointers into the arrays above, set by build()
};

// The file format (kn_model_file.cpp).
Status kn_serialize(const KnTables& t, std::vector<uint8_t>* out);
// Parses and validates; *hash gets the file's hash field (checked).
Status kn_parse(const uint8_t* data, size_t n, KnTables* out, uint64_t* hash);
// Bytes of one unsigned LEB128 varint (the file's integer encoding).
size_t kn_varint_size(uint64_t v);
// Serialized size of t (exactly what kn_serialize writes).
uint64_t kn_serialized_size(const KnTables& t);

}  // namespace tp::coding
