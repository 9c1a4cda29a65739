#include "cpu_features.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <initializer_list>

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#define TP_X86 1
#endif

namespace tp {
namespace {

#ifdef TP_X86
unsigned long long read_xcr0() {
  unsigned int eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<unsigned long long>(edx) << 32) | eax;
}
#endif

CpuFeatures detect() {
  CpuFeatures f;
#ifdef TP_X86
  unsigned int a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = c & (1u << 27);
  if (!osxsave) return f;
  const unsigned long long xcr0 = read_xcr0();
  const bool ymm_os = (xcr0 & 0x6) == 0x6;
  const bool zmm_os = (xcr0 & 0xe6) == 0xe6;
  const bool amx_os = (xcr0 & 0x60000) == 0x60000;
  f.fma = ymm_os && (c & (1u << 12));
  f.f16c = ymm_os && (c & (1u << 29));
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
    f.avx2 = ymm_os && (b & (1u << 5));
    f.avx512f = zmm_os && (b & (1u << 16));
    f.avx512dq = zmm_os && (b & (1u << 17));
    f.avx512bw = zmm_os && (b & (1u << 30));
    f.avx512vl = zmm_os && (b & (1u << 31));
    f.avx512fp16 = zmm_os && (d & (1u << 23));
    f.avx512vnni = zmm_os && (c & (1u << 11));
    f.amx_tile = amx_os && (d & (1u << 24));
  }
  if (__get_cpuid_count(7, 1, &a, &b, &c, &d)) f.avx512bf16 = zmm_os && (a & (1u << 5));
#endif
  return f;
}

IsaLevel compute_detected() {
  const CpuFeatures& f = cpu_features();
#if defined(TP_X86) && !defined(TOKENPRESS_DISABLE_SIMD)
  if (f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.fma && f.f16c) return IsaLevel::Avx512;
  if (f.avx2 && f.fma && f.f16c) return IsaLevel::Avx2;
#else
  (void)f;
#endif
  return IsaLevel::Scalar;
}

std::atomic<int>& active_slot() {
  static std::atomic<int> slot([] {
    IsaLevel level = compute_detected();
    IsaLevel wanted;
    const char* env = std::getenv("TOKENPRESS_ISA");
    if (env && parse_isa(env, &wanted) && wanted < level) level = wanted;
    return static_cast<int>(level);
  }());
  return slot;
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

IsaLevel detected_isa() {
  static const IsaLevel level = compute_detected();
  return level;
}

IsaLevel active_isa() { return static_cast<IsaLevel>(active_slot().load(std::memory_order_relaxed)); }

bool set_active_isa(IsaLevel level) {
  if (level > detected_isa()) return false;
  active_slot().store(static_cast<int>(level));
  return true;
}

const char* isa_name(IsaLevel level) {
  switch (level) {
    case IsaLevel::Scalar: return "scalar";
    case IsaLevel::Avx2: return "avx2";
    case IsaLevel::Avx512: return "avx512";
  }
  return "?";
}

bool parse_isa(const char* name, IsaLevel* out) {
  for (IsaLevel l : {IsaLevel::Scalar, IsaLevel::Avx2, IsaLevel::Avx512}) {
    if (std::strcmp(name, isa_name(l)) == 0) { *out = l; return true; }
  }
  return false;
}

}  // namespace tp
