// Score-ranking pruning rules (issue 19; docs/vision-select.md):
//
// VTC-CLS (THU-MIG/VTC-CLS, llava/model/multimodal_encoder/clip_encoder.py
// `cls_token_only`): score_i = sum over encoder layers [start, end) of the
// head-averaged [CLS] -> patch i attention (official: start_layer up to the
// second-to-last layer, attentions[start_layer:-1]); keep the top `keep`,
// in spatial (ascending) order.
//
// FastV (pkunlp-icler/FastV, src/transformers/src/transformers/models/llama/
// modeling_llama.py): the attention probabilities of layer K-1, averaged
// over heads, row of the last prompt token, image span [start, start+len);
// keep the top `keep` image tokens; positions returned absolute, ascending.
//
// Both thread over frames (the pool). Top-k and its tie rule: topk.h.
#pragma once
#include <cstdint>

#include "../core/status.h"

namespace tp::reduce {

// att [t, layers, n] (per layer already head-averaged; rows of [CLS] -> patches)
// -> scores [t, n] (sum over layers [start, end)), out [t, keep] ascending.
Status cls_rank(const float* att, int64_t t, int64_t layers, int64_t n, int64_t start, int64_t end, int64_t keep, float* scores,
                int32_t* out);

// probs [t, heads, nk]: per head, the last query's attention row over nk keys
// -> scores [t, len] (head mean of the image span), out [t, keep]: absolute key
// positions (start + i), ascending.
Status fastv_rank(const float* probs, int64_t t, int64_t heads, int64_t nk, int64_t start, int64_t len, int64_t keep, float* scores,
                  int32_t* out);

}  // namespace tp::reduce
