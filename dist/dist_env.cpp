#include "dist/dist_env.h"

#include <charconv>
#include <cstdlib>

#include "core/error.h"

namespace serpent {

const char* launcher_name(Launcher l) {
  switch (l) {
    case Launcher::none:
      return "none";
    case Launcher::torchrun:
      return "torchrun-style environment";
    case Launcher::openmpi:
      return "OpenMPI";
    case Launcher::slurm:
      return "Slurm";
  }
  return "?";
}

void DistEnv::require_master() const {
  SERPENT_CHECK(!master_addr.empty() && master_port > 0, "rank ", rank, " of ", world_size, " (",
                launcher_name(launcher), ") does not know where rank 0 listens: set MASTER_ADDR to rank 0's host and ",
                "MASTER_PORT to a free TCP port, the same on every rank",
                launcher == Launcher::openmpi ? " (with mpirun: -x MASTER_ADDR=HOST -x MASTER_PORT=PORT)" : "");
}

std::string DistEnv::describe() const {
  std::string s =
      str_cat("rank ", rank, " of ", world_size, " (local rank ", local_rank, ", ", launcher_name(launcher), ")");
  if (!master_addr.empty()) s += str_cat(", master ", master_addr, ":", master_port);
  return s;
}

namespace {

// An integer variable: nullopt when unset; an error naming it when set to anything but an integer.
std::optional<int64_t> int_var(const EnvLookup& env, const std::string& name) {
  const std::optional<std::string> v = env(name);
  if (!v) return std::nullopt;
  int64_t out = 0;
  const char* end = v->data() + v->size();
  const auto res = std::from_chars(v->data(), end, out);
  SERPENT_CHECK(!v->empty() && res.ec == std::errc() && res.ptr == end, "environment variable ", name, "='", *v,
                "' is not an integer");
  return out;
}

int64_t required_int(const EnvLookup& env, const std::string& name, const std::string& because) {
  const std::optional<int64_t> v = int_var(env, name);
  SERPENT_CHECK(v.has_value(), "environment variable ", name, " is not set, but ", because);
  return *v;
}

// rank within [0, size); names both variables otherwise.
void check_rank(int64_t rank, const char* rank_name, int64_t size, const char* size_name) {
  SERPENT_CHECK(size >= 1, "environment variable ", size_name, "=", size, " must be at least 1");
  SERPENT_CHECK(rank >= 0 && rank < size, "environment variable ", rank_name, "=", rank, " is outside [0, ", size_name,
                "=", size, ")");
}

int checked_port(int64_t port, const char* name) {
  SERPENT_CHECK(port >= 1 && port <= 65535, "environment variable ", name, "=", port,
                " is not a TCP port (expected 1 to 65535)");
  return int(port);
}

// MASTER_ADDR / MASTER_PORT when set (they override every launcher's default).
void read_master(const EnvLookup& env, DistEnv& d) {
  if (std::optional<std::string> a = env("MASTER_ADDR")) {
    SERPENT_CHECK(!a->empty(), "environment variable MASTER_ADDR is set but empty");
    d.master_addr = *a;
  }
  if (std::optional<int64_t> p = int_var(env, "MASTER_PORT")) d.master_port = checked_port(*p, "MASTER_PORT");
}

// The rank on this node, and the ranks on this node when the launcher says (size_name may be null).
void read_local(const EnvLookup& env, DistEnv& d, const char* rank_name, const char* size_name) {
  if (std::optional<int64_t> lr = int_var(env, rank_name)) {
    SERPENT_CHECK(*lr >= 0 && *lr < d.world_size, "environment variable ", rank_name, "=", *lr,
                  " is outside [0, world size ", d.world_size, ")");
    d.local_rank = int(*lr);
  }
  d.local_world_size = d.local_rank + 1;
  if (std::optional<int64_t> ls = size_name ? int_var(env, size_name) : std::nullopt) {
    check_rank(d.local_rank, rank_name, *ls, size_name);
    SERPENT_CHECK(*ls <= d.world_size, "environment variable ", size_name, "=", *ls, " exceeds the world size ",
                  d.world_size);
    d.local_world_size = int(*ls);
  }
}

DistEnv from_torchrun(const EnvLookup& env) {
  DistEnv d;
  d.launcher = Launcher::torchrun;
  const char* why = "the torchrun-style variables RANK and WORLD_SIZE go together";
  const int64_t world = required_int(env, "WORLD_SIZE", why), rank = required_int(env, "RANK", why);
  check_rank(rank, "RANK", world, "WORLD_SIZE");
  d.rank = int(rank);
  d.world_size = int(world);
  if (d.world_size > 1)
    SERPENT_CHECK(env("LOCAL_RANK").has_value(), "environment variable LOCAL_RANK is not set, but RANK=", rank,
                  " and WORLD_SIZE=", world, " are: set LOCAL_RANK to this process's rank on its node");
  read_local(env, d, "LOCAL_RANK", "LOCAL_WORLD_SIZE");
  read_master(env, d);
  return d;
}

DistEnv from_openmpi(const EnvLookup& env) {
  DistEnv d;
  d.launcher = Launcher::openmpi;
  const char* why = "OMPI_COMM_WORLD_RANK and OMPI_COMM_WORLD_SIZE go together";
  const int64_t world = required_int(env, "OMPI_COMM_WORLD_SIZE", why);
  const int64_t rank = required_int(env, "OMPI_COMM_WORLD_RANK", why);
  check_rank(rank, "OMPI_COMM_WORLD_RANK", world, "OMPI_COMM_WORLD_SIZE");
  d.rank = int(rank);
  d.world_size = int(world);
  read_local(env, d, "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE");
  if (d.local_world_size == d.world_size && env("OMPI_COMM_WORLD_LOCAL_SIZE")) {
    d.master_addr = "127.0.0.1";  // every rank on this node
    d.master_port = kDefaultMasterPort;
  }
  read_master(env, d);
  return d;
}

DistEnv from_slurm(const EnvLookup& env) {
  DistEnv d;
  d.launcher = Launcher::slurm;
  const char* why = "SLURM_PROCID and SLURM_NTASKS go together";
  const int64_t world = required_int(env, "SLURM_NTASKS", why), rank = required_int(env, "SLURM_PROCID", why);
  check_rank(rank, "SLURM_PROCID", world, "SLURM_NTASKS");
  d.rank = int(rank);
  d.world_size = int(world);
  // SLURM_NTASKS_PER_NODE is only set with --ntasks-per-node, and may read "2(x3)": use it when it
  // is a plain count.
  std::optional<std::string> per_node = env("SLURM_NTASKS_PER_NODE");
  const bool plain = per_node && !per_node->empty() && per_node->find_first_not_of("0123456789") == std::string::npos;
  read_local(env, d, "SLURM_LOCALID", plain ? "SLURM_NTASKS_PER_NODE" : nullptr);
  if (std::optional<std::string> nodes = env("SLURM_JOB_NODELIST")) {
    const std::vector<std::string> hosts = expand_slurm_nodelist(*nodes);
    d.master_addr = hosts.front();
  }
  if (std::optional<int64_t> job = int_var(env, "SLURM_JOB_ID")) d.master_port = int(20000 + *job % 10000);
  read_master(env, d);
  return d;
}

// "07" -> 7 with width 2; errors name the whole list.
int64_t nodelist_number(const std::string& s, const std::string& whole) {
  int64_t v = 0;
  const auto res = std::from_chars(s.data(), s.data() + s.size(), v);
  SERPENT_CHECK(!s.empty() && res.ec == std::errc() && res.ptr == s.data() + s.size() && v >= 0, "SLURM_JOB_NODELIST '",
                whole, "': '", s, "' is not a node number");
  return v;
}

// The names one bracket group stands for: "01-03,07" -> 01 02 03 07.
std::vector<std::string> expand_ranges(const std::string& body, const std::string& whole) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= body.size()) {
    size_t comma = body.find(',', pos);
    if (comma == std::string::npos) comma = body.size();
    const std::string item = body.substr(pos, comma - pos);
    const size_t dash = item.find('-');
    if (dash == std::string::npos) {
      nodelist_number(item, whole);
      out.push_back(item);
    } else {
      const std::string lo_s = item.substr(0, dash), hi_s = item.substr(dash + 1);
      const int64_t lo = nodelist_number(lo_s, whole), hi = nodelist_number(hi_s, whole);
      SERPENT_CHECK(lo <= hi, "SLURM_JOB_NODELIST '", whole, "': range ", item, " runs backwards");
      SERPENT_CHECK(hi - lo < 1000000, "SLURM_JOB_NODELIST '", whole, "': range ", item, " is implausibly long");
      for (int64_t v = lo; v <= hi; ++v) {
        std::string n = std::to_string(v);
        if (n.size() < lo_s.size()) n.insert(0, lo_s.size() - n.size(), '0');
        out.push_back(n);
      }
    }
    pos = comma + 1;
  }
  return out;
}

// One host expression without top-level commas: "rack[1-2]-n[01-02]".
void expand_host(const std::string& expr, const std::string& whole, std::vector<std::string>& out) {
  std::vector<std::string> partial = {""};
  size_t pos = 0;
  while (pos < expr.size()) {
    const size_t open = expr.find('[', pos);
    const std::string literal = expr.substr(pos, open == std::string::npos ? std::string::npos : open - pos);
    SERPENT_CHECK(literal.find(']') == std::string::npos, "SLURM_JOB_NODELIST '", whole, "': unmatched ']'");
    for (std::string& p : partial) p += literal;
    if (open == std::string::npos) break;
    const size_t close = expr.find(']', open);
    SERPENT_CHECK(close != std::string::npos, "SLURM_JOB_NODELIST '", whole, "': unmatched '['");
    const std::vector<std::string> values = expand_ranges(expr.substr(open + 1, close - open - 1), whole);
    std::vector<std::string> next;
    next.reserve(partial.size() * values.size());
    for (const std::string& p : partial)
      for (const std::string& v : values) next.push_back(p + v);
    partial = std::move(next);
    pos = close + 1;
  }
  SERPENT_CHECK(!partial.front().empty(), "SLURM_JOB_NODELIST '", whole, "' has an empty host name");
  out.insert(out.end(), partial.begin(), partial.end());
}

}  // namespace

std::vector<std::string> expand_slurm_nodelist(const std::string& nodelist) {
  std::vector<std::string> hosts;
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i <= nodelist.size(); ++i) {
    const char c = i < nodelist.size() ? nodelist[i] : ',';
    if (c == '[') {
      SERPENT_CHECK(depth == 0, "SLURM_JOB_NODELIST '", nodelist, "': nested '['");
      ++depth;
    } else if (c == ']') {
      SERPENT_CHECK(depth == 1, "SLURM_JOB_NODELIST '", nodelist, "': unmatched ']'");
      --depth;
    } else if (c == ',' && depth == 0) {
      const std::string expr = nodelist.substr(start, i - start);
      SERPENT_CHECK(!expr.empty(), "SLURM_JOB_NODELIST '", nodelist, "' has an empty host name");
      expand_host(expr, nodelist, hosts);
      start = i + 1;
    }
  }
  SERPENT_CHECK(depth == 0, "SLURM_JOB_NODELIST '", nodelist, "': unmatched '['");
  return hosts;
}

DistEnv dist_env_from(const EnvLookup& env) {
  if (env("RANK") || env("WORLD_SIZE")) return from_torchrun(env);
  if (env("OMPI_COMM_WORLD_RANK") || env("OMPI_COMM_WORLD_SIZE")) return from_openmpi(env);
  if (env("SLURM_PROCID") && env("SLURM_NTASKS")) return from_slurm(env);
  DistEnv d;
  read_master(env, d);
  return d;
}

DistEnv dist_env_from_process() {
  return dist_env_from([](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  });
}

}  // namespace serpent
