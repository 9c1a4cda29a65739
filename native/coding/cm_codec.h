// Adaptive whole-file compression: a context-mixing model (lpaq/paq family)
// driving a binary arithmetic coder. The model learns as it goes, so no
// static model or Equal-Info windows are involved.
//
// The bitstream is a pure function of (input bytes, options): the model and
// the coder use integer arithmetic only, and one call runs on one thread, so
// every machine, compiler and thread count produces the same bytes.
// No Node headers here.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "../core/status.h"

namespace tp::coding {

// Table size knob. The hashed context table takes 2^memory_log2 bytes and
// the match index 2^(memory_log2-2) bytes, each shrunk further for small
// inputs (a pure function of the input length, so the decoder, which is
// told the length, sizes its tables identically); fixed tables (APMs,
// mixers, order 1) add about 9 MiB. The default (27) uses about 170 MiB on
// inputs over 1 MiB; below that the hashed table is 64 bytes per input byte
// rounded up to a power of two (at least 64 KiB), so small inputs stay small. The decoder must be given the same
// memory_log2 as the encoder.
struct CmOptions {
  int memory_log2 = 27;
  // Optional: called with the bytes done so far, every 1 MiB and at the end
  // (on the calling thread; it must not throw).
  std::function<void(size_t)> progress;
};

constexpr int kCmMinMemoryLog2 = 16;
constexpr int kCmMaxMemoryLog2 = 30;
// The largest original length either direction accepts (2^31 - 1 bytes):
// positions in the match index are 32-bit.
constexpr size_t kCmMaxLength = 0x7fffffffu;

// No payload from cm_compress expands more than this: every coded bit has
// probability at most 4095/4096, so it costs at least log2(4096/4095) bits
// and a byte at least 0.0028 bits (a ratio near 2840:1); the cap leaves a
// margin of more than 10x. Decoders reject a larger claimed length before
// allocating anything.
constexpr size_t kCmMaxExpansion = 32768;

// The largest original length a payload of in_len bytes can claim.
inline size_t cm_max_original_length(size_t in_len) {
  if (in_len < 4) return 0;  // shorter than the coder's flush: only n == 0 (empty payload)
  return in_len > kCmMaxLength / kCmMaxExpansion ? kCmMaxLength : in_len * kCmMaxExpansion;
}

// Compresses in[0..n) into *out (replaced). n == 0 gives an empty payload.
Status cm_compress(const uint8_t* in, size_t n, const CmOptions& options, std::vector<uint8_t>* out);

// Decompresses in[0..in_len) into out[0..n), where n is the original length
// (stored by the caller's container). Never reads or writes out of bounds
// and runs in O(n + in_len) time on any input; a stream that needs bytes
// past in_len, or leaves bytes unread, or claims n above
// cm_max_original_length(in_len), is reported as invalid (truncated or
// corrupt). Other corruption decodes to wrong bytes: the container's
// checksum catches it.
Status cm_decompress(const uint8_t* in, size_t in_len, const CmOptions& options, uint8_t* out, size_t n);

}  // namespace tp::coding
