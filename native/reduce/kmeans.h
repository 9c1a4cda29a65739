// VQToken's training-free part (issue 19): k-means with cosine distance over
// the L2-normalised tokens of a whole video, giving a codebook [K, C] and the
// code map [T, n] (which code each (frame, position) took).
//
// Official: Hai-chao-Zhang/VQToken, VQToken/vq_token.py
// (kmeans_clustering_tokens_torch: K = 32, 50 iterations;
// adaptive_kmeans_clustering_tokens_torch), VQToken/cluster.py (KMeansTorch:
// k-means++ init by squared Euclidean distance + 1e-6, cosine assignment to
// normalised centroids, mean update, stop when ||C_old - C_new||_F < 1e-4;
// AdaptiveKMeansTorch "elbow": K in [12, maxK], best K = max(argmax of the
// second difference of the distortions + 4, 12), 100 iterations), and
// llava/model/llava_arch.py (token_dynamics: K = 32). The trained VQ-Attn
// adapter that turns codebook + code map into the LLM's tokens is out of
// scope (it needs trained weights).
//
// Randomness: mulberry32 seeded by `seed` (the same stream the JS reference
// lib/vision/reference/vqtoken.ts draws), so results are deterministic.
#pragma once
#include <cstdint>

#include "../core/status.h"

namespace tp::reduce {

// mulberry32: one uint32 state, draws in [0, 1). Pure, shared by k-means++.
struct Mulberry32 {
  uint32_t a;
  explicit Mulberry32(uint32_t seed) : a(seed) {}
  double next() {
    a += 0x6D2B79F5u;
    uint32_t t = a;
    t = (t ^ (t >> 15)) * (t | 1u);
    t ^= t + (t ^ (t >> 7)) * (t | 61u);
    return static_cast<double>(t ^ (t >> 14)) / 4294967296.0;
  }
};

struct KMeansOptions {
  int k = 32;            // clusters (clamped to the token count)
  int max_iter = 50;     // official: 50 (fixed K), 100 (adaptive)
  double tol = 1e-4;     // Frobenius shift of the centroids that stops it
};

// One k-means run on normalised rows xn [n, d] (zero rows allowed).
// Outputs: centroids [k, d] (the last centroids, as KMeansTorch.fit returns),
// labels [n]; *iterations = assignment passes run. rng advances.
Status kmeans_cosine(const float* xn, int64_t n, int64_t d, const KMeansOptions& opt, Mulberry32& rng, float* centroids,
                     int32_t* labels, int* iterations);

struct VqTokenOptions {
  int k = 32;
  int max_iter = 50;
  double tol = 1e-4;
  uint32_t seed = 0;
  // Adaptive K (official "elbow" rule) over K in [12, max_k]; max_iter then
  // defaults to 100 in the caller (AdaptiveKMeansTorch).
  bool adaptive = false;
  int max_k = 32;
};

// tokens [rows, d] (all frames flattened) -> codebook [k_out, d] (mean of the
// normalised tokens of each code; an empty code is a zero row), counts
// [k_out], codes [rows]. codebook/counts must hold max(k, max_k) rows.
// *k_out = the K used (min(K, rows)); *iterations = passes of the final run.
Status vqtoken(const float* tokens, int64_t rows, int64_t d, const VqTokenOptions& opt, float* codebook, float* counts,
               int32_t* codes, int* k_out, int* iterations);

}  // namespace tp::reduce
