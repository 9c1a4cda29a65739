#include "kv_quant.h"

#include "kv_quant_block.h"

namespace tp::kv {
QuantLayout make_quant_layout(int64_t head_dim, int64_t group, int64_t bits) {
  QuantLayout L;
  L.head_dim = head_dim;
  L.group = group;
  L.bits = bits;
  L.row_bytes = bits == 8 ? head_dim : (head_dim + 1) / 2;
  L.v_groups = (head_dim + group - 1) / group;
  L.k_codes = 0;
  const int64_t last_w = head_dim - (head_dim - 1) / 32 * 32;  // width of the last 32-channel block
  L.v_pair_bytes = (head_dim - 1) / 32 * 32 + 2 * ((last_w + 1) / 2);
  L.k_octet_bytes = (head_dim + 7) / 8 * 32;
  L.v_codes = L.k_codes + (bits == 8 ? group * L.row_bytes : (group + 7) / 8 * L.k_octet_bytes);
  const int64_t v_bytes = bits == 8 ? group * L.row_bytes : (group + 1) / 2 * L.v_pair_bytes;
  // f16 arrays start 2-byte aligned.
  L.k_scale = (L.v_codes + v_bytes + 1) / 2 * 2;
  L.k_min = L.k_scale + 2 * head_dim;
  L.v_scale = L.k_min + 2 * head_dim;
  L.v_min = L.v_scale + 2 * group * L.v_groups;
  L.block_bytes = (L.v_min + 2 * group * L.v_groups + 63) / 64 * 64;
  return L;
}

void quantize_block(const QuantLayout& L, const float* k, const float* v, uint8_t* block) {
  quantize_block_rows(L, k, v, L.head_dim, block);
}

void dequantize_rows(const QuantLayout& L, const uint8_t* block, int64_t r0, int64_t n, float* k, float* v) {
  const int64_t d = L.head_dim;
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t c = 0; c < d; ++c) {
      if (k) k[r * d + c] = dequant_k(L, block, r0 + r, c);
      if (v) v[r * d + c] = dequant_v(L, block, r0 + r, c);
    }
  }
}

}  // namespace tp::kv
