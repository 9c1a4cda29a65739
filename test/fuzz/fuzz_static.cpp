// Plain (static) coding with the model: static_decode_batch on a hostile
// length and payload, and a round trip of the input.
//
// Input: u8 flags, u32 claimed length (bit 0 of flags: length mod 4097), then the payload.
// Properties: no crash, leak or UB, nothing allocated for a length the
// payload cannot hold (libFuzzer's -malloc_limit_mb catches one); a decode
// that succeeds claims no more than range_max_decoded_length; encoding the
// input's bytes and decoding them gives them back.
#include "../../native/coding/coding_batch.h"
#include "../../native/coding/decode_out.h"
#include "../../native/coding/static_coding.h"
#include "fuzz_common.h"

using namespace tp;
using namespace tp::coding;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const KnModel& m = fuzz::model();
  fuzz::Fields in{data, size};
  const uint8_t flags = in.take();
  uint64_t n = in.le(4);
  if (flags & 1) n %= 4097;  // a plausible length, else any u32
  const std::vector<uint8_t> payload = in.rest();

  std::vector<std::vector<uint8_t>> out;
  Status st = static_decode_batch(m, {ByteSpan{payload.data(), payload.size()}}, {static_cast<size_t>(n)}, &out);
  if (st.is_ok()) {
    TP_FUZZ_CHECK(n <= range_max_decoded_length(payload.size(), kStaticTotalLog2), std::to_string(n));
    TP_FUZZ_CHECK(out.size() == 1 && out[0].size() == n, "output length");
  }

  // Round trip of the payload bytes as a document.
  std::vector<uint8_t> coded, back(payload.size());
  TP_FUZZ_CHECK(static_encode(m, payload.data(), payload.size(), &coded).is_ok(), "encode");
  TP_FUZZ_CHECK(payload.size() <= range_max_decoded_length(coded.size(), kStaticTotalLog2), "bound below a real stream");
  st = static_decode(m, coded.data(), coded.size(), back.data(), back.size());
  TP_FUZZ_CHECK(st.is_ok() && back == payload, st.message);
  return 0;
}
