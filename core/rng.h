// Counter-based random numbers (Philox4x32-10, Salmon et al. 2011). Element i of a draw is a
// pure function of (seed, offset + i), so the same seed gives the same numbers on the host and on
// every GPU, whatever the thread layout, and a generator's whole state is two integers that a
// checkpoint stores.
#pragma once

#include <cmath>
#include <cstdint>

#include "core/dtype.h"

namespace serpent {

namespace philox {

struct U32x4 {
  uint32_t v[4];
};

SERPENT_HD inline uint32_t mulhilo(uint32_t a, uint32_t b, uint32_t* hi) {
  uint64_t p = uint64_t(a) * uint64_t(b);
  *hi = uint32_t(p >> 32);
  return uint32_t(p);
}

// Ten rounds of Philox4x32 on counter (c0..c3) with key (k0, k1).
SERPENT_HD inline U32x4 block(uint64_t counter, uint64_t key) {
  uint32_t c0 = uint32_t(counter), c1 = uint32_t(counter >> 32), c2 = 0, c3 = 0;
  uint32_t k0 = uint32_t(key), k1 = uint32_t(key >> 32);
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, hi1;
    uint32_t lo0 = mulhilo(0xD2511F53u, c0, &hi0);
    uint32_t lo1 = mulhilo(0xCD9E8D57u, c2, &hi1);
    uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
    c0 = n0, c1 = n1, c2 = n2, c3 = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return {{c0, c1, c2, c3}};
}

// Uniform in (0, 1] with 53 random bits, from two 32-bit words.
SERPENT_HD inline double unit_double(uint32_t hi, uint32_t lo) {
  uint64_t bits = (uint64_t(hi) << 21) ^ uint64_t(lo >> 11);  // 53 bits
  return (double(bits) + 1.0) * (1.0 / 9007199254740992.0);
}

// The i-th element of a uniform draw in [lo, hi), computed in double.
SERPENT_HD inline double uniform(uint64_t seed, uint64_t index, double lo, double hi) {
  U32x4 r = block(index, seed);
  return lo + (hi - lo) * (1.0 - unit_double(r.v[0], r.v[1]));
}

// The i-th element of a normal draw (Box-Muller on two independent uniforms), in double.
SERPENT_HD inline double normal(uint64_t seed, uint64_t index, double mean, double stddev) {
  U32x4 r = block(index, seed);
  double u1 = unit_double(r.v[0], r.v[1]);  // (0, 1]: log is finite
  double u2 = unit_double(r.v[2], r.v[3]);
  return mean + stddev * sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

}  // namespace philox

// A stream of draws: each draw of n elements uses counters [offset, offset + n) and advances the
// offset, so consecutive draws never overlap.
struct Generator {
  uint64_t seed = 0;
  uint64_t offset = 0;

  explicit Generator(uint64_t s = 0) : seed(s) {}
  uint64_t take(uint64_t n) {
    uint64_t start = offset;
    offset += n;
    return start;
  }
  double uniform(double lo = 0.0, double hi = 1.0) { return philox::uniform(seed, take(1), lo, hi); }
  double normal(double mean = 0.0, double stddev = 1.0) { return philox::normal(seed, take(1), mean, stddev); }
};

}  // namespace serpent
