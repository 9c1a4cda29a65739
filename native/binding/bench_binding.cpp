// measureReadBandwidth, measureFmaPeak: the machine's own limits, for
// benchmarks that quote "% of peak". Synchronous on purpose: they are only
// called from benchmark scripts and must not share the pool with other work
// while they time it.
#include <cmath>
#include <string>

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

Napi::Value MeasureReadBandwidth(const Napi::CallbackInfo& info) {
  const int64_t bytes = integer_arg(info, 0, "bytes", 64, kMaxBytes);
  const int threads = pool_threads(integer_arg(info, 1, "threads", 1, 1024));
  const int reps = static_cast<int>(integer_arg(info, 2, "reps", 1, 10000));
  if (bytes / 64 < threads) {
    throw Napi::RangeError::New(info.Env(), "bytes: expected at least 64 bytes per thread (" +
                                                std::to_string(64 * threads) + "), received " + std::to_string(bytes));
  }
  const double bw = measure_read_bandwidth(bytes, threads, reps);
  if (!(bw > 0)) {
    throw Napi::Error::New(info.Env(), "measureReadBandwidth: could not allocate " + std::to_string(bytes) +
                                           " bytes for the read-bandwidth array");
  }
  return Napi::Number::New(info.Env(), bw);
}

Napi::Value MeasureFmaPeak(const Napi::CallbackInfo& info) {
  const int threads = pool_threads(integer_arg(info, 0, "threads", 1, 1024));
  const double flops = measure_fma_peak(threads);
  if (!(flops > 0)) throw Napi::Error::New(info.Env(), "measureFmaPeak: the measurement failed");
  return Napi::Number::New(info.Env(), flops);
}

}  // namespace

void RegisterBench(Napi::Env env, Napi::Object exports) {
  exports.Set("measureReadBandwidth", Napi::Function::New(env, Guarded<MeasureReadBandwidth>, "measureReadBandwidth"));
  exports.Set("measureFmaPeak", Napi::Function::New(env, Guarded<MeasureFmaPeak>, "measureFmaPeak"));
}

}  // namespace tp::binding
