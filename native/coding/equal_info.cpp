#include "equal_info.h"

#include "quantize.h"

namespace tp::coding {

EqualInfoEncoder::EqualInfoEncoder(const uint8_t* text, size_t n, int window_bits)
    : text_(text), n_(n), window_bits_(window_bits), total_log2_(window_total_log2(window_bits)) {
  coder_.reset(window_bits);
}

void EqualInfoEncoder::close_window() {
  out_.put_window(coder_.value(), window_bits_);
  windows_++;
  window_start_ = pos_;
  coder_.reset(window_bits_);
}

Status EqualInfoEncoder::feed(const uint32_t* masses) {
  if (done()) return Status::internal("equal-info encoder: fed after the end of the input");
  const SymbolRange r = range_of(masses, text_[pos_], total_log2_);
  if (coder_.try_encode(r.cum, r.freq, total_log2_)) {
    pos_++;
    if (pos_ == n_) close_window();
    return Status::ok();
  }
  if (pos_ == window_start_) return Status::internal("equal-info encoder: a byte does not fit a fresh window");
  close_window();
  return Status::ok();
}

EqualInfoWindowDecoder::EqualInfoWindowDecoder(const uint8_t* bits, size_t nbytes, size_t bit_offset,
                                               int window_bits, size_t max_bytes)
    : total_log2_(window_total_log2(window_bits)), max_bytes_(max_bytes) {
  BigWindow value;
  get_window(bits, nbytes, bit_offset, window_bits, &value);
  coder_.reset(value, window_bits);
}

Status EqualInfoWindowDecoder::feed(const uint32_t* masses) {
  if (out_.size() >= max_bytes_) {
    return Status::invalid("tokens: a window decodes to more than " + std::to_string(max_bytes_) +
                           " bytes: the tokens are corrupt or were made with another model or window size");
  }
  SymbolRange r;
  const int byte = find_byte(masses, coder_.target(total_log2_), total_log2_, &r);
  coder_.consume(r.cum, r.freq, total_log2_);
  out_.push_back(static_cast<uint8_t>(byte));
  return Status::ok();
}

namespace {

template <typename Stream>
void predict(const ByteModel& model, const Stream& s, uint32_t* masses) {
  masses_after(model, s.context(), s.context_length(), masses);
}

}  // namespace

Status equal_info_encode(const ByteModel& model, const uint8_t* text, size_t n, int window_bits, BitWriter* out,
                         size_t* windows) {
  EqualInfoEncoder enc(text, n, window_bits);
  uint32_t masses[kAlphabet];
  while (!enc.done()) {
    predict(model, enc, masses);
    Status st = enc.feed(masses);
    if (!st.is_ok()) return st;
  }
  *out = std::move(enc.bits());
  *windows = enc.windows();
  return Status::ok();
}

Status equal_info_decode_window(const ByteModel& model, const uint8_t* bits, size_t nbytes, size_t window_index,
                                int window_bits, size_t max_bytes, std::vector<uint8_t>* out) {
  EqualInfoWindowDecoder dec(bits, nbytes, window_index * static_cast<size_t>(window_bits), window_bits, max_bytes);
  uint32_t masses[kAlphabet];
  while (!dec.done()) {
    predict(model, dec, masses);
    Status st = dec.feed(masses);
    if (!st.is_ok()) return st;
  }
  *out = std::move(dec.output());
  return Status::ok();
}

}  // namespace tp::coding
