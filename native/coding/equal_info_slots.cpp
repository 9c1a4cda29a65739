#include "equal_info_slots.h"

#include <algorithm>
#include <atomic>
#include <new>
#include <string>

#include "../core/run_all.h"
#include "../core/thread_pool.h"
#include "equal_info.h"
#include "equal_info_portable.h"

namespace tp::coding {

size_t WindowIndex::doc_of(uint64_t g) const {
  // The last d with first[d] <= g (documents without windows are skipped).
  return static_cast<size_t>(std::upper_bound(first.begin(), first.end(), g) - first.begin()) - 1;
}

WindowIndex index_windows(const std::vector<size_t>& windows) {
  WindowIndex ix;
  ix.first.resize(windows.size() + 1, 0);
  for (size_t d = 0; d < windows.size(); d++) ix.first[d + 1] = ix.first[d] + windows[d];
  return ix;
}

uint32_t default_slot_bytes(int window_bits) { return 4u * static_cast<uint32_t>(window_bits); }

uint32_t slot_limit(int window_bits, size_t max_bytes, uint32_t slot_bytes) {
  const size_t slot = slot_bytes == 0 ? default_slot_bytes(window_bits) : slot_bytes;
  const size_t cap = window_byte_cap(window_bits, max_bytes);
  return static_cast<uint32_t>(slot < cap ? slot : cap);
}

uint64_t windows_per_pass(uint32_t limit) {
  const uint64_t budget = uint64_t{64} << 20;
  return std::max<uint64_t>(1024, budget / std::max<uint32_t>(limit, 1));
}

Status SlotDecoded::add_pass(uint64_t g0, uint64_t n, const uint8_t* slots, uint32_t limit, size_t max_bytes, size_t ndocs) {
  for (uint64_t i = 0; i < n; i++) {
    const uint32_t len = lengths[g0 + i];
    if (len == kWindowOverflow) {
      overflowed++;
      continue;
    }
    if (len > limit) return Status::device("Equal-Info slot decoding: a window length beyond its slot");
    const uint8_t* p = slots + i * limit;
    packed.insert(packed.end(), p, p + len);
  }
  const size_t all_docs_cap = max_bytes > SIZE_MAX / (ndocs + 1) ? SIZE_MAX : max_bytes * ndocs;
  const double least = static_cast<double>(packed.size()) + static_cast<double>(overflowed) * (static_cast<double>(limit) + 1.0);
  if (least > static_cast<double>(all_docs_cap)) {
    return Status::invalid("tokens: the documents decode to more than maxBytes (" + std::to_string(max_bytes) + ") each");
  }
  return Status::ok();
}

Status finish_slot_decode(const ByteModel& model, const std::vector<std::vector<uint8_t>>& bits,
                          const std::vector<size_t>& windows, int window_bits, size_t max_bytes, SlotDecoded&& decoded,
                          std::vector<std::vector<uint8_t>>* out, size_t* overflowed) {
  const WindowIndex ix = index_windows(windows);
  if (decoded.lengths.size() != ix.total()) return Status::internal("slot decode: one length per window expected");
  std::vector<uint64_t> redo;
  for (uint64_t g = 0; g < ix.total(); g++) {
    if (decoded.lengths[g] == kWindowOverflow) redo.push_back(g);
  }
  *overflowed = redo.size();
  // The CPU decoder for exactly those windows, with equal_info_decode_batch's
  // limits: the per-window cap, and the running total over every document.
  const size_t per_window = window_byte_cap(window_bits, max_bytes);
  const size_t all_docs_cap = max_bytes > SIZE_MAX / (bits.size() + 1) ? SIZE_MAX : max_bytes * bits.size();
  std::atomic<size_t> total{decoded.packed.size()};
  std::vector<std::vector<uint8_t>> pieces(redo.size());
  Status st = run_all(redo.size(), [&](size_t i) {
    if (total.load(std::memory_order_relaxed) > all_docs_cap) {
      return Status::invalid("tokens: the documents decode to more than maxBytes (" + std::to_string(max_bytes) + ") each");
    }
    const size_t d = ix.doc_of(redo[i]);
    const auto& b = bits[d];
    Status s = equal_info_decode_window(model, b.data(), b.size(), static_cast<size_t>(redo[i] - ix.first[d]), window_bits,
                                        per_window, &pieces[i]);
    total.fetch_add(pieces[i].size(), std::memory_order_relaxed);
    return s;
  });
  if (!st.is_ok()) return st;
  // Join in window order, checking each document's maxBytes.
  out->assign(bits.size(), {});
  size_t at = 0, next_redo = 0;
  for (size_t d = 0; d < bits.size(); d++) {
    auto& doc = (*out)[d];
    for (uint64_t g = ix.first[d]; g < ix.first[d + 1]; g++) {
      const uint8_t* p;
      size_t n;
      if (decoded.lengths[g] == kWindowOverflow) {
        p = pieces[next_redo].data();
        n = pieces[next_redo].size();
        next_redo++;
      } else {
        p = decoded.packed.data() + at;
        n = decoded.lengths[g];
        at += n;
      }
      if (doc.size() + n > max_bytes) {
        return Status::invalid("tokens: document " + std::to_string(d) + " decodes to more than maxBytes (" +
                               std::to_string(max_bytes) + ")");
      }
      doc.insert(doc.end(), p, p + n);
    }
  }
  return Status::ok();
}

Status equal_info_decode_batch_portable(const KnModel& model, const std::vector<std::vector<uint8_t>>& bits,
                                        const std::vector<size_t>& windows, int window_bits, size_t max_bytes,
                                        uint32_t slot_bytes, std::vector<std::vector<uint8_t>>* out,
                                        size_t* overflowed) {
  const WindowIndex ix = index_windows(windows);
  const uint32_t limit = slot_limit(window_bits, max_bytes, slot_bytes);
  const uint64_t pass = windows_per_pass(limit);
  const KnView view = model.view();
  SlotDecoded decoded;
  decoded.lengths.resize(ix.total());
  std::vector<uint8_t> slots;
  for (uint64_t g0 = 0; g0 < ix.total(); g0 += pass) {
    const uint64_t n = std::min<uint64_t>(pass, ix.total() - g0);
    slots.resize(n * limit);
    // The device's per-thread work, one window per task (the scalar row
    // scaling, as on the device).
    ThreadPool::instance().parallel_for(static_cast<int64_t>(n), [&](int64_t i, int) {
      const uint64_t g = g0 + static_cast<uint64_t>(i);
      const size_t d = ix.doc_of(g);
      decoded.lengths[g] = decode_window_portable(view, bits[d].data(), bits[d].size(), static_cast<size_t>(g - ix.first[d]),
                                                  window_bits, slots.data() + static_cast<size_t>(i) * limit, limit,
                                                  ScaleRowScalar{});
    });
    const Status st = decoded.add_pass(g0, n, slots.data(), limit, max_bytes, bits.size());
    if (!st.is_ok()) return st;
  }
  return finish_slot_decode(model, bits, windows, window_bits, max_bytes, std::move(decoded), out, overflowed);
}

}  // namespace tp::coding
