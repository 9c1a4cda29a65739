// .tpm model files (KnModel::from_bytes / kn_parse).
//
// Input: a model file. It is parsed twice: as given (the hash check stops
// most mutations early) and with its hash field recomputed, so mutations
// reach the size checks, the varints, the sort orders and the tables.
// Properties: no crash, leak or UB; a file that parses re-serializes to the
// same bytes (the format is canonical); every query's masses obey the
// ByteModel contract (sum in [1, 2^31)).
#include <cstring>

#include "fuzz_common.h"

using namespace tp;
using namespace tp::coding;

namespace {

// FNV-1a 64 over every byte but [24, 32), as kn_model_file.cpp defines it.
uint64_t file_hash(const uint8_t* d, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; ++i) {
    if (i >= 24 && i < 32) continue;
    h = (h ^ d[i]) * 0x100000001b3ull;
  }
  return h;
}

void check_model(const uint8_t* data, size_t n) {
  std::unique_ptr<KnModel> m;
  if (!KnModel::from_bytes(data, n, &m).is_ok()) return;
  KnTables t;
  uint64_t hash = 0;
  TP_FUZZ_CHECK(kn_parse(data, n, &t, &hash).is_ok(), "from_bytes accepted what kn_parse refuses");
  std::vector<uint8_t> again;
  TP_FUZZ_CHECK(kn_serialize(t, &again).is_ok(), "a parsed model does not serialize");
  TP_FUZZ_CHECK(again.size() == n && std::memcmp(again.data(), data, n) == 0, "parse + serialize changed the file");
  // Query every order with contexts taken from the file's own bytes.
  uint32_t masses[kAlphabet];
  for (int len = 0; len <= m->max_order(); ++len) {
    const size_t at = n > static_cast<size_t>(len) ? (n * 7 + len) % (n - len) : 0;
    m->masses(data + at, n >= static_cast<size_t>(len) ? len : 0, masses);
    uint64_t sum = 0;
    for (uint32_t x : masses) sum += x;
    TP_FUZZ_CHECK(sum >= 1 && sum < (uint64_t{1} << 31), "masses sum " + std::to_string(sum));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  check_model(data, size);
  if (size >= 32) {
    std::vector<uint8_t> fixed(data, data + size);
    const uint64_t h = file_hash(fixed.data(), size);
    for (int i = 0; i < 8; ++i) fixed[24 + i] = static_cast<uint8_t>(h >> (8 * i));
    check_model(fixed.data(), size);
  }
  return 0;
}
