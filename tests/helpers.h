// Shared test helpers: random leaves, closeness measures, test data paths.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "autograd/engine.h"
#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "core/creation.h"
#include "core/storage.h"

namespace serpent::testing {

inline std::string data_path(const std::string& name) {
  return std::string(SERPENT_TEST_DATA) + "/" + name;
}

// A float64 cpu leaf, uniform in [lo, hi), that requires a gradient.
inline Tensor leaf(const Shape& shape, Generator& gen, double lo = -1.0, double hi = 1.0) {
  Tensor t = uniform(shape, lo, hi, gen, DType::f64);
  t.set_requires_grad(true);
  return t;
}

// ||a - b|| / ||b|| over all elements, computed in double on the host.
inline double relative_error(const Tensor& a, const Tensor& b) {
  std::vector<double> x = a.to_vector<double>(), y = b.to_vector<double>();
  EXPECT_EQ(x.size(), y.size());
  double d = 0, n = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    d += (x[i] - y[i]) * (x[i] - y[i]);
    n += y[i] * y[i];
  }
  return std::sqrt(d) / std::max(std::sqrt(n), 1e-30);
}

// Runs gradcheck and expects every input's relative error to be at most tol.
inline void expect_gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                             const std::vector<Tensor>& inputs, double tol = 1e-6) {
  autograd::GradcheckResult r = autograd::gradcheck(fn, inputs);
  EXPECT_LE(r.max_relative_error, tol) << r.report;
}

// Expects `body` to throw serpent::Error whose message contains every one of `parts`.
template <class F>
void expect_error(F&& body, const std::vector<std::string>& parts) {
  try {
    body();
    ADD_FAILURE() << "expected a serpent::Error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const auto& p : parts)
      EXPECT_NE(msg.find(p), std::string::npos) << "message '" << msg << "' lacks '" << p << "'";
  }
}

// Base of the CUDA parity fixtures: skips visibly without the CUDA backend or a GPU, and draws a
// fresh seed for each test (printed, so a failure can be replayed).
class CudaTest : public ::testing::Test {
 protected:
  void SetUp() override {
#ifndef SERPENT_CUDA
    GTEST_SKIP() << "built without the CUDA backend: CUDA parity tests run only in CUDA builds";
#else
    if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device visible: CUDA parity tests run on a GPU machine";
#endif
    seed_ = std::random_device{}();
    std::printf("fresh seed %llu\n", (unsigned long long)seed_);
  }
  uint64_t seed_ = 0;
  const Device gpu_ = Device::cuda(0);
};

}  // namespace serpent::testing
