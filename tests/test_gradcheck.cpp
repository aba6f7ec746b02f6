// Every backward formula against float64 central differences, on random odd shapes.
#include "helpers.h"

using namespace serpent;
using namespace serpent::testing;

namespace {

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

TEST(Gradcheck, Elementwise) {
  Generator gen(11);
  Tensor a = leaf({3, 7}, gen, -2, 2), b = leaf({3, 7}, gen, -2, 2);
  expect_gradcheck([](const std::vector<Tensor>& in) { return add(in[0], in[1]); }, {a, b});
  expect_gradcheck([](const std::vector<Tensor>& in) { return sub(in[0], in[1]); }, {a, b});
  expect_gradcheck([](const std::vector<Tensor>& in) { return mul(in[0], in[1]); }, {a, b});
  expect_gradcheck([](const std::vector<Tensor>& in) { return scale(in[0], -0.7); }, {a});
  expect_gradcheck([](const std::vector<Tensor>& in) { return exp(in[0]); }, {a});
  expect_gradcheck([](const std::vector<Tensor>& in) { return silu(in[0]); }, {a});
  expect_gradcheck([](const std::vector<Tensor>& in) { return sum(in[0]); }, {a});
  expect_gradcheck([](const std::vector<Tensor>& in) { return mean(in[0]); }, {a});
}

TEST(Gradcheck, SoftplusBothSidesOfTheThreshold) {
  // Values around 0 and beyond 20, where softplus switches to the identity.
  Tensor a = from_vector<double>({-3.0, -0.5, 0.0, 0.7, 4.0, 19.0, 21.0, 30.0}, {8});
  a.set_requires_grad(true);
  expect_gradcheck([](const std::vector<Tensor>& in) { return softplus(in[0]); }, {a});
}

TEST(Gradcheck, ShapeOps) {
  Generator gen(12);
  Tensor a = leaf({2, 3, 5}, gen);
  expect_gradcheck([](const std::vector<Tensor>& in) { return reshape(in[0], {6, 5}); }, {a});
  expect_gradcheck([](const std::vector<Tensor>& in) { return slice_last(in[0], 1, 3); }, {a});
  expect_gradcheck([](const std::vector<Tensor>& in) { return slice_last(in[0], 4, 1); }, {a});
  // narrow views rows of dimension 0 (the only contiguous case, the one the model uses).
  Tensor rows = leaf({5, 3}, gen);
  expect_gradcheck([](const std::vector<Tensor>& in) { return narrow(in[0], 0, 1, 2); }, {rows});
  expect_gradcheck([](const std::vector<Tensor>& in) { return narrow(in[0], 0, 4, 1); }, {rows});
  expect_gradcheck([](const std::vector<Tensor>& in) { return narrow(in[0], 0, 0, 5); }, {rows});
  expect_gradcheck([](const std::vector<Tensor>& in) { return narrow(in[0], 0, 1, 1); }, {a});
  expect_gradcheck([](const std::vector<Tensor>& in) { return cast(in[0], DType::f64); }, {a});
}

TEST(Gradcheck, CastPassesTheGradientBackInTheInputsDtype) {
  // f64 -> f32 cannot be checked by float64 differences; its backward is the upstream gradient
  // converted back to f64, exactly for values f32 represents.
  Tensor x = from_vector<double>({0.5, -1.25, 3.0}, {3});
  x.set_requires_grad(true);
  Tensor w = from_vector<float>({2.0f, -0.75f, 0.125f}, {3}, DType::f32);
  Tensor y = cast(x, DType::f32);
  EXPECT_EQ(y.dtype(), DType::f32);
  autograd::backward(sum(mul(y, w)));
  ASSERT_EQ(x.grad().dtype(), DType::f64);
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{2.0, -0.75, 0.125}));
}

TEST(Gradcheck, MatmulAndLinear) {
  Generator gen(13);
  for (auto [M, K, N] : {std::tuple{1, 1, 1}, {5, 7, 3}, {9, 4, 11}}) {
    Tensor a = leaf({M, K}, gen), b = leaf({K, N}, gen), w = leaf({N, K}, gen);
    expect_gradcheck([](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); }, {a, b});
    expect_gradcheck([](const std::vector<Tensor>& in) { return linear(in[0], in[1]); }, {a, w});
  }
}

TEST(Gradcheck, EmbeddingAccumulatesRepeatedRows) {
  Generator gen(14);
  Tensor w = leaf({7, 5}, gen);
  // Row 3 appears three times: its gradient is the sum of three output rows.
  Tensor ids = from_vector<int64_t>({3, 0, 3, 6, 3, 1}, {2, 3});
  expect_gradcheck([ids](const std::vector<Tensor>& in) { return embedding(in[0], ids); }, {w});
  Tensor ids32 = from_vector<int32_t>({6, 6, 2}, {3});
  expect_gradcheck([ids32](const std::vector<Tensor>& in) { return embedding(in[0], ids32); }, {w});
}

TEST(Gradcheck, RmsNormWithAndWithoutResidual) {
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

TEST(Gradcheck, CausalConv1dWidthsOneToFour) {
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

struct ScanCase {
  int64_t L, E, N;
  bool use_D, use_z, use_bias, use_softplus;
};

void check_scan(const ScanCase& c, Generator& gen) {
  SCOPED_TRACE(str_cat("L ", c.L, " E ", c.E, " N ", c.N, " D ", c.use_D, " z ", c.use_z, " bias ", c.use_bias,
                       " softplus ", c.use_softplus));
  const int64_t B = 2;
  Tensor u = leaf({B, c.L, c.E}, gen);
  // Without softplus delta is used as is, so keep it positive like a real step size.
  Tensor delta = c.use_softplus ? leaf({B, c.L, c.E}, gen, -2, 1) : leaf({B, c.L, c.E}, gen, 0.05, 0.8);
  Tensor A = leaf({c.E, c.N}, gen, -2.0, -0.1);
  Tensor Bm = leaf({B, c.L, c.N}, gen), Cm = leaf({B, c.L, c.N}, gen);
  Tensor D = c.use_D ? leaf({c.E}, gen) : Tensor();
  Tensor z = c.use_z ? leaf({B, c.L, c.E}, gen, -2, 2) : Tensor();
  Tensor bias = c.use_bias ? leaf({c.E}, gen, -1, 0.5) : Tensor();
  const bool sp = c.use_softplus;
  expect_gradcheck(
      [sp](const std::vector<Tensor>& in) {
        return selective_scan(in[0], in[1], in[2], in[3], in[4], in[5], in[6], in[7], sp).y;
      },
      {u, delta, A, Bm, Cm, D, z, bias});
}

TEST(Gradcheck, SelectiveScanEveryOptionalPart) {
  Generator gen(17);
  // Each optional part on and off, at a short odd length and E not a multiple of 8.
  for (int mask = 0; mask < 16; ++mask)
    check_scan({7, 5, 4, bool(mask & 1), bool(mask & 2), bool(mask & 4), bool(mask & 8)}, gen);
}

TEST(Gradcheck, SelectiveScanLengthsAndStateSizes) {
  Generator gen(18);
  for (int64_t L : {1, 7, 37})
    for (int64_t N : {1, 4, 16}) {
      check_scan({L, 13, N, true, true, true, true}, gen);
      if (L != 7) check_scan({L, 3, N, false, false, false, true}, gen);
    }
  // More channels than one block of the CPU kernel (16), not a multiple of it.
  check_scan({7, 21, 4, true, true, true, true}, gen);
}

TEST(Gradcheck, CrossEntropyWithIgnoredTargets) {
  Generator gen(19);
  Tensor logits = leaf({6, 11}, gen, -3, 3);
  Tensor targets = from_vector<int64_t>({3, -100, 0, 10, 5, -100}, {6});
  expect_gradcheck([targets](const std::vector<Tensor>& in) { return cross_entropy(in[0], targets); }, {logits});
  Tensor t7 = from_vector<int32_t>({1, 7, 7, 0, 2, 7}, {6});
  expect_gradcheck([t7](const std::vector<Tensor>& in) { return cross_entropy(in[0], t7, 7); }, {logits});
}

TEST(Gradcheck, LinearCrossEntropyChunkedWithIgnoredTargets) {
  Generator gen(20);
  Tensor h = leaf({7, 5}, gen), w = leaf({11, 5}, gen);
  Tensor targets = from_vector<int64_t>({3, -100, 0, 10, 5, -100, 7}, {7});
  // One chunk, chunks of 3 rows (the last one short) and single-row chunks.
  for (int64_t chunk : {0, 3, 1}) {
    SCOPED_TRACE(str_cat("chunk_rows ", chunk));
    expect_gradcheck(
        [targets, chunk](const std::vector<Tensor>& in) {
          return linear_cross_entropy(in[0], in[1], targets, -100, chunk);
        },
        {h, w});
  }
  Tensor t32 = from_vector<int32_t>({1, 4, 4, 0, 2, 4, 9}, {7});
  expect_gradcheck([t32](const std::vector<Tensor>& in) { return linear_cross_entropy(in[0], in[1], t32, 4, 2); },
                   {h, w});
}

}  // namespace
