// Element types of tensors that cross the JS boundary.
#pragma once
#include <cstddef>
#include <cstdint>

namespace tp {

// Numeric values are part of the binding contract (lib/native.ts DTYPE_CODE).
enum class DType : uint8_t { F32 = 0, F16 = 1, BF16 = 2 };

inline size_t dtype_size(DType t) { return t == DType::F32 ? 4 : 2; }
inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "f32";
    case DType::F16: return "f16";
    case DType::BF16: return "bf16";
  }
  return "?";
}

}  // namespace tp
