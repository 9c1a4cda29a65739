#include "coding_batch.h"

#include <atomic>
#include <cstdint>
#include <mutex>
#include <new>
#include <string>

#include "../core/run_all.h"
#include "bit_io.h"
#include "decode_out.h"
#include "equal_info.h"
#include "static_coding.h"

namespace tp::coding {

void bits_to_tokens(const std::vector<uint8_t>& bytes, size_t nbits, int token_bits, std::vector<uint32_t>* tokens) {
  const size_t n = (nbits + token_bits - 1) / token_bits;
  tokens->assign(n, 0);
  for (size_t t = 0; t < n; t++) (*tokens)[t] = get_bits(bytes.data(), bytes.size(), t * token_bits, token_bits);
}

Status equal_info_encode_batch(const ByteModel& model, const std::vector<ByteSpan>& docs, int window_bits,
                               int token_bits, std::vector<TokenStream>* out) {
  out->assign(docs.size(), TokenStream{});
  return run_all(docs.size(), [&](size_t i) {
    BitWriter bits;
    size_t windows = 0;
    Status st = equal_info_encode(model, docs[i].data, docs[i].size, window_bits, &bits, &windows);
    if (!st.is_ok()) return st;
    bits_to_tokens(bits.bytes(), bits.bit_count(), token_bits, &(*out)[i].tokens);
    (*out)[i].windows = windows;
    return Status::ok();
  });
}

Status tokens_to_bits(const uint32_t* tokens, size_t n, int window_bits, int token_bits, std::vector<uint8_t>* bits,
                      size_t* windows) {
  const uint64_t limit = token_bits == 32 ? 0xFFFFFFFFull : (uint64_t{1} << token_bits) - 1;
  BitWriter w;
  for (size_t i = 0; i < n; i++) {
    if (tokens[i] > limit) {
      return Status::invalid("tokens[" + std::to_string(i) + "]: expected an integer below 2^" +
                             std::to_string(token_bits) + ", received " + std::to_string(tokens[i]));
    }
    w.put_bits(tokens[i], token_bits);
  }
  const size_t nbits = n * static_cast<size_t>(token_bits);
  const size_t whole = nbits / static_cast<size_t>(window_bits);
  const size_t needed = (whole * window_bits + token_bits - 1) / token_bits;
  if (needed != n) {
    return Status::invalid("tokens: expected a count that holds whole " + std::to_string(window_bits) +
                           "-bit windows (ceil(k * " + std::to_string(window_bits) + " / " + std::to_string(token_bits) +
                           ") tokens for some k), received " + std::to_string(n) + " tokens");
  }
  for (size_t pos = whole * window_bits; pos < nbits; pos++) {
    if (get_bit(w.bytes().data(), w.bytes().size(), pos)) {
      return Status::invalid("tokens: expected zero padding after the last window, received a set bit at bit " +
                             std::to_string(pos));
    }
  }
  *bits = std::move(w.bytes());
  *windows = whole;
  return Status::ok();
}

Status equal_info_decode_batch(const ByteModel& model, const std::vector<std::vector<uint8_t>>& bits,
                               const std::vector<size_t>& windows, int window_bits, size_t max_bytes,
                               std::vector<std::vector<uint8_t>>* out) {
  // Flatten (document, window) so one long document still uses every core.
  std::vector<std::pair<size_t, size_t>> items;
  for (size_t d = 0; d < bits.size(); d++) {
    for (size_t w = 0; w < windows[d]; w++) items.emplace_back(d, w);
  }
  std::vector<std::vector<uint8_t>> pieces(items.size());
  const size_t per_window = window_byte_cap(window_bits, max_bytes);
  // A running total bounds memory on foreign tokens: once the windows
  // decoded so far exceed every document's cap together, the rest stop.
  std::atomic<size_t> decoded{0};
  const size_t all_docs_cap = max_bytes > SIZE_MAX / (bits.size() + 1) ? SIZE_MAX : max_bytes * bits.size();
  Status st = run_all(items.size(), [&](size_t i) {
    if (decoded.load(std::memory_order_relaxed) > all_docs_cap) {
      return Status::invalid("tokens: the documents decode to more than maxBytes (" + std::to_string(max_bytes) + ") each");
    }
    const auto& b = bits[items[i].first];
    Status s = equal_info_decode_window(model, b.data(), b.size(), items[i].second, window_bits, per_window, &pieces[i]);
    decoded.fetch_add(pieces[i].size(), std::memory_order_relaxed);
    return s;
  });
  if (!st.is_ok()) return st;
  out->assign(bits.size(), {});
  for (size_t i = 0; i < items.size(); i++) {
    auto& doc = (*out)[items[i].first];
    if (doc.size() + pieces[i].size() > max_bytes) {
      return Status::invalid("tokens: document " + std::to_string(items[i].first) + " decodes to more than maxBytes (" +
                             std::to_string(max_bytes) + ")");
    }
    doc.insert(doc.end(), pieces[i].begin(), pieces[i].end());
  }
  return Status::ok();
}

Status static_encode_batch(const ByteModel& model, const std::vector<ByteSpan>& docs,
                           std::vector<std::vector<uint8_t>>* out) {
  out->assign(docs.size(), {});
  return run_all(docs.size(), [&](size_t i) { return static_encode(model, docs[i].data, docs[i].size, &(*out)[i]); });
}

Status static_decode_batch(const ByteModel& model, const std::vector<ByteSpan>& payloads,
                           const std::vector<size_t>& lengths, std::vector<std::vector<uint8_t>>* out) {
  // Every claimed length is checked against its payload before any output
  // is allocated (decode_out.h), so a hostile length allocates nothing.
  for (size_t i = 0; i < payloads.size(); i++) {
    Status st = check_decoded_length(("lengths[" + std::to_string(i) + "]").c_str(), lengths[i], payloads[i].size,
                                     kStaticTotalLog2);
    if (!st.is_ok()) return st;
  }
  out->assign(payloads.size(), {});
  return run_all(payloads.size(), [&](size_t i) {
    (*out)[i].resize(lengths[i]);
    return static_decode(model, payloads[i].data, payloads[i].size, (*out)[i].data(), lengths[i]);
  });
}

}  // namespace tp::coding
