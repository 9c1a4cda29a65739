// GlobalCom2: thumbnail-guided per-crop token retention for LLaVA-NeXT
// AnyRes inputs (issue 19; docs/vision-select.md). Official:
// xuyang-liu16/GlobalCom2, llava/model/llava_arch.py
// (`compress_thumbnail`, `generate_scale_for_crop_features`,
// `interpolate_and_split_cls_attn_scores`, `select_topk_crop_features`).
//
// Inputs: the thumbnail's [CLS] scores [side * side] and each crop's [CLS]
// scores [nph * npw, h * w] (crops row-major over the nph x npw crop grid).
//  1. thumbnail: keep the top int(side^2 * base) by its own scores;
//  2. crop c's ratio: thumbnail scores summed over the crop's cell of the
//     thumbnail grid, softmax of (sum - max) / temperature (+1e-8 in the
//     denominator), ratio_c = base * (1 + softmax_c - mean), clipped at 1;
//  3. inside crop c: L2-normalised crop scores + L2-normalised thumbnail
//     scores bilinearly upsampled (align_corners = False, as the official
//     F.interpolate call) to the nph*h x npw*w grid and cut to the crop;
//     keep the top int(h * w * ratio_c), in spatial order.
// We take unpadded, equal crops (no AnyRes unpadding: the caller's job).
#pragma once
#include <cstdint>

#include "../core/status.h"

namespace tp::reduce {

// ratio per crop (step 2): thumb [side * side] -> scales [nph * npw].
void globalcom2_scales(const float* thumb, int64_t side, int64_t nph, int64_t npw, double base, double temperature, double* scales);

// Bilinear resize, align_corners = False (PyTorch's source index rule:
// src = max(0, (dst + 0.5) * in / out - 0.5)): src [ih, iw] -> dst [oh, ow].
void bilinear_resize(const float* src, int64_t ih, int64_t iw, int64_t oh, int64_t ow, float* dst);

struct GlobalCom2Args {
  const float* thumb = nullptr;  // [side * side]
  int64_t side = 0;
  const float* crops = nullptr;  // [nph * npw, h * w]
  int64_t nph = 0, npw = 0, h = 0, w = 0;
  double base = 0.25, temperature = 10.0;
  // Outputs.
  int32_t* thumb_keep = nullptr;   // [int(side^2 * base)] ascending
  double* scales = nullptr;        // [nph * npw]
  int32_t* crop_counts = nullptr;  // [nph * npw]
  int32_t* crop_keep = nullptr;    // [nph * npw, h * w]: the first counts[c] ascending, then -1
  float* crop_scores = nullptr;    // [nph * npw, h * w]: the combined score
};

int64_t globalcom2_thumb_keep(int64_t side, double base);
Status globalcom2(const GlobalCom2Args& a);

}  // namespace tp::reduce
