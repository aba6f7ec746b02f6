// embedding: the gradcheck (repeated rows accumulate), and the CUDA gather and its sorted segment
// sums against the CPU, plus bad ids found on the device. The CUDA tests compare with an f64
// host reference computed from the very values the device sees; see test_rms_norm.cpp.
#include <cmath>
#include <random>

#include "tests/helpers.h"
#ifdef SERPENT_CUDA
#include "core/cuda/runtime.h"
#include "kernels/cuda/index_check.h"
#endif

using namespace serpent;
using namespace serpent::testing;

namespace {

TEST(Embedding, GradcheckAccumulatesRepeatedRows) {
  Generator gen(14);
  Tensor w = leaf({7, 5}, gen);
  // Row 3 appears three times: its gradient is the sum of three output rows.
  Tensor ids = from_vector<int64_t>({3, 0, 3, 6, 3, 1}, {2, 3});
  expect_gradcheck([ids](const std::vector<Tensor>& in) { return embedding(in[0], ids); }, {w});
  Tensor ids32 = from_vector<int32_t>({6, 6, 2}, {3});
  expect_gradcheck([ids32](const std::vector<Tensor>& in) { return embedding(in[0], ids32); }, {w});
}

class EmbeddingCuda : public CudaTest {};

TEST_F(EmbeddingCuda, Parity) {
  Generator gen(seed_);
  std::mt19937_64 rng(seed_);
  struct Case {
    int64_t V, D, M;
  };
  // The padded GPT-NeoX vocabulary, small odd vocabularies with many repeated ids, D odd, one id.
  for (Case c : {Case{50280, 64, 1000}, {37, 77, 37}, {11, 24, 4096}, {5, 768, 1}}) {
    Tensor w = randn({c.V, c.D}, gen, DType::f64);
    Tensor dout = uniform({c.M, c.D}, -1, 1, gen, DType::f64);
    std::vector<int64_t> ids(static_cast<size_t>(c.M));
    for (auto& id : ids) id = int64_t(rng() % uint64_t(c.V));
    for (DType dt : {DType::f32, DType::bf16})
      for (DType id_dt : {DType::i32, DType::i64})
        for (bool ids_on_gpu : {false, true}) {
          SCOPED_TRACE(str_cat("V ", c.V, " D ", c.D, " M ", c.M, " ", dtype_name(dt), " ids ", dtype_name(id_dt),
                               ids_on_gpu ? " on the GPU" : " on the cpu"));
          Tensor id_host = from_vector(ids, {c.M}, id_dt);
          Tensor wg = device_leaf(w, dt, gpu_);
          Tensor og = embedding(wg, ids_on_gpu ? id_host.to(gpu_) : id_host);
          autograd::backward(og, dout.to(dt).to(gpu_));
          Tensor wc = host_leaf(w, dt);
          Tensor oc = embedding(wc, id_host);
          autograd::backward(oc, rounded(dout, dt));
          // A gather copies: exact.
          EXPECT_EQ(og.to_vector<double>(), oc.to_vector<double>());
          expect_cuda_close(wg.grad(), wc.grad(), dt, "gradient of the weight");
          if (dt == DType::f32) {
            // The sorted segment sums add each row's gradients in position order, like the cpu loop.
            Tensor w32 = w.to(DType::f32).set_requires_grad(true);
            autograd::backward(embedding(w32, id_host), dout.to(DType::f32));
            EXPECT_EQ(wg.grad().to_vector<float>(), w32.grad().to_vector<float>());
          }
        }
  }
}

#ifdef SERPENT_CUDA
TEST_F(EmbeddingCuda, ReportsBadIdsFromTheDevice) {
  Generator gen(seed_);
  Tensor w = randn({10, 4}, gen, DType::f32, gpu_);
  // Ids from the host are checked before the upload: an immediate error.
  expect_error([&] { embedding(w, from_vector<int64_t>({1, 10}, {2})); }, {"token id 10", "position 1", "[0, 10)"});
  // Ids already on the device: the bad row is NaN and the report arrives at the next check.
  Tensor out = embedding(w, from_vector<int64_t>({3, -2, 4}, {3}).to(gpu_));
  std::vector<float> o = out.to_vector<float>(), wv = w.to_vector<float>();
  for (int d = 0; d < 4; ++d) {
    EXPECT_EQ(o[size_t(d)], wv[size_t(3 * 4 + d)]);
    EXPECT_TRUE(std::isnan(o[size_t(4 + d)]));
    EXPECT_EQ(o[size_t(8 + d)], wv[size_t(4 * 4 + d)]);
  }
  expect_error([&] { cuda::check_indices(0); }, {"embedding", "token id -2", "position 1", "[0, 10)", "cuda:0"});
  cuda::check_indices(0);  // reported once, then clear
  // The lazy path: the next call on the device raises what an earlier launch found.
  embedding(w, from_vector<int32_t>({0, 12}, {2}).to(gpu_));
  cuda::synchronize(0);
  expect_error([&] { embedding(w, from_vector<int32_t>({0}, {1}).to(gpu_)); }, {"token id 12", "position 1"});
  EXPECT_EQ(embedding(w, from_vector<int32_t>({7}, {1}).to(gpu_)).to_vector<float>(),
            std::vector<float>(wv.begin() + 28, wv.begin() + 32));
}
#endif

}  // namespace
