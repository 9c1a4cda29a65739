#include "thread_pool.h"

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <string>
#include <system_error>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace tp {
namespace {
thread_local bool t_inside_pool = false;

inline void spin_pause() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#else
  std::this_thread::yield();
#endif
}

// Spins until done() or spin_ns have passed; true when done() came true.
template <typename Done>
bool spin_until(int64_t spin_ns, const Done& done) {
  if (spin_ns <= 0) return done();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::nanoseconds(spin_ns);
  for (uint32_t i = 1;; ++i) {
    if (done()) return true;
    spin_pause();
    if ((i & 63) == 0 && std::chrono::steady_clock::now() > deadline) return done();
  }
}

// TOKENPRESS_SPIN_US in [0, 100000]; 50 us otherwise.
int64_t spin_ns_from_env() {
  if (const char* env = std::getenv("TOKENPRESS_SPIN_US")) {
    char* end = nullptr;
    const long us = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && us >= 0 && us <= 100000) return static_cast<int64_t>(us) * 1000;
  }
  return 50 * 1000;
}
}  // namespace

int default_thread_count() {
  if (const char* env = std::getenv("TOKENPRESS_THREADS")) {
    const int n = std::atoi(env);
    if (n >= 1 && n <= 1024) return n;
  }
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

ThreadPool& ThreadPool::instance() {
  // Leaked on purpose: joining threads from a static destructor at process
  // exit can deadlock inside the Node runtime.
  static ThreadPool* pool = new ThreadPool();
  return *pool;
}

// A refused thread at start-up leaves a smaller pool, never an exception
// from instance().
ThreadPool::ThreadPool() : spin_ns_(spin_ns_from_env()) {
  try {
    start_workers(default_thread_count());
  } catch (const std::system_error&) {
  }
}

ThreadPool::~ThreadPool() { stop_workers(); }

// Starts n - 1 workers. When the system refuses a thread (std::system_error
// from std::thread: ulimit, memory), the pool keeps the workers that did
// start (size_ counts them) and the error is rethrown.
void ThreadPool::start_workers(int n) {
  const int want = n < 1 ? 1 : n;
  size_ = 1;
  stopping_ = false;
  // A new worker must wait for the *next* job: starting from a stale
  // generation it would run (and count itself out of) a job twice, and the
  // pool's busy count would no longer reach zero.
  const uint64_t generation = generation_.load();
  workers_.reserve(static_cast<size_t>(want - 1));
  for (int w = 1; w < want; ++w) {
    workers_.emplace_back([this, w, generation] { worker_loop(w, generation); });
    size_ = w + 1;
  }
}

void ThreadPool::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
}

void ThreadPool::resize(int n) {
  std::lock_guard<std::mutex> run(run_mutex_);
  if (n == size_) return;
  const int old = size_;
  stop_workers();
  try {
    start_workers(n);
    return;
  } catch (const std::system_error& e) {
    // A failed call changes nothing: back to the old size (its threads just
    // ended, so the system had room for them); if even that is refused, the
    // pool runs with the threads it has (at least the caller's).
    const std::error_code code = e.code();
    stop_workers();
    try {
      start_workers(old);
    } catch (const std::system_error&) {
    }
    throw std::system_error(code, "could not start " + std::to_string(n) + " threads; the pool keeps " + std::to_string(size_));
  }
}

namespace {
// Marks the current thread as running pool tasks for its lifetime.
struct InsidePool {
  InsidePool() { t_inside_pool = true; }
  ~InsidePool() { t_inside_pool = false; }
};
}  // namespace

// An exception from a task (std::bad_alloc from a kernel's scratch vector)
// must not escape a pool thread (std::terminate): the first one is kept,
// the remaining indices are skipped, and run_locked rethrows it on the
// calling thread once every worker is done.
void ThreadPool::run_tasks(int worker) {
  if (worker >= job_workers_) return;
  InsidePool inside;
  try {
    for (;;) {
      const int64_t i = next_.fetch_add(1, std::memory_order_relaxed);
      if (i >= job_size_) break;
      job_fn_(job_ctx_, i, worker);
    }
  } catch (...) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!job_error_) job_error_ = std::current_exception();
    next_.store(job_size_);
  }
}

// A worker spins on the generation for spin_ns_ after each job, then blocks.
// The job's fields are written before the generation is bumped (release),
// and read after it is seen (acquire). stop_workers sets stopping_ without
// a new generation (and never while a job runs: both hold run_mutex_), so a
// spinning worker sees no job and goes to the wait, which checks it.
void ThreadPool::worker_loop(int worker, uint64_t seen) {
  for (;;) {
    if (!spin_until(spin_ns_, [&] { return generation_.load(std::memory_order_acquire) != seen; })) {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || generation_.load(std::memory_order_acquire) != seen; });
      if (stopping_) return;
    }
    seen = generation_.load(std::memory_order_acquire);
    run_tasks(worker);
    // The last worker out wakes the caller; under the mutex, so a caller
    // about to block has either seen busy_ == 0 or is already waiting.
    if (busy_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard<std::mutex> lock(mutex_);
      done_.notify_one();
    }
  }
}

namespace {
struct TaskAdapter {
  const ThreadPool::Task* fn;
  static void call(void* ctx, int64_t i, int worker) { (*static_cast<TaskAdapter*>(ctx)->fn)(i, worker); }
};
}  // namespace

void ThreadPool::parallel_for(int64_t n, const Task& fn, const Prepare& prepare, int max_workers) {
  if (n <= 0) return;
  TaskAdapter adapter{&fn};
  if (t_inside_pool) {  // nested: run inline as a single worker
    if (prepare) prepare(1);
    for (int64_t i = 0; i < n; ++i) fn(i, 0);
    return;
  }
  std::lock_guard<std::mutex> run(run_mutex_);
  int workers = n == 1 ? 1 : size_.load();
  if (max_workers > 0 && workers > max_workers) workers = max_workers;
  if (prepare) prepare(workers);
  run_locked(n, &TaskAdapter::call, &adapter, workers);
}

void ThreadPool::parallel_for(int64_t n, RawTask fn, void* ctx, int max_workers) {
  if (n <= 0) return;
  if (t_inside_pool) {
    for (int64_t i = 0; i < n; ++i) fn(ctx, i, 0);
    return;
  }
  std::lock_guard<std::mutex> run(run_mutex_);
  run_locked(n, fn, ctx, max_workers < 1 ? 1 : max_workers);
}

void ThreadPool::run_locked(int64_t n, RawTask fn, void* ctx, int workers) {
  if (workers > size_) workers = size_;
  if (workers == 1 || n == 1) {
    InsidePool inside;
    for (int64_t i = 0; i < n; ++i) fn(ctx, i, 0);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    job_fn_ = fn;
    job_ctx_ = ctx;
    job_workers_ = workers;
    job_size_ = n;
    next_.store(0);
    job_error_ = nullptr;
    busy_.store(size_ - 1, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();  // no system call when every worker is spinning
  run_tasks(0);
  if (!spin_until(spin_ns_, [&] { return busy_.load(std::memory_order_acquire) == 0; })) {
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [&] { return busy_.load(std::memory_order_acquire) == 0; });
  }
  // Every worker is out of the job (busy_ == 0, acquire): job_error_, set
  // under the mutex before a worker counts itself out, is ours to read.
  job_fn_ = nullptr;
  if (job_error_) {
    std::exception_ptr e = job_error_;
    job_error_ = nullptr;
    std::rethrow_exception(e);
  }
}

}  // namespace tp
