// The local launcher of `serpent train --nproc` (dist/launch.h), with shell scripts for workers:
// each worker's rank and rendezvous, a failing worker stopping the others, stop signals forwarded.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "dist/launch.h"
#include "tests/helpers.h"

using namespace serpent;
using namespace serpent::testing;

namespace {

std::vector<std::string> sh(const std::string& script) {
  return {"/bin/sh", "-c", script};
}

TEST(Launcher, GivesEachWorkerItsRankAndTheRendezvous) {
  const std::string dir = scratch_dir("launch_ok");
  const int code = run_local_workers(
      sh("echo $RANK $WORLD_SIZE $LOCAL_RANK $LOCAL_WORLD_SIZE $MASTER_ADDR $NCCL_NVLS_ENABLE $EXTRA $MASTER_PORT > " +
         dir + "/rank$RANK"),
      3, {{"EXTRA", "x"}});
  EXPECT_EQ(code, 0);
  std::string port;
  for (int r = 0; r < 3; ++r) {
    const std::string line = read_text_file(dir + "/rank" + std::to_string(r));
    const std::string want = str_cat(r, " 3 ", r, " 3 127.0.0.1 0 x ");
    EXPECT_EQ(line.substr(0, want.size()), want) << line;
    const std::string p = line.substr(want.size());
    if (r == 0) port = p;
    EXPECT_EQ(p, port) << "every worker gets the same MASTER_PORT";
    EXPECT_GT(std::atoi(p.c_str()), 0);
  }
  std::filesystem::remove_all(dir);
}

TEST(Launcher, AFailingWorkerStopsTheOthersAndIsNamed) {
  // Rank 1 fails at once; the others would run for a minute.
  const auto start = std::chrono::steady_clock::now();
  ::testing::internal::CaptureStderr();
  const int code = run_local_workers(sh("if [ $RANK = 1 ]; then exit 3; fi; sleep 60"), 3, {}, 1.0);
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(code, 1);
  EXPECT_NE(err.find("worker rank 1 exited with code 3; stopped the other workers"), std::string::npos) << err;
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 20);

  // A worker killed by a signal is reported as such; one that ignores SIGTERM is killed after the
  // grace period.
  const std::string dir = scratch_dir("launch_fail");
  const auto start2 = std::chrono::steady_clock::now();
  ::testing::internal::CaptureStderr();
  const int code2 = run_local_workers(
      sh("if [ $RANK = 0 ]; then while [ ! -e " + dir +
         "/ready ]; do sleep 0.01; done; kill -9 $$; fi; trap '' TERM; touch " + dir + "/ready; sleep 60"),
      2, {}, 0.5);
  const std::string err2 = ::testing::internal::GetCapturedStderr();
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start2).count();
  EXPECT_EQ(code2, 1);
  EXPECT_NE(err2.find("worker rank 0 was killed by signal 9"), std::string::npos) << err2;
  EXPECT_GE(took, 0.5);
  EXPECT_LT(took, 20);
  std::filesystem::remove_all(dir);
}

TEST(Launcher, ForwardsStopSignalsToTheWorkers) {
  const std::string dir = scratch_dir("launch_sig");
  // Each worker waits for SIGTERM and reports it; the test sends one SIGTERM to this process.
  std::thread sender([&] {
    for (int i = 0; i < 200; ++i) {
      if (std::filesystem::exists(dir + "/ready0") && std::filesystem::exists(dir + "/ready1")) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ::kill(::getpid(), SIGTERM);
  });
  const int code = run_local_workers(sh("trap 'echo stopped > " + dir + "/got$RANK; exit 0' TERM; touch " + dir +
                                        "/ready$RANK; while true; do sleep 0.05; done"),
                                     2);
  sender.join();
  EXPECT_EQ(code, 0);
  EXPECT_TRUE(std::filesystem::exists(dir + "/got0") && std::filesystem::exists(dir + "/got1"));
  std::filesystem::remove_all(dir);
}

}  // namespace
