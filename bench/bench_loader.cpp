// Training-loader speed: how long next_batch() takes, with the background prefetch and without,
// over shards of random tokens written to a temporary folder (or --data DIR's train shards).
// With prefetch, next_batch() should cost next to nothing while a step's compute runs (--work-ms
// simulates it).
//
//   build/bench_loader [--data DIR] [--batch 8] [--seq-len 2048] [--steps 200] [--work-ms 5]
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "cli/args.h"
#include "core/error.h"
#include "core/rng.h"
#include "data/loader.h"
#include "data/shard.h"

using namespace serpent;

int main(int argc, char** argv) {
  try {
    ArgParser p("bench_loader", "Time spent in DataLoader::next_batch with and without prefetch.");
    p.option("data", "DIR", "a prepared dataset folder (default: 64M random tokens in a temporary folder)")
        .option("batch", "N", "rows per batch", "8")
        .option("seq-len", "N", "tokens per row", "2048")
        .option("steps", "N", "batches timed", "200")
        .option("work-ms", "MS", "simulated compute between batches", "5");
    if (!p.parse(Args(argv + 1, argv + argc))) return 0;
    std::vector<std::string> shards;
    std::string tmp;
    if (p.has("data")) {
      shards = find_shards(p.get("data"), "train");
    } else {
      tmp = (std::filesystem::temp_directory_path() / ("serpent_bench_loader_" + std::to_string(getpid()))).string();
      std::filesystem::create_directories(tmp);
      Generator gen(1);
      std::vector<int32_t> ids(size_t(16) << 20);
      for (int s = 0; s < 4; ++s) {
        for (auto& t : ids) t = int32_t(gen.uniform() * 50277);
        shards.push_back(tmp + "/train_00000" + std::to_string(s) + ".bin");
        write_shard(shards.back(), ids.data(), ids.size(), TokenWidth::u16);
      }
    }
    const int64_t B = p.get_int("batch"), L = p.get_int("seq-len"), steps = p.get_int("steps");
    const double work_ms = p.get_double("work-ms");
    for (int prefetch : {0, 4}) {
      DataLoader loader(shards, {.batch_size = B, .seq_len = L, .seed = 1, .prefetch = prefetch});
      loader.next_batch();
      double waiting = 0;
      for (int64_t s = 0; s < steps; ++s) {
        std::this_thread::sleep_for(std::chrono::microseconds(int64_t(work_ms * 1000)));
        const auto t0 = std::chrono::steady_clock::now();
        Batch b = loader.next_batch();
        waiting += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      }
      std::printf("prefetch %d: batch %lld x %lld, %.3f ms per next_batch() (%.1fM tokens/s if the loader alone ran)\n",
                  prefetch, (long long)B, (long long)L, 1e3 * waiting / double(steps),
                  double(steps * B * L) / waiting / 1e6);
    }
    if (!tmp.empty()) std::filesystem::remove_all(tmp);
    return 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "bench_loader: error: %s\n", e.what());
    return 1;
  }
}
