// cm_compress / cm_decompress: the CmPredictor driving the arithmetic coder,
// 8 binary decisions per byte, most significant bit first.
#include "cm_codec.h"

#include <memory>
#include <new>
#include <string>

#include "cm_arith.h"
#include "cm_predictor.h"

namespace tp::coding {
namespace {

Status check_options(const CmOptions& options) {
  if (options.memory_log2 < kCmMinMemoryLog2 || options.memory_log2 > kCmMaxMemoryLog2) {
    return Status::invalid("memoryLog2: expected an integer in [" + std::to_string(kCmMinMemoryLog2) + ", " +
                           std::to_string(kCmMaxMemoryLog2) + "], received " + std::to_string(options.memory_log2));
  }
  return Status::ok();
}

Status length_error(size_t n) {
  return Status::invalid("length: expected at most " + std::to_string(kCmMaxLength) + " bytes, received " + std::to_string(n));
}

constexpr size_t kProgressMask = (size_t{1} << 20) - 1;  // report every 1 MiB

}  // namespace

Status cm_compress(const uint8_t* in, size_t n, const CmOptions& options, std::vector<uint8_t>* out) {
  Status s = check_options(options);
  if (!s.is_ok()) return s;
  if (n > kCmMaxLength) return length_error(n);
  try {
    out->clear();
    if (n == 0) return Status::ok();
    out->reserve(n / 3 + 16);
    auto model = std::make_unique<CmPredictor>();
    model->init(options.memory_log2, n);
    ArithEncoder encoder(out);
    for (size_t pos = 0; pos < n; ++pos) {
      const int c = in[pos];
      for (int b = 7; b >= 0; --b) {
        const int bit = (c >> b) & 1;
        encoder.encode(bit, static_cast<uint32_t>(model->p()));
        model->update(bit);
      }
      model->byte_done(in, pos + 1);
      if ((pos & kProgressMask) == kProgressMask && options.progress) options.progress(pos + 1);
    }
    encoder.flush();
    if (options.progress) options.progress(n);
  } catch (const std::bad_alloc&) {
    out->clear();
    return Status::out_of_memory("compressAdaptive: could not allocate the model tables (try a smaller memoryLog2)");
  }
  return Status::ok();
}

Status cm_decompress(const uint8_t* in, size_t in_len, const CmOptions& options, uint8_t* out, size_t n) {
  Status s = check_options(options);
  if (!s.is_ok()) return s;
  if (n > kCmMaxLength) return length_error(n);
  if (n == 0) {
    return in_len == 0 ? Status::ok() : Status::invalid("decompressAdaptive: payload is corrupt (bytes left for an empty original)");
  }
  if (n > cm_max_original_length(in_len)) {
    return Status::invalid("decompressAdaptive: payload is truncated or corrupt (" + std::to_string(in_len) +
                           " bytes cannot hold " + std::to_string(n) + " bytes)");
  }
  try {
    auto model = std::make_unique<CmPredictor>();
    model->init(options.memory_log2, n);
    ArithDecoder decoder(in, in_len);
    for (size_t pos = 0; pos < n; ++pos) {
      int c = 0;
      for (int b = 0; b < 8; ++b) {
        const int bit = decoder.decode(static_cast<uint32_t>(model->p()));
        model->update(bit);
        c = (c << 1) | bit;
      }
      out[pos] = static_cast<uint8_t>(c);
      model->byte_done(out, pos + 1);
      // A stream read past its end cannot come from the encoder: stop early
      // (at most a few bytes of work after the overrun).
      if (decoder.overran()) break;
      if ((pos & kProgressMask) == kProgressMask && options.progress) options.progress(pos + 1);
    }
    if (decoder.overran() || decoder.consumed() != in_len) {
      return Status::invalid("decompressAdaptive: payload is truncated or corrupt (the coder's input does not end where the stream ends)");
    }
    if (options.progress) options.progress(n);
  } catch (const std::bad_alloc&) {
    return Status::out_of_memory("decompressAdaptive: could not allocate the model tables (try the memoryLog2 used to compress)");
  }
  return Status::ok();
}

}  // namespace tp::coding
