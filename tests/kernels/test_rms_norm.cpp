// rms_norm and add_rms_norm: gradchecks in float64 with and without the residual, and the CUDA
// kernels against the CPU in pure f32 and in the mixed precision of the op contract
// (autograd/ops.h: bf16 activations, f32 parameters, residual stream and reductions). The CUDA
// reference runs in f64 on the host from the very values the device sees (each input rounded to
// its device dtype first); tolerances are relative, 1e-5 for f32 results and 1e-2 for bf16 ones
// (parity_tolerance). Inputs are fresh random draws every run (the seed is printed).
#include "tests/helpers.h"

using namespace serpent;
using namespace serpent::testing;

namespace {

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

TEST(RmsNorm, GradcheckWithAndWithoutResidual) {
  Generator gen(15);
  for (int64_t D : {1, 7, 13}) {
    Tensor h = leaf({2, 3, D}, gen), r = leaf({2, 3, D}, gen), w = leaf({D}, gen, 0.5, 1.5);
    // Both outputs feed the objective: normed and the residual stream.
    Fn both = [](const std::vector<Tensor>& in) {
      auto [n, res] = add_rms_norm(in[0], in[1], in[2], 1e-5);
      return add(n, scale(res, 0.3));
    };
    expect_gradcheck(both, {h, r, w});
    expect_gradcheck([](const std::vector<Tensor>& in) { return rms_norm(in[0], in[1], 1e-5); }, {h, w});
  }
}

class RmsNormCuda : public CudaTest {};

TEST_F(RmsNormCuda, AddRmsNormParity) {
  Generator gen(seed_);
  // D odd, D not a multiple of the 4-wide packs, one row, many rows.
  for (auto [M, D] : {std::pair<int64_t, int64_t>{1, 3}, {37, 24}, {1000, 768}, {33, 1537}, {5, 2048}}) {
    Tensor h = uniform({M, D}, -2, 2, gen, DType::f64), r = uniform({M, D}, -2, 2, gen, DType::f64);
    Tensor w = uniform({D}, 0.5, 1.5, gen, DType::f64);
    Tensor dn = uniform({M, D}, -1, 1, gen, DType::f64), dr = uniform({M, D}, -1, 1, gen, DType::f64);
    for (DType h_dt : {DType::f32, DType::bf16})
      for (DType out_dt : {DType::f32, DType::bf16})
        for (bool with_residual : {false, true}) {
          SCOPED_TRACE(str_cat("M ", M, " D ", D, " h ", dtype_name(h_dt), " out ", dtype_name(out_dt), " residual ",
                               with_residual));
          Tensor hg = device_leaf(h, h_dt, gpu_), wg = device_leaf(w, DType::f32, gpu_);
          Tensor rg = with_residual ? device_leaf(r, DType::f32, gpu_) : Tensor();
          auto [ng, rog] = add_rms_norm(hg, rg, wg, 1e-5, out_dt);
          autograd::backward({ng, rog}, {dn.to(out_dt).to(gpu_), dr.to(DType::f32).to(gpu_)});

          Tensor hc = host_leaf(h, h_dt), wc = host_leaf(w, DType::f32);
          Tensor rc = with_residual ? host_leaf(r, DType::f32) : Tensor();
          auto [nc, roc] = add_rms_norm(hc, rc, wc, 1e-5);
          autograd::backward({nc, roc}, {rounded(dn, out_dt), rounded(dr, DType::f32)});

          expect_cuda_close(ng, nc, out_dt, "normed");
          expect_cuda_close(rog, roc, DType::f32, "residual_out");
          expect_cuda_close(hg.grad(), hc.grad(), h_dt, "gradient of h");
          if (with_residual) expect_cuda_close(rg.grad(), rc.grad(), DType::f32, "gradient of the residual");
          expect_cuda_close(wg.grad(), wc.grad(), DType::f32, "gradient of the weight");
        }
  }
}

TEST_F(RmsNormCuda, AddRmsNormWeightGradientIsDeterministic) {
  Generator gen(seed_);
  Tensor h = uniform({4099, 768}, -2, 2, gen, DType::bf16, gpu_).set_requires_grad(true);
  Tensor w = uniform({768}, 0.5, 1.5, gen, DType::f32, gpu_).set_requires_grad(true);
  Tensor dn = uniform({4099, 768}, -1, 1, gen, DType::bf16, gpu_);
  std::vector<std::vector<float>> runs;
  for (int i = 0; i < 3; ++i) {
    w.zero_grad();
    auto [n, res] = add_rms_norm(h, Tensor(), w, 1e-5, DType::bf16);
    autograd::backward({n}, {dn});
    runs.push_back(w.grad().to_vector<float>());
  }
  EXPECT_EQ(runs[0], runs[1]);
  EXPECT_EQ(runs[0], runs[2]);
}

}  // namespace
