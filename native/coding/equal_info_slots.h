// Slot decoding of many Equal-Info documents (host side): every window of
// every document decodes independently into a fixed slot with
// decode_window_portable (equal_info_portable.h), on the CPU thread pool here
// or on the CUDA device (native/cuda/cuda_equal_info.h); then the overflowing
// windows are decoded again with the CPU decoder and the windows are joined
// per document. The result (bytes or error) is the one
// equal_info_decode_batch (coding_batch.h) gives for the same input.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "../core/status.h"
#include "byte_model.h"
#include "kn_model.h"

namespace tp::coding {

// Windows of all documents, flattened in order: window g belongs to the
// document d with first[d] <= g < first[d + 1].
struct WindowIndex {
  std::vector<uint64_t> first;  // [docs + 1] prefix sums of the window counts
  uint64_t total() const { return first.empty() ? 0 : first.back(); }
  size_t doc_of(uint64_t g) const;  // binary search
};
WindowIndex index_windows(const std::vector<size_t>& windows);

// What the slot pass produced, in window order.
struct SlotDecoded {
  std::vector<uint32_t> lengths;  // [total windows], kWindowOverflow for a window decoded again on the CPU
  std::vector<uint8_t> packed;    // the bytes of the other windows, back to back
  uint64_t overflowed = 0;        // windows marked kWindowOverflow so far

  // Appends one pass's windows [g0, g0 + n) from their slots (limit bytes
  // each), then checks the running total like the CPU decoder: once the
  // decoded bytes (an overflowing window counts limit + 1, its least) pass
  // maxBytes x documents, the batch stops with the CPU's error instead of
  // decoding (and holding) the rest.
  Status add_pass(uint64_t g0, uint64_t n, const uint8_t* slots, uint32_t limit, size_t max_bytes, size_t ndocs);
};

// The default slot size for b-bit windows (4 b bytes: text decodes to about
// b / 2 bytes per window), and the limit one slot enforces: min(slot_bytes
// (0: the default), window_byte_cap(b, max_bytes)).
uint32_t default_slot_bytes(int window_bits);
uint32_t slot_limit(int window_bits, size_t max_bytes, uint32_t slot_bytes);

// Windows per pass: bounds the slot buffer to about 64 MiB.
uint64_t windows_per_pass(uint32_t limit);

// Re-decodes the overflowing windows on the CPU (thread pool), checks the
// limits like equal_info_decode_batch and joins the windows per document.
// *overflowed gets the number of windows decoded again.
Status finish_slot_decode(const ByteModel& model, const std::vector<std::vector<uint8_t>>& bits,
                          const std::vector<size_t>& windows, int window_bits, size_t max_bytes, SlotDecoded&& decoded,
                          std::vector<std::vector<uint8_t>>* out, size_t* overflowed);

// The whole slot decode on the CPU (the device algorithm, run by the host:
// tests compare it with equal_info_decode_batch). slot_bytes 0 = default.
Status equal_info_decode_batch_portable(const KnModel& model, const std::vector<std::vector<uint8_t>>& bits,
                                        const std::vector<size_t>& windows, int window_bits, size_t max_bytes,
                                        uint32_t slot_bytes, std::vector<std::vector<uint8_t>>* out,
                                        size_t* overflowed);

}  // namespace tp::coding
