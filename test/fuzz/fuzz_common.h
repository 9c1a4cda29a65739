// Shared by the native fuzz harnesses (libFuzzer, linked against the
// native/core and native/coding sources directly, no Node).
//
// The model: models/default.tpm (TP_FUZZ_MODEL_PATH, set by scripts/fuzz.sh),
// loaded once; a small model trained on a fixed text when the file is
// missing. The thread pool runs one thread, so a finding replays exactly.
#pragma once
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "../../native/coding/kn_model.h"
#include "../../native/core/thread_pool.h"

namespace tp::fuzz {

// Stops the run with a message: libFuzzer reports the input as a crash.
[[noreturn]] inline void fail(const char* what, const std::string& detail = "") {
  std::fprintf(stderr, "FUZZ PROPERTY FAILED: %s %s\n", what, detail.c_str());
  std::abort();
}
#define TP_FUZZ_CHECK(cond, detail) \
  do {                              \
    if (!(cond)) ::tp::fuzz::fail(#cond, (detail));  \
  } while (0)

inline std::vector<uint8_t> read_file(const char* path) {
  std::vector<uint8_t> out;
  FILE* f = path ? std::fopen(path, "rb") : nullptr;
  if (!f) return out;
  uint8_t buf[1 << 16];
  size_t got;
  while ((got = std::fread(buf, 1, sizeof buf, f)) > 0) out.insert(out.end(), buf, buf + got);
  std::fclose(f);
  return out;
}

// The model every model-driven harness decodes with (built once).
inline const coding::KnModel& model() {
  static std::unique_ptr<coding::KnModel> m = [] {
    ThreadPool::instance().resize(1);
    const char* env = std::getenv("TP_FUZZ_MODEL");
#ifdef TP_FUZZ_MODEL_PATH
    if (!env) env = TP_FUZZ_MODEL_PATH;
#endif
    std::unique_ptr<coding::KnModel> out;
    const std::vector<uint8_t> bytes = read_file(env);
    if (!bytes.empty() && coding::KnModel::from_bytes(bytes.data(), bytes.size(), &out).is_ok()) return out;
    std::string text;
    for (int i = 0; i < 200; i++) text += "the quick brown fox " + std::to_string(i * 7919 % 1000) + " jumps over the lazy dog.\n";
    coding::KnTrainOptions opts;
    opts.max_order = 4;
    if (!coding::KnModel::train(reinterpret_cast<const uint8_t*>(text.data()), text.size(), opts, &out).is_ok()) {
      fail("training the fallback model");
    }
    return out;
  }();
  return *m;
}

}  // namespace tp::fuzz

namespace tp::fuzz {

// Fixed-size fields from the front of the input (zeros past its end), then
// the rest: a layout a seed generator can write (make_seeds.cpp).
struct Fields {
  const uint8_t* p;
  size_t n;
  uint64_t le(int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) v |= static_cast<uint64_t>(take()) << (8 * i);
    return v;
  }
  uint8_t take() {
    if (n == 0) return 0;
    n--;
    return *p++;
  }
  std::vector<uint8_t> rest() { return std::vector<uint8_t>(p, p + n); }
};

}  // namespace tp::fuzz
