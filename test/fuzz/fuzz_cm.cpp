// The adaptive (context-mixing) decoder, cm_decompress, on a hostile length
// and payload, and a round trip.
//
// Input: u8 memory_log2 selector (15 + sel % 4), u8 flags, u32 claimed
// length (flags bit 0: mod 4097), then the payload. Lengths above 4096
// are only checked against the bound (decoding them is slow, not hostile).
// Properties: no crash, leak or UB; a length above cm_max_original_length
// is refused (before the caller allocates it: the harness allocates it only
// when cm_max_original_length allows, as the binding does); the round trip
// gives the payload back.
#include "../../native/coding/cm_codec.h"
#include "fuzz_common.h"

using namespace tp;
using namespace tp::coding;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Fields in{data, size};
  CmOptions opts;
  opts.memory_log2 = kCmMinMemoryLog2 - 1 + in.take() % 4;  // 15 is refused
  const uint8_t flags = in.take();
  // A long stream of near-certain bits decodes slowly; keep lengths small
  // unless the length is the point (then it is refused before decoding).
  uint64_t n = in.le(4);
  if (flags & 1) n %= 4097;
  const std::vector<uint8_t> payload = in.rest();

  if (n <= cm_max_original_length(payload.size()) && n <= 4096) {
    std::vector<uint8_t> out(n);
    Status st = cm_decompress(payload.data(), payload.size(), opts, out.data(), n);
    TP_FUZZ_CHECK(st.is_ok() || !st.message.empty(), "an error without a message");
  } else if (n > cm_max_original_length(payload.size())) {
    uint8_t dummy = 0;
    TP_FUZZ_CHECK(!cm_decompress(payload.data(), payload.size(), opts, &dummy, n).is_ok(), "accepted a length above the bound");
  }
  if (opts.memory_log2 < kCmMinMemoryLog2) return 0;
  std::vector<uint8_t> coded, back(payload.size());
  TP_FUZZ_CHECK(cm_compress(payload.data(), payload.size(), opts, &coded).is_ok(), "compress");
  TP_FUZZ_CHECK(payload.size() <= cm_max_original_length(coded.size()), "bound below a real stream");
  Status st = cm_decompress(coded.data(), coded.size(), opts, back.data(), back.size());
  TP_FUZZ_CHECK(st.is_ok() && back == payload, st.message);
  return 0;
}
