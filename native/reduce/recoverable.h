// Recoverable Compression (issue 19): text-guided recovery of visual tokens.
//
// Official: banjiuyufen/Recoverable-Compression,
// llava/model/multimodal_encoder/clip_encoder.py: get_score_by_text (text
// score = cos(text, patch) / sqrt(D)), token_recycling_with_text_clustering
// (the rule below), find_max_derivative_position (LOF ratio, lof.h).
//
// Per image, tokens x [n, d], [CLS] attention a [n], text scores s [n], keys
// k [n, dk] (the official code's layer-23 keys; the tokens when absent):
//  1. rv = LOF outlier ratio of a, rt = LOF ratio of s; V = top floor(n rv)
//     by a, T = top floor(n rt) by s; main = V u T (ascending): kept as is.
//  2. rest R = the others (ascending). rc = LOF ratio of a[R]; centres C =
//     top min(floor(n rc), |R|) of R by a (in descending order of a).
//  3. each centre i takes the top 32 of (R minus i) by cos(k_i, k_j) + 50 s_j
//     and becomes x_i + sum_j a_j x_j (not normalised, as the official code).
//  4. one extra token = sum over R \ C of a_j x_j (present whenever R is not empty).
// Output rows: [main..., centres..., extra]. Ties in every top-k go to the
// lower index (torch.topk's order is unspecified). Top-k is a local helper.
#pragma once
#include <cstdint>

#include "../core/status.h"

namespace tp::reduce {

struct RecoverableOptions {
  int lof_neighbors = 10;     // official n_neighbors
  double lof_threshold = 1.5; // contamination 'auto'
  int cluster_size = 32;      // tokens each centre absorbs
  double text_weight = 50.0;  // weight of the text score in the absorption ranking
};

// text [d] -> scores [n] = cos(text, x_i) / sqrt(d) (a zero row or text scores 0).
void recoverable_text_scores(const float* x, int64_t n, int64_t d, const float* text, float* scores);

// Outputs (capacities): tokens [n + 1, d], sizes [n + 1], assignment [n]
// (output row of every source token), main_idx [n], centre_idx [n];
// counts[0..2] = rows, main count, centre count.
struct RecoverableOut {
  float* tokens;
  float* sizes;
  int32_t* assignment;
  int32_t* main_idx;
  int32_t* centre_idx;
  int32_t* counts;
};

Status recoverable_frame(const float* x, int64_t n, int64_t d, const float* keys, int64_t dk, const float* cls, const float* text_scores,
                         const RecoverableOptions& opt, const RecoverableOut& out);

}  // namespace tp::reduce
