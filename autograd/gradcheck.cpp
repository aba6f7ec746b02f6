#include "autograd/gradcheck.h"

#include <cmath>
#include <sstream>

#include "autograd/engine.h"
#include "autograd/node.h"
#include "autograd/ops.h"
#include "core/creation.h"

namespace serpent::autograd {

GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                          const std::vector<Tensor>& inputs, double eps, uint64_t seed) {
  for (const Tensor& t : inputs) {
    if (!t.defined() || !t.requires_grad()) continue;
    SERPENT_CHECK(t.dtype() == DType::f64 && !t.is_cuda() && t.is_leaf(),
                  "gradcheck: inputs that require a gradient must be f64 cpu leaves, got ", t.str());
  }
  Tensor out = fn(inputs);
  Generator gen(seed);
  Tensor w = randn(out.shape(), gen, DType::f64);
  auto objective = [&](const Tensor& o) {
    const double* po = o.data<double>();
    const double* pw = w.data<double>();
    double s = 0;
    for (int64_t i = 0; i < o.numel(); ++i) s += po[i] * pw[i];
    return s;
  };

  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) const_cast<Tensor&>(t).zero_grad();
  autograd::backward(sum(mul(out, w)));

  GradcheckResult result;
  std::ostringstream report;
  for (size_t k = 0; k < inputs.size(); ++k) {
    const Tensor& t = inputs[k];
    if (!t.defined() || !t.requires_grad()) continue;
    Tensor analytic = t.grad();
    double* x = t.data<double>();
    double diff2 = 0, num2 = 0;
    for (int64_t i = 0; i < t.numel(); ++i) {
      const double saved = x[i];
      double plus, minus;
      {
        NoGradGuard guard;
        x[i] = saved + eps;
        plus = objective(fn(inputs));
        x[i] = saved - eps;
        minus = objective(fn(inputs));
      }
      x[i] = saved;
      const double numeric = (plus - minus) / (2 * eps);
      const double a = analytic.defined() ? analytic.data<double>()[i] : 0.0;
      diff2 += (a - numeric) * (a - numeric);
      num2 += numeric * numeric;
    }
    const double rel = std::sqrt(diff2) / std::max(std::sqrt(num2), 1e-12);
    result.max_relative_error = std::max(result.max_relative_error, rel);
    report << "input " << k << " " << shape_str(t.shape()) << ": relative error " << rel << " (|numeric| "
           << std::sqrt(num2) << ")\n";
  }
  result.report = report.str();
  return result;
}

}  // namespace serpent::autograd
