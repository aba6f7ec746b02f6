// Data loaders (data/loader.h): the window permutation, batch contents, disjoint ranks, exact
// resume, the validation pass and its coverage, errors.
#include <algorithm>
#include <set>

#include "data/loader.h"
#include "data/shard.h"
#include "tests/helpers.h"

namespace serpent {
namespace {

using testing::expect_error;
using testing::TempDir;

// Shards whose tokens are their global position (uint32), so a window's place is visible in it.
std::vector<std::string> counting_shards(const TempDir& dir, const std::vector<int64_t>& sizes) {
  std::vector<std::string> paths;
  int32_t next = 0;
  for (size_t s = 0; s < sizes.size(); ++s) {
    std::vector<int32_t> ids(size_t(sizes[s]));
    for (auto& t : ids) t = next++;
    paths.push_back(dir / ("train_" + std::to_string(s) + ".bin"));
    write_shard(paths.back(), ids.data(), ids.size(), TokenWidth::u32);
  }
  return paths;
}

std::vector<int64_t> values(const Tensor& t) {
  return t.to_vector<int64_t>();
}

TEST(Loader, ShuffleIsABijection) {
  for (int64_t n : {1, 2, 3, 5, 17, 64, 1000, 4097}) {
    for (int64_t epoch : {0, 1}) {
      std::set<int64_t> seen;
      for (int64_t p = 0; p < n; ++p) {
        const int64_t w = shuffled_window(p, n, 42, epoch);
        ASSERT_GE(w, 0);
        ASSERT_LT(w, n);
        seen.insert(w);
      }
      EXPECT_EQ(int64_t(seen.size()), n);
    }
  }
  // Orders differ between epochs and seeds, and actually shuffle.
  std::vector<int64_t> a, b, c;
  for (int64_t p = 0; p < 1000; ++p) {
    a.push_back(shuffled_window(p, 1000, 42, 0));
    b.push_back(shuffled_window(p, 1000, 42, 1));
    c.push_back(shuffled_window(p, 1000, 43, 0));
  }
  EXPECT_NE(a, b);
  EXPECT_NE(a, c);
  int64_t fixed = 0;
  for (int64_t p = 0; p < 1000; ++p) fixed += a[size_t(p)] == p;
  EXPECT_LT(fixed, 20);
}

TEST(Loader, BatchesAreWindowsWithShiftedTargets) {
  TempDir dir;
  const int64_t L = 8;
  const auto shards = counting_shards(dir, {100, 37, 9, 5});  // windows: 12 + 4 + 1 + 0
  DataLoader loader(shards, {.batch_size = 3, .seq_len = L, .seed = 7});
  EXPECT_EQ(loader.num_windows(), 17);
  EXPECT_EQ(loader.steps_per_epoch(), 5);
  const std::vector<int64_t> shard_start = {0, 100, 137, 146};
  std::set<int64_t> starts;
  for (int step = 0; step < 5; ++step) {
    Batch b = loader.next_batch();
    ASSERT_EQ(b.inputs.shape(), (Shape{3, L}));
    ASSERT_EQ(b.targets.shape(), (Shape{3, L}));
    ASSERT_EQ(b.inputs.dtype(), DType::i64);
    const auto in = values(b.inputs), tgt = values(b.targets);
    for (int64_t r = 0; r < 3; ++r) {
      const int64_t first = in[size_t(r * L)];
      // The window lies inside one shard, starts at a multiple of L from its start, and targets
      // are the inputs shifted by one.
      const size_t s =
          size_t(std::upper_bound(shard_start.begin(), shard_start.end(), first) - shard_start.begin()) - 1;
      EXPECT_EQ((first - shard_start[s]) % L, 0);
      for (int64_t t = 0; t < L; ++t) {
        EXPECT_EQ(in[size_t(r * L + t)], first + t);
        EXPECT_EQ(tgt[size_t(r * L + t)], first + t + 1);
      }
      EXPECT_TRUE(starts.insert(first).second) << "window at " << first << " seen twice in one epoch";
    }
  }
  EXPECT_EQ(loader.state().epoch, 1);
  EXPECT_EQ(loader.state().offset, 0);
}

TEST(Loader, RanksGetDisjointWindows) {
  TempDir dir;
  const auto shards = counting_shards(dir, {1000, 700});
  const int64_t L = 16, B = 4, W = 3;
  std::vector<std::unique_ptr<DataLoader>> ranks;
  for (int64_t r = 0; r < W; ++r)
    ranks.push_back(std::make_unique<DataLoader>(
        shards, LoaderOptions{.batch_size = B, .seq_len = L, .seed = 5, .rank = r, .world_size = W}));
  const int64_t steps = ranks[0]->steps_per_epoch();
  EXPECT_EQ(steps, ranks[0]->num_windows() / (W * B));
  std::set<int64_t> seen;
  for (int64_t s = 0; s < steps; ++s)
    for (auto& l : ranks) {
      const auto in = values(l->next_batch().inputs);
      for (int64_t row = 0; row < B; ++row)
        EXPECT_TRUE(seen.insert(in[size_t(row * L)]).second) << "window at " << in[size_t(row * L)] << " twice";
    }
  EXPECT_EQ(int64_t(seen.size()), steps * W * B);
  for (auto& l : ranks) EXPECT_EQ(l->state(), ranks[0]->state());
}

TEST(Loader, RestoredStateGivesTheSameBatches) {
  TempDir dir;
  const auto shards = counting_shards(dir, {500, 300});
  const LoaderOptions opt{.batch_size = 4, .seq_len = 10, .seed = 9, .rank = 1, .world_size = 2, .prefetch = 3};
  DataLoader a(shards, opt);
  // Run past an epoch boundary (9 steps per epoch) before saving.
  for (int i = 0; i < 11; ++i) a.next_batch();
  const LoaderState saved = a.state();
  EXPECT_EQ(saved.epoch, 1);
  std::vector<std::vector<int64_t>> want;
  for (int i = 0; i < 12; ++i) {
    Batch b = a.next_batch();
    const auto tgt = values(b.targets);
    want.push_back(values(b.inputs));
    want.back().insert(want.back().end(), tgt.begin(), tgt.end());
  }
  // A fresh loader (as after a restart) and one without prefetch, both restored from the
  // integers a checkpoint would hold.
  for (int prefetch : {3, 0}) {
    LoaderOptions o = opt;
    o.prefetch = prefetch;
    DataLoader b(shards, o);
    b.next_batch();  // consumed something else first: restore must discard it
    b.restore(LoaderState::from_array(saved.to_array()));
    EXPECT_EQ(b.state(), saved);
    for (int i = 0; i < 12; ++i) {
      Batch x = b.next_batch();
      auto got = values(x.inputs);
      const auto tgt = values(x.targets);
      got.insert(got.end(), tgt.begin(), tgt.end());
      EXPECT_EQ(got, want[size_t(i)]) << "batch " << i << " after restore, prefetch " << prefetch;
    }
    EXPECT_EQ(b.state(), a.state());
  }
}

TEST(Loader, RestoreRefusesOtherData) {
  TempDir dir;
  const auto shards = counting_shards(dir, {500});
  DataLoader a(shards, {.batch_size = 2, .seq_len = 10, .seed = 1});
  DataLoader b(shards, {.batch_size = 2, .seq_len = 12, .seed = 1});
  expect_error([&] { b.restore(a.state()); }, {"cannot restore", "another seq_len"});
  expect_error([&] { DataLoader c(shards, {.batch_size = 100, .seq_len = 10}); },
               {"49 windows", "fewer than one step"});
  expect_error([&] { DataLoader c(shards, {.rank = 2, .world_size = 2}); }, {"rank 2"});
}

TEST(Loader, TokensOutsideTheVocabularyAreReported) {
  TempDir dir;
  const auto shards = counting_shards(dir, {400});
  DataLoader l(shards, {.batch_size = 2, .seq_len = 50, .seed = 3, .vocab_size = 200});
  expect_error(
      [&] {
        for (int i = 0; i < 4; ++i) l.next_batch();
      },
      {"train_0.bin", "outside the vocabulary of 200"});
}

TEST(ValLoader, CoversTheSplitExactlyOnceInFixedOrder) {
  TempDir dir;
  const int64_t L = 8, B = 3, W = 2;
  const auto shards = counting_shards(dir, {50, 17, 9, 1});
  std::multiset<int64_t> targets;
  int64_t rows = 0;
  for (int64_t r = 0; r < W; ++r) {
    ValLoader v(shards, {.batch_size = B, .seq_len = L, .rank = r, .world_size = W});
    std::vector<int64_t> first_pass;
    Batch b;
    int64_t batches = 0;
    while (v.next(b)) {
      ++batches;
      EXPECT_LE(b.inputs.size(0), B);
      const auto in = values(b.inputs), tgt = values(b.targets);
      for (size_t i = 0; i < tgt.size(); ++i) {
        first_pass.push_back(tgt[i]);
        if (tgt[i] == -100) continue;
        targets.insert(tgt[i]);
        EXPECT_EQ(tgt[i], in[i] + 1);  // a real target follows its input
      }
      rows += b.inputs.size(0);
    }
    EXPECT_EQ(batches, v.num_batches());
    v.reset();
    std::vector<int64_t> second_pass;
    while (v.next(b))
      for (int64_t t : values(b.targets)) second_pass.push_back(t);
    EXPECT_EQ(first_pass, second_pass);
    EXPECT_EQ(v.num_target_tokens(), 49 + 16 + 8 + 0);
  }
  // Every token but the first of each shard is a target exactly once, across the ranks.
  std::multiset<int64_t> want;
  for (int64_t t = 1; t < 50; ++t) want.insert(t);
  for (int64_t t = 51; t < 67; ++t) want.insert(t);
  for (int64_t t = 68; t < 76; ++t) want.insert(t);
  EXPECT_EQ(targets, want);
  EXPECT_EQ(rows, 7 + 2 + 1);  // windows: ceil(49/8) + ceil(16/8) + ceil(8/8) + 0
}

}  // namespace
}  // namespace serpent
