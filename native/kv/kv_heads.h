// Per-KV-head work of a sparse attend (kv_cache_sparse.cpp: Quest / blocks,
// kv_cache_tidal.cpp: TidalDecode), run over the thread pool when the heads
// are long enough to pay for waking it, else on the calling thread.
#pragma once
#include <cstdint>
#include <new>

#include "../core/thread_pool.h"

namespace tp::kv {

// Heads of at least this many row-channels (longest head x headDim) go to
// the pool: below it, waking the pool costs more than the work.
constexpr int64_t kPooledHeadWork = int64_t(1) << 16;

// Calls run(h) for h in [0, H). The heads must be independent (each writes
// only its own outputs). On the pool when H > 1 and work >= kPooledHeadWork;
// the attention inside then runs inline on the task's worker (nested
// parallel_for). If the pool refuses a thread, reset() undoes what
// accumulates across a head's run and every head runs again on this thread
// (their outputs are rewritten). std::bad_alloc propagates.
template <typename Run, typename Reset>
void for_each_head(int64_t H, int64_t work, Run&& run, Reset&& reset) {
  if (H > 1 && work >= kPooledHeadWork) {
    try {
      ThreadPool::instance().parallel_for(H, [&](int64_t h, int) { run(h); });
      return;
    } catch (const std::bad_alloc&) {
      throw;
    } catch (...) {
      reset();
    }
  }
  for (int64_t h = 0; h < H; ++h) run(h);
}

}  // namespace tp::kv
