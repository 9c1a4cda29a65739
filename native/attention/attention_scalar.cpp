// Portable attention kernels (no SIMD intrinsics): runs on every CPU.
// Library headers come first; everything below uses raw pointers only.
#include <cmath>
#include <cstdint>

#include "../core/buffer.h"
#include "../core/half.h"
#include "../core/thread_pool.h"
#include "attention_plan.h"

namespace tp::attn_scalar {
#include "ops_scalar.h"
#include "attention_kernel.inl"
}  // namespace tp::attn_scalar
