// One persistent pool of native threads shared by every kernel.
//
// parallel_for runs fn(i, worker) for i in [0, n) with dynamic scheduling; the
// calling thread takes part as worker 0. Calls from different threads (for
// example several async workers) are serialised, so the machine never runs
// more kernel threads than the pool size. A parallel_for issued from inside a
// pool task runs inline on the calling worker. An exception a task throws
// (std::bad_alloc) is rethrown by parallel_for on the calling thread; a
// refused thread in resize() is a std::system_error and leaves the pool as
// it was.
//
// Idle workers, and the caller waiting for them, spin for a while (default
// 50 us, TOKENPRESS_SPIN_US, 0 to block at once) before they block on a
// condition variable: a futex wake costs tens of microseconds on a
// virtual machine (an inter-processor interrupt through the hypervisor),
// which a decode step of many short per-layer calls paid twice per call.
// A job published while every worker spins makes no system call.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace tp {

class ThreadPool {
 public:
  static ThreadPool& instance();

  // Read without the pool's locks (kernels size per-worker scratch with it)
  // while setThreads may resize on another thread: hence atomic.
  int size() const { return size_.load(std::memory_order_relaxed); }
  // Resizes the pool to n threads (the caller counts as one). n >= 1.
  void resize(int n);
  using Task = std::function<void(int64_t index, int worker)>;
  // prepare(workers) runs first, once, with the number of workers this call
  // will use (worker ids are < workers): size per-worker scratch there.
  using Prepare = std::function<void(int workers)>;
  // max_workers > 0 caps the workers (ids < max_workers): callers that sized
  // scratch with size() beforehand must pass it, since setThreads may grow the
  // pool in between.
  void parallel_for(int64_t n, const Task& fn, const Prepare& prepare = nullptr, int max_workers = 0);

  // The same with a plain function pointer, for kernels compiled with
  // ISA-specific flags (they must not instantiate library templates). At
  // most max_workers workers take part, so worker ids are < max_workers:
  // size per-worker scratch with max_workers = size() read beforehand.
  using RawTask = void (*)(void* ctx, int64_t index, int worker);
  void parallel_for(int64_t n, RawTask fn, void* ctx, int max_workers);

  ~ThreadPool();

 private:
  ThreadPool();
  void start_workers(int n);
  void stop_workers();
  void worker_loop(int worker, uint64_t seen_generation);
  void run_tasks(int worker);
  void run_locked(int64_t n, RawTask fn, void* ctx, int workers);

  std::mutex run_mutex_;  // one parallel_for at a time
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  std::vector<std::thread> workers_;
  std::atomic<int> size_{1};  // written under run_mutex_ (resize)
  bool stopping_ = false;
  // Written under mutex_ (so a worker about to block never misses a bump),
  // read without it by spinning workers: hence atomic.
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> busy_{0};  // workers still in the job in flight
  int64_t spin_ns_ = 0;       // how long an idle worker / the waiting caller spins before blocking
  // The job in flight.
  RawTask job_fn_ = nullptr;
  void* job_ctx_ = nullptr;
  int job_workers_ = 0;
  int64_t job_size_ = 0;
  std::atomic<int64_t> next_{0};
  std::exception_ptr job_error_;  // the first exception a task threw (guarded by mutex_)
};

int default_thread_count();

}  // namespace tp
