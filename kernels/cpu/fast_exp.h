// exp for the CPU kernels' inner loops. std::exp is a scalar library call that stops the
// compiler from vectorizing the selective scan, whose cost is dominated by exp(delta * A). The
// float version here is plain arithmetic that vectorizes: Cody-Waite reduction x = k ln2 + r
// with |r| <= ln2 / 2, a degree-7 Taylor polynomial for exp(r) (truncation error below 1e-8
// relative, so about one ulp in total), and 2^k built from the exponent bits. Double keeps
// std::exp: f64 is the gradcheck precision, not a speed path.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace serpent::cpu {

inline float fast_exp(float x) {
  const float kLog2e = 1.44269504088896341f;
  const float kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
  const float kRound = 12582912.0f;  // 1.5 * 2^23: adding and subtracting it rounds to an integer
  const float clamped = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  const float k = (clamped * kLog2e + kRound) - kRound;
  const float r = (clamped - k * kLn2Hi) - k * kLn2Lo;
  float p = 1.0f / 5040;
  p = p * r + 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t bits = (int32_t(k) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, 4);
  // Below the clamp the true value is under 2^-125: flush to zero like the float exp underflow.
  return x < -87.0f ? 0.0f : p * scale;
}

inline double fast_exp(double x) {
  return std::exp(x);
}

}  // namespace serpent::cpu
