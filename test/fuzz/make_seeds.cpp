// Writes the native targets' seed corpora (test/fuzz/corpus/<target>/) in
// each harness's input layout, from the real encoders: valid streams are the
// best starting points for mutations. Built as a libFuzzer binary (the
// archive is instrumented for it); it writes the seeds at start-up and
// exits. Usage: scripts/fuzz.sh seeds (rewrites the seed-* files only).
#include <cstdio>
#include <string>
#include <sys/stat.h>

#include "../../native/coding/cm_codec.h"
#include "../../native/coding/coding_batch.h"
#include "../../native/coding/static_coding.h"
#include "fuzz_common.h"

using namespace tp;
using namespace tp::coding;

namespace {

std::string g_dir;

void put_le(std::vector<uint8_t>* o, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; i++) o->push_back(static_cast<uint8_t>(v >> (8 * i)));
}

void write(const std::string& target, const std::string& name, const std::vector<uint8_t>& bytes) {
  const std::string dir = g_dir + "/" + target;
  mkdir(dir.c_str(), 0755);
  const std::string path = dir + "/seed-" + name;
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) fuzz::fail("cannot write", path);
  std::fwrite(bytes.data(), 1, bytes.size(), f);
  std::fclose(f);
}

std::vector<uint8_t> bytes_of(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }

const char kBinary[] = "\x00\xff\x80\x7f binary \x01\x02\x03 and text";
const std::string kTexts[] = {
    "",
    "a",
    "Hello, world! Hello, world!",
    "The quick brown fox jumps over the lazy dog. 0123456789\n",
    std::string(kBinary, sizeof kBinary - 1),
};

void tpm_seeds() {
  const std::string text =
      "It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of foolishness.";
  for (int order : {1, 3}) {
    KnTrainOptions o;
    o.max_order = order;
    o.max_bytes = 4096;
    std::unique_ptr<KnModel> m;
    if (!KnModel::train(reinterpret_cast<const uint8_t*>(text.data()), text.size(), o, &m).is_ok()) fuzz::fail("train");
    write("tpm", "order" + std::to_string(order), m->bytes());
  }
}

void static_seeds(const KnModel& m) {
  int i = 0;
  for (const std::string& s : kTexts) {
    std::vector<uint8_t> coded, in = {1};
    static_encode(m, reinterpret_cast<const uint8_t*>(s.data()), s.size(), &coded);
    put_le(&in, s.size(), 4);
    in.insert(in.end(), coded.begin(), coded.end());
    write("static", std::to_string(i++), in);
  }
  std::vector<uint8_t> huge = {0};
  put_le(&huge, 0xfffffff0u, 4);
  huge.push_back(0);
  write("static", "huge-length", huge);
}

void raw_seeds() {
  int i = 0;
  for (const std::string& s : kTexts) {
    for (int sel : {4, 0}) {
      std::vector<uint8_t> in = {static_cast<uint8_t>(sel)};
      uint32_t freqs[256];
      uint8_t w[256];
      for (int k = 0; k < 256; k++) w[k] = static_cast<uint8_t>(k >= 'a' && k <= 'z' ? 200 : k == ' ' ? 255 : 1);
      in.insert(in.end(), w, w + 256);
      // The same quantization as fuzz_raw.cpp.
      const uint32_t total = 1u << (12 + sel % 5), spread = total - 256;
      uint64_t sum = 0;
      for (int k = 0; k < 256; k++) sum += w[k];
      uint32_t used = 0;
      int best = 0;
      for (int k = 0; k < 256; k++) {
        freqs[k] = 1 + static_cast<uint32_t>(uint64_t{w[k]} * spread / sum);
        used += freqs[k];
        if (w[k] > w[best]) best = k;
      }
      freqs[best] += total - used;
      std::vector<uint8_t> coded;
      raw_encode(freqs, 12 + sel % 5, reinterpret_cast<const uint8_t*>(s.data()), s.size(), &coded);
      in.push_back(1);
      put_le(&in, s.size(), 4);
      in.insert(in.end(), coded.begin(), coded.end());
      write("raw", std::to_string(i++), in);
    }
  }
}

void cm_seeds() {
  int i = 0;
  for (const std::string& s : kTexts) {
    CmOptions o;
    o.memory_log2 = 16;
    std::vector<uint8_t> coded, in = {1, 1};
    cm_compress(reinterpret_cast<const uint8_t*>(s.data()), s.size(), o, &coded);
    put_le(&in, s.size(), 4);
    in.insert(in.end(), coded.begin(), coded.end());
    write("cm", std::to_string(i++), in);
  }
}

void equal_info_seeds(const KnModel& m) {
  int i = 0;
  // (flags, window value, token value): small windows with 8- and 16-bit
  // tokens, a 100-bit window with 10-bit tokens, a 2048-bit window.
  const int configs[][3] = {{1 | 0 << 1, 16, 0}, {1 | 1 << 1, 32 - 16, 0}, {1 | 2 << 1, 64, 2}, {0 | 1 << 1, 2032, 0}};
  for (const auto& c : configs) {
    const int wb = (c[0] & 1) ? 16 + c[1] % 81 : 16 + c[1] % 2033;
    const int choice = (c[0] >> 1) & 3;
    const int tb = choice == 0 ? 8 : choice == 1 ? 16 : 8 + c[2] % 25;
    for (const std::string& s : {kTexts[2], kTexts[3]}) {
      std::vector<TokenStream> enc;
      equal_info_encode_batch(m, {ByteSpan{reinterpret_cast<const uint8_t*>(s.data()), s.size()}}, wb, tb, &enc);
      std::vector<uint8_t> in = {static_cast<uint8_t>(c[0])};
      put_le(&in, c[1], 2);
      in.push_back(static_cast<uint8_t>(c[2]));
      in.push_back(0);
      put_le(&in, 0, 2);
      in.push_back(0);
      for (uint32_t tok : enc[0].tokens) {
        for (int k = (tb + 7) / 8 - 1; k >= 0; k--) in.push_back(static_cast<uint8_t>(tok >> (8 * k)));
      }
      write("equal_info", std::to_string(i++), in);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* dir = std::getenv("TP_SEED_DIR");
  if (!dir) fuzz::fail("TP_SEED_DIR is not set");
  g_dir = dir;
  const KnModel& m = fuzz::model();
  tpm_seeds();
  static_seeds(m);
  raw_seeds();
  cm_seeds();
  equal_info_seeds(m);
  std::exit(0);
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t*, size_t) { return 0; }
