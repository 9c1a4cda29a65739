// Runtime CPU feature detection and the ISA level kernels dispatch on.
#pragma once

namespace tp {

// Ordered: a higher level implies every lower one.
enum class IsaLevel { Scalar = 0, Avx2 = 1, Avx512 = 2 };

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false;
  bool avx512fp16 = false, avx512bf16 = false, amx_tile = false;
  bool avx512vnni = false;  // vpdpbusd (u8 x s8 dot of 4 bytes into int32)
};

const CpuFeatures& cpu_features();
// Best level this CPU (and OS) supports.
IsaLevel detected_isa();
// Level kernels use now: detected_isa() unless lowered by set_active_isa()
// or the TOKENPRESS_ISA environment variable (scalar | avx2 | avx512).
IsaLevel active_isa();
// Returns false (and changes nothing) if the CPU does not support `level`.
bool set_active_isa(IsaLevel level);
const char* isa_name(IsaLevel level);
bool parse_isa(const char* name, IsaLevel* out);

}  // namespace tp
