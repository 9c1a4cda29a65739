// Batched Orthogonal Matching Pursuit over a fixed dictionary of atoms, for
// tokenizer transplantation (lib/tokenizer/transplant.ts).
//
// Semantics follow mergekit's batch_omp (arcee-ai/mergekit,
// mergekit/tokensurgeon/omp.py): for each target t (a donor-space embedding
// of a new token) pick up to k atoms (donor embeddings of anchor tokens), each
// step the unpicked atom with the largest |<residual, atom>| (atoms are NOT
// normalised, as there), and refit all picked coefficients by least squares
// after every step. The algorithm is Batch-OMP (Rubinstein, Zibulevsky and
// Elad 2008): correlations alpha0 = Phi t are computed once, the residual
// correlations Phi r = alpha0 - G[:, S] gamma come from Gram columns
// G[:, j] = Phi a_j (cached across targets under a memory budget), and
// gamma = G_SS^-1 alpha0_S comes from an incremental Cholesky factor of the
// picked Gram matrix (float64).
//
// Where we differ from mergekit (docs/tokenizer-transplant.md): an atom that
// is numerically in the span of the picked ones (a duplicate, or k > rank) is
// skipped instead of entering the basis with a clamped norm, and a target
// stops early once its residual is zero (||r||^2 <= 1e-10 ||t||^2), or
// orthogonal to every atom (all |<r, a>| <= 1e-5 ||t|| max ||a||, as when
// k > rank), or no atom is left: counts[t] <= k, unused slots hold index -1 and coefficient 0.
// A zero target picks nothing.
#pragma once
#include <cstdint>
#include <functional>

#include "../core/status.h"

namespace tp::text {

struct OmpProblem {
  const float* atoms = nullptr;    // [n_atoms, dim] row-major
  int64_t n_atoms = 0;
  const float* targets = nullptr;  // [n_targets, dim] row-major
  int64_t n_targets = 0;
  int64_t dim = 0;
  int k = 64;                      // most atoms per target, in [1, 1024]
  // Bytes the Gram-column cache may hold (each column is n_atoms floats);
  // columns past the budget are computed per group and dropped after it.
  int64_t gram_cache_bytes = int64_t(1) << 30;
  // Called from one worker with the number of targets finished so far.
  std::function<void(int64_t done)> progress;
};

struct OmpResult {
  int32_t* indices = nullptr;  // [n_targets, k]: picked atoms in pick order, -1 past count
  float* coeffs = nullptr;     // [n_targets, k]: least-squares coefficients, 0 past count
  int32_t* counts = nullptr;   // [n_targets] (may be null)
};

constexpr int kOmpMaxK = 1024;

Status omp_batch(const OmpProblem& p, const OmpResult& out);

// Block dot products: outs[v][r] = <rows[r], vecs[v]> for r in [0, n_rows),
// v in [0, n_vecs); rows are [n_rows, dim] row-major, each vec has dim floats.
// AVX2+FMA when the CPU has it (active_isa), float accumulation.
void omp_dots(const float* rows, int64_t n_rows, int64_t dim, const float* const* vecs, int n_vecs, float* const* outs);

}  // namespace tp::text
