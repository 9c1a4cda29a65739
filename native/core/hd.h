// Host/device portability for code shared by the CPU build and the CUDA
// kernels. TP_HD marks a function that nvcc compiles for both sides; g++ sees
// a plain inline function. Code under TP_HD uses no exceptions, no std
// containers and no host-only intrinsics, so one source gives the same
// integers on the CPU and on the GPU (and the CPU tests cover the GPU logic).
#pragma once

#if defined(__CUDACC__)
#define TP_HD __host__ __device__ __forceinline__
#define TP_DEVICE_CODE 1
#else
#define TP_HD inline
#endif

namespace tp {

// a * b and a + b rounded once each, never fused into an FMA on the device
// (nvcc contracts a * b + c by default). On x86-64 the CPU's baseline code
// has no FMA instruction to contract into, so both sides agree bit for bit;
// an aarch64 host build would need -ffp-contract=off on the mirrored files.
#if defined(__CUDA_ARCH__)
TP_HD float mul_rn(float a, float b) { return __fmul_rn(a, b); }
TP_HD float add_rn(float a, float b) { return __fadd_rn(a, b); }
#else
inline float mul_rn(float a, float b) { return a * b; }
inline float add_rn(float a, float b) { return a + b; }
#endif

}  // namespace tp
