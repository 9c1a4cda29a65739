// Storage growth and row conversion for KvCache::append (kv_cache.cpp).
//
// Why this exists: an append must cost O(new tokens). Three things made it
// O(cache) before: every growth allocated a new buffer and copied the whole
// head; the position / mass / count vectors were reserved to the exact new
// length (a reallocation and copy on every call); and fresh memory faulted
// in one 4 KiB page at a time on first write (about 10 us per page in a
// Firecracker VM, 0.4 GB/s).
//
// GrowBuffer: a resizable byte buffer (ByteBuffer's contract: resize keeps
//   the first `keep` bytes, a failure changes nothing). Up to kMapMin bytes
//   it is a 64-byte aligned heap block; from kMapMin on it is a private
//   anonymous mapping that grows with mremap (Linux: page tables move, bytes
//   do not) and whose new pages are populated at growth time
//   (MADV_POPULATE_WRITE, transparent huge pages from 2 MiB), so later
//   appends write to memory that is already there. Freed mappings of 2 MiB
//   and more are retained (MapPool, TOKENPRESS_KV_RETAIN_MB) for the next
//   buffer of their size.
// PageAlloc<T>: std::vector storage (positions, mass, counts): the heap
//   below 2 MiB, populated (retained) mappings from there; vectors still
//   copy when they reallocate, which callers make geometric.
// convert_elems: f32 / f16 / bf16 element conversion, bit for bit when the
//   dtypes match (memcpy), rounding exactly as core/half.h (round to nearest
//   even, subnormals kept, NaN -> sign | 0x7e00 for f16 and quieted for
//   bf16). Branch-free scalar loops the compiler vectorises, and F16C /
//   AVX-512 paths picked at run time by active_isa().
// copy_finite: a same-dtype copy that checks for NaN / infinity as it goes.
#pragma once
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <string>
#include <utility>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#define TP_KV_GROW_MMAP 1
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#else
#define TP_KV_GROW_MMAP 0
#endif

// The SIMD paths are host-compiler only: nvcc's front end (cuda_kv_cache.h
// includes this header through kv_cache.h) gets the scalar converter.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(__CUDACC__)
#include <immintrin.h>
#define TP_KV_GROW_X86 1
#else
#define TP_KV_GROW_X86 0
#endif

#include "../core/cpu_features.h"
#include "../core/dtype.h"
#include "../core/half.h"
#include "../core/status.h"

namespace tp::kv {

namespace grow_detail {

constexpr size_t kMapMin = size_t(64) << 10;  // from here on: page mappings
constexpr size_t kHuge = size_t(2) << 20;     // from here on: ask for huge pages

inline size_t page_size() {
#if TP_KV_GROW_MMAP
  static const size_t p = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return p;
#else
  return 4096;
#endif
}
inline size_t round_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

#if TP_KV_GROW_MMAP
// Faults [p, p + n) in now (fresh pages: the kernel zeroes them). False when
// the memory is not there (ENOMEM): the caller gives the pages back.
inline bool populate(uint8_t* p, size_t n) {
  if (n == 0) return true;
  if (madvise(p, n, MADV_POPULATE_WRITE) != 0 && errno != EINVAL) return false;  // EINVAL: kernel < 5.14
  // Touch every page from user space too: under shadow paging (this VM
  // family) the first user access to a 4 KiB page costs 5-10 us even after
  // the kernel populated it. Paid here, at growth, not by later appends.
  const size_t ps = page_size();
  volatile uint8_t* b = p;
  for (size_t o = 0; o < n; o += ps) b[o] = 0;  // fresh pages are zero: writing 0 changes nothing
  return true;
}

// Huge pages for a whole mapping from kHuge on (a hint; failure is harmless).
// Always the whole mapping: advising part of it would split it into two
// kernel VMAs, and mremap refuses to move a range that spans two.
inline void advise_huge(uint8_t* p, size_t len) {
  if (len >= kHuge) madvise(p, len, MADV_HUGEPAGE);
}

// Mapping length for `bytes`: pages, or whole huge pages from kHuge on (so
// every part of a large buffer can be a huge page).
inline size_t map_length(size_t bytes) { return round_up(bytes, bytes >= kHuge ? kHuge : page_size()); }

// A fresh read-write mapping of len bytes, kHuge-aligned when len >= kHuge
// (huge pages need aligned 2 MiB ranges), or null.
inline uint8_t* map_fresh(size_t len) {
  if (len < kHuge) {
    void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? nullptr : static_cast<uint8_t*>(p);
  }
  const size_t total = len + kHuge;
  void* p = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  const uintptr_t base = reinterpret_cast<uintptr_t>(p), a = round_up(base, kHuge);
  const size_t head = a - base, tail = total - head - len;
  if (head) munmap(p, head);
  if (tail) munmap(reinterpret_cast<void*>(a + len), tail);
  return reinterpret_cast<uint8_t*>(a);
}

// Retained mappings. Freeing a large buffer (clear(), a cache collected)
// keeps its mapping, populated, for the next buffer of a length it can
// serve: refilling a cleared cache (the next request's prefill) then writes
// to memory that is already there instead of paying the kernel's zeroing
// and this VM family's first-touch cost again (0.3-1.5 GB/s against 10+ GB/s
// for a copy). Only mappings of kHuge bytes or more (huge pages), at most
// retain_limit() bytes in all (TOKENPRESS_KV_RETAIN_MB, default 256 MiB; 0
// turns it off), process-wide under a mutex. Contents are undefined (the
// cache writes every byte it later reads). A failed mapping drains the pool
// and retries, so retention never makes an allocation fail.
struct MapPool {
  std::mutex mutex;
  std::vector<std::pair<uint8_t*, size_t>> maps;
  size_t bytes = 0;
};
inline MapPool& map_pool() {
  static MapPool* pool = new MapPool();  // never destroyed: usable until the process ends
  return *pool;
}
inline size_t retain_limit() {
  static const size_t limit = [] {
    const char* e = std::getenv("TOKENPRESS_KV_RETAIN_MB");
    if (!e || !*e) return size_t(256) << 20;
    char* end = nullptr;
    const unsigned long long mb = std::strtoull(e, &end, 10);
    return (end && *end == 0 && mb < (1ull << 20)) ? static_cast<size_t>(mb) << 20 : size_t(256) << 20;
  }();
  return limit;
}
// A retained mapping of len bytes: the smallest of len to 2 len, shrunk in
// place to len (mremap never moves a shrink). Null when none fits.
inline uint8_t* pool_take(size_t len) {
  if (len < kHuge) return nullptr;
  MapPool& pool = map_pool();
  std::lock_guard<std::mutex> lock(pool.mutex);
  size_t best = pool.maps.size();
  for (size_t i = 0; i < pool.maps.size(); ++i) {
    const size_t l = pool.maps[i].second;
    if (l >= len && l / 2 <= len && (best == pool.maps.size() || l < pool.maps[best].second)) best = i;
  }
  if (best == pool.maps.size()) return nullptr;
  auto [p, l] = pool.maps[best];
  pool.maps.erase(pool.maps.begin() + static_cast<std::ptrdiff_t>(best));
  pool.bytes -= l;
  if (l != len && mremap(p, l, len, 0) == MAP_FAILED) {
    munmap(p, l);
    return nullptr;
  }
  return p;
}
// Gives a mapping of len bytes back: retained if it is large and not over
// the limit on its own, the oldest retained ones unmapped to make room (the
// most recently freed sizes are the likeliest to be asked for again).
inline void pool_give(uint8_t* p, size_t len) {
  if (len >= kHuge && len <= retain_limit()) {
    MapPool& pool = map_pool();
    std::lock_guard<std::mutex> lock(pool.mutex);
    size_t drop = 0;
    for (size_t freed = 0; drop < pool.maps.size() && pool.bytes - freed + len > retain_limit(); ++drop) freed += pool.maps[drop].second;
    for (size_t i = 0; i < drop; ++i) {
      munmap(pool.maps[i].first, pool.maps[i].second);
      pool.bytes -= pool.maps[i].second;
    }
    pool.maps.erase(pool.maps.begin(), pool.maps.begin() + static_cast<std::ptrdiff_t>(drop));
    if (pool.bytes + len <= retain_limit()) {
      try {
        pool.maps.emplace_back(p, len);
        pool.bytes += len;
        return;
      } catch (const std::bad_alloc&) {
      }
    }
  }
  munmap(p, len);
}
// Unmaps every retained mapping (before retrying a failed mapping).
inline bool pool_drain() {
  MapPool& pool = map_pool();
  std::lock_guard<std::mutex> lock(pool.mutex);
  const bool any = !pool.maps.empty();
  for (auto& m : pool.maps) munmap(m.first, m.second);
  pool.maps.clear();
  pool.bytes = 0;
  return any;
}
inline size_t pool_bytes() {
  MapPool& pool = map_pool();
  std::lock_guard<std::mutex> lock(pool.mutex);
  return pool.bytes;
}

// A populated private mapping of map_length(bytes) bytes (a retained one
// when one fits), or null.
inline uint8_t* map_populated(size_t bytes) {
  const size_t len = map_length(bytes);
  if (uint8_t* kept = pool_take(len)) return kept;
  for (int attempt = 0; attempt < 2; ++attempt) {
    uint8_t* p = map_fresh(len);
    if (p) {
      advise_huge(p, len);
      if (populate(p, len)) return p;
      munmap(p, len);
    }
    if (!pool_drain()) break;  // nothing retained to give back: a real failure
  }
  return nullptr;
}

// Moves a mapping to a fresh (aligned) place of new_len bytes: page tables
// move, bytes do not. MAP_FAILED on failure (the old mapping is intact).
inline void* remap_grow(uint8_t* old, size_t old_len, size_t new_len) {
  if (new_len < kHuge) return mremap(old, old_len, new_len, MREMAP_MAYMOVE);
  uint8_t* dst = map_fresh(new_len);
  if (!dst && pool_drain()) dst = map_fresh(new_len);
  if (!dst) return MAP_FAILED;
  void* p = mremap(old, old_len, new_len, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
  if (p == MAP_FAILED) munmap(dst, new_len);
  return p;
}
#endif

}  // namespace grow_detail

class GrowBuffer {
 public:
  GrowBuffer() = default;
  ~GrowBuffer() { release(); }
  GrowBuffer(const GrowBuffer&) = delete;
  GrowBuffer& operator=(const GrowBuffer&) = delete;
  GrowBuffer(GrowBuffer&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)), mapped_(std::exchange(o.mapped_, 0)) {}
  GrowBuffer& operator=(GrowBuffer&& o) noexcept {
    if (this != &o) {
      release();
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
      mapped_ = std::exchange(o.mapped_, 0);
    }
    return *this;
  }

  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

  // Resizes to `bytes`, keeping the first min(keep, bytes, size()) bytes.
  // On failure the buffer is unchanged and an OutOfMemory status returned.
  Status resize(size_t bytes, size_t keep) {
    using namespace grow_detail;
    if (bytes == size_) return Status::ok();
    if (bytes == 0) {
      release();
      return Status::ok();
    }
    if (bytes > SIZE_MAX / 2) return oom(bytes);
#if TP_KV_GROW_MMAP
    if (bytes >= kMapMin) {
      const size_t len = map_length(bytes);
      if (mapped_ > 0) {
        if (len != mapped_) {
          void* p = len > mapped_ ? remap_grow(data_, mapped_, len) : mremap(data_, mapped_, len, 0);
          if (p == MAP_FAILED) return oom(bytes);
          auto* b = static_cast<uint8_t*>(p);
          if (len > mapped_) advise_huge(b, len);
          if (len > mapped_ && !populate(b + mapped_, len - mapped_)) {
            // Give the new pages back; shrinking in place cannot fail or move.
            void* q = mremap(b, len, mapped_, 0);
            data_ = static_cast<uint8_t*>(q == MAP_FAILED ? p : q);
            if (q == MAP_FAILED) mapped_ = len;
            return oom(bytes);
          }
          data_ = b;
          mapped_ = len;
        }
        size_ = bytes;
        return Status::ok();
      }
      uint8_t* fresh = map_populated(bytes);
      if (!fresh) return oom(bytes);
      copy_from_old(fresh, bytes, keep);
      release();
      data_ = fresh;
      mapped_ = len;
      size_ = bytes;
      return Status::ok();
    }
#endif
    auto* fresh = static_cast<uint8_t*>(std::aligned_alloc(64, round_up(bytes, 64)));
    if (!fresh) return oom(bytes);
    copy_from_old(fresh, bytes, keep);
    release();
    data_ = fresh;
    size_ = bytes;
    return Status::ok();
  }

  void release() {
#if TP_KV_GROW_MMAP
    if (mapped_ > 0) {
      grow_detail::pool_give(data_, mapped_);
    } else {
      std::free(data_);
    }
#else
    std::free(data_);
#endif
    data_ = nullptr;
    size_ = 0;
    mapped_ = 0;
  }

 private:
  static Status oom(size_t bytes) { return Status::out_of_memory("cannot allocate " + std::to_string(bytes) + " bytes"); }
  void copy_from_old(uint8_t* fresh, size_t bytes, size_t keep) const {
    size_t n = keep < bytes ? keep : bytes;
    n = n < size_ ? n : size_;
    if (n > 0 && data_) std::memcpy(fresh, data_, n);
  }

  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t mapped_ = 0;  // > 0: data_ is a mapping of mapped_ bytes
};

// std::vector storage from populated (retained) page mappings from kMinMap
// bytes on (heap below; default kHuge). Throws std::bad_alloc like
// std::allocator. A smaller kMinMap suits storage that fills a little at a
// time (Quest summaries: 256 bytes a page), where every fresh 4 KiB page of
// a heap block would fault on first write.
template <typename T, size_t kMinMap = grow_detail::kHuge>
struct PageAlloc {
  using value_type = T;
  template <typename U>
  struct rebind {
    using other = PageAlloc<U, kMinMap>;
  };
  PageAlloc() = default;
  template <typename U>
  PageAlloc(const PageAlloc<U, kMinMap>&) noexcept {}
  T* allocate(size_t n) {
    if (n > SIZE_MAX / 2 / sizeof(T)) throw std::bad_alloc();
    const size_t bytes = n * sizeof(T);
#if TP_KV_GROW_MMAP
    if (bytes >= kMinMap) {
      uint8_t* p = grow_detail::map_populated(bytes);
      if (!p) throw std::bad_alloc();
      return reinterpret_cast<T*>(p);
    }
#endif
    return static_cast<T*>(::operator new(bytes));
  }
  void deallocate(T* p, size_t n) noexcept {
    const size_t bytes = n * sizeof(T);
#if TP_KV_GROW_MMAP
    if (bytes >= kMinMap) {
      grow_detail::pool_give(reinterpret_cast<uint8_t*>(p), grow_detail::map_length(bytes));
      return;
    }
#endif
    ::operator delete(p);
  }
  template <typename U>
  bool operator==(const PageAlloc<U, kMinMap>&) const noexcept { return true; }
  template <typename U>
  bool operator!=(const PageAlloc<U, kMinMap>&) const noexcept { return false; }
};

// Room for `need` elements, doubling at least (amortised O(1) per element;
// reserving exactly, as before, made every append copy the whole vector).
template <typename V>
void reserve_geometric(V& vec, size_t need) {
  if (vec.capacity() >= need) return;
  const size_t grown = vec.capacity() < 64 ? 64 : 2 * vec.capacity();
  vec.reserve(need > grown ? need : grown);
}

// ---- Element conversion -------------------------------------------------

// Internal linkage (an unnamed namespace): translation units compiled by
// nvcc get the scalar code only, so these must not be one shared inline
// definition across translation units.
namespace {

// Which conversion code runs: the active ISA level (setIsa / TOKENPRESS_ISA).
enum class ConvertPath { Scalar = 0, Avx2 = 1, Avx512 = 2 };

namespace convert_detail {

inline uint32_t bits_of(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }
inline float float_of(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }

// half.h f32_to_f16 without branches (selects), so loops of it vectorise.
// Bit-identical for every input (checked exhaustively).
inline uint16_t f32_to_f16_nb(uint32_t u) {
  const uint32_t sign = (u >> 16) & 0x8000u;
  const uint32_t abs = u & 0x7fffffffu;
  // Normal f16: round the mantissa to 10 bits, nearest even, and rebias.
  const uint32_t normal = (abs + 0xfffu + ((abs >> 13) & 1u) - 0x38000000u) >> 13;
  // Subnormal f16 (abs < 2^-14): abs * 2^24 rounded to an integer, nearest
  // even, by adding 1.5 * 2^23 (the sum's low mantissa bits are the result).
  const float scaled = float_of(abs) * 16777216.0f;
  const uint32_t sub = bits_of(scaled + 12582912.0f) - 0x4b400000u;
  uint32_t r = abs < 0x38800000u ? sub : normal;
  r = abs >= 0x477ff000u ? 0x7c00u : r;                    // rounds to infinity
  r = abs >= 0x7f800000u ? (abs > 0x7f800000u ? 0x7e00u : 0x7c00u) : r;  // inf / nan
  return static_cast<uint16_t>(sign | r);
}

// half.h f32_to_bf16 without branches.
inline uint16_t f32_to_bf16_nb(uint32_t u) {
  const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  const uint32_t quiet = (u >> 16) | 0x40u;
  return static_cast<uint16_t>((u & 0x7fffffffu) > 0x7f800000u ? quiet : rounded);
}

// The loops, inlined into each ISA's copy below so each gets its vector width.
__attribute__((always_inline)) inline void f32_to_f16_loop(const float* __restrict s, uint16_t* __restrict d, int64_t n) {
  for (int64_t i = 0; i < n; ++i) d[i] = f32_to_f16_nb(bits_of(s[i]));
}
__attribute__((always_inline)) inline void f32_to_bf16_loop(const float* __restrict s, uint16_t* __restrict d, int64_t n) {
  for (int64_t i = 0; i < n; ++i) d[i] = f32_to_bf16_nb(bits_of(s[i]));
}
__attribute__((always_inline)) inline void bf16_to_f32_loop(const uint16_t* __restrict s, float* __restrict d, int64_t n) {
  for (int64_t i = 0; i < n; ++i) d[i] = float_of(uint32_t(s[i]) << 16);
}

inline void f32_to_f16_scalar(const float* s, uint16_t* d, int64_t n) { f32_to_f16_loop(s, d, n); }
inline void f32_to_bf16_scalar(const float* s, uint16_t* d, int64_t n) { f32_to_bf16_loop(s, d, n); }
inline void f16_to_f32_scalar(const uint16_t* s, float* d, int64_t n) {
  for (int64_t i = 0; i < n; ++i) d[i] = f16_to_f32(s[i]);
}

#if TP_KV_GROW_X86
// F16C rounds like half.h on every non-NaN input; NaN keeps its payload
// there, while half.h gives sign | 0x7e00: patch NaN lanes to that.
__attribute__((target("avx2,f16c"))) inline __m128i f16_nan_fix8(__m128i h) {
  const __m128i mag = _mm_and_si128(h, _mm_set1_epi16(0x7fff));
  const __m128i nan = _mm_cmpgt_epi16(mag, _mm_set1_epi16(0x7c00));
  const __m128i q = _mm_or_si128(_mm_and_si128(h, _mm_set1_epi16(static_cast<short>(0x8000))), _mm_set1_epi16(0x7e00));
  return _mm_blendv_epi8(h, q, nan);
}

__attribute__((target("avx2,f16c"))) inline void f32_to_f16_avx2(const float* s, uint16_t* d, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(s + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + i), f16_nan_fix8(h));
  }
  for (; i < n; ++i) d[i] = f32_to_f16_nb(bits_of(s[i]));
}

__attribute__((target("avx2,f16c"))) inline void f16_to_f32_avx2(const uint16_t* s, float* d, int64_t n) {
  int64_t i = 0;
  // Finite inputs only reach here (append refuses NaN); F16C is exact on them.
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(d + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i))));
  for (; i < n; ++i) d[i] = f16_to_f32(s[i]);
}

__attribute__((target("avx2,f16c"))) inline void f32_to_bf16_avx2(const float* s, uint16_t* d, int64_t n) { f32_to_bf16_loop(s, d, n); }
__attribute__((target("avx2,f16c"))) inline void bf16_to_f32_avx2(const uint16_t* s, float* d, int64_t n) { bf16_to_f32_loop(s, d, n); }

__attribute__((target("avx512f,avx512bw,avx512vl,avx2,f16c"))) inline void f32_to_f16_avx512(const float* s, uint16_t* d, int64_t n) {
  int64_t i = 0;
  const __m256i m7fff = _mm256_set1_epi16(0x7fff), inf = _mm256_set1_epi16(0x7c00);
  const __m256i sgn = _mm256_set1_epi16(static_cast<short>(0x8000)), qnan = _mm256_set1_epi16(0x7e00);
  for (; i + 16 <= n; i += 16) {
    const __m256i h = _mm512_maskz_cvtps_ph(0xffff, _mm512_loadu_ps(s + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __mmask16 nan = _mm256_cmpgt_epi16_mask(_mm256_and_si256(h, m7fff), inf);
    const __m256i fixed = _mm256_mask_blend_epi16(nan, h, _mm256_or_si256(_mm256_and_si256(h, sgn), qnan));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + i), fixed);
  }
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
    const __m256i h = _mm512_maskz_cvtps_ph(0xffff, _mm512_maskz_loadu_ps(m, s + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __mmask16 nan = _mm256_cmpgt_epi16_mask(_mm256_and_si256(h, m7fff), inf);
    const __m256i fixed = _mm256_mask_blend_epi16(nan, h, _mm256_or_si256(_mm256_and_si256(h, sgn), qnan));
    _mm256_mask_storeu_epi16(d + i, m, fixed);
  }
}
__attribute__((target("avx512f,avx512bw,avx512vl,avx2,f16c"))) inline void f32_to_bf16_avx512(const float* s, uint16_t* d, int64_t n) {
  f32_to_bf16_loop(s, d, n);
}
#endif

#if TP_KV_GROW_X86
// Copies n elements of `bytes_per` (2 or 4) bytes and reports whether any
// had its exponent bits all ones (mask: 0x7c00 f16, 0x7f80 bf16, 0x7f800000
// f32): one pass that checks as it copies, 32 bytes a step.
__attribute__((target("avx2"))) inline bool copy_finite_avx2(const uint8_t* s, uint8_t* d, size_t bytes, uint32_t mask, int bytes_per) {
  const __m256i m = bytes_per == 2 ? _mm256_set1_epi16(static_cast<short>(mask)) : _mm256_set1_epi32(static_cast<int>(mask));
  __m256i bad = _mm256_setzero_si256();
  size_t i = 0;
  for (; i + 128 <= bytes; i += 128) {
    __m256i x[4];
    for (int u = 0; u < 4; ++u) {
      x[u] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + i + 32 * u));
      const __m256i e = _mm256_and_si256(x[u], m);
      bad = _mm256_or_si256(bad, bytes_per == 2 ? _mm256_cmpeq_epi16(e, m) : _mm256_cmpeq_epi32(e, m));
    }
    for (int u = 0; u < 4; ++u) _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + i + 32 * u), x[u]);
  }
  for (; i + 32 <= bytes; i += 32) {
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + i));
    const __m256i e = _mm256_and_si256(x, m);
    bad = _mm256_or_si256(bad, bytes_per == 2 ? _mm256_cmpeq_epi16(e, m) : _mm256_cmpeq_epi32(e, m));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + i), x);
  }
  bool any = !_mm256_testz_si256(bad, bad);
  for (; i < bytes; i += static_cast<size_t>(bytes_per)) {
    uint32_t b = 0;
    std::memcpy(&b, s + i, static_cast<size_t>(bytes_per));
    any |= (b & mask) == mask;
    std::memcpy(d + i, &b, static_cast<size_t>(bytes_per));
  }
  return !any;
}
#endif

}  // namespace convert_detail

// Copies n elements of dtype t (f32 / f16 / bf16) from src to dst, bit for
// bit, in one pass that also checks them: false when any is NaN or infinite
// (dst then holds some of the elements: callers write past the visible rows).
inline bool copy_finite(const void* src, void* dst, DType t, int64_t n, ConvertPath path) {
  const int bytes_per = t == DType::F32 ? 4 : 2;
  const uint32_t mask = t == DType::F32 ? 0x7f800000u : t == DType::F16 ? 0x7c00u : 0x7f80u;
  const size_t bytes = static_cast<size_t>(n) * static_cast<size_t>(bytes_per);
  const auto* s = static_cast<const uint8_t*>(src);
  auto* d = static_cast<uint8_t*>(dst);
#if TP_KV_GROW_X86
  if (path != ConvertPath::Scalar) return convert_detail::copy_finite_avx2(s, d, bytes, mask, bytes_per);
#endif
  uint32_t bad = 0;
  for (size_t i = 0; i < bytes; i += static_cast<size_t>(bytes_per)) {
    uint32_t b = 0;
    std::memcpy(&b, s + i, static_cast<size_t>(bytes_per));
    bad |= static_cast<uint32_t>((b & mask) == mask);
  }
  if (bad) return false;
  std::memcpy(d, s, bytes);
  return true;
}


inline ConvertPath convert_path() {
#if TP_KV_GROW_X86
  const IsaLevel isa = active_isa();
  if (!cpu_features().f16c) return ConvertPath::Scalar;
  if (isa == IsaLevel::Avx512) return ConvertPath::Avx512;
  if (isa == IsaLevel::Avx2) return ConvertPath::Avx2;
#endif
  return ConvertPath::Scalar;
}

// Converts n elements of src (dtype st) into dst (dtype dt): memcpy when the
// dtypes match, else rounding exactly as core/half.h.
inline void convert_elems(const void* src, DType st, void* dst, DType dt, int64_t n, ConvertPath path) {
  using namespace convert_detail;
  if (n <= 0) return;
  if (st == dt) {
    std::memcpy(dst, src, static_cast<size_t>(n) * dtype_size(st));
    return;
  }
  const auto* sf = static_cast<const float*>(src);
  const auto* s16 = static_cast<const uint16_t*>(src);
  auto* df = static_cast<float*>(dst);
  auto* d16 = static_cast<uint16_t*>(dst);
  if (st == DType::F32) {
    switch (path) {
#if TP_KV_GROW_X86
      case ConvertPath::Avx512:
        if (dt == DType::F16) f32_to_f16_avx512(sf, d16, n);
        else f32_to_bf16_avx512(sf, d16, n);
        return;
      case ConvertPath::Avx2:
        if (dt == DType::F16) f32_to_f16_avx2(sf, d16, n);
        else f32_to_bf16_avx2(sf, d16, n);
        return;
#endif
      default:
        if (dt == DType::F16) f32_to_f16_scalar(sf, d16, n);
        else f32_to_bf16_scalar(sf, d16, n);
        return;
    }
  }
  // 16-bit input: widen to f32 (exact), then narrow if the target is 16-bit.
  const bool simd = path != ConvertPath::Scalar;
  auto widen = [&](const uint16_t* s, float* d, int64_t m) {
#if TP_KV_GROW_X86
    if (simd) {
      if (st == DType::F16) f16_to_f32_avx2(s, d, m);
      else bf16_to_f32_avx2(s, d, m);
      return;
    }
#endif
    if (st == DType::F16) f16_to_f32_scalar(s, d, m);
    else bf16_to_f32_loop(s, d, m);
  };
  if (dt == DType::F32) {
    widen(s16, df, n);
    return;
  }
  float tmp[256];
  for (int64_t i = 0; i < n; i += 256) {
    const int64_t m = n - i < 256 ? n - i : 256;
    widen(s16 + i, tmp, m);
    convert_elems(tmp, DType::F32, d16 + i, dt, m, path);
  }
  (void)simd;
}

}  // namespace

}  // namespace tp::kv
