// Equal-Info token streams: tokens_to_bits (the token stream check), then
// the CPU batch decoder and the portable slot decoder (the CUDA kernel's
// code run on the CPU) on the same windows, and a round trip.
//
// Input: u8 flags, u16 windowBits (flags bit 0: 16 + v % 81, else
// 16 + v % 2033), u8 tokenBits (flags bits 1-2: 0 -> 8, 1 -> 16, else
// 8 + v % 25, at most windowBits), u8 maxBytes (flags bit 3: v, else 2^20),
// u16 slotBytes (v % 301), u8 documents (1 + v % 3), then the tokens (1 to
// 4 bytes each, big-endian), which are also the round trip's text.
// Properties: no crash, leak or UB; the two decoders agree (same status
// code, same bytes); no document decodes to more than maxBytes; every
// window decodes to at most max_window_bytes; encoding and decoding a text
// gives it back.
#include "../../native/coding/coding_batch.h"
#include "../../native/coding/equal_info.h"
#include "../../native/coding/equal_info_slots.h"
#include "fuzz_common.h"

using namespace tp;
using namespace tp::coding;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const KnModel& m = fuzz::model();
  fuzz::Fields in{data, size};
  const uint8_t flags = in.take();
  // Small windows when bit 0 is set (more windows per input), any size else.
  const int wv = static_cast<int>(in.le(2));
  const int window_bits = (flags & 1) ? 16 + wv % 81 : 16 + wv % 2033;
  const int tv = in.take();
  const int token_choice = (flags >> 1) & 3;
  int token_bits = token_choice == 0 ? 8 : token_choice == 1 ? 16 : 8 + tv % 25;
  if (token_bits > window_bits) token_bits = window_bits;
  const uint8_t mb = in.take();
  const size_t max_bytes = (flags & 8) ? mb : size_t{1} << 20;
  const uint32_t slot_bytes = static_cast<uint32_t>(in.le(2) % 301);
  const int ndocs = 1 + in.take() % 3;
  const std::vector<uint8_t> rest = in.rest();

  // Tokens: big-endian groups of ceil(token_bits / 8) bytes, masked or not.
  const size_t tb = static_cast<size_t>((token_bits + 7) / 8);
  std::vector<uint32_t> tokens;
  for (size_t i = 0; i + tb <= rest.size(); i += tb) {
    uint32_t t = 0;
    for (size_t k = 0; k < tb; k++) t = (t << 8) | rest[i + k];
    tokens.push_back(t);
  }
  // Split into documents; each must hold whole windows.
  std::vector<std::vector<uint8_t>> bits;
  std::vector<size_t> windows;
  const size_t per_doc = tokens.size() / ndocs;
  bool all_ok = true;
  for (int d = 0; d < ndocs && all_ok; d++) {
    const size_t from = d * per_doc, count = d + 1 == ndocs ? tokens.size() - from : per_doc;
    std::vector<uint8_t> b;
    size_t w = 0;
    all_ok = tokens_to_bits(tokens.data() + from, count, window_bits, token_bits, &b, &w).is_ok();
    TP_FUZZ_CHECK(!all_ok || b.size() * 8 >= w * static_cast<size_t>(window_bits), "bits shorter than the windows");
    bits.push_back(std::move(b));
    windows.push_back(w);
  }
  if (all_ok) {
    std::vector<std::vector<uint8_t>> cpu, portable;
    size_t overflowed = 0;
    const Status a = equal_info_decode_batch(m, bits, windows, window_bits, max_bytes, &cpu);
    const Status b = equal_info_decode_batch_portable(m, bits, windows, window_bits, max_bytes, slot_bytes, &portable, &overflowed);
    TP_FUZZ_CHECK(a.code == b.code, a.message + " | " + b.message);
    if (a.is_ok()) {
      TP_FUZZ_CHECK(cpu == portable, "the CPU and portable decoders disagree");
      for (size_t d = 0; d < cpu.size(); d++) {
        TP_FUZZ_CHECK(cpu[d].size() <= max_bytes, "a document above maxBytes");
        TP_FUZZ_CHECK(cpu[d].size() <= windows[d] * max_window_bytes(window_bits), "above max_window_bytes");
      }
    }
  }

  // Round trip: the input's bytes as one document.
  std::vector<TokenStream> enc;
  TP_FUZZ_CHECK(equal_info_encode_batch(m, {ByteSpan{rest.data(), rest.size()}}, window_bits, token_bits, &enc).is_ok(),
                "encode");
  std::vector<uint8_t> b;
  size_t w = 0;
  Status st = tokens_to_bits(enc[0].tokens.data(), enc[0].tokens.size(), window_bits, token_bits, &b, &w);
  TP_FUZZ_CHECK(st.is_ok() && w == enc[0].windows, st.message);
  std::vector<std::vector<uint8_t>> back;
  st = equal_info_decode_batch(m, {b}, {w}, window_bits, rest.size(), &back);
  TP_FUZZ_CHECK(st.is_ok() && back.size() == 1 && back[0] == rest, st.message);
  return 0;
}
