// Concurrency driver for ThreadSanitizer (scripts/ci-tsan.sh builds it with
// -fsanitize=thread together with every non-binding source of binding.gyp).
//
// Node itself is not instrumented, so a TSan run of the addon inside node
// sees only half of each synchronisation. This driver does in plain C++ what
// the async bindings do: several caller threads (the libuv pool running
// Napi::AsyncWorker::Execute, plus the main thread running sync calls) use
// the one shared ThreadPool at the same time, each on its own KvCache, on
// shared read-only K/V (attention) and on one shared, frozen ByteModel
// (Equal-Info batches). Meanwhile one thread resizes the pool (setThreads)
// and lowers/raises the active ISA (setIsa), as a server may do.
//
// Every result is checked against the same work done once on a quiet pool
// beforehand (attention and float caches: within 1e-4, since the split of work
// may change with the pool size; int caches 1e-2, see below; coding: exact
// round trips and the same tokens).
// Exit code: 0 when every check held, 1 otherwise; TSan reports make the run
// fail through TSAN_OPTIONS=halt_on_error=1 exitcode=66 (set by the script).
//
// Usage: concurrency_driver [rounds]   (default 6; scripts/ci-tsan.sh runs 20)
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "../../native/attention/attention.h"
#include "../../native/coding/coding_batch.h"
#include "../../native/coding/kn_model.h"
#include "../../native/core/cpu_features.h"
#include "../../native/core/thread_pool.h"
#include "../../native/kv/kv_cache.h"

namespace {

using tp::Status;

std::atomic<int> g_failures{0};

void fail(const std::string& what) {
  std::fprintf(stderr, "FAIL: %s\n", what.c_str());
  g_failures.fetch_add(1);
}

void check(const Status& s, const char* what) {
  if (!s.is_ok()) fail(std::string(what) + ": " + s.message);
}

// Deterministic pseudo-random floats in [-1, 1) (xorshift32).
std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::vector<float> out(n);
  uint32_t x = seed * 2654435761u + 1;
  for (auto& f : out) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    f = static_cast<float>(x >> 8) / 8388608.0f - 1.0f;
  }
  return out;
}

bool close(const std::vector<float>& a, const std::vector<float>& b, double tol) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!(std::fabs(double(a[i]) - double(b[i])) <= tol * (1.0 + std::fabs(double(b[i]))))) return false;
  }
  return true;
}

// ---- the thread pool alone: concurrent parallel_for calls, nested calls ----
// Each index adds its value to a per-call array; a nested parallel_for
// (which must run inline) writes a second array. Sum checked exactly.
void pool_job(int caller, int rounds) {
  auto& pool = tp::ThreadPool::instance();
  for (int r = 0; r < rounds * 20; ++r) {
    const int64_t n = 1 + (r * 37 + caller * 11) % 300;
    std::vector<int64_t> out(static_cast<size_t>(n), 0);
    std::vector<int64_t> inner(static_cast<size_t>(n) * 4, 0);
    pool.parallel_for(n, [&](int64_t i, int) {
      out[static_cast<size_t>(i)] = i * 3 + caller;
      pool.parallel_for(4, [&](int64_t j, int) { inner[static_cast<size_t>(i * 4 + j)] = j + 1; });
    });
    int64_t sum = 0, inner_sum = 0;
    for (auto v : out) sum += v;
    for (auto v : inner) inner_sum += v;
    if (sum != 3 * n * (n - 1) / 2 + caller * n || inner_sum != 10 * n) fail("pool: wrong sum");
  }
}

// ---- attention: shared read-only K/V, one output per caller ----
struct AttentionCase {
  int64_t n_heads = 8, n_kv_heads = 2, n_q = 0, n_kv = 0, head_dim = 64;
  std::vector<float> q, k, v;
};

AttentionCase make_attention(int64_t n_q, int64_t n_kv, uint32_t seed) {
  AttentionCase c;
  c.n_q = n_q;
  c.n_kv = n_kv;
  c.q = random_floats(size_t(c.n_heads * n_q * c.head_dim), seed);
  c.k = random_floats(size_t(c.n_kv_heads * n_kv * c.head_dim), seed + 1);
  c.v = random_floats(size_t(c.n_kv_heads * n_kv * c.head_dim), seed + 2);
  return c;
}

std::vector<float> run_attention_case(const AttentionCase& c, std::vector<float>* key_mass) {
  std::vector<float> out(size_t(c.n_heads * c.n_q * c.head_dim));
  key_mass->assign(size_t(c.n_kv_heads * c.n_kv), 0.0f);
  tp::AttentionParams p;
  p.n_heads = c.n_heads;
  p.n_kv_heads = c.n_kv_heads;
  p.n_q = c.n_q;
  p.n_kv = c.n_kv;
  p.head_dim = c.head_dim;
  p.q = c.q.data();
  p.q_head_stride = c.n_q * c.head_dim;
  p.q_row_stride = c.head_dim;
  p.k = c.k.data();
  p.k_head_stride = c.n_kv * c.head_dim;
  p.k_row_stride = c.head_dim;
  p.v = c.v.data();
  p.v_head_stride = c.n_kv * c.head_dim;
  p.v_row_stride = c.head_dim;
  p.scale = 0.125f;
  p.causal = true;
  p.out = out.data();
  p.key_mass = key_mass->data();
  p.q_len = int64_t(c.q.size());
  p.k_len = int64_t(c.k.size());
  p.v_len = int64_t(c.v.size());
  p.out_len = int64_t(out.size());
  p.key_mass_len = int64_t(key_mass->size());
  check(tp::validate_attention(p), "validate_attention");
  check(tp::run_attention(p), "run_attention");
  return out;
}

// ---- a KV cache per caller: append, attend (with mass), compress ----
struct CacheResult {
  std::vector<float> out;
  int64_t tokens = 0, bytes = 0;
};

CacheResult run_cache(tp::kv::CacheType type, uint32_t seed) {
  tp::kv::CacheConfig cfg;
  cfg.n_layers = 2;
  cfg.n_kv_heads = 2;
  cfg.head_dim = 64;
  cfg.capacity = 1024;
  cfg.type = type;
  cfg.residual = 16;
  tp::kv::KvCache* raw = nullptr;
  check(tp::kv::KvCache::create(cfg, &raw), "KvCache::create");
  std::unique_ptr<tp::kv::KvCache> cache(raw);
  CacheResult res;
  if (!cache) return res;
  const int64_t n_heads = 4, hd = cfg.head_dim;
  for (int step = 0; step < 6; ++step) {
    // A prefill long enough for several chunks of quantized attend (256 tokens
    // each), then small decode-like appends.
    const int64_t n = step == 0 ? 640 : 8;
    for (int64_t layer = 0; layer < cfg.n_layers; ++layer) {
      const auto k = random_floats(size_t(cfg.n_kv_heads * n * hd), seed + 10 * step + layer);
      const auto v = random_floats(size_t(cfg.n_kv_heads * n * hd), seed + 10 * step + layer + 5);
      tp::kv::AppendInput a;
      a.n = n;
      a.k = k.data();
      a.v = v.data();
      a.k_head_stride = a.v_head_stride = n * hd;
      a.k_row_stride = a.v_row_stride = hd;
      a.k_len = a.v_len = int64_t(k.size());
      check(cache->append(layer, a), "append");
      const int64_t n_q = step == 0 ? 4 : 1;
      const auto q = random_floats(size_t(n_heads * n_q * hd), seed + 100 + step);
      std::vector<float> out(size_t(n_heads * n_q * hd));
      tp::kv::AttendInput in;
      in.n_heads = n_heads;
      in.n_q = n_q;
      in.q = q.data();
      in.q_head_stride = n_q * hd;
      in.q_row_stride = hd;
      in.q_len = int64_t(q.size());
      // Without key mass on odd steps: int caches then take the quantized fast
      // path (attention over the codes, chunked over the pool).
      in.accumulate_mass = step % 2 == 0;
      in.out = out.data();
      in.out_len = int64_t(out.size());
      check(cache->attend(layer, in), "attend");
      res.out.insert(res.out.end(), out.begin(), out.end());
    }
    if (step == 3) {
      tp::kv::CompressRequest req;
      req.scorer = step % 2 ? "h2o" : "snapkv";
      req.keep = 64;
      tp::kv::CompressReport rep;
      check(cache->compress(req, &rep), "compress");
    }
  }
  res.tokens = cache->total_tokens();
  res.bytes = cache->memory_bytes();
  return res;
}

// ---- Equal-Info coding on one shared model ----
std::vector<std::vector<uint8_t>> make_docs(uint32_t seed) {
  static const char* words[] = {"the ", "cache ", "token ", "press ", "attention ", "of ", "a ", "window ", "model\n"};
  std::vector<std::vector<uint8_t>> docs(6);
  uint32_t x = seed + 7;
  for (auto& d : docs) {
    const int n = 40 + int(x % 200);
    for (int i = 0; i < n; ++i) {
      x = x * 1103515245u + 12345u;
      const char* w = words[(x >> 16) % 9];
      d.insert(d.end(), w, w + std::string(w).size());
    }
  }
  return docs;
}

std::vector<std::vector<uint32_t>> code_docs(const tp::coding::ByteModel& model,
                                             const std::vector<std::vector<uint8_t>>& docs) {
  std::vector<tp::coding::ByteSpan> spans;
  for (const auto& d : docs) spans.push_back({d.data(), d.size()});
  std::vector<tp::coding::TokenStream> streams;
  check(tp::coding::equal_info_encode_batch(model, spans, 16, 16, &streams), "equal_info_encode_batch");
  std::vector<std::vector<uint8_t>> bits(streams.size());
  std::vector<size_t> windows(streams.size());
  std::vector<std::vector<uint32_t>> tokens;
  for (size_t i = 0; i < streams.size(); ++i) {
    tokens.push_back(streams[i].tokens);
    check(tp::coding::tokens_to_bits(streams[i].tokens.data(), streams[i].tokens.size(), 16, 16, &bits[i], &windows[i]),
          "tokens_to_bits");
  }
  std::vector<std::vector<uint8_t>> decoded;
  check(tp::coding::equal_info_decode_batch(model, bits, windows, 16, 1 << 20, &decoded), "equal_info_decode_batch");
  if (decoded != docs) fail("equal-info: round trip differs");
  return tokens;
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 6;
  const int callers = 4;  // libuv's default pool size: the async workers in flight at once

  // References on a quiet pool.
  const std::string corpus_text = [] {
    std::string s;
    for (const auto& d : make_docs(99)) s.append(d.begin(), d.end());
    return s;
  }();
  std::unique_ptr<tp::coding::KnModel> model;
  tp::coding::KnTrainOptions opts;
  opts.max_order = 4;
  check(tp::coding::KnModel::train(reinterpret_cast<const uint8_t*>(corpus_text.data()), corpus_text.size(), opts, &model),
        "KnModel::train");
  if (!model) return 1;
  std::vector<AttentionCase> att_cases = {make_attention(1, 700, 1), make_attention(33, 257, 2)};
  std::vector<std::vector<float>> att_ref, att_mass_ref;
  for (const auto& c : att_cases) {
    std::vector<float> mass;
    att_ref.push_back(run_attention_case(c, &mass));
    att_mass_ref.push_back(mass);
  }
  const tp::kv::CacheType types[] = {tp::kv::CacheType::F16, tp::kv::CacheType::Int4, tp::kv::CacheType::F32,
                                     tp::kv::CacheType::Int8};
  std::vector<CacheResult> cache_ref;
  for (int c = 0; c < callers; ++c) cache_ref.push_back(run_cache(types[c], 1000u * c));
  std::vector<std::vector<std::vector<uint8_t>>> docs;
  std::vector<std::vector<std::vector<uint32_t>>> tokens_ref;
  for (int c = 0; c < callers; ++c) {
    docs.push_back(make_docs(uint32_t(c)));
    tokens_ref.push_back(code_docs(*model, docs.back()));
  }
  if (g_failures.load()) return 1;

  // The same work from several callers at once, with the pool resized and the
  // ISA switched underneath.
  std::atomic<bool> done{false};
  std::thread knobs([&] {
    const int sizes[] = {3, 1, 4, 2};
    const tp::IsaLevel detected = tp::detected_isa();
    for (int i = 0; !done.load(); ++i) {
      tp::ThreadPool::instance().resize(sizes[i % 4]);
      tp::set_active_isa(i % 3 == 0 ? tp::IsaLevel::Scalar : detected);
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    tp::set_active_isa(detected);
  });
  std::vector<std::thread> workers;
  for (int c = 0; c < callers; ++c) {
    workers.emplace_back([&, c] {
      for (int r = 0; r < rounds; ++r) {
        switch ((r + c) % 4) {
          case 0: pool_job(c, 1); break;
          case 1: {
            const size_t i = size_t(r + c) % att_cases.size();
            std::vector<float> mass;
            const auto out = run_attention_case(att_cases[i], &mass);
            if (!close(out, att_ref[i], 1e-4) || !close(mass, att_mass_ref[i], 1e-4)) fail("attention: result differs");
            break;
          }
          case 2: {
            const auto res = run_cache(types[c], 1000u * c);
            // int caches: the scalar and AVX2 quantized paths round differently
            // (the ISA switches under the run); with a fixed ISA they agree to 1e-4.
            const bool int_cache = types[c] == tp::kv::CacheType::Int4 || types[c] == tp::kv::CacheType::Int8;
            if (!close(res.out, cache_ref[c].out, int_cache ? 1e-2 : 1e-4) || res.tokens != cache_ref[c].tokens || res.bytes != cache_ref[c].bytes)
              fail("kv cache: result differs (caller " + std::to_string(c) + ")");
            break;
          }
          case 3:
            if (code_docs(*model, docs[c]) != tokens_ref[c]) fail("equal-info: tokens differ");
            break;
        }
      }
    });
  }
  for (auto& w : workers) w.join();
  done.store(true);
  knobs.join();

  const int failures = g_failures.load();
  std::printf("concurrency_driver: %d callers x %d rounds, %d failure(s)\n", callers, rounds, failures);
  return failures == 0 ? 0 : 1;
}
