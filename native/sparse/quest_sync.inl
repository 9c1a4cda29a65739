// summary_sync (quest.h): a template over the row reader, so the KV cache
// reads its own storage (float rows, quantized blocks, the f16 tail)
// without a copy of the whole head.
#pragma once
#include <algorithm>
#include <new>

namespace tp::sparse {

// The page loop of summary_sync: fold(first, count, init) folds rows
// [first, first + count) (count <= P, one page) into s.open_lo / s.open_hi
// (and s.open_sum with sums), init at a page start.
template <typename Fold>
Status summary_sync_fold(PageSummary& s, SummaryFormat f, int64_t page_size, int64_t d, int64_t n, int64_t capacity_rows,
                         Fold&& fold) {
  const int64_t P = page_size;
  if (s.rows >= n) {
    if (s.rows > n) summary_truncate(s, n, P);
    if (s.rows == n) return Status::ok();
  }
  try {
    const size_t es = summary_elem_bytes(f);
    const int64_t need = page_count(std::max(n, capacity_rows), P);
    if (static_cast<int64_t>(s.lo.capacity()) < page_count(n, P) * d * static_cast<int64_t>(es)) {
      s.lo.reserve(static_cast<size_t>(need * d) * es);
      s.hi.reserve(static_cast<size_t>(need * d) * es);
      if (f == SummaryFormat::U8) s.affine.reserve(static_cast<size_t>(need * 2));
      if (s.with_sums) s.sums.reserve(static_cast<size_t>(need * d));
    }
    s.open_lo.resize(static_cast<size_t>(d));
    s.open_hi.resize(static_cast<size_t>(d));
    if (s.with_sums) s.open_sum.resize(static_cast<size_t>(d));
    while (s.rows < n) {
      const int64_t p = s.rows / P, in_page = s.rows - p * P;
      const int64_t count = std::min(n, (p + 1) * P) - s.rows;
      fold(s.rows, count, in_page == 0);
      s.rows += count;
      if (s.rows % P == 0) {
        summary_store_page(s, f, d, p, s.open_lo.data(), s.open_hi.data());
        if (s.with_sums) s.sums.insert(s.sums.end(), s.open_sum.begin(), s.open_sum.end());
      }
    }
  } catch (const std::bad_alloc&) {
    summary_truncate(s, 0, P);
    return Status::out_of_memory("sparse: cannot allocate the Quest page summaries");
  }
  return Status::ok();
}

template <typename Read>
Status summary_sync(PageSummary& s, SummaryFormat f, int64_t page_size, int64_t d, int64_t n, int64_t capacity_rows, Read&& read) {
  thread_local std::vector<float> rows;
  try {
    rows.resize(static_cast<size_t>(page_size * d));
  } catch (const std::bad_alloc&) {
    summary_truncate(s, 0, page_size);
    return Status::out_of_memory("sparse: cannot allocate the Quest page summaries");
  }
  return summary_sync_fold(s, f, page_size, d, n, capacity_rows, [&](int64_t first, int64_t count, bool init) {
    read(first, count, rows.data());
    fold_rows(rows.data(), count, d, s.open_lo.data(), s.open_hi.data(), init);
    if (s.with_sums) {
      if (init) std::fill(s.open_sum.begin(), s.open_sum.end(), 0.0f);
      for (int64_t r = 0; r < count; ++r) {
        for (int64_t c = 0; c < d; ++c) s.open_sum[c] += rows[r * d + c];
      }
    }
  });
}

}  // namespace tp::sparse
