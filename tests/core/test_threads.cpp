// The cpu thread count (core/threads.h): an explicit count wins, then OMP_NUM_THREADS, then the
// cores other running processes leave free; the choice is applied to OpenMP.
#include <omp.h>

#include <cstdlib>

#include "core/threads.h"
#include "tests/helpers.h"

using namespace serpent;
using namespace serpent::testing;

TEST(Threads, ExplicitThenEnvironmentThenFreeCores) {
  const int saved = omp_get_max_threads();
  EXPECT_EQ(choose_threads(3), 3);
  EXPECT_EQ(use_threads(3), "3 threads");
  EXPECT_EQ(omp_get_max_threads(), 3);
  const char* env = std::getenv("OMP_NUM_THREADS");
  const std::string kept = env ? env : "";
  ::setenv("OMP_NUM_THREADS", "2", 1);
  EXPECT_EQ(choose_threads(0), 2);
  EXPECT_EQ(use_threads(0), "2 threads (OMP_NUM_THREADS)");
  ::unsetenv("OMP_NUM_THREADS");
  const int automatic = choose_threads(0);
  EXPECT_GE(automatic, 1);
  EXPECT_LE(automatic, int(sysconf(_SC_NPROCESSORS_ONLN)));
  EXPECT_NE(use_threads(0).find("(auto: "), std::string::npos);
  if (!kept.empty()) ::setenv("OMP_NUM_THREADS", kept.c_str(), 1);
  expect_error([] { choose_threads(-1); }, {"threads must be 0 (auto) or positive"});
  omp_set_num_threads(saved);
}

TEST(Threads, TheTrainerSaysWhatItUses) {
  TempDir dir;
  write_text_dataset(dir / "data");
  write_file(dir / "c.yaml",
             "model: {d_model: 16, n_layer: 1, vocab_size: 257, d_state: 4}\n"
             "data: {path: " +
                 (dir / "data") +
                 ", seq_len: 32, micro_batch_size: 2, "
                 "global_batch_tokens: 64}\ntrain: {max_steps: 1, threads: 1}\noptim: {warmup_steps: 0}\n"
                 "log: {runs_dir: " +
                 (dir / "runs") + "}\n");
  const ShellResult r = run_serpent_shell("train " + dir / "c.yaml");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("on cpu (1 thread)"), std::string::npos) << r.output;
}
