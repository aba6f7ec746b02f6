// causal_conv1d: gradchecks in float64 for widths 1 to 4, with and without bias and SiLU; the f32
// CPU kernels against f64 (with add_rms_norm and cross_entropy, checked in the same test); and
// the CUDA kernels against the CPU in f32 and bf16 (see test_rms_norm.cpp for the tolerances).
#include "tests/helpers.h"

using namespace serpent;
using namespace serpent::testing;

namespace {

TEST(CausalConv1d, GradcheckWidthsOneToFour) {
  Generator gen(16);
  for (int64_t W = 1; W <= 4; ++W)
    for (int64_t L : {1, 7, 37})
      for (bool with_bias : {false, true})
        for (bool act : {false, true}) {
          SCOPED_TRACE(str_cat("W ", W, " L ", L, " bias ", with_bias, " silu ", act));
          Tensor x = leaf({2, L, 5}, gen), w = leaf({5, W}, gen), b = with_bias ? leaf({5}, gen) : Tensor();
          expect_gradcheck([act](const std::vector<Tensor>& in) { return causal_conv1d(in[0], in[1], in[2], act); },
                           {x, w, b});
        }
}

TEST(CausalConv1d, FloatConvNormAndLossMatchDouble) {
  Generator gen(22);
  expect_f32_matches_f64([](const std::vector<Tensor>& x) { return causal_conv1d(x[0], x[1], x[2], true); },
                         {uniform({3, 41, 29}, -1, 1, gen, DType::f64), uniform({29, 4}, -1, 1, gen, DType::f64),
                          uniform({29}, -1, 1, gen, DType::f64)});
  expect_f32_matches_f64([](const std::vector<Tensor>& x) { return add_rms_norm(x[0], x[1], x[2], 1e-5).first; },
                         {uniform({33, 48}, -1, 1, gen, DType::f64), uniform({33, 48}, -1, 1, gen, DType::f64),
                          uniform({48}, 0.5, 1.5, gen, DType::f64)});
  Tensor targets = from_vector<int64_t>({4, 0, 9, -100, 2}, {5});
  expect_f32_matches_f64([targets](const std::vector<Tensor>& x) { return cross_entropy(x[0], targets); },
                         {uniform({5, 10}, -3, 3, gen, DType::f64)});
}

class CausalConv1dCuda : public CudaTest {};

TEST_F(CausalConv1dCuda, Parity) {
  Generator gen(seed_);
  struct Shape3 {
    int64_t B, L, E;
  };
  // L = 1, L shorter than a width, L not a multiple of the 32- and 64-step chunks; E a multiple of
  // 8 (channels in packs of 8 or 4), E = 8 (one pack), and E = 29 and 13 (one channel per thread).
  for (Shape3 s : {Shape3{2, 1, 24},
                   {2, 3, 24},
                   {2, 37, 24},
                   {3, 130, 40},
                   {1, 1000, 1536},
                   {2, 70, 8},
                   {2, 101, 29},
                   {1, 33, 13}})
    for (int64_t W = 1; W <= 4; ++W) {
      Tensor x = uniform({s.B, s.L, s.E}, -2, 2, gen, DType::f64), w = uniform({s.E, W}, -1, 1, gen, DType::f64);
      Tensor b = uniform({s.E}, -1, 1, gen, DType::f64), dout = uniform({s.B, s.L, s.E}, -1, 1, gen, DType::f64);
      for (DType dt : {DType::f32, DType::bf16})
        for (bool with_bias : {false, true})
          for (bool act : {false, true}) {
            SCOPED_TRACE(str_cat("B ", s.B, " L ", s.L, " E ", s.E, " W ", W, " ", dtype_name(dt), " bias ", with_bias,
                                 " silu ", act));
            Tensor xg = device_leaf(x, dt, gpu_), wg = device_leaf(w, DType::f32, gpu_);
            Tensor bg = with_bias ? device_leaf(b, DType::f32, gpu_) : Tensor();
            Tensor og = causal_conv1d(xg, wg, bg, act);
            autograd::backward(og, dout.to(dt).to(gpu_));

            Tensor xc = host_leaf(x, dt), wc = host_leaf(w, DType::f32);
            Tensor bc = with_bias ? host_leaf(b, DType::f32) : Tensor();
            Tensor oc = causal_conv1d(xc, wc, bc, act);
            autograd::backward(oc, rounded(dout, dt));

            expect_cuda_close(og, oc, dt, "output");
            expect_cuda_close(xg.grad(), xc.grad(), dt, "gradient of x");
            expect_cuda_close(wg.grad(), wc.grad(), DType::f32, "gradient of the weight");
            if (with_bias) expect_cuda_close(bg.grad(), bc.grad(), DType::f32, "gradient of the bias");
          }
    }
}

TEST_F(CausalConv1dCuda, WeightGradientIsDeterministic) {
  Generator gen(seed_);
  Tensor x = uniform({4, 777, 1536}, -2, 2, gen, DType::bf16, gpu_);
  Tensor w = uniform({1536, 4}, -1, 1, gen, DType::f32, gpu_).set_requires_grad(true);
  Tensor b = uniform({1536}, -1, 1, gen, DType::f32, gpu_).set_requires_grad(true);
  Tensor dout = uniform({4, 777, 1536}, -1, 1, gen, DType::bf16, gpu_);
  std::vector<std::vector<float>> dw, db;
  for (int i = 0; i < 3; ++i) {
    w.zero_grad();
    b.zero_grad();
    autograd::backward(causal_conv1d(x, w, b, true), dout);
    dw.push_back(w.grad().to_vector<float>());
    db.push_back(b.grad().to_vector<float>());
  }
  EXPECT_EQ(dw[0], dw[1]);
  EXPECT_EQ(dw[0], dw[2]);
  EXPECT_EQ(db[0], db[1]);
  EXPECT_EQ(db[0], db[2]);
}

}  // namespace
