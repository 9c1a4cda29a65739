// Plain whole-document coding with a frozen model (no windows): each byte
// is coded with the model's prediction from the document's preceding
// max_order() bytes. The container keeps the length. Also the raw coder with
// one fixed frequency table, which the benchmark times against peers.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "../core/status.h"
#include "byte_model.h"

namespace tp::coding {

constexpr int kStaticTotalLog2 = 16;

Status static_encode(const ByteModel& model, const uint8_t* text, size_t n, std::vector<uint8_t>* out);
// Decodes exactly n bytes into out[0..n). InvalidArgument for a stream no
// encoder wrote with this model (a symbol outside the table, or a read past
// the end of the payload), or for n above what in_len bytes can hold
// (decode_out.h): callers allocating n bytes check that bound first.
Status static_decode(const ByteModel& model, const uint8_t* in, size_t in_len, uint8_t* out, size_t n);

// freqs[256] (each >= 1, summing to 2^total_log2) fixed for every byte.
Status raw_encode(const uint32_t* freqs, int total_log2, const uint8_t* data, size_t n, std::vector<uint8_t>* out);
// As static_decode, with the same bound on n (at total_log2).
Status raw_decode(const uint32_t* freqs, int total_log2, const uint8_t* in, size_t in_len, uint8_t* out, size_t n);

// Checks a fixed table: 256 entries >= 1 summing to 2^total_log2, 12 <= total_log2 <= 16.
Status check_frequency_table(const uint32_t* freqs, int total_log2);

}  // namespace tp::coding
