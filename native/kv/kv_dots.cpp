// Run-time ISA dispatch of the KV scoring kernels (kv_dots.h).
#include "kv_dots.h"

#include "../core/cpu_features.h"

namespace tp::kv {

void run_mass(const MassPlan& plan) {
  switch (active_isa()) {
    case IsaLevel::Avx512: dots_avx512::run_mass(plan); break;
    case IsaLevel::Avx2: dots_avx2::run_mass(plan); break;
    default: dots_scalar::run_mass(plan); break;
  }
}

void run_quad(const QuadPlan& plan) {
  switch (active_isa()) {
    case IsaLevel::Avx512: dots_avx512::run_quad(plan); break;
    case IsaLevel::Avx2: dots_avx2::run_quad(plan); break;
    default: dots_scalar::run_quad(plan); break;
  }
}

void run_nearest(const NearestPlan& plan) {
  switch (active_isa()) {
    case IsaLevel::Avx512: dots_avx512::run_nearest(plan); break;
    case IsaLevel::Avx2: dots_avx2::run_nearest(plan); break;
    default: dots_scalar::run_nearest(plan); break;
  }
}

void softmax_sum(const float* logits, int64_t n_seg, int64_t n, float scale, float* out) {
  switch (active_isa()) {
    case IsaLevel::Avx512: dots_avx512::softmax_sum(logits, n_seg, n, scale, out); break;
    case IsaLevel::Avx2: dots_avx2::softmax_sum(logits, n_seg, n, scale, out); break;
    default: dots_scalar::softmax_sum(logits, n_seg, n, scale, out); break;
  }
}

void row_sq_norms(const KeyRows& x, int64_t head, int64_t first, int64_t n, int64_t head_dim, float* out) {
  switch (active_isa()) {
    case IsaLevel::Avx512: dots_avx512::row_sq_norms(x, head, first, n, head_dim, out); break;
    case IsaLevel::Avx2: dots_avx2::row_sq_norms(x, head, first, n, head_dim, out); break;
    default: dots_scalar::row_sq_norms(x, head, first, n, head_dim, out); break;
  }
}

void rows_to_f32(const KeyRows& x, int64_t head, int64_t first, int64_t n, int64_t head_dim, float* out) {
  switch (active_isa()) {
    case IsaLevel::Avx512: dots_avx512::rows_to_f32(x, head, first, n, head_dim, out); break;
    case IsaLevel::Avx2: dots_avx2::rows_to_f32(x, head, first, n, head_dim, out); break;
    default: dots_scalar::rows_to_f32(x, head, first, n, head_dim, out); break;
  }
}

}  // namespace tp::kv
