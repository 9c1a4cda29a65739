// CoreMatching (issue 19): core image tokens from FFN co-activation.
//
// Official: wangqinsi1/2025-ICML-CoreMatching,
// transformers/models/llama/modeling_llama.py (LlamaMLP.forward, the
// "coreinfer version" block): B = (act_fn(gate) * up > 0) over the
// sequence [T, I]; C = B B^T; scores = C[query row, image span] (query row
// -5, span [5, 581) for LLaVA-1.5); sort descending; the elbow is the point
// of the sorted curve farthest from the chord between its first and last
// points; core tokens = scores > the elbow's value (strict). Applied in
// decoder layers 6..19 there (by zeroing the others' K/V): the caller picks
// the layer by which activations it passes.
//
// Ours computes only the needed row of C: one pass over the image rows with
// the query row's activation bits packed in 64-bit words.
#pragma once
#include <cstdint>

#include "../core/status.h"

namespace tp::reduce {

// scores[j] = #{i : act[q, i] > 0 and act[start + j, i] > 0}, j < len, over
// act [rows, inter]. When up != nullptr, act is the gate and the product is
// silu(gate) * up (evaluated in float64).
void corematch_scores(const float* act, const float* up, int64_t inter, int64_t query, int64_t start, int64_t len, float* scores);

// The elbow value of scores [len] (sorted descending inside), and the index
// of the elbow in the sorted order. len == 0: returns +inf.
double corematch_elbow(const float* scores, int64_t len, int64_t* elbow_rank);

}  // namespace tp::reduce
