// The gradient buckets (dist/grad_buckets.h): the layout, exactly the plain gradients on one rank,
// the mean gradient reduced during backward on W ranks (run as threads, tests/dist/thread_comm.h),
// and parameters without a gradient.
#include "autograd/node.h"
#include "dist/comm.h"
#include "dist/grad_buckets.h"
#include "tests/dist/thread_comm.h"
#include "tests/helpers.h"

using namespace serpent;
using namespace serpent::testing;

namespace {

TEST(GradBuckets, LayoutFollowsBackwardOrderAndTheCap) {
  Generator gen(1);
  MambaLM model(tiny_config(), gen);
  auto comm = make_local_communicator(Device::cpu());
  const NamedTensors params = model.named_parameters();
  const double cap_mb = 0.004;  // 1000 floats
  GradBuckets buckets(params, *comm, {cap_mb, GradReduction::all_reduce});
  ASSERT_GE(buckets.buckets().size(), 3u);
  // Bucket 0 starts with the last registered parameter; the embedding ends the last bucket.
  EXPECT_EQ(buckets.buckets().front().slots.front(), int(params.size()) - 1);
  EXPECT_EQ(buckets.buckets().back().slots.back(), 0);
  for (const auto& b : buckets.buckets()) {
    int64_t n = 0;
    for (int s : b.slots) {
      EXPECT_EQ(buckets.slots()[size_t(s)].offset, n);
      n += params[size_t(s)].second.numel();
    }
    EXPECT_EQ(n, b.numel);
    // Over the cap only when one parameter alone is.
    if (b.slots.size() > 1) {
      EXPECT_LE(double(b.numel) * 4, cap_mb * 1e6);
    }
  }
  // Each .grad is a view of its bucket's buffer.
  for (size_t i = 0; i < params.size(); ++i) {
    const auto& s = buckets.slots()[i];
    EXPECT_EQ(params[i].second.grad().data_ptr(),
              static_cast<char*>(buckets.buffer(s.bucket).data_ptr()) + s.offset * int64_t(sizeof(float)));
  }
}

TEST(GradBuckets, OneRankGivesExactlyThePlainGradients) {
  // Accumulating into zeroed buffers is bitwise what the engine does with fresh gradients.
  Generator g1(3), g2(3);
  MambaLM plain(tiny_config(), g1), bucketed(tiny_config(), g2);
  auto comm = make_local_communicator(Device::cpu());
  GradBuckets buckets(bucketed.named_parameters(), *comm, {0.004, GradReduction::all_reduce});
  plain.zero_grad();
  buckets.zero_grad();
  for (int i = 0; i < 2; ++i) {
    auto [x, y] = batch_of(i);
    autograd::backward(scale(plain.loss(x, y), 0.5));
    buckets.set_sync(i == 1);
    autograd::backward(scale(bucketed.loss(x, y), 0.5));
  }
  buckets.finish();
  EXPECT_EQ(grads_of(bucketed), grads_of(plain));
}

TEST(GradBuckets, RanksGetTheMeanGradientAndReduceDuringBackward) {
  for (int world : {2, 3}) {
    // Reference: each rank's gradient computed alone, averaged in rank order.
    std::vector<std::vector<std::vector<float>>> per_rank;
    for (int r = 0; r < world; ++r) {
      Generator gen(5);
      MambaLM m(tiny_config(), gen);
      for (int i = 0; i < 2; ++i) {
        auto [x, y] = batch_of(10 * r + i);
        autograd::backward(scale(m.loss(x, y), 0.5));
      }
      per_rank.push_back(grads_of(m));
    }
    std::vector<std::vector<float>> mean = per_rank[0];
    for (size_t p = 0; p < mean.size(); ++p)
      for (size_t k = 0; k < mean[p].size(); ++k) {
        float s = per_rank[0][p][k];
        for (int r = 1; r < world; ++r) s += per_rank[size_t(r)][p][k];
        mean[p][k] = s * float(1.0 / world);
      }
    run_ranks(world, [&](Communicator& comm) {
      Generator gen(5);
      MambaLM m(tiny_config(), gen);
      GradBuckets buckets(m.named_parameters(), comm, {0.004, GradReduction::all_reduce});
      buckets.zero_grad();
      for (int i = 0; i < 2; ++i) {
        auto [x, y] = batch_of(10 * comm.rank() + i);
        buckets.set_sync(i == 1);
        autograd::backward(scale(m.loss(x, y), 0.5));
        // Only the last micro-batch's backward reduces, and it starts every bucket itself.
        EXPECT_EQ(buckets.started_during_backward(), i == 1 ? int(buckets.buckets().size()) : 0);
      }
      buckets.finish();
      EXPECT_LE(max_relative_difference(grads_of(m), mean), world == 2 ? 0.0 : 1e-6) << "world " << world;
    });
  }
}

TEST(GradBuckets, ParametersWithoutGradientContributeZeros) {
  run_ranks(2, [](Communicator& comm) {
    Tensor a = from_vector<float>({1, 2}, {2}).set_requires_grad(true);
    Tensor b = from_vector<float>({3}, {1}).set_requires_grad(true);
    GradBuckets buckets({{"a", a}, {"b", b}}, comm, {1e-6, GradReduction::all_reduce});
    ASSERT_EQ(buckets.buckets().size(), 2u);
    buckets.zero_grad();
    buckets.set_sync(true);
    // Rank 0 uses only a, rank 1 only b.
    autograd::backward(sum(mul(comm.rank() == 0 ? a : b, comm.rank() == 0 ? a : b)));
    buckets.finish();
    EXPECT_EQ(a.grad().to_vector<float>(), (std::vector<float>{1, 2}));  // (2a + 0) / 2
    EXPECT_EQ(b.grad().to_vector<float>(), (std::vector<float>{3}));
  });
}

}  // namespace
