// Finite-value checks of caller input (append's k / v, attend's q, scale and
// softcap). A NaN or an infinity stored in a cache poisons every score and
// softmax that reads it later, far from its cause, so the caches refuse it
// up front, naming the argument and the first bad element.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

#include "../core/dtype.h"
#include "../core/status.h"

namespace tp::kv {

// A float as JS prints the special values: NaN, Infinity, -Infinity.
inline std::string js_number(double x) {
  if (std::isnan(x)) return "NaN";
  if (std::isinf(x)) return x > 0 ? "Infinity" : "-Infinity";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", x);
  return buf;
}

namespace finite_detail {

// Exponent bits all ones: infinity or NaN (f32: 8 bits, f16: 5, bf16: 8).
inline uint32_t exp_mask(DType t) {
  switch (t) {
    case DType::F32: return 0x7f800000u;
    case DType::F16: return 0x7c00u;
    case DType::BF16: return 0x7f80u;
  }
  return 0;
}

// True when any of the d elements of the row is non-finite. Branch-free so the
// compiler vectorises the scan.
inline bool row_has_nonfinite(const void* row, DType t, int64_t d) {
  const uint32_t m = exp_mask(t);
  uint32_t bad = 0;
  // Bits read with memcpy (no aliasing of the caller's floats); it compiles to plain loads.
  const auto* p = static_cast<const uint8_t*>(row);
  if (t == DType::F32) {
    for (int64_t c = 0; c < d; ++c) {
      uint32_t b;
      std::memcpy(&b, p + 4 * c, 4);
      bad |= static_cast<uint32_t>((b & m) == m);
    }
  } else {
    for (int64_t c = 0; c < d; ++c) {
      uint16_t b;
      std::memcpy(&b, p + 2 * c, 2);
      bad |= static_cast<uint32_t>((b & m) == m);
    }
  }
  return bad != 0;
}

inline double element(const void* base, DType t, int64_t i) {
  switch (t) {
    case DType::F32: return static_cast<const float*>(base)[i];
    case DType::F16: {
      const uint16_t b = static_cast<const uint16_t*>(base)[i];
      if ((b & 0x7c00) != 0x7c00) return 0.0;  // finite (its value is not needed)
      if ((b & 0x3ff) != 0) return NAN;
      return (b & 0x8000) ? -INFINITY : INFINITY;
    }
    case DType::BF16: {
      const uint16_t b = static_cast<const uint16_t*>(base)[i];
      if ((b & 0x7f80) != 0x7f80) return 0.0;
      if ((b & 0x7f) != 0) return NAN;
      return (b & 0x8000) ? -INFINITY : INFINITY;
    }
  }
  return NAN;
}

}  // namespace finite_detail

// Checks every element of a [heads, rows, d] view (element strides hs, rs;
// the view already checked in bounds). Error: "<name>: expected finite
// values, received NaN at [h, r, c]".
inline Status check_finite(const char* name, const void* base, DType t, int64_t heads, int64_t rows, int64_t d, int64_t hs, int64_t rs) {
  if (!base) return Status::ok();
  const size_t es = dtype_size(t);
  for (int64_t h = 0; h < heads; ++h) {
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t off = h * hs + r * rs;
      const void* row = static_cast<const uint8_t*>(base) + static_cast<size_t>(off) * es;
      if (!finite_detail::row_has_nonfinite(row, t, d)) continue;
      for (int64_t c = 0; c < d; ++c) {
        const double x = finite_detail::element(base, t, off + c);
        if (std::isfinite(x)) continue;
        return Status::invalid(std::string(name) + ": expected finite values, received " + js_number(x) + " at [" + num(h) + ", " + num(r) + ", " + num(c) + "]");
      }
    }
  }
  return Status::ok();
}

}  // namespace tp::kv
