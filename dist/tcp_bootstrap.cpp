#include "dist/tcp_bootstrap.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "core/error.h"

namespace serpent {

namespace {

constexpr char kMagic[8] = {'s', 'e', 'r', 'p', 'e', 'n', 't', '1'};
constexpr uint32_t kMaxMessage = 1u << 20;

using Clock = std::chrono::steady_clock;

int ms_left(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left <= 0 ? 0 : int(std::min<int64_t>(left, 1 << 30));
}

// Closes the descriptor when it goes out of scope.
struct Fd {
  int fd = -1;
  explicit Fd(int f = -1) : fd(f) {}
  Fd(Fd&& o) noexcept : fd(o.fd) { o.fd = -1; }
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd = o.fd;
      o.fd = -1;
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  ~Fd() { reset(); }
  void reset() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
};

// Waits until fd is ready for `events`; false on timeout.
bool wait_ready(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    const int rc = ::poll(&p, 1, ms_left(deadline));
    if (rc > 0) return true;
    if (rc == 0) return false;
    if (errno != EINTR) fail("poll failed: ", std::strerror(errno));
  }
}

// Reads exactly n bytes; "" on success, otherwise what went wrong.
std::string read_all(int fd, void* buf, size_t n, Clock::time_point deadline) {
  char* p = static_cast<char*>(buf);
  while (n > 0) {
    if (!wait_ready(fd, POLLIN, deadline)) return "timed out waiting for data";
    const ssize_t got = ::recv(fd, p, n, 0);
    if (got == 0) return "the peer closed the connection";
    if (got < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return std::strerror(errno);
    }
    p += got;
    n -= size_t(got);
  }
  return "";
}

std::string write_all(int fd, const void* buf, size_t n, Clock::time_point deadline) {
  const char* p = static_cast<const char*>(buf);
  while (n > 0) {
    if (!wait_ready(fd, POLLOUT, deadline)) return "timed out sending data";
    const ssize_t put = ::send(fd, p, n, MSG_NOSIGNAL);
    if (put < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return std::strerror(errno);
    }
    p += put;
    n -= size_t(put);
  }
  return "";
}

void put_u32(std::string& out, uint32_t v) {
  const uint32_t be = htonl(v);
  out.append(reinterpret_cast<const char*>(&be), 4);
}

std::string read_u32(int fd, uint32_t* v, Clock::time_point deadline) {
  uint32_t be = 0;
  std::string err = read_all(fd, &be, 4, deadline);
  *v = ntohl(be);
  return err;
}

// A length-prefixed byte string.
std::string read_blob(int fd, std::string* out, Clock::time_point deadline) {
  uint32_t len = 0;
  if (std::string err = read_u32(fd, &len, deadline); !err.empty()) return err;
  if (len > kMaxMessage) return str_cat("a message of ", len, " bytes is too long (not a serpent peer?)");
  out->assign(len, '\0');
  return read_all(fd, out->data(), len, deadline);
}

// A socket listening on every interface at port: IPv6 with IPv4 mapped where the host has IPv6,
// plain IPv4 otherwise.
Fd listen_on(int port, int backlog) {
  int last_errno = 0;
  for (int family : {AF_INET6, AF_INET}) {
    Fd s(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (s.fd < 0) {
      last_errno = errno;
      continue;
    }
    const int one = 1, zero = 0;
    ::setsockopt(s.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int rc;
    if (family == AF_INET6) {
      ::setsockopt(s.fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
      sockaddr_in6 a{};
      a.sin6_family = AF_INET6;
      a.sin6_addr = in6addr_any;
      a.sin6_port = htons(uint16_t(port));
      rc = ::bind(s.fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    } else {
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_ANY);
      a.sin_port = htons(uint16_t(port));
      rc = ::bind(s.fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    }
    if (rc == 0 && ::listen(s.fd, backlog) == 0) return s;
    last_errno = errno;
    if (last_errno == EADDRINUSE) break;  // IPv4 would fail the same way
  }
  fail("rank 0 cannot listen on TCP port ", port, " (", std::strerror(last_errno), ")",
       last_errno == EADDRINUSE ? ": another process uses it; set MASTER_PORT to a free port" : "");
}

// One attempt to connect to host:port; an invalid Fd and the reason when it fails.
Fd try_connect(const std::string& host, int port, std::string* why) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res);
  if (rc != 0) {
    *why = str_cat("cannot resolve '", host, "': ", gai_strerror(rc));
    return Fd();
  }
  Fd out;
  for (addrinfo* a = res; a && out.fd < 0; a = a->ai_next) {
    Fd s(::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol));
    if (s.fd < 0) continue;
    if (::connect(s.fd, a->ai_addr, a->ai_addrlen) == 0)
      out = std::move(s);
    else
      *why = std::strerror(errno);
  }
  ::freeaddrinfo(res);
  if (out.fd >= 0) {
    const int one = 1;
    ::setsockopt(out.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  return out;
}

std::string hello(const DistEnv& env, const std::string& tag) {
  std::string h(kMagic, sizeof kMagic);
  put_u32(h, uint32_t(env.world_size));
  put_u32(h, uint32_t(env.rank));
  put_u32(h, uint32_t(tag.size()));
  h += tag;
  return h;
}

std::string reply(uint32_t status, const std::string& body) {
  std::string r;
  put_u32(r, status);
  put_u32(r, uint32_t(body.size()));
  return r + body;
}

Clock::time_point deadline_after(double seconds) {
  return Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

// Rank 0: accepts a connection from every other rank; returns their sockets by rank.
std::vector<int> gather_peers(const DistEnv& env, const std::string& tag, double timeout_s) {
  const auto deadline = deadline_after(timeout_s);
  Fd listener = listen_on(env.master_port, env.world_size);
  std::vector<Fd> peers(size_t(env.world_size));
  int remaining = env.world_size - 1;
  while (remaining > 0) {
    if (!wait_ready(listener.fd, POLLIN, deadline)) {
      std::string missing;
      for (int r = 1; r < env.world_size; ++r)
        if (peers[size_t(r)].fd < 0) missing += (missing.empty() ? "" : ", ") + std::to_string(r);
      fail("rank 0: ", remaining, " of ", env.world_size - 1, " ranks did not reach port ", env.master_port, " within ",
           timeout_s, " s (missing rank", remaining > 1 ? "s " : " ", missing,
           "); check that every rank was started with WORLD_SIZE=", env.world_size,
           " and the same MASTER_ADDR and MASTER_PORT, and that the port is reachable from their hosts");
    }
    Fd conn(::accept4(listener.fd, nullptr, nullptr, SOCK_CLOEXEC));
    if (conn.fd < 0) continue;
    const int one = 1;
    ::setsockopt(conn.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    // A peer gets a few seconds to introduce itself; a stray connection (a port scanner, another
    // program) is dropped and the wait goes on.
    const auto peer_deadline = std::min(deadline, Clock::now() + std::chrono::seconds(10));
    char magic[sizeof kMagic];
    if (!read_all(conn.fd, magic, sizeof magic, peer_deadline).empty() || std::memcmp(magic, kMagic, sizeof magic) != 0)
      continue;
    uint32_t world = 0, rank = 0;
    std::string peer_tag;
    if (!read_u32(conn.fd, &world, peer_deadline).empty() || !read_u32(conn.fd, &rank, peer_deadline).empty() ||
        !read_blob(conn.fd, &peer_tag, peer_deadline).empty())
      continue;
    std::string problem;
    if (peer_tag != tag)
      problem = str_cat("rank ", rank, " exchanges '", peer_tag, "' but rank 0 exchanges '", tag, "'");
    else if (int64_t(world) != env.world_size)
      problem = str_cat("rank ", rank, " has WORLD_SIZE ", world, " but rank 0 has ", env.world_size);
    else if (rank == 0 || int64_t(rank) >= env.world_size)
      problem = str_cat("a process claims rank ", rank, ", outside [1, ", env.world_size, ")");
    else if (peers[rank].fd >= 0)
      problem = str_cat("rank ", rank, " connected twice: two processes were given the same rank");
    if (!problem.empty()) {
      const std::string r = reply(1, problem);
      write_all(conn.fd, r.data(), r.size(), peer_deadline);
      fail("rank 0: ", problem, " (port ", env.master_port, ")");
    }
    peers[rank] = std::move(conn);
    --remaining;
  }
  std::vector<int> fds(peers.size(), -1);
  for (size_t r = 1; r < peers.size(); ++r) std::swap(fds[r], peers[r].fd);
  return fds;
}

// Any other rank: connects to rank 0 and introduces itself; returns the socket.
int join(const DistEnv& env, const std::string& tag, double timeout_s) {
  const auto deadline = deadline_after(timeout_s);
  std::string why = "no attempt";
  auto pause = std::chrono::milliseconds(20);
  while (Clock::now() < deadline) {
    Fd s = try_connect(env.master_addr, env.master_port, &why);
    if (s.fd >= 0) {
      const std::string h = hello(env, tag);
      why = write_all(s.fd, h.data(), h.size(), deadline);
      if (why.empty()) {
        const int fd = s.fd;
        s.fd = -1;
        return fd;
      }
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(500));
  }
  fail("rank ", env.rank, ": could not reach rank 0 at ", env.master_addr, ":", env.master_port, " within ", timeout_s,
       " s (last error: ", why, "); check that rank 0 is running and that MASTER_ADDR and MASTER_PORT are the same ",
       "on every rank");
}

}  // namespace

TcpRendezvous::TcpRendezvous(const DistEnv& env, const std::string& tag, double timeout_s)
    : env_(env), tag_(tag), timeout_s_(timeout_s) {
  env.require_master();
  if (env.rank == 0)
    peers_ = gather_peers(env, tag, timeout_s);
  else
    peers_ = {join(env, tag, timeout_s)};
}

TcpRendezvous::~TcpRendezvous() {
  for (int fd : peers_)
    if (fd >= 0) ::close(fd);
}

void TcpRendezvous::send(int rank, const std::string& payload) {
  SERPENT_CHECK(env_.rank == 0 && rank > 0 && rank < env_.world_size, "TcpRendezvous::send: rank ", env_.rank,
                " cannot send to rank ", rank);
  SERPENT_CHECK(payload.size() <= kMaxMessage, "TcpRendezvous::send: a payload of ", payload.size(),
                " bytes is too long");
  const std::string r = reply(0, payload);
  const std::string err = write_all(peers_[size_t(rank)], r.data(), r.size(), deadline_after(timeout_s_));
  SERPENT_CHECK(err.empty(), "rank 0: sending the '", tag_, "' rendezvous to rank ", rank, " failed (", err,
                "): that rank has stopped");
}

std::string TcpRendezvous::receive() {
  SERPENT_CHECK(env_.rank != 0, "TcpRendezvous::receive: rank 0 only sends");
  const auto deadline = deadline_after(timeout_s_);
  uint32_t status = 0;
  std::string body;
  std::string err = read_u32(peers_[0], &status, deadline);
  if (err.empty()) err = read_blob(peers_[0], &body, deadline);
  SERPENT_CHECK(err.empty(), "rank ", env_.rank, ": waiting for the '", tag_, "' rendezvous from rank 0 at ",
                env_.master_addr, ":", env_.master_port, " failed (", err, " after up to ", timeout_s_,
                " s): rank 0 has stopped or is stuck");
  SERPENT_CHECK(status == 0, "rank ", env_.rank, ": rank 0 at ", env_.master_addr, ":", env_.master_port,
                " refused this rank: ", body);
  return body;
}

std::string TcpRendezvous::broadcast(const std::string& payload) {
  if (env_.rank != 0) return receive();
  for (int r = 1; r < env_.world_size; ++r) send(r, payload);
  return payload;
}

}  // namespace serpent
