// Status codes returned by kernels. Kernels never throw and never abort;
// the binding turns a non-Ok status into a JS error.
#pragma once
#include <string>

namespace tp {

enum class StatusCode { Ok = 0, InvalidArgument, OutOfMemory, Internal };

struct Status {
  StatusCode code = StatusCode::Ok;
  std::string message;

  static Status ok() { return {}; }
  static Status invalid(std::string msg) { return {StatusCode::InvalidArgument, std::move(msg)}; }
  static Status out_of_memory(std::string msg) { return {StatusCode::OutOfMemory, std::move(msg)}; }
  static Status internal(std::string msg) { return {StatusCode::Internal, std::move(msg)}; }
  bool is_ok() const { return code == StatusCode::Ok; }
};

}  // namespace tp
