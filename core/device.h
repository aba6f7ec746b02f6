// Where a tensor's storage lives: the host, or one CUDA device.
#pragma once

#include <cstdint>
#include <string>

#include "core/error.h"

namespace serpent {

// H100 / H200 SXM dense bf16 peak: the denominator of every MFU serpent reports.
constexpr double kPeakBf16Flops = 989e12;

enum class DeviceType : uint8_t { cpu, cuda };

struct Device {
  DeviceType type = DeviceType::cpu;
  int index = 0;

  static Device cpu() { return {DeviceType::cpu, 0}; }
  static Device cuda(int index = 0) { return {DeviceType::cuda, index}; }
  bool is_cpu() const { return type == DeviceType::cpu; }
  bool is_cuda() const { return type == DeviceType::cuda; }
  bool operator==(const Device& o) const { return type == o.type && (is_cpu() || index == o.index); }
  bool operator!=(const Device& o) const { return !(*this == o); }

  std::string str() const { return is_cpu() ? "cpu" : "cuda:" + std::to_string(index); }

  // Parses "cpu", "cuda" and "cuda:N".
  static Device parse(const std::string& s) {
    if (s == "cpu") return cpu();
    if (s == "cuda") return cuda(0);
    if (s.rfind("cuda:", 0) == 0) {
      try {
        size_t used = 0;
        int idx = std::stoi(s.substr(5), &used);
        if (idx >= 0 && used == s.size() - 5) return cuda(idx);
      } catch (const std::exception&) {
      }
    }
    fail("unknown device '", s, "': expected cpu, cuda or cuda:N");
  }
};

}  // namespace serpent
