// Hashed table of bit-history states, organised by nibble (as in lpaq): one
// 16-byte bucket holds a checksum byte and the 15 states of a context for the
// 15 partial nibbles (1 + 2 + 4 + 8 bit positions), so coding 4 bits touches
// one cache line. Buckets come in aligned groups of 4 (64 bytes); a lookup
// checks the group for the checksum and otherwise replaces the least used
// bucket (by the visit count in its first state).
#pragma once
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>

#include "cm_bit_history.h"

namespace tp::coding {

// A cache hint only: no effect on results.
inline void cm_prefetch(const void* p) {
#if defined(__GNUC__) || defined(__clang__)
  __builtin_prefetch(p);
#else
  (void)p;
#endif
}

struct alignas(16) HistoryBucket {
  uint8_t check;
  uint8_t states[15];  // states[nibble_prefix - 1], nibble_prefix in [1, 15]
};

class HistoryTable {
 public:
  // 2^log2_bytes bytes (log2_bytes >= 6). Throws std::bad_alloc.
  void init(int log2_bytes) {
    const size_t buckets = size_t{1} << (log2_bytes - 4);
    storage_.reset(new HistoryBucket[buckets + 4]);
    std::memset(storage_.get(), 0, (buckets + 4) * sizeof(HistoryBucket));
    // Align groups to 64 bytes.
    uintptr_t base = reinterpret_cast<uintptr_t>(storage_.get());
    base = (base + 63) & ~uintptr_t{63};
    buckets_ = reinterpret_cast<HistoryBucket*>(base);
    index_bits_ = log2_bytes - 4;
  }

  // Start of the group for a 64-bit context hash (for prefetching).
  const void* group_of(uint64_t hash) const { return &buckets_[group_index(hash)]; }

  // The 15 states for context `hash`, found or freshly claimed.
  // *found says whether the context had been seen.
  uint8_t* find(uint64_t hash, bool* found) {
    HistoryBucket* group = &buckets_[group_index(hash)];
    const uint8_t check = static_cast<uint8_t>(hash);
    int victim = 0, victim_use = 1 << 30;
    for (int i = 0; i < 4; ++i) {
      if (group[i].check == check && (group[i].states[0] != 0 || check != 0)) {
        *found = true;
        return group[i].states;
      }
      const int use = history_total(group[i].states[0]);
      if (use < victim_use) { victim_use = use; victim = i; }
    }
    std::memset(&group[victim], 0, sizeof(HistoryBucket));
    group[victim].check = check;
    *found = false;
    return group[victim].states;
  }

 private:
  // High bits pick the group, the low byte is the checksum.
  size_t group_index(uint64_t hash) const { return static_cast<size_t>(hash >> (64 - index_bits_)) & ~size_t{3}; }

  std::unique_ptr<HistoryBucket[]> storage_;
  HistoryBucket* buckets_ = nullptr;
  int index_bits_ = 0;
};

}  // namespace tp::coding
