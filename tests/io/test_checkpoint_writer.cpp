// The background checkpoint writer's host side: the staging buffer checkpoints copy into.
#include <gtest/gtest.h>

#include "core/creation.h"
#include "io/checkpoint_writer.h"
#include "tests/helpers.h"

using namespace serpent;
using namespace serpent::testing;

namespace {

// Tensors of several dtypes and odd sizes, so that views of the buffer start at offsets that are
// not multiples of each other's element sizes unless the buffer aligns them.
NamedTensors odd_tensors(Generator& gen, Device device) {
  NamedTensors out;
  out.emplace_back("a.weight", uniform({3, 7}, -1, 1, gen, DType::f32).to(device));
  out.emplace_back("b.bf16", uniform({5}, -1, 1, gen, DType::f32).to(DType::bf16).to(device));
  out.emplace_back("c.f64", uniform({2, 3, 1}, -1, 1, gen, DType::f64).to(device));
  out.emplace_back("d.empty", Tensor::empty({0, 4}, DType::f32, device));
  out.emplace_back("e.scalar", uniform({1}, -1, 1, gen, DType::f32).to(device));
  return out;
}

void expect_copies(const NamedTensors& got, const NamedTensors& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].first, want[i].first);
    EXPECT_TRUE(got[i].second.device().is_cpu()) << got[i].first;
    EXPECT_EQ(got[i].second.dtype(), want[i].second.dtype()) << got[i].first;
    EXPECT_EQ(got[i].second.shape(), want[i].second.shape()) << got[i].first;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(got[i].second.data_ptr()) % 64, 0u) << got[i].first;
    EXPECT_EQ(got[i].second.to_vector<double>(), want[i].second.to_vector<double>()) << got[i].first;
  }
}

void check_staging(Device device) {
  Generator gen(11);
  NamedTensors model = odd_tensors(gen, device);
  const NamedTensors optim = odd_tensors(gen, device);
  HostStaging staging;
  staging.reserve(HostStaging::bytes_for(model) + HostStaging::bytes_for(optim));
  const void* first_buffer = nullptr;
  {
    std::vector<NamedTensors> c = staging.copy({model, optim});
    ASSERT_EQ(c.size(), 2u);
    expect_copies(c[0], model);
    expect_copies(c[1], optim);
    EXPECT_EQ(staging.capacity(), HostStaging::bytes_for(model) + HostStaging::bytes_for(optim));
    first_buffer = c[0][0].second.data_ptr();
  }
  // The views are gone: the next copy reuses the buffer and sees the live tensors' new values.
  model[0].second.copy_(uniform({3, 7}, 5, 6, gen, DType::f32).to(device));
  std::vector<NamedTensors> second = staging.copy({model, optim});
  EXPECT_EQ(second[0][0].second.data_ptr(), first_buffer);
  expect_copies(second[0], model);
  // While those views live (a save in flight), a third copy must not write over them.
  const std::vector<double> kept = second[0][0].second.to_vector<double>();
  model[0].second.copy_(uniform({3, 7}, 7, 8, gen, DType::f32).to(device));
  std::vector<NamedTensors> third = staging.copy({model, optim});
  EXPECT_NE(third[0][0].second.data_ptr(), second[0][0].second.data_ptr());
  EXPECT_EQ(second[0][0].second.to_vector<double>(), kept);
  expect_copies(third[0], model);
}

TEST(HostStaging, CopiesIntoOneAlignedBufferReusedOnlyOnceItsViewsAreGone) {
  check_staging(Device::cpu());
}

TEST(HostStaging, AReservationTooSmallIsReplacedByOneThatFits) {
  Generator gen(12);
  const NamedTensors t = odd_tensors(gen, Device::cpu());
  HostStaging staging;
  staging.reserve(64);
  std::vector<NamedTensors> c = staging.copy({t});
  expect_copies(c[0], t);
  EXPECT_EQ(staging.capacity(), HostStaging::bytes_for(t));
}

class HostStagingCuda : public CudaTest {};

TEST_F(HostStagingCuda, CopiesGpuTensorsIntoPageLockedMemory) {
  check_staging(gpu_);
  HostStaging staging;
  Generator gen(seed_);
  const NamedTensors t = odd_tensors(gen, gpu_);
  std::vector<NamedTensors> c = staging.copy({t});
  expect_copies(c[0], t);
  EXPECT_TRUE(staging.pinned());
}

}  // namespace
