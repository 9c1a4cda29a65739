// Status codes returned by kernels. Kernels never throw and never abort;
// the binding turns a non-Ok status into a JS error.
#pragma once
#include <cstdint>
#include <string>

namespace tp {

// Device: a CUDA runtime or kernel failure (JS code ERR_CUDA); Unsupported: a
// valid request this backend does not run (JS code ERR_UNSUPPORTED).
enum class StatusCode { Ok = 0, InvalidArgument, OutOfMemory, Internal, Device, Unsupported };

struct Status {
  StatusCode code = StatusCode::Ok;
  std::string message;

  static Status ok() { return {}; }
  static Status invalid(std::string msg) { return {StatusCode::InvalidArgument, std::move(msg)}; }
  static Status out_of_memory(std::string msg) { return {StatusCode::OutOfMemory, std::move(msg)}; }
  static Status internal(std::string msg) { return {StatusCode::Internal, std::move(msg)}; }
  static Status device(std::string msg) { return {StatusCode::Device, std::move(msg)}; }
  static Status unsupported(std::string msg) { return {StatusCode::Unsupported, std::move(msg)}; }
  bool is_ok() const { return code == StatusCode::Ok; }
};

// Integers in status messages.
inline std::string num(int64_t v) { return std::to_string(v); }

}  // namespace tp
