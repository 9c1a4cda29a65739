// The machine's own limits (measureBandwidth, measureReadBandwidth,
// measureCopyBandwidth, measureFmaPeak, measureBf16Peak) and the roofline
// decode loop (rooflineDecode), for benchmarks that quote "% of peak" and
// "ours / roof". Synchronous on purpose: they are only called from benchmark
// scripts and must not share the pool with other work while they time it.
#include <cmath>
#include <string>

#include "../attention/roofline_decode.h"
#include "../core/machine_limits.h"
#include "../core/thread_pool.h"
#include "bindings.h"
#include "napi_args.h"

namespace tp::binding {
namespace {

// Reads info[i] as an integer in [lo, hi]; throws TypeError / RangeError
// naming the argument (message template: "<arg>: expected <what>, received <got>").
int64_t integer_arg(const Napi::CallbackInfo& info, size_t i, const char* name, double lo, double hi) {
  const Napi::Value v = info.Length() > i ? info[i] : info.Env().Undefined();
  const std::string expected = std::string("an integer in [") + std::to_string(static_cast<int64_t>(lo)) + ", " +
                               std::to_string(static_cast<int64_t>(hi)) + "]";
  if (!v.IsNumber()) {
    throw Napi::TypeError::New(info.Env(), std::string(name) + ": expected " + expected + ", received " + describe(v));
  }
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= lo && d <= hi) || d != std::floor(d)) {
    throw Napi::RangeError::New(info.Env(), std::string(name) + ": expected " + expected + ", received " + describe(v));
  }
  return static_cast<int64_t>(d);
}

// threads above the pool size are capped at the pool size (setThreads grows it).
int pool_threads(int64_t requested) {
  const int pool = ThreadPool::instance().size();
  return requested > pool ? pool : static_cast<int>(requested);
}

constexpr double kMaxBytes = 281474976710656.0;  // 2^48: far above any RAM, exact in a double

enum class BandwidthKind { Read, Copy, Gather };

// (bytes, threads, reps) of a bandwidth call starting at argument `first`.
struct BandwidthArgs {
  int64_t bytes;
  int threads;
  int reps;
  int64_t block_bytes = 0;  // Gather only
};

BandwidthArgs bandwidth_args(const Napi::CallbackInfo& info, size_t first, BandwidthKind kind) {
  BandwidthArgs a;
  a.bytes = integer_arg(info, first, "bytes", 64, kMaxBytes);
  a.threads = pool_threads(integer_arg(info, first + 1, "threads", 1, 1024));
  a.reps = static_cast<int>(integer_arg(info, first + 2, "reps", 1, 10000));
  if (kind == BandwidthKind::Gather) {
    a.block_bytes = integer_arg(info, first + 3, "blockBytes", 64, 1 << 30);
    if (a.block_bytes % 64 != 0) {
      throw Napi::RangeError::New(info.Env(), "blockBytes: expected a multiple of 64, received " + std::to_string(a.block_bytes));
    }
  }
  // Copy splits the array into a source and a destination half; a gather
  // reads at least one block per thread.
  const int64_t per_thread = kind == BandwidthKind::Copy ? 128 : kind == BandwidthKind::Gather ? a.block_bytes : 64;
  if (a.bytes / per_thread < a.threads) {
    throw Napi::RangeError::New(info.Env(), "bytes: expected at least " + std::to_string(per_thread) + " bytes per thread (" +
                                                std::to_string(per_thread * a.threads) + "), received " + std::to_string(a.bytes));
  }
  return a;
}

double run_bandwidth(Napi::Env env, BandwidthKind kind, const BandwidthArgs& a, BandwidthInfo* bw_info) {
  const double bw = kind == BandwidthKind::Read   ? measure_read_bandwidth(a.bytes, a.threads, a.reps, bw_info)
                    : kind == BandwidthKind::Copy ? measure_copy_bandwidth(a.bytes, a.threads, a.reps, bw_info)
                                                  : measure_gather_bandwidth(a.bytes, a.block_bytes, a.threads, a.reps, bw_info);
  if (!(bw > 0)) {
    const char* fn = kind == BandwidthKind::Read ? "measureReadBandwidth" : kind == BandwidthKind::Copy ? "measureCopyBandwidth" : "measureBandwidth('gather')";
    throw Napi::Error::New(env, std::string(fn) + ": could not allocate " + std::to_string(a.bytes) + " bytes for the bandwidth array");
  }
  return bw;
}

Napi::Value MeasureReadBandwidth(const Napi::CallbackInfo& info) {
  const BandwidthArgs a = bandwidth_args(info, 0, BandwidthKind::Read);
  return Napi::Number::New(info.Env(), run_bandwidth(info.Env(), BandwidthKind::Read, a, nullptr));
}

Napi::Value MeasureCopyBandwidth(const Napi::CallbackInfo& info) {
  const BandwidthArgs a = bandwidth_args(info, 0, BandwidthKind::Copy);
  return Napi::Number::New(info.Env(), run_bandwidth(info.Env(), BandwidthKind::Copy, a, nullptr));
}

// measureBandwidth(kind: 'read' | 'copy' | 'gather', bytes, threads, reps, blockBytes (gather only)) ->
// { bytesPerS, loop, hugePages, concurrentReps, threads }
Napi::Value MeasureBandwidth(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Napi::Value k = info.Length() > 0 ? info[0] : env.Undefined();
  const std::string name = k.IsString() ? k.As<Napi::String>().Utf8Value() : "";
  if (name != "read" && name != "copy" && name != "gather") {
    throw Napi::TypeError::New(env, "kind: expected 'read', 'copy' or 'gather', received " + (k.IsString() ? "'" + name + "'" : describe(k)));
  }
  const BandwidthKind kind = name == "read" ? BandwidthKind::Read : name == "copy" ? BandwidthKind::Copy : BandwidthKind::Gather;
  const BandwidthArgs a = bandwidth_args(info, 1, kind);
  BandwidthInfo bw_info;
  const double bw = run_bandwidth(env, kind, a, &bw_info);
  Napi::Object out = Napi::Object::New(env);
  out.Set("bytesPerS", bw);
  out.Set("loop", bw_info.loop);
  out.Set("hugePages", bw_info.huge_pages);
  out.Set("concurrentReps", bw_info.concurrent_reps);
  out.Set("threads", bw_info.threads);
  return out;
}

Napi::Value MeasureFmaPeak(const Napi::CallbackInfo& info) {
  const int threads = pool_threads(integer_arg(info, 0, "threads", 1, 1024));
  const double flops = measure_fma_peak(threads);
  if (!(flops > 0)) throw Napi::Error::New(info.Env(), "measureFmaPeak: the measurement failed");
  return Napi::Number::New(info.Env(), flops);
}

Napi::Value MeasureBf16Peak(const Napi::CallbackInfo& info) {
  const int threads = pool_threads(integer_arg(info, 0, "threads", 1, 1024));
  const double flops = measure_bf16_peak(threads);
  if (flops < 0) throw Napi::Error::New(info.Env(), "measureBf16Peak: the measurement failed");
  return Napi::Number::New(info.Env(), flops);
}

// rooflineDecode({ q, k, v, out, kvDtype, nHeads, nKvHeads, nKv, headDim, scale, isa, threads }):
// the roofline decode loop (native/attention/roofline_decode.h). q, out:
// Float32Array [nHeads, headDim]; k, v: [nKvHeads, nKv, headDim] as a
// Float32Array (kvDtype 0) or f16 bits in a Uint16Array (kvDtype 1); isa -1
// (the active ISA), 0 scalar, 1 avx2, 2 avx512; threads capped at the pool size.
Napi::Value RooflineDecode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object p = SnapshotParams(info, {"q", "k", "v", "out", "kvDtype", "nHeads", "nKvHeads", "nKv", "headDim", "scale",
                                         "isa", "threads"});
  const int64_t dtype = GetInt(p, "kvDtype");
  if (dtype != 0 && dtype != 1) {
    throw Napi::RangeError::New(env, "kvDtype: expected 0 (f32) or 1 (f16), received " + std::to_string(dtype));
  }
  const int64_t n_heads = GetInt(p, "nHeads"), n_kv_heads = GetInt(p, "nKvHeads"), n_kv = GetInt(p, "nKv");
  const int64_t head_dim = GetInt(p, "headDim"), isa = GetInt(p, "isa"), threads = GetInt(p, "threads");
  const double scale = GetNumber(p, "scale");
  auto range = [&](const char* name, int64_t v, int64_t lo, int64_t hi) {
    if (v < lo || v > hi) {
      throw Napi::RangeError::New(env, std::string(name) + ": expected an integer in [" + std::to_string(lo) + ", " +
                                           std::to_string(hi) + "], received " + std::to_string(v));
    }
  };
  range("nKvHeads", n_kv_heads, 1, 1 << 16);
  range("nHeads", n_heads, 1, 1 << 16);
  range("headDim", head_dim, 1, kRooflineMaxHeadDim);
  range("nKv", n_kv, 1, int64_t{1} << 40);
  range("isa", isa, -1, 2);
  range("threads", threads, 1, 1024);
  if (n_heads % n_kv_heads != 0) {
    throw Napi::RangeError::New(env, "nHeads: expected a multiple of nKvHeads (" + std::to_string(n_kv_heads) + "), received " +
                                         std::to_string(n_heads));
  }
  if (!std::isfinite(scale)) throw Napi::RangeError::New(env, "scale: expected a finite number, received " + describe(p.Get("scale")));
  const napi_typedarray_type kv_type = dtype == 0 ? napi_float32_array : napi_uint16_array;
  const TypedArrayView q = GetTypedArray(p, "q", napi_float32_array, true);
  const TypedArrayView k = GetTypedArray(p, "k", kv_type, true);
  const TypedArrayView v = GetTypedArray(p, "v", kv_type, true);
  const TypedArrayView out = GetTypedArray(p, "out", napi_float32_array, true);
  const int64_t q_elems = n_heads * head_dim;
  // nKvHeads * headDim < 2^24; a typed array holds < 2^53 elements, so a
  // larger product can match no array (and is refused before it can overflow).
  if (n_kv > (int64_t{1} << 53) / (n_kv_heads * head_dim)) {
    throw Napi::RangeError::New(env, "nKv: expected nKvHeads * nKv * headDim < 2^53, received nKv " + std::to_string(n_kv));
  }
  const int64_t kv_elems = n_kv_heads * n_kv * head_dim;
  auto length = [&](const TypedArrayView& t, int64_t want) {
    if (t.length != want) {
      throw Napi::RangeError::New(env, std::string(t.name) + ": expected " + std::to_string(want) + " elements, received " +
                                           std::to_string(t.length));
    }
  };
  length(q, q_elems);
  length(k, kv_elems);
  length(v, kv_elems);
  length(out, q_elems);
  RefuseOverlap(env, {&out}, {&q, &k, &v});
  RooflineDecodeArgs a;
  a.q = static_cast<const float*>(q.data);
  a.k = k.data;
  a.v = v.data;
  a.f16 = dtype == 1;
  a.out = static_cast<float*>(out.data);
  a.nHeads = static_cast<int>(n_heads);
  a.nKvHeads = static_cast<int>(n_kv_heads);
  a.headDim = static_cast<int>(head_dim);
  a.nKv = n_kv;
  a.scale = static_cast<float>(scale);
  const Status s = roofline_decode(a, pool_threads(threads), static_cast<int>(isa));
  if (!s.is_ok()) ThrowStatus(env, s);
  return env.Undefined();
}

}  // namespace

void RegisterBench(Napi::Env env, Napi::Object exports) {
  exports.Set("measureReadBandwidth", Napi::Function::New(env, Guarded<MeasureReadBandwidth>, "measureReadBandwidth"));
  exports.Set("measureCopyBandwidth", Napi::Function::New(env, Guarded<MeasureCopyBandwidth>, "measureCopyBandwidth"));
  exports.Set("measureBandwidth", Napi::Function::New(env, Guarded<MeasureBandwidth>, "measureBandwidth"));
  exports.Set("measureFmaPeak", Napi::Function::New(env, Guarded<MeasureFmaPeak>, "measureFmaPeak"));
  exports.Set("measureBf16Peak", Napi::Function::New(env, Guarded<MeasureBf16Peak>, "measureBf16Peak"));
  exports.Set("rooflineDecode", Napi::Function::New(env, Guarded<RooflineDecode>, "rooflineDecode"));
}

}  // namespace tp::binding
