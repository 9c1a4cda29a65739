#include "cm_predictor.h"

#include <algorithm>

namespace tp::coding {
namespace {

uint64_t mix64(uint64_t x) {
  x ^= x >> 31;
  x *= 0x7fb5d329728ea185ull;
  x ^= x >> 27;
  x *= 0x81dadef4bc2dd44dull;
  x ^= x >> 33;
  return x;
}

// The last `order` bytes of history, tagged with the context's index.
uint64_t order_hash(uint64_t history, int order, int tag) {
  const uint64_t bytes = order >= 8 ? history : history & ((uint64_t{1} << (8 * order)) - 1);
  return mix64(bytes * 0x9e3779b97f4a7c15ull + static_cast<uint64_t>(tag) * 0xd6e8feb86659fd93ull + static_cast<uint64_t>(order));
}

int ceil_log2(size_t n) {
  int b = 0;
  while ((size_t{1} << b) < n) ++b;
  return b;
}

// Hashed order contexts (bytes of history); orders 0 and 1 are direct.
constexpr int kOrders[6] = {2, 3, 4, 5, 6, 8};
// Mixer learning rates (tuned on English text): first layer, second layer.
constexpr int kLayer1Rate = 3;
constexpr int kLayer2Rate = 1;
constexpr int kApmRate = 7;  // APM update shift

int clamp12(int p) { return p < 1 ? 1 : (p > 4095 ? 4095 : p); }

// The previous two bytes hashed to 8 bits (an APM context).
size_t order2_bucket(uint64_t history) { return static_cast<uint32_t>(history & 0xffff) * 0x9e3779b1u >> 24; }

bool is_letter(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 128; }

}  // namespace

void CmPredictor::init(int memory_log2, size_t n) {
  const int size_log2 = ceil_log2(n < 1 ? 1 : n);
  int table_log2 = size_log2 + 6;
  if (table_log2 > memory_log2) table_log2 = memory_log2;
  if (table_log2 < 16) table_log2 = 16;
  table_.init(table_log2);
  int match_log2 = size_log2 + 1;
  if (match_log2 > memory_log2 - 4) match_log2 = memory_log2 - 4;
  if (match_log2 < 10) match_log2 = 10;
  match_.init(match_log2);

  // A state's first guess: (n1 + 1/2) / (n0 + n1 + 1), refined as it is used.
  uint32_t initial[256];
  for (int s = 0; s < 256; ++s) {
    const int n0 = history_n0(static_cast<uint8_t>(s)), n1 = history_n1(static_cast<uint8_t>(s));
    initial[s] = static_cast<uint32_t>((uint64_t{2} * n1 + 1) * (1u << 22) / (2u * (n0 + n1) + 2));
  }
  maps_.init(initial);
  order0_.assign(256, 0);
  order1_.assign(65536, 0);
  by_partial_.init(256, 1 << 11, kLayer1Rate);
  by_match_.init(8 * 8 * 8, 1 << 11, kLayer1Rate);
  by_previous_.init(256, 1 << 11, kLayer1Rate);
  by_column_.init(64 * 8, 1 << 11, kLayer1Rate);
  final_.init(256, 1 << 12, kLayer2Rate);
  apm_order2_.init(size_t{256} << 8, kApmRate);
  apm_previous_.init(65536, kApmRate);
  lookup_nibble();
}

void CmPredictor::lookup_nibble() {
  const uint64_t nibble_tag = bit_pos_ == 0 ? 0 : static_cast<uint64_t>(c0_) * 0x9e3779b97f4a7c15ull;
  found_ = 0;
  uint64_t keys[kHashed];
  // Touch every group first so the cache misses overlap.
  for (int i = 0; i < kHashed; ++i) {
    keys[i] = mix64(hashes_[i] + nibble_tag);
    cm_prefetch(table_.group_of(keys[i]));
  }
  for (int i = 0; i < kHashed; ++i) {
    bool found = false;
    slots_[i] = table_.find(keys[i], &found);
    if (found && i < 6) ++found_;
  }
}

int CmPredictor::p() {
  const int c1 = static_cast<int>(history_ & 255);
  direct_[0] = &order0_[c0_];
  direct_[1] = &order1_[(c1 << 8) | c0_];
  // All four first-layer mixers see the same inputs: fill one, copy.
  int16_t* in = by_partial_.inputs();
  for (int i = 0; i < kHashed; ++i) in[i] = static_cast<int16_t>(cm_stretch(maps_.p(i, slots_[i][nibble_ - 1])));
  in[kHashed] = static_cast<int16_t>(cm_stretch(maps_.p(kHashed, *direct_[0])));
  in[kHashed + 1] = static_cast<int16_t>(cm_stretch(maps_.p(kHashed + 1, *direct_[1])));
  in[kHashed + 2] = static_cast<int16_t>(match_.predict(c0_, bit_pos_));
  in[kHashed + 3] = 256;
  std::copy(in, in + kInputs, by_match_.inputs());
  std::copy(in, in + kInputs, by_previous_.inputs());
  std::copy(in, in + kInputs, by_column_.inputs());

  int16_t* second = final_.inputs();
  second[0] = static_cast<int16_t>(by_partial_.mix(c0_));
  second[1] = static_cast<int16_t>(by_match_.mix(match_.length_bucket() * 64 + (found_ > 7 ? 7 : found_) * 8 + bit_pos_));
  second[2] = static_cast<int16_t>(by_previous_.mix(c1));
  const int column = column_ < 63 ? static_cast<int>(column_) : 63;
  second[3] = static_cast<int16_t>(by_column_.mix(column * 8 + bit_pos_));
  final_.mix(c0_);
  mixed_p_ = clamp12(final_.p());
  const size_t order2 = order2_bucket(history_);
  apm1_p_ = apm_order2_.refine(mixed_p_, (order2 << 8) | static_cast<size_t>(c0_));
  apm2_p_ = apm_previous_.refine(mixed_p_, static_cast<size_t>((c1 << 8) | c0_));
  // The two refinements averaged (tuned on English text: better than
  // keeping the mixer's own output in the blend).
  return clamp12((apm1_p_ + apm2_p_ + 1) >> 1);
}

void CmPredictor::update(int bit) {
  // The next bit's APM rows are one of two each: start loading them.
  if (bit_pos_ < 7) {
    const size_t next = static_cast<size_t>(c0_ << 1);
    const size_t order2 = order2_bucket(history_);
    apm_previous_.prefetch(((history_ & 255) << 8) | next);
    apm_previous_.prefetch(((history_ & 255) << 8) | next | 1);
    apm_order2_.prefetch((order2 << 8) | next);
    apm_order2_.prefetch((order2 << 8) | next | 1);
  }
  const BitHistory& bh = kBitHistory;
  maps_.update(bit);
  for (int i = 0; i < kHashed; ++i) {
    uint8_t& s = slots_[i][nibble_ - 1];
    s = bh.next[s][bit];
  }
  *direct_[0] = bh.next[*direct_[0]][bit];
  *direct_[1] = bh.next[*direct_[1]][bit];
  match_.update_bit(bit);
  by_partial_.update(bit);
  by_match_.update(bit);
  by_previous_.update(bit);
  by_column_.update(bit);
  final_.update(bit);
  apm_order2_.update(bit);
  apm_previous_.update(bit);

  c0_ = (c0_ << 1) | bit;
  nibble_ = (nibble_ << 1) | bit;
  ++bit_pos_;
  if (bit_pos_ == 4) {
    nibble_ = 1;
    lookup_nibble();
  }
}

void CmPredictor::byte_done(const uint8_t* buf, size_t pos) {
  const int c = c0_ & 255;
  c0_ = 1;
  nibble_ = 1;
  bit_pos_ = 0;
  history_ = (history_ << 8) | static_cast<uint64_t>(c);
  column_ = c == '\n' ? 0 : column_ + 1;
  if (is_letter(c)) {
    const int lower = (c >= 'A' && c <= 'Z') ? c + 32 : c;
    word_ = (word_ + static_cast<uint64_t>(lower) + 1) * 0x100000001b3ull;
  } else if (word_ != 0) {
    previous_word_ = word_;
    word_ = 0;
  }
  for (int i = 0; i < 6; ++i) hashes_[i] = order_hash(history_, kOrders[i], i);
  hashes_[6] = mix64(word_ * 0x9e3779b97f4a7c15ull + (word_ == 0 ? history_ & 255 : 0) + 6);
  hashes_[7] = mix64((word_ + previous_word_ * 0xd6e8feb86659fd93ull) * 0x9e3779b97f4a7c15ull + 7);
  // Column with the previous byte: line layout (wrapped text, indents).
  hashes_[8] = mix64((column_ << 8 | (history_ & 0xff)) * 0x9e3779b97f4a7c15ull + 8);
  // Bytes 5..8 back without the nearer four: a sparse context.
  hashes_[9] = mix64((history_ & 0xffffffff00000000ull) * 0x9e3779b97f4a7c15ull + 9);
  match_.update_byte(buf, pos);
  lookup_nibble();
}

}  // namespace tp::coding
