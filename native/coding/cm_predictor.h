// The context-mixing model: predicts each bit of the next byte (MSB first)
// as a 12-bit probability of a 1, then learns from the coded bit.
//
//   inputs:  order-0 and order-1 bit histories (direct tables); hashed
//            nibble buckets for orders 2, 3, 4, 5, 6 and 8, two word
//            contexts, the column with the previous byte, and bytes 5-8
//            back (sparse); the match model; a bias
//   mixing:  four logistic mixers whose weight sets are chosen by the
//            partial byte; the match length, the number of known orders
//            and the bit position; the previous byte; the column and the
//            bit position. A second-layer mixer (weights by partial byte)
//            combines them
//   refine:  two APMs on the partial byte with the previous byte, and with
//            a hash of the previous two bytes; their average is coded
//
// Encoder and decoder run the identical sequence of p() / update() /
// byte_done() calls, so they stay in lockstep.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "cm_apm.h"
#include "cm_bit_history.h"
#include "cm_hash_table.h"
#include "cm_match_model.h"
#include "cm_mixer.h"
#include "cm_state_map.h"

namespace tp::coding {

class CmPredictor {
 public:
  static constexpr int kHashed = 10;             // hashed contexts
  static constexpr int kInputs = kHashed + 4;    // + order 0, order 1, match, bias

  // Sizes tables for an input of n bytes under the memory knob (see
  // CmOptions). Throws std::bad_alloc.
  void init(int memory_log2, size_t n);

  // Probability (12 bits, in [1, 4095]) that the next bit is 1.
  int p();
  // Learns from the coded bit (after p()).
  void update(int bit);
  // After the 8th bit: buf[0..pos) is the history, buf[pos - 1] the byte
  // just completed.
  void byte_done(const uint8_t* buf, size_t pos);

 private:
  void lookup_nibble();

  HistoryTable table_;
  uint8_t* slots_[kHashed] = {};
  uint64_t hashes_[kHashed] = {};
  StateMapBank<kHashed + 2> maps_;  // hashed contexts, then orders 0 and 1
  std::vector<uint8_t> order0_, order1_;  // bit histories by c0, by (c1, c0)
  MatchModel match_;
  Mixer<kInputs> by_partial_, by_match_, by_previous_, by_column_;
  Mixer<4> final_;
  Apm apm_order2_, apm_previous_;

  uint8_t* direct_[2] = {};
  int c0_ = 1;       // 1 followed by the bits of the current byte so far
  int bit_pos_ = 0;  // bits of the current byte so far
  int nibble_ = 1;   // 1 followed by the bits of the current nibble so far
  uint64_t history_ = 0;  // last 8 bytes, newest in the low byte
  uint64_t word_ = 0, previous_word_ = 0;
  uint64_t column_ = 0;  // bytes since the last newline
  int found_ = 0;    // hashed order contexts seen before, at the last lookup
  int mixed_p_ = 2048, apm1_p_ = 2048, apm2_p_ = 2048;
};

}  // namespace tp::coding
