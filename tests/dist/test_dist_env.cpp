// The launcher environment (dist/dist_env.h): no launcher, torchrun, Open MPI and Slurm variables,
// which launcher wins, the errors of inconsistent values; and Slurm's hostlists.
#include <map>
#include <optional>

#include "dist/dist_env.h"
#include "tests/helpers.h"

using namespace serpent;
using namespace serpent::testing;

namespace {

DistEnv env_of(const std::map<std::string, std::string>& vars) {
  return dist_env_from([&](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  });
}

TEST(DistEnv, NoLauncherIsOneProcess) {
  const DistEnv d = env_of({});
  EXPECT_EQ(d.launcher, Launcher::none);
  EXPECT_EQ(d.rank, 0);
  EXPECT_EQ(d.world_size, 1);
  EXPECT_FALSE(d.distributed());
}

TEST(DistEnv, TorchrunStyle) {
  const DistEnv d = env_of({{"RANK", "3"},
                            {"WORLD_SIZE", "8"},
                            {"LOCAL_RANK", "1"},
                            {"LOCAL_WORLD_SIZE", "2"},
                            {"MASTER_ADDR", "node07"},
                            {"MASTER_PORT", "29400"}});
  EXPECT_EQ(d.launcher, Launcher::torchrun);
  EXPECT_EQ(d.rank, 3);
  EXPECT_EQ(d.world_size, 8);
  EXPECT_EQ(d.local_rank, 1);
  EXPECT_EQ(d.local_world_size, 2);
  EXPECT_EQ(d.master_addr, "node07");
  EXPECT_EQ(d.master_port, 29400);
  EXPECT_TRUE(d.distributed());
  EXPECT_NE(d.describe().find("rank 3 of 8"), std::string::npos);
}

TEST(DistEnv, OpenMpiOnOneNodeDefaultsToLoopback) {
  const DistEnv d = env_of({{"OMPI_COMM_WORLD_RANK", "2"},
                            {"OMPI_COMM_WORLD_SIZE", "4"},
                            {"OMPI_COMM_WORLD_LOCAL_RANK", "2"},
                            {"OMPI_COMM_WORLD_LOCAL_SIZE", "4"}});
  EXPECT_EQ(d.launcher, Launcher::openmpi);
  EXPECT_EQ(d.rank, 2);
  EXPECT_EQ(d.world_size, 4);
  EXPECT_EQ(d.local_rank, 2);
  EXPECT_EQ(d.master_addr, "127.0.0.1");
  EXPECT_EQ(d.master_port, kDefaultMasterPort);
  // On several nodes there is no default: the rendezvous then asks for MASTER_ADDR.
  const DistEnv multi = env_of({{"OMPI_COMM_WORLD_RANK", "5"},
                                {"OMPI_COMM_WORLD_SIZE", "8"},
                                {"OMPI_COMM_WORLD_LOCAL_RANK", "1"},
                                {"OMPI_COMM_WORLD_LOCAL_SIZE", "4"}});
  EXPECT_TRUE(multi.master_addr.empty());
  expect_error([&] { multi.require_master(); }, {"MASTER_ADDR", "MASTER_PORT", "-x MASTER_ADDR"});
}

TEST(DistEnv, SlurmTakesTheFirstNodeAsMaster) {
  const DistEnv d = env_of({{"SLURM_PROCID", "5"},
                            {"SLURM_NTASKS", "8"},
                            {"SLURM_LOCALID", "1"},
                            {"SLURM_NTASKS_PER_NODE", "4"},
                            {"SLURM_JOB_ID", "123456"},
                            {"SLURM_JOB_NODELIST", "gpu[07-08,11],login1"}});
  EXPECT_EQ(d.launcher, Launcher::slurm);
  EXPECT_EQ(d.rank, 5);
  EXPECT_EQ(d.world_size, 8);
  EXPECT_EQ(d.local_rank, 1);
  EXPECT_EQ(d.local_world_size, 4);
  EXPECT_EQ(d.master_addr, "gpu07");
  EXPECT_EQ(d.master_port, 20000 + 123456 % 10000);
  // MASTER_* override, and "2(x4)" task counts are not taken for a local size.
  const DistEnv o = env_of({{"SLURM_PROCID", "0"},
                            {"SLURM_NTASKS", "8"},
                            {"SLURM_NTASKS_PER_NODE", "2(x4)"},
                            {"SLURM_JOB_NODELIST", "a1"},
                            {"MASTER_ADDR", "10.0.0.9"},
                            {"MASTER_PORT", "4000"}});
  EXPECT_EQ(o.master_addr, "10.0.0.9");
  EXPECT_EQ(o.master_port, 4000);
  EXPECT_EQ(o.local_world_size, 1);
}

TEST(DistEnv, InnermostLauncherWins) {
  // torchrun inside a Slurm job, and mpirun inside one: the job's SLURM_* describe the allocation.
  const std::map<std::string, std::string> slurm = {
      {"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "16"}, {"SLURM_JOB_NODELIST", "n[1-4]"}};
  auto with = [&](std::map<std::string, std::string> extra) {
    extra.insert(slurm.begin(), slurm.end());
    return env_of(extra);
  };
  const DistEnv t = with({{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "1"}});
  EXPECT_EQ(t.launcher, Launcher::torchrun);
  EXPECT_EQ(t.world_size, 2);
  const DistEnv m = with({{"OMPI_COMM_WORLD_RANK", "3"}, {"OMPI_COMM_WORLD_SIZE", "4"}});
  EXPECT_EQ(m.launcher, Launcher::openmpi);
  EXPECT_EQ(m.rank, 3);
}

TEST(DistEnv, InconsistentValuesAreClearErrors) {
  expect_error([] { env_of({{"RANK", "0"}}); }, {"WORLD_SIZE is not set", "RANK and WORLD_SIZE"});
  expect_error([] { env_of({{"WORLD_SIZE", "2"}}); }, {"RANK is not set"});
  expect_error(
      [] {
        env_of({{"RANK", "2"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "0"}});
      },
      {"RANK=2", "outside [0, WORLD_SIZE=2)"});
  expect_error([] { env_of({{"RANK", "-1"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "0"}}); }, {"RANK=-1"});
  expect_error([] { env_of({{"RANK", "0"}, {"WORLD_SIZE", "0"}}); }, {"WORLD_SIZE=0", "at least 1"});
  expect_error([] { env_of({{"RANK", "one"}, {"WORLD_SIZE", "2"}}); }, {"RANK='one'", "not an integer"});
  expect_error([] { env_of({{"RANK", "1"}, {"WORLD_SIZE", "2"}}); }, {"LOCAL_RANK is not set"});
  expect_error(
      [] {
        env_of({{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "2"}});
      },
      {"LOCAL_RANK=2", "outside [0, world size 2)"});
  expect_error(
      [] {
        env_of({{"RANK", "1"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "2"}, {"LOCAL_WORLD_SIZE", "2"}});
      },
      {"LOCAL_RANK=2", "LOCAL_WORLD_SIZE=2"});
  expect_error(
      [] {
        env_of({{"RANK", "0"}, {"WORLD_SIZE", "1"}, {"MASTER_PORT", "70000"}});
      },
      {"MASTER_PORT=70000", "1 to 65535"});
  expect_error([] { env_of({{"RANK", "0"}, {"WORLD_SIZE", "1"}, {"MASTER_ADDR", ""}}); }, {"MASTER_ADDR", "empty"});
  expect_error(
      [] {
        env_of({{"OMPI_COMM_WORLD_RANK", "4"}, {"OMPI_COMM_WORLD_SIZE", "4"}});
      },
      {"OMPI_COMM_WORLD_RANK=4", "OMPI_COMM_WORLD_SIZE=4"});
  expect_error([] { env_of({{"OMPI_COMM_WORLD_SIZE", "4"}}); }, {"OMPI_COMM_WORLD_RANK is not set"});
  expect_error([] { env_of({{"SLURM_PROCID", "9"}, {"SLURM_NTASKS", "8"}}); }, {"SLURM_PROCID=9", "SLURM_NTASKS=8"});
  expect_error(
      [] {
        env_of({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}, {"SLURM_JOB_NODELIST", "n[1-"}});
      },
      {"SLURM_JOB_NODELIST 'n[1-'"});
}

TEST(SlurmNodelist, ExpandsRangesListsAndPadding) {
  using V = std::vector<std::string>;
  EXPECT_EQ(expand_slurm_nodelist("node[01-04,07],gpu5"),
            (V{"node01", "node02", "node03", "node04", "node07", "gpu5"}));
  EXPECT_EQ(expand_slurm_nodelist("a1"), (V{"a1"}));
  EXPECT_EQ(expand_slurm_nodelist("n[8-11]"), (V{"n8", "n9", "n10", "n11"}));
  EXPECT_EQ(expand_slurm_nodelist("n[098-101]"), (V{"n098", "n099", "n100", "n101"}));
  EXPECT_EQ(expand_slurm_nodelist("r[1-2]-n[3,5]"), (V{"r1-n3", "r1-n5", "r2-n3", "r2-n5"}));
  EXPECT_EQ(expand_slurm_nodelist("x[1],y,z[2-3]"), (V{"x1", "y", "z2", "z3"}));
  EXPECT_EQ(expand_slurm_nodelist("c-[5]-ib"), (V{"c-5-ib"}));
}

TEST(SlurmNodelist, MalformedListsAreErrors) {
  for (const char* bad : {"", "n[1-2", "n1-2]", "n[[1]]", "n[2-1]", "n[a-b]", "n[1,,2]", "a,,b", "n[]"})
    EXPECT_THROW(expand_slurm_nodelist(bad), Error) << bad;
}

}  // namespace
