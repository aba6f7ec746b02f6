// The rendezvous of a data-parallel job over plain TCP: rank 0 listens at MASTER_PORT, every
// other rank connects to MASTER_ADDR:MASTER_PORT and says who it is, and rank 0 then sends each a
// few bytes (the NCCL unique id; the MPI name server's address and port). Rank 0 goes on only
// once every rank has connected, so it doubles as a first check that the whole job is up.
//
// Each side checks the other: a connection from another job (a different tag or world size), a
// rank connecting twice or a rank out of range fails with a message naming both. Every wait has
// the caller's deadline, so a rank that never shows up ends the others with an error that names
// the missing ranks and the address, never a hang.
#pragma once

#include <string>
#include <vector>

#include "dist/dist_env.h"

namespace serpent {

// The connections of one rendezvous: rank 0 holds one to every other rank until it is destroyed.
class TcpRendezvous {
 public:
  // Rank 0 listens at env.master_port and returns once every other rank has connected and
  // introduced itself; the others connect to env.master_addr:master_port, retrying while rank 0 is
  // not up yet. `tag` names what is exchanged ("nccl", "mpi"): ranks must agree on it. Every wait
  // of this object, here and in the calls below, ends with an error after timeout_s.
  TcpRendezvous(const DistEnv& env, const std::string& tag, double timeout_s);
  ~TcpRendezvous();
  TcpRendezvous(const TcpRendezvous&) = delete;
  TcpRendezvous& operator=(const TcpRendezvous&) = delete;

  void send(int rank, const std::string& payload);  // rank 0 only
  std::string receive();                            // ranks other than 0: the next message
  // Rank 0 sends payload to every rank; every rank returns it.
  std::string broadcast(const std::string& payload);

 private:
  DistEnv env_;
  std::string tag_;
  double timeout_s_;
  std::vector<int> peers_;  // rank 0: the socket of each rank (index 0 unused); others: [0] to rank 0
};

}  // namespace serpent
