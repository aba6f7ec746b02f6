// `serpent train CONFIG --nproc N`: N data-parallel workers on this node (docs/DISTRIBUTED.md).
//
// GPUs: the launcher starts N copies of this binary itself, each with the torchrun-style
// variables (RANK = LOCAL_RANK = i, WORLD_SIZE = LOCAL_WORLD_SIZE = N, MASTER_ADDR = 127.0.0.1,
// MASTER_PORT = a free port unless set, NCCL_NVLS_ENABLE = 0 unless set); worker i takes
// cuda:i. The workers run in a process group of their own, so a Ctrl-C reaches them once, through
// the launcher, which forwards SIGINT, SIGTERM and SIGHUP; they die with the launcher too. When a
// worker fails, the launcher says which and how, stops the others (SIGTERM, then SIGKILL after a
// grace period: they would otherwise wait for the dead one in a collective until their timeout)
// and exits non-zero.
//
// The cpu: OpenMPI ranks need OpenMPI's launcher, so the launcher replaces itself with
// `mpirun -np N --oversubscribe --bind-to none [--allow-run-as-root] <this binary> <args>`,
// with OMP_NUM_THREADS set to the cores divided among the ranks unless it is set; mpirun then
// does the waiting, the forwarding and the cleanup. Without MPI in the build, it is an error.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace serpent {

// Runs nproc copies of argv (argv[0] a path) as described above, with extra_env added to each
// worker's environment on top of the torchrun-style variables. Returns 0 when every worker exits
// with 0, otherwise 1 after reporting the first failure on stderr.
int run_local_workers(const std::vector<std::string>& argv, int nproc,
                      const std::map<std::string, std::string>& extra_env = {}, double grace_s = 5);

// Replaces this process with mpirun running nproc copies of argv (see above). Throws when the
// build has no MPI or mpirun cannot be started.
[[noreturn]] void exec_under_mpirun(const std::vector<std::string>& argv, int nproc);

// The path of the running executable (to start copies of it).
std::string self_executable();

// A TCP port that was free a moment ago on this host (for MASTER_PORT).
int pick_free_port();

}  // namespace serpent
