// PageArray<T>: a zero-filled array on 2 MB pages where the OS offers them
// (Linux transparent huge pages, asked for with madvise). The byte model's
// query structures are tens of MB read at random; with 4 KB pages most of
// those reads would also miss the TLB.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace tp::coding {

template <typename T>
class PageArray {
 public:
  PageArray() = default;
  PageArray(const PageArray&) = delete;
  PageArray& operator=(const PageArray&) = delete;
  ~PageArray() { release(); }

  // n zeroed elements (the old contents are dropped). Throws std::bad_alloc.
  void assign_zero(size_t n) {
    release();
    if (n == 0) return;
    const size_t bytes = n * sizeof(T);
#if defined(__linux__)
    constexpr size_t kHuge = size_t{2} << 20;
    map_bytes_ = (bytes + 2 * kHuge - 1) / kHuge * kHuge;
    void* base = mmap(nullptr, map_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) throw std::bad_alloc();
    base_ = base;
    const uintptr_t aligned = (reinterpret_cast<uintptr_t>(base) + kHuge - 1) / kHuge * kHuge;
    madvise(reinterpret_cast<void*>(aligned), (bytes + kHuge - 1) / kHuge * kHuge, MADV_HUGEPAGE);  // a hint
    data_ = reinterpret_cast<T*>(aligned);
#else
    base_ = std::calloc(n, sizeof(T));
    if (base_ == nullptr) throw std::bad_alloc();
    data_ = static_cast<T*>(base_);
#endif
    n_ = n;
  }

  T* data() { return data_; }
  const T* data() const { return data_; }
  T& operator[](size_t i) { return data_[i]; }
  const T& operator[](size_t i) const { return data_[i]; }
  size_t size() const { return n_; }

 private:
  void release() {
    if (base_ == nullptr) return;
#if defined(__linux__)
    munmap(base_, map_bytes_);
#else
    std::free(base_);
#endif
    base_ = nullptr;
    data_ = nullptr;
    n_ = 0;
  }

  void* base_ = nullptr;
  T* data_ = nullptr;
  size_t n_ = 0;
  size_t map_bytes_ = 0;
};

}  // namespace tp::coding
