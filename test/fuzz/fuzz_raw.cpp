// The raw range coder with one fixed table: raw_decode on hostile input,
// and a round trip.
//
// Input: u8 selector (total_log2 = 12 + sel % 5; bit 7: break the table),
// 256 weights (quantized into a valid table), u8 flags, u32 claimed length
// (flags bit 0: mod 4097), then the payload.
// Properties: no crash, leak or UB; a hostile table is refused; a decode
// that succeeds claims no more than range_max_decoded_length; the round trip
// gives the payload back.
#include "../../native/coding/decode_out.h"
#include "../../native/coding/static_coding.h"
#include "fuzz_common.h"

using namespace tp;
using namespace tp::coding;

namespace {

// 256 frequencies >= 1 summing to 2^total_log2 from any weights.
void quantize(const uint8_t* w, int total_log2, uint32_t* freqs) {
  const uint32_t total = 1u << total_log2, spread = total - 256;
  uint64_t sum = 0;
  for (int i = 0; i < 256; i++) sum += w[i];
  uint32_t used = 0;
  int best = 0;
  for (int i = 0; i < 256; i++) {
    freqs[i] = 1 + (sum == 0 ? 0 : static_cast<uint32_t>(uint64_t{w[i]} * spread / sum));
    used += freqs[i];
    if (w[i] > w[best]) best = i;
  }
  freqs[best] += total - used;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Fields in{data, size};
  const uint8_t sel = in.take();
  const int total_log2 = 12 + sel % 5;
  uint8_t w[256] = {};
  for (int i = 0; i < 256; i++) w[i] = in.take();
  uint32_t freqs[256];
  quantize(w, total_log2, freqs);
  if (sel & 0x80) freqs[sel & 0x7f] += 1;  // a table that does not sum up: must be refused
  const bool table_ok = check_frequency_table(freqs, total_log2).is_ok();
  TP_FUZZ_CHECK(table_ok == !(sel & 0x80), "table check");
  const uint8_t flags = in.take();
  uint32_t n = static_cast<uint32_t>(in.le(4));
  if (flags & 1) n %= 4097;
  const std::vector<uint8_t> payload = in.rest();

  // As the binding does: the bound first, then the allocation.
  if (check_decoded_length("length", n, payload.size(), total_log2).is_ok()) {
    std::vector<uint8_t> out(n);
    Status st = raw_decode(freqs, total_log2, payload.data(), payload.size(), out.data(), n);
    TP_FUZZ_CHECK(st.is_ok() || !st.message.empty(), "an error without a message");
  } else {
    uint8_t dummy = 0;
    TP_FUZZ_CHECK(!raw_decode(freqs, total_log2, payload.data(), payload.size(), &dummy, n).is_ok(),
                  "raw_decode accepted a length above the bound");
  }
  if (!table_ok) return 0;
  std::vector<uint8_t> coded, back(payload.size());
  TP_FUZZ_CHECK(raw_encode(freqs, total_log2, payload.data(), payload.size(), &coded).is_ok(), "encode");
  Status st = raw_decode(freqs, total_log2, coded.data(), coded.size(), back.data(), back.size());
  TP_FUZZ_CHECK(st.is_ok() && back == payload, st.message);
  return 0;
}
