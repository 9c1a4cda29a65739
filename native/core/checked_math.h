// Overflow-checked size arithmetic for validating shapes and strides that
// come from JavaScript: a wrapped product must never pass a length check.
#pragma once
#include <cstdint>
#include <limits>
#include <string>

#include "status.h"

namespace tp {

// a * b for a, b >= 0, or -1 when an operand is negative or the product overflows.
inline int64_t checked_mul(int64_t a, int64_t b) {
  if (a < 0 || b < 0) return -1;
  if (a != 0 && b > std::numeric_limits<int64_t>::max() / a) return -1;
  return a * b;
}

// Highest element offset + 1 touched by a [heads, rows, hd] view with the
// given head and row strides; 0 when empty, -1 on negative strides or overflow.
inline int64_t view_span(int64_t heads, int64_t rows, int64_t hd, int64_t head_stride, int64_t row_stride) {
  if (heads == 0 || rows == 0 || hd == 0) return 0;
  const int64_t a = checked_mul(heads - 1, head_stride);
  const int64_t b = checked_mul(rows - 1, row_stride);
  if (a < 0 || b < 0 || hd < 0) return -1;
  if (a > std::numeric_limits<int64_t>::max() - b - hd) return -1;
  return a + b + hd;
}

// Largest dimension the kernels accept: products of a few stay inside int64.
constexpr int64_t kMaxDim = int64_t(1) << 40;

// A [heads, rows, hd] view with head and row strides must lie inside len elements.
inline Status check_view(const char* name, int64_t heads, int64_t rows, int64_t hd, int64_t hs, int64_t rs, int64_t len) {
  if (hs < 0 || rs < 0) return Status::invalid(std::string(name) + ": strides must be non-negative");
  const int64_t span = view_span(heads, rows, hd, hs, rs);
  if (span < 0) return Status::invalid(std::string(name) + ": shape and strides overflow");
  if (span > len) {
    return Status::invalid(std::string(name) + ": expected at least " + num(span) + " elements for its shape and strides, received " + num(len));
  }
  return Status::ok();
}

}  // namespace tp
