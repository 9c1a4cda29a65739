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

Status EqualInfoEncoder::feed(const uint32_t* freqs) {
  if (done()) return Status::internal("equal-info encoder: fed after the end of the input");
  const uint8_t byte = text_[pos_];
  uint32_t cum = 0;
  for (int i = 0; i < byte; i++) cum += freqs[i];
  if (coder_.try_encode(cum, freqs[byte], total_log2_)) {
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

Status EqualInfoWindowDecoder::feed(const uint32_t* freqs) {
  if (out_.size() >= max_bytes_) {
    return Status::invalid("tokens: a window decodes to more than " + std::to_string(max_bytes_) +
                           " bytes: the tokens are corrupt or were made with another model or window size");
  }
  const uint32_t target = coder_.target(total_log2_);
  uint32_t cum = 0;
  int byte = 0;
  while (byte < kAlphabet - 1 && cum + freqs[byte] <= target) cum += freqs[byte++];
  coder_.consume(cum, freqs[byte], total_log2_);
  out_.push_back(static_cast<uint8_t>(byte));
  return Status::ok();
}

namespace {

// The built-in model reads at most max_order() trailing context bytes.
template <typename Stream>
void predict(const ByteModel& model, const Stream& s, uint32_t* masses, uint32_t* freqs) {
  const size_t len = s.context_length();
  const size_t order = static_cast<size_t>(model.max_order());
  const size_t use = len < order ? len : order;
  model.masses(s.context() + (len - use), static_cast<int>(use), masses);
  quantize_masses(masses, s.total_log2(), freqs);
}

}  // namespace

Status equal_info_encode(const ByteModel& model, const uint8_t* text, size_t n, int window_bits, BitWriter* out,
                         size_t* windows) {
  EqualInfoEncoder enc(text, n, window_bits);
  uint32_t masses[kAlphabet], freqs[kAlphabet];
  while (!enc.done()) {
    predict(model, enc, masses, freqs);
    Status st = enc.feed(freqs);
    if (!st.is_ok()) return st;
  }
  *out = std::move(enc.bits());
  *windows = enc.windows();
  return Status::ok();
}

Status equal_info_decode_window(const ByteModel& model, const uint8_t* bits, size_t nbytes, size_t window_index,
                                int window_bits, size_t max_bytes, std::vector<uint8_t>* out) {
  EqualInfoWindowDecoder dec(bits, nbytes, window_index * static_cast<size_t>(window_bits), window_bits, max_bytes);
  uint32_t masses[kAlphabet], freqs[kAlphabet];
  while (!dec.done()) {
    predict(model, dec, masses, freqs);
    Status st = dec.feed(freqs);
    if (!st.is_ok()) return st;
  }
  *out = std::move(dec.output());
  return Status::ok();
}

}  // namespace tp::coding
