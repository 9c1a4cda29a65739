// fn(i) for i in [0, n) on the thread pool; returns the lowest-index failure,
// so the reported error does not depend on the schedule. An allocation
// failure inside fn becomes OutOfMemory naming `what`.
#pragma once
#include <cstddef>
#include <new>
#include <string>
#include <vector>

#include "status.h"
#include "thread_pool.h"

namespace tp {

template <typename Fn>
Status run_all(size_t n, Fn fn, const char* what = "coding") {
  std::vector<Status> status(n);
  ThreadPool::instance().parallel_for(static_cast<int64_t>(n), [&](int64_t i, int) {
    try {
      status[static_cast<size_t>(i)] = fn(static_cast<size_t>(i));
    } catch (const std::bad_alloc&) {
      status[static_cast<size_t>(i)] = Status::out_of_memory(std::string("out of memory while ") + what);
    }
  });
  for (auto& st : status) {
    if (!st.is_ok()) return st;
  }
  return Status::ok();
}

}  // namespace tp
