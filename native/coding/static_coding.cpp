#include "static_coding.h"

#include <string>

#include "decode_out.h"
#include "quantize.h"
#include "range_coder.h"

namespace tp::coding {

namespace {


Status corrupt(size_t pos) {
  return Status::invalid("payload: not a stream this model wrote (corrupt, truncated or another model) at byte " +
                         std::to_string(pos));
}


}  // namespace

Status static_encode(const ByteModel& model, const uint8_t* text, size_t n, std::vector<uint8_t>* out) {
  out->clear();
  RangeEncoder enc(out);
  uint32_t masses[kAlphabet];
  for (size_t pos = 0; pos < n; pos++) {
    masses_after(model, text, pos, masses);
    const SymbolRange r = range_of(masses, text[pos], kStaticTotalLog2);
    enc.encode(r.cum, r.freq, kStaticTotalLog2);
  }
  enc.finish();
  return Status::ok();
}

Status static_decode(const ByteModel& model, const uint8_t* in, size_t in_len, uint8_t* out, size_t n) {
  Status bound = check_decoded_length("length", n, in_len, kStaticTotalLog2);
  if (!bound.is_ok()) return bound;
  RangeDecoder dec(in, in_len);
  uint32_t masses[kAlphabet];
  for (size_t pos = 0; pos < n; pos++) {
    masses_after(model, out, pos, masses);
    const uint32_t target = dec.target(kStaticTotalLog2);
    // A valid stream never reads past its end: stop at once on one that does
    // (a truncated payload, or a header claiming more bytes than it holds).
    if (target >= (1u << kStaticTotalLog2) || dec.overrun() > 0) return corrupt(pos);
    SymbolRange r;
    const int byte = find_byte(masses, target, kStaticTotalLog2, &r);
    dec.consume(r.cum, r.freq);
    out[pos] = static_cast<uint8_t>(byte);
  }
  if (dec.overrun() > 0) return corrupt(n);
  return Status::ok();
}

Status check_frequency_table(const uint32_t* freqs, int total_log2) {
  if (total_log2 < kMinTotalLog2 || total_log2 > kMaxTotalLog2) {
    return Status::invalid("totalLog2: expected an integer in [12, 16], received " + std::to_string(total_log2));
  }
  uint64_t sum = 0;
  for (int i = 0; i < kAlphabet; i++) {
    if (freqs[i] == 0) return Status::invalid("freqs[" + std::to_string(i) + "]: expected >= 1, received 0");
    sum += freqs[i];
  }
  if (sum != (uint64_t{1} << total_log2)) {
    return Status::invalid("freqs: expected a sum of 2^" + std::to_string(total_log2) + ", received " +
                           std::to_string(sum));
  }
  return Status::ok();
}

Status raw_encode(const uint32_t* freqs, int total_log2, const uint8_t* data, size_t n, std::vector<uint8_t>* out) {
  Status st = check_frequency_table(freqs, total_log2);
  if (!st.is_ok()) return st;
  uint32_t cum[kAlphabet];
  uint32_t c = 0;
  for (int i = 0; i < kAlphabet; i++) {
    cum[i] = c;
    c += freqs[i];
  }
  out->clear();
  out->reserve(n / 2 + 16);
  RangeEncoder enc(out);
  for (size_t i = 0; i < n; i++) enc.encode(cum[data[i]], freqs[data[i]], total_log2);
  enc.finish();
  return Status::ok();
}

Status raw_decode(const uint32_t* freqs, int total_log2, const uint8_t* in, size_t in_len, uint8_t* out, size_t n) {
  Status st = check_frequency_table(freqs, total_log2);
  if (!st.is_ok()) return st;
  st = check_decoded_length("length", n, in_len, total_log2);
  if (!st.is_ok()) return st;
  // A direct lookup from the cumulative frequency to the byte: one load per symbol.
  std::vector<uint8_t> byte_of(size_t{1} << total_log2);
  uint32_t cum[kAlphabet];
  uint32_t c = 0;
  for (int i = 0; i < kAlphabet; i++) {
    cum[i] = c;
    for (uint32_t k = 0; k < freqs[i]; k++) byte_of[c + k] = static_cast<uint8_t>(i);
    c += freqs[i];
  }
  RangeDecoder dec(in, in_len);
  for (size_t pos = 0; pos < n; pos++) {
    const uint32_t target = dec.target(total_log2);
    if (target >= (1u << total_log2) || dec.overrun() > 0) return corrupt(pos);
    const uint8_t byte = byte_of[target];
    dec.consume(cum[byte], freqs[byte]);
    out[pos] = byte;
  }
  if (dec.overrun() > 0) return corrupt(n);
  return Status::ok();
}

}  // namespace tp::coding
