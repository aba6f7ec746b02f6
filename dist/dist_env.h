// Where this process sits in a data-parallel job: its rank, the world size, its rank on this node
// and the rendezvous address, read from whichever launcher started it (docs/DISTRIBUTED.md):
//
//   torchrun-style   RANK, WORLD_SIZE, LOCAL_RANK [, LOCAL_WORLD_SIZE], MASTER_ADDR, MASTER_PORT
//                    (also what `serpent train --nproc N` sets for its workers)
//   OpenMPI mpirun   OMPI_COMM_WORLD_RANK, OMPI_COMM_WORLD_SIZE, OMPI_COMM_WORLD_LOCAL_RANK
//                    [, OMPI_COMM_WORLD_LOCAL_SIZE]
//   Slurm srun       SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID [, SLURM_NTASKS_PER_NODE], master =
//                    the first host of SLURM_JOB_NODELIST, port 20000 + SLURM_JOB_ID % 10000
//
// When several are present the innermost launcher wins: torchrun-style variables (a launcher
// started inside an allocation sets them last), then OpenMPI (mpirun inside a Slurm job inherits
// the job's SLURM_* variables, which describe the allocation rather than this process), then
// Slurm. MASTER_ADDR / MASTER_PORT, when set, override the Slurm and OpenMPI defaults (Slurm: see
// above, so that two jobs sharing a node rarely pick the same port; OpenMPI: 127.0.0.1 and port
// 29500 when every rank runs on one node, otherwise nothing).
//
// The master address is only needed where ranks must find each other over TCP (the NCCL unique
// id, docs/DISTRIBUTED.md); DistEnv::require_master() reports its absence then.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace serpent {

enum class Launcher { none, torchrun, openmpi, slurm };
const char* launcher_name(Launcher l);  // "none", "torchrun-style environment", "OpenMPI", "Slurm"

struct DistEnv {
  Launcher launcher = Launcher::none;
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;  // ranks on this node (1 when the launcher does not say)
  std::string master_addr;   // "" when unknown
  int master_port = 0;       // 0 when unknown

  bool distributed() const { return world_size > 1; }
  // Throws naming the variables to set when the master address or port is unknown.
  void require_master() const;
  std::string describe() const;  // "rank 1 of 4 (local rank 1, OpenMPI), master 10.0.0.1:29500"
};

constexpr int kDefaultMasterPort = 29500;

// Reads the environment through `lookup` (nullopt: the variable is unset), so tests can supply
// their own. Throws serpent::Error naming the variable and value when the values are malformed or
// inconsistent (a rank outside [0, world size), a partial set of torchrun-style variables, ...).
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;
DistEnv dist_env_from(const EnvLookup& lookup);
DistEnv dist_env_from_process();

// Expands a Slurm hostlist such as "node[01-04,07],gpu5" (ranges keep their zero padding; several
// bracket groups in one name multiply: "r[1-2]n[1-2]" -> r1n1 r1n2 r2n1 r2n2). Throws on malformed
// input, naming it.
std::vector<std::string> expand_slurm_nodelist(const std::string& nodelist);

}  // namespace serpent
