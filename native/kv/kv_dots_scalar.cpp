// Portable KV scoring kernels (no SIMD intrinsics): runs on every CPU.
// Library headers come first; the kernel uses raw pointers only.
#include <cmath>
#include <cstdint>

#include "../core/buffer.h"
#include "../core/half.h"
#include "../core/thread_pool.h"
#include "kv_dots.h"

namespace tp::kv::dots_scalar {
#include "../attention/ops_scalar.h"
#include "kv_dots_kernel.inl"
}  // namespace tp::kv::dots_scalar
