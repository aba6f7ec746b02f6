// Gradient check by central differences in float64: the judge of every backward formula.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace serpent::autograd {

struct GradcheckResult {
  double max_relative_error = 0;  // over the inputs: ||analytic - numeric|| / ||numeric||
  std::string report;             // one line per input
};

// fn maps the inputs to one output. Inputs that require a gradient must be f64 leaves on the
// cpu. The output is contracted with fixed random weights w (seed), and d sum(w * fn) / d input is
// compared with (f(x + eps) - f(x - eps)) / (2 eps) element by element.
GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                          const std::vector<Tensor>& inputs, double eps = 1e-6, uint64_t seed = 1234);

}  // namespace serpent::autograd
