#include "machine_limits.h"

namespace tp {
double measure_read_bandwidth(int64_t, int, int) { return 0; }  // TODO(helper)
double measure_fma_peak(int) { return 0; }
}  // namespace tp
