// Selective scan forward and backward on the GPU. The layout and the chunked passes are
// described in kernels/cuda/selective_scan.h; the math in kernels/cpu/selective_scan.h.
//
// Cost model at (B 8, E 1536, L 2048, N 16): 25M (b, e, t) steps and 403M state updates, each
// an exp2 on the special-function unit (16 per SM per clock: ~0.1 ms per pass over all states on
// an H200) plus a few FMAs; the forward must move ~0.2 GB (u, delta, z, B, C in, y out).
//
// What keeps the sequential time loop short: every per-(b, t, e) scalar (softplus(delta + bias)
// and its derivative, u, the z gate and its derivative) is computed once per element by a
// cooperative, coalesced pass over a segment of S time steps into shared memory, so the loop
// itself reads only shared memory, and its outputs are staged there and written back coalesced.
#include <algorithm>

#include "core/cuda/common.cuh"
#include "kernels/cuda/selective_scan.h"

namespace serpent::cuda {

namespace {

constexpr int kLanes = 4;                     // threads sharing one channel's states
constexpr int kChannels = 32;                 // channels per block
constexpr int kThreads = kLanes * kChannels;  // 128: four warps of eight channels
constexpr float kLog2e = 1.4426950408889634f;

// 2^x on the special-function unit (relative error below 2^-22).
__device__ __forceinline__ float exp2_approx(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

template <class T>
__device__ __forceinline__ float load(const void* p, int64_t i) {
  return to_compute(static_cast<const T*>(p)[i]);
}

// Per states-per-lane NS: segment length S (time steps per shared-memory tile and per backward
// checkpoint) and sub-chunk length K (states the backward holds in registers at once).
template <int NS>
struct Shape {
  static constexpr int NP = kLanes * NS;  // padded d_state
  static constexpr int S = NS <= 4 ? 32 : 128 / NS;
  static constexpr int K = NS <= 4 ? 8 : 32 / NS;
};

// Shared-memory tile for one segment: per-channel scalars [slot][t][channel] and B, C rows.
enum Slot { kDt = 0, kU = 1, kGate = 2, kDy = 3, kZfac = 4 };  // forward uses the first three

template <int NS>
struct Tile {
  float* scalars;  // (slots, S, kChannels)
  float* Bs;       // (S, NP)
  float* Cs;       // (S, NP)
  __device__ float& at(int slot, int t, int ch) const { return scalars[(slot * Shape<NS>::S + t) * kChannels + ch]; }
};

template <int NS>
__device__ __forceinline__ void load_row(const float* p, float (&out)[NS]) {
  if constexpr (NS % 4 == 0) {
#pragma unroll
    for (int i = 0; i < NS; i += 4) {
      const float4 v = *reinterpret_cast<const float4*>(p + i);
      out[i] = v.x, out[i + 1] = v.y, out[i + 2] = v.z, out[i + 3] = v.w;
    }
  } else if constexpr (NS == 2) {
    const float2 v = *reinterpret_cast<const float2*>(p);
    out[0] = v.x, out[1] = v.y;
  } else {
    out[0] = p[0];
  }
}

// What one thread knows about its channel and chunk. States are blocked: lane l owns
// n = l * NS .. l * NS + NS - 1.
template <int NS>
struct Lane {
  int lane, ch;
  int64_t b, c, nc, d, d0, t0, t1;
  bool valid;
  float A2[NS];  // A * log2(e), 0 for padded states

  __device__ Lane(const ScanArgs& a, int64_t T) {
    lane = threadIdx.x % kLanes;
    ch = threadIdx.x / kLanes;
    b = blockIdx.z;
    c = blockIdx.y;
    nc = gridDim.y;
    d0 = int64_t(blockIdx.x) * kChannels;
    d = d0 + ch;
    valid = d < a.E;
    t0 = c * T;
    t1 = t0 + T < a.L ? t0 + T : a.L;
#pragma unroll
    for (int i = 0; i < NS; ++i) A2[i] = has_state(a, i) ? a.A[d * a.N + n(i)] * kLog2e : 0.f;
  }
  __device__ int n(int i) const {
    return lane * NS + i;
  }
  __device__ bool has_state(const ScanArgs& a, int i) const {
    return valid && n(i) < a.N;
  }
  // (b, chunk, d, n) in a (B, nc, E, N) array and (b, chunk, d) in a (B, nc, E) one.
  __device__ int64_t chunk_state(const ScanArgs& a, int64_t chunk, int i) const {
    return ((b * nc + chunk) * a.E + d) * a.N + n(i);
  }
  __device__ int64_t chunk_channel(const ScanArgs& a, int64_t chunk) const {
    return (b * nc + chunk) * a.E + d;
  }
  // (b, segment, d, n) in the (B, L / S, E, N) checkpoints.
  __device__ int64_t checkpoint(const ScanArgs& a, int64_t seg, int i) const {
    const int64_t segs = (a.L + Shape<NS>::S - 1) / Shape<NS>::S;
    return ((b * segs + seg) * a.E + d) * a.N + n(i);
  }
};

// Loading a segment's tile is split in two so that the global loads of the next segment are
// in flight while the current one computes: prefetch() issues the loads into registers (raw
// activation values), commit() computes the per-element scalars from them into shared memory:
// softplus(delta + bias) and its derivative, u, the z gate (and, in backward, dy = dout *
// silu(z) and dout * silu'(z)), each once per element, plus the rows of B and C. Steps past
// `te` and channels past E read as 0.
template <class T, int NS>
struct TileLoader {
  static constexpr int S = Shape<NS>::S, NP = Shape<NS>::NP;
  static constexpr int kPer = S * kChannels / kThreads;  // scalar elements per thread
  static constexpr int kRows = (S * NP + kThreads - 1) / kThreads;
  T delta[kPer], u[kPer], z[kPer], dout[kPer], Bv[kRows], Cv[kRows];

  __device__ void prefetch(const ScanArgs& a, const void* dout_p, int64_t b, int64_t d0, int64_t ts, int64_t te) {
#pragma unroll
    for (int j = 0; j < kPer; ++j) {
      const int idx = threadIdx.x + j * kThreads, t = idx / kChannels, ch = idx % kChannels;
      const int64_t d = d0 + ch, gt = ts + t;
      const bool in = gt < te && d < a.E;
      const int64_t g = (b * a.L + gt) * a.E + d;
      delta[j] = in ? static_cast<const T*>(a.delta)[g] : T(0.f);
      u[j] = in ? static_cast<const T*>(a.u)[g] : T(0.f);
      z[j] = in && a.z ? static_cast<const T*>(a.z)[g] : T(0.f);
      dout[j] = in && dout_p ? static_cast<const T*>(dout_p)[g] : T(0.f);
    }
#pragma unroll
    for (int j = 0; j < kRows; ++j) {
      const int idx = threadIdx.x + j * kThreads, t = idx / NP, n = idx % NP;
      const bool in = idx < S * NP && ts + t < te && n < a.N;
      const int64_t g = (b * a.L + ts + t) * a.N + n;
      Bv[j] = in ? static_cast<const T*>(a.Bm)[g] : T(0.f);
      Cv[j] = in ? static_cast<const T*>(a.Cm)[g] : T(0.f);
    }
  }

  __device__ void commit(const ScanArgs& a, int64_t d0, int64_t ts, int64_t te, bool backward,
                         const Tile<NS>& tile) const {
#pragma unroll
    for (int j = 0; j < kPer; ++j) {
      const int idx = threadIdx.x + j * kThreads, t = idx / kChannels, ch = idx % kChannels;
      const int64_t d = d0 + ch;
      float dt = 0.f, dsp = 0.f, gate = 0.f, dy = 0.f, zfac = 0.f;
      if (ts + t < te && d < a.E) {
        const float raw = to_compute(delta[j]) + (a.delta_bias ? a.delta_bias[d] : 0.f);
        if (!a.delta_softplus || raw > 20.f) {
          dt = raw, dsp = 1.f;
        } else {
          fast_softplus(raw, &dt, &dsp);
        }
        const float zv = to_compute(z[j]), sg = a.z ? fast_sigmoid(zv) : 1.f;
        gate = a.z ? zv * sg : 1.f;
        if (backward) {
          const float go = to_compute(dout[j]);
          dy = go * gate;
          zfac = a.z ? go * sg * (1.f + zv * (1.f - sg)) : 0.f;
        }
      }
      tile.at(kDt, t, ch) = dt;
      tile.at(kU, t, ch) = to_compute(u[j]);
      tile.at(kGate, t, ch) = backward ? dsp : gate;
      if (backward) tile.at(kDy, t, ch) = dy, tile.at(kZfac, t, ch) = zfac;
    }
#pragma unroll
    for (int j = 0; j < kRows; ++j) {
      const int idx = threadIdx.x + j * kThreads;
      if (idx < S * NP) tile.Bs[idx] = to_compute(Bv[j]), tile.Cs[idx] = to_compute(Cv[j]);
    }
  }
};

// Writes a slot of the tile (outputs staged there) to a (B, L, E) array of T.
template <class T, int NS>
__device__ void store_slot(const ScanArgs& a, const Tile<NS>& tile, int slot, void* dst, int64_t b, int64_t d0,
                           int64_t ts, int64_t te) {
  if (!dst) return;
  for (int idx = threadIdx.x; idx < Shape<NS>::S * kChannels; idx += kThreads) {
    const int t = idx / kChannels, ch = idx % kChannels;
    const int64_t d = d0 + ch, gt = ts + t;
    if (gt < te && d < a.E) static_cast<T*>(dst)[(b * a.L + gt) * a.E + d] = from_compute<T>(tile.at(slot, t, ch));
  }
}

template <int NS>
__device__ __forceinline__ float lane_sum(float v) {
  v += __shfl_xor_sync(0xffffffffu, v, 1);
  v += __shfl_xor_sync(0xffffffffu, v, 2);
  return v;
}

// The state update of one step for this thread's NS states; returns its share of C . s.
template <int NS>
__device__ __forceinline__ float advance(float (&s)[NS], const float (&A2)[NS], float dt, float u, const float* Brow,
                                         const float* Crow, int lane) {
  float Bv[NS], Cv[NS];
  load_row<NS>(Brow + lane * NS, Bv);
  load_row<NS>(Crow + lane * NS, Cv);
  const float du = dt * u;
  float y = 0.f;
#pragma unroll
  for (int i = 0; i < NS; ++i) {
    s[i] = exp2_approx(dt * A2[i]) * s[i] + du * Bv[i];
    y += s[i] * Cv[i];
  }
  return y;
}

// Forward pass 1 (when the sequence is split into chunks): each chunk's end state from zero
// and its sum of delta.
template <class T, int NS>
__global__ void __launch_bounds__(kThreads)
    chunk_summary_kernel(ScanArgs a, int64_t TL, float* s_local, float* chunk_delta) {
  using Sh = Shape<NS>;
  extern __shared__ float smem[];
  const Tile<NS> tile{smem, smem + 3 * Sh::S * kChannels, smem + 3 * Sh::S * kChannels + Sh::S * Sh::NP};
  Lane<NS> l(a, TL);
  float s[NS] = {};
  float sum_dt = 0.f;
  TileLoader<T, NS> loader;
  loader.prefetch(a, nullptr, l.b, l.d0, l.t0, l.t1);
  for (int64_t ts = l.t0; ts < l.t1; ts += Sh::S) {
    __syncthreads();
    loader.commit(a, l.d0, ts, l.t1, false, tile);
    __syncthreads();
    if (ts + Sh::S < l.t1) loader.prefetch(a, nullptr, l.b, l.d0, ts + Sh::S, l.t1);
    const int steps = int(std::min<int64_t>(Sh::S, l.t1 - ts));
    for (int t = 0; t < steps; ++t) {
      const float dt = tile.at(kDt, t, l.ch);
      sum_dt += dt;
      advance<NS>(s, l.A2, dt, tile.at(kU, t, l.ch), tile.Bs + t * Sh::NP, tile.Cs + t * Sh::NP, l.lane);
    }
  }
#pragma unroll
  for (int i = 0; i < NS; ++i)
    if (l.has_state(a, i)) s_local[l.chunk_state(a, l.c, i)] = s[i];
  if (l.valid && l.lane == 0) chunk_delta[l.chunk_channel(a, l.c)] = sum_dt;
}

// Forward pass 2: the chunk's start state from the earlier chunks' summaries, then the outputs,
// keeping the state at every segment start for backward.
template <class T, int NS>
__global__ void __launch_bounds__(kThreads)
    chunk_output_kernel(ScanArgs a, int64_t TL, const float* s_local, const float* chunk_delta, float* checkpoints,
                        void* out, float* last_state) {
  using Sh = Shape<NS>;
  extern __shared__ float smem[];
  const Tile<NS> tile{smem, smem + 3 * Sh::S * kChannels, smem + 3 * Sh::S * kChannels + Sh::S * Sh::NP};
  Lane<NS> l(a, TL);
  float s[NS] = {};
  for (int64_t c = 0; c < l.c; ++c) {
    const float sum_dt = l.valid ? chunk_delta[l.chunk_channel(a, c)] : 0.f;
#pragma unroll
    for (int i = 0; i < NS; ++i)
      s[i] = exp2_approx(sum_dt * l.A2[i]) * s[i] + (l.has_state(a, i) ? s_local[l.chunk_state(a, c, i)] : 0.f);
  }
  const float Dd = l.valid && a.D ? a.D[l.d] : 0.f;
  TileLoader<T, NS> loader;
  loader.prefetch(a, nullptr, l.b, l.d0, l.t0, l.t1);
  for (int64_t ts = l.t0; ts < l.t1; ts += Sh::S) {
#pragma unroll
    for (int i = 0; i < NS; ++i)
      if (l.has_state(a, i)) checkpoints[l.checkpoint(a, ts / Sh::S, i)] = s[i];
    __syncthreads();
    loader.commit(a, l.d0, ts, l.t1, false, tile);
    __syncthreads();
    if (ts + Sh::S < l.t1) loader.prefetch(a, nullptr, l.b, l.d0, ts + Sh::S, l.t1);
    const int steps = int(std::min<int64_t>(Sh::S, l.t1 - ts));
#pragma unroll 4
    for (int t = 0; t < steps; ++t) {
      const float u = tile.at(kU, t, l.ch);
      float y = advance<NS>(s, l.A2, tile.at(kDt, t, l.ch), u, tile.Bs + t * Sh::NP, tile.Cs + t * Sh::NP, l.lane);
      y = lane_sum<NS>(y);
      if (l.lane == 0) tile.at(kGate, t, l.ch) *= y + Dd * u;  // the output replaces the gate
    }
    __syncthreads();
    store_slot<T, NS>(a, tile, kGate, out, l.b, l.d0, ts, l.t1);
  }
  if (l.c == l.nc - 1)
#pragma unroll
    for (int i = 0; i < NS; ++i)
      if (l.has_state(a, i)) last_state[(l.b * a.E + l.d) * a.N + l.n(i)] = s[i];
}

// Backward pass 1 (when chunked): each chunk's reverse carry from a zero end, W = a_{t0} g_{t0}.
template <class T, int NS>
__global__ void __launch_bounds__(kThreads)
    chunk_reverse_summary_kernel(ScanArgs a, int64_t TL, const void* dout, float* w_local) {
  using Sh = Shape<NS>;
  extern __shared__ float smem[];
  const Tile<NS> tile{smem, smem + 5 * Sh::S * kChannels, smem + 5 * Sh::S * kChannels + Sh::S * Sh::NP};
  Lane<NS> l(a, TL);
  float carry[NS] = {};
  const int64_t first_seg = l.t0 / Sh::S, last_seg = (l.t1 - 1) / Sh::S;
  TileLoader<T, NS> loader;
  loader.prefetch(a, dout, l.b, l.d0, last_seg * Sh::S, l.t1);
  for (int64_t seg = last_seg; seg >= first_seg; --seg) {
    const int64_t ts = seg * Sh::S;
    __syncthreads();
    loader.commit(a, l.d0, ts, l.t1, true, tile);
    __syncthreads();
    if (seg > first_seg) loader.prefetch(a, dout, l.b, l.d0, ts - Sh::S, l.t1);
    const int steps = int(std::min<int64_t>(Sh::S, l.t1 - ts));
    for (int t = steps - 1; t >= 0; --t) {
      const float dt = tile.at(kDt, t, l.ch), dy = tile.at(kDy, t, l.ch);
      float Cv[NS];
      load_row<NS>(tile.Cs + t * Sh::NP + l.lane * NS, Cv);
#pragma unroll
      for (int i = 0; i < NS; ++i) carry[i] = exp2_approx(dt * l.A2[i]) * (Cv[i] * dy + carry[i]);
    }
  }
#pragma unroll
  for (int i = 0; i < NS; ++i)
    if (l.has_state(a, i)) w_local[l.chunk_state(a, l.c, i)] = carry[i];
}

struct BackwardBuffers {
  const float* checkpoints;
  const float* chunk_delta;
  const float* w_local;
  float* dbc_partial;    // (2, E blocks, B, L, N)
  float* param_partial;  // dA (B, nc, E, N), then dD and dbias (B, nc, E) each
};

template <int NS>
constexpr int backward_smem_floats() {
  using Sh = Shape<NS>;
  return 5 * Sh::S * kChannels + 2 * Sh::S * Sh::NP + (Sh::S / Sh::K) * NS * kThreads + 2 * Sh::K * kChannels * Sh::NP;
}

// Backward pass 2: the chunk's true carry from the later chunks, then segment by segment from
// the end: reload the segment's tile, recompute its states from the checkpoint (keeping every
// K-th in shared memory), and run the reverse recurrence K steps at a time from registers.
template <class T, int NS>
__global__ void __launch_bounds__(kThreads)
    chunk_backward_kernel(ScanArgs a, int64_t TL, const void* dout, BackwardBuffers buf, ScanGradArgs g) {
  using Sh = Shape<NS>;
  constexpr int S = Sh::S, K = Sh::K, NP = Sh::NP;
  extern __shared__ float smem[];
  const Tile<NS> tile{smem, smem + 5 * S * kChannels, smem + 5 * S * kChannels + S * NP};
  float* sub_state = tile.Cs + S * NP;               // (S / K, NS, kThreads)
  float* red = sub_state + (S / K) * NS * kThreads;  // (2, K, kChannels, NP): dB and dC terms
  Lane<NS> l(a, TL);

  // The carry entering from the later chunks: R(c) = W(c+1) + exp(A sum_delta(c+1)) R(c+1).
  float carry[NS] = {};
  for (int64_t c = l.nc - 1; c > l.c; --c) {
    const float sum_dt = l.valid ? buf.chunk_delta[l.chunk_channel(a, c)] : 0.f;
#pragma unroll
    for (int i = 0; i < NS; ++i)
      carry[i] =
          (l.has_state(a, i) ? buf.w_local[l.chunk_state(a, c, i)] : 0.f) + exp2_approx(sum_dt * l.A2[i]) * carry[i];
  }
  float A[NS];
#pragma unroll
  for (int i = 0; i < NS; ++i) A[i] = l.A2[i] * (1.f / kLog2e);
  const float Dd = l.valid && a.D ? a.D[l.d] : 0.f;
  float dA_acc[NS] = {};
  float dD_acc = 0.f, dbias_acc = 0.f;
  const int64_t n_eb = gridDim.x;
  const int64_t first_seg = l.t0 / S, last_seg = (l.t1 - 1) / S;

  TileLoader<T, NS> loader;
  loader.prefetch(a, dout, l.b, l.d0, last_seg * S, l.t1);
  for (int64_t seg = last_seg; seg >= first_seg; --seg) {
    const int64_t ts = seg * S;
    const int steps = int(std::min<int64_t>(S, l.t1 - ts));
    __syncthreads();
    loader.commit(a, l.d0, ts, l.t1, true, tile);
    __syncthreads();
    if (seg > first_seg) loader.prefetch(a, dout, l.b, l.d0, ts - S, l.t1);
    // Walk the segment forward from its checkpoint, keeping every K-th state.
    float s[NS];
#pragma unroll
    for (int i = 0; i < NS; ++i) s[i] = l.has_state(a, i) ? buf.checkpoints[l.checkpoint(a, seg, i)] : 0.f;
    for (int j = 0; j * K < steps; ++j) {
#pragma unroll
      for (int i = 0; i < NS; ++i) sub_state[(j * NS + i) * kThreads + threadIdx.x] = s[i];
      for (int t = j * K; t < (j + 1) * K && t < steps; ++t)
        advance<NS>(s, l.A2, tile.at(kDt, t, l.ch), tile.at(kU, t, l.ch), tile.Bs + t * NP, tile.Cs + t * NP, l.lane);
    }
    for (int j = (steps - 1) / K; j >= 0; --j) {
      // Recompute this sub-chunk's states into registers (steps past the end repeat the state).
      float s_in[NS], st[K][NS];
#pragma unroll
      for (int i = 0; i < NS; ++i) s_in[i] = s[i] = sub_state[(j * NS + i) * kThreads + threadIdx.x];
#pragma unroll
      for (int k = 0; k < K; ++k) {
        const int t = j * K + k;
        if (t < steps)
          advance<NS>(s, l.A2, tile.at(kDt, t, l.ch), tile.at(kU, t, l.ch), tile.Bs + t * NP, tile.Cs + t * NP, l.lane);
#pragma unroll
        for (int i = 0; i < NS; ++i) st[k][i] = s[i];
      }
#pragma unroll
      for (int k = K - 1; k >= 0; --k) {
        const int t = j * K + k;
        if (t >= steps) continue;  // the same for every thread of the block
        const float dt = tile.at(kDt, t, l.ch), u = tile.at(kU, t, l.ch), dy = tile.at(kDy, t, l.ch);
        float Bv[NS], Cv[NS];
        load_row<NS>(tile.Bs + t * NP + l.lane * NS, Bv);
        load_row<NS>(tile.Cs + t * NP + l.lane * NS, Cv);
        float y = 0.f, du = 0.f, ddelta = 0.f, rb[NS], rc[NS];
#pragma unroll
        for (int i = 0; i < NS; ++i) {
          const float sprev = k > 0 ? st[k > 0 ? k - 1 : 0][i] : s_in[i];
          const float at = exp2_approx(dt * l.A2[i]);
          const float gn = Cv[i] * dy + carry[i];
          const float sa = sprev * at;
          y += st[k][i] * Cv[i];
          du += gn * dt * Bv[i];
          ddelta += gn * (A[i] * sa + Bv[i] * u);
          dA_acc[i] += gn * sa * dt;
          rb[i] = gn * dt * u;
          rc[i] = dy * st[k][i];
          carry[i] = at * gn;
        }
        float* rbp = red + ((0 * K + k) * kChannels + l.ch) * NP + l.lane * NS;
        float* rcp = red + ((1 * K + k) * kChannels + l.ch) * NP + l.lane * NS;
#pragma unroll
        for (int i = 0; i < NS; ++i) rbp[i] = rb[i], rcp[i] = rc[i];
        y = lane_sum<NS>(y);
        du = lane_sum<NS>(du);
        ddelta = lane_sum<NS>(ddelta);
        if (l.lane == 0) {
          y += Dd * u;
          du += Dd * dy;
          dD_acc += dy * u;
          const float draw = ddelta * tile.at(kGate, t, l.ch);  // the gate slot holds softplus'
          dbias_acc += draw;
          // Outputs replace inputs this step no longer needs: du -> u, d delta -> dt, dz -> dy.
          tile.at(kZfac, t, l.ch) *= y;
          tile.at(kU, t, l.ch) = du;
          tile.at(kDt, t, l.ch) = draw;
        }
      }
      // The block's share of dB and dC for these K steps: the 32 channels added in order.
      __syncthreads();
      for (int idx = threadIdx.x; idx < 2 * K * NP; idx += kThreads) {
        const int which = idx / (K * NP), k = (idx / NP) % K, n = idx % NP;
        const int64_t t = ts + j * K + k;
        if (j * K + k >= steps || n >= a.N) continue;
        float v = 0.f;
        for (int ch = 0; ch < kChannels; ++ch) v += red[((which * K + k) * kChannels + ch) * NP + n];
        buf.dbc_partial[(((which * n_eb + blockIdx.x) * a.B + l.b) * a.L + t) * a.N + n] = v;
      }
      __syncthreads();
      // The walk restarts from the next-earlier sub-chunk's saved state.
    }
    __syncthreads();
    store_slot<T, NS>(a, tile, kU, g.du, l.b, l.d0, ts, l.t1);
    store_slot<T, NS>(a, tile, kDt, g.ddelta, l.b, l.d0, ts, l.t1);
    store_slot<T, NS>(a, tile, kZfac, a.z ? g.dz : nullptr, l.b, l.d0, ts, l.t1);
  }
#pragma unroll
  for (int i = 0; i < NS; ++i)
    if (l.has_state(a, i)) buf.param_partial[l.chunk_state(a, l.c, i)] = dA_acc[i];
  if (l.valid && l.lane == 0) {
    const int64_t states = a.B * l.nc * a.E * a.N, per = a.B * l.nc * a.E;
    buf.param_partial[states + l.chunk_channel(a, l.c)] = dD_acc;
    buf.param_partial[states + per + l.chunk_channel(a, l.c)] = dbias_acc;
  }
}

// dB, dC: sum the E-block partials in order and convert to the activation dtype.
template <class T>
__global__ void reduce_bc_kernel(const float* partial, int64_t n_eb, int64_t count, T* dB, T* dC) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < 2 * count;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t which = i / count, j = i % count;
    float v = 0.f;
    for (int64_t e = 0; e < n_eb; ++e) v += partial[(which * n_eb + e) * count + j];
    (which == 0 ? dB : dC)[j] = from_compute<T>(v);
  }
}

// dA, dD, dbias: sum the (batch, chunk) partials in order.
__global__ void reduce_params_kernel(const float* partial, int64_t rows, int64_t E, int64_t N, float* dA, float* dD,
                                     float* dbias) {
  const int64_t total = E * N + 2 * E;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    float v = 0.f;
    if (i < E * N) {
      for (int64_t r = 0; r < rows; ++r) v += partial[r * E * N + i];
      dA[i] = v;
      continue;
    }
    const int64_t k = i - E * N, which = k / E, e = k % E;
    const float* base = partial + rows * E * N + which * rows * E;
    for (int64_t r = 0; r < rows; ++r) v += base[r * E + e];
    float* out = which == 0 ? dD : dbias;
    if (out) out[e] = v;
  }
}

int states_per_lane(int64_t N) {
  return N <= 4 ? 1 : N <= 8 ? 2 : N <= 16 ? 4 : N <= 32 ? 8 : 16;
}

// Calls f with the activation type tag and the states per lane as a compile-time constant.
template <class F>
void dispatch_scan(DType act, int64_t N, F&& f) {
  SERPENT_CHECK(N >= 1 && N <= 64, "selective_scan: d_state must be in [1, 64] on the GPU, got ", N);
  auto with_ns = [&](auto* tag) {
    switch (states_per_lane(N)) {
      case 1:
        return f(tag, std::integral_constant<int, 1>{});
      case 2:
        return f(tag, std::integral_constant<int, 2>{});
      case 4:
        return f(tag, std::integral_constant<int, 4>{});
      case 8:
        return f(tag, std::integral_constant<int, 8>{});
      default:
        return f(tag, std::integral_constant<int, 16>{});
    }
  };
  if (act == DType::bf16) return with_ns(static_cast<__nv_bfloat16*>(nullptr));
  SERPENT_CHECK(act == DType::f32, "selective_scan: activations must be f32 or bf16 on the GPU, got ", dtype_name(act));
  return with_ns(static_cast<float*>(nullptr));
}

int64_t segment_length(int64_t N) {
  const int ns = states_per_lane(N);
  return ns <= 4 ? 32 : 128 / ns;
}

template <class Kernel>
void set_smem(Kernel kernel, size_t bytes) {
  if (bytes > 48 * 1024)
    CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
}

int multiprocessors(int device) {
  int n = 0;
  CUDA_CHECK(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, device));
  return n;
}

}  // namespace

int64_t selective_scan_chunk_length(int64_t L, int64_t N, int64_t blocks_per_chunk, int sms) {
  // Chunking costs a second pass over the states (the chunk summaries), so time is cut only when
  // batch x channel blocks alone cannot give two resident blocks per multiprocessor; then into
  // enough chunks for about four, each a whole number of segments. Measured on an H200: one
  // pass over (8, 1536, 2048) (384 blocks) took 0.46 ms forward, while (2, 1536, 8192) (96
  // blocks) with three chunks took 0.98 ms.
  const int64_t S = segment_length(N);
  const int64_t segs = (L + S - 1) / S;
  int64_t nc = 1;
  if (blocks_per_chunk < 2 * int64_t(sms)) nc = (4 * int64_t(sms) + blocks_per_chunk - 1) / blocks_per_chunk;
  nc = std::max<int64_t>(1, std::min(nc, segs));
  return (segs + nc - 1) / nc * S;
}

SelectiveScanGeometry selective_scan_geometry(int64_t B, int64_t L, int64_t E, int64_t N, int device) {
  const int64_t blocks = B * ((E + kChannels - 1) / kChannels);
  const int64_t T = selective_scan_chunk_length(L, N, blocks, multiprocessors(device));
  const int64_t S = segment_length(N);
  return {T, (L + T - 1) / T, (L + S - 1) / S};
}

void selective_scan_forward(const ScanArgs& a, void* out, float* last_state, float* checkpoints, float* chunk_delta, int device) {
  cudaStream_t s = stream(device);
  const SelectiveScanGeometry geo = selective_scan_geometry(a.B, a.L, a.E, a.N, device);
  const dim3 grid(unsigned((a.E + kChannels - 1) / kChannels), unsigned(geo.chunks), unsigned(a.B));
  dispatch_scan(a.act, a.N, [&](auto* tag, auto ns) {
    using T_ = std::remove_pointer_t<decltype(tag)>;
    constexpr int NS = decltype(ns)::value;
    using Sh = Shape<NS>;
    const size_t smem = sizeof(float) * size_t(3 * Sh::S * kChannels + 2 * Sh::S * Sh::NP);
    float* s_local = nullptr;
    if (geo.chunks > 1) {
      s_local =
          static_cast<float*>(CachingAllocator::get().allocate(sizeof(float) * a.B * geo.chunks * a.E * a.N, device));
      set_smem(chunk_summary_kernel<T_, NS>, smem);
      chunk_summary_kernel<T_, NS><<<grid, kThreads, smem, s>>>(a, geo.chunk_length, s_local, chunk_delta);
      CUDA_CHECK_LAUNCH();
    } else {
      CUDA_CHECK(cudaMemsetAsync(chunk_delta, 0, sizeof(float) * a.B * a.E, s));
    }
    set_smem(chunk_output_kernel<T_, NS>, smem);
    chunk_output_kernel<T_, NS>
        <<<grid, kThreads, smem, s>>>(a, geo.chunk_length, s_local, chunk_delta, checkpoints, out, last_state);
    CUDA_CHECK_LAUNCH();
    if (s_local) CachingAllocator::get().release(s_local, device);
  });
}

void selective_scan_backward(const ScanArgs& a, const void* dout, const float* checkpoints, const float* chunk_delta,
                   const ScanGradArgs& g, int device) {
  cudaStream_t s = stream(device);
  const SelectiveScanGeometry geo = selective_scan_geometry(a.B, a.L, a.E, a.N, device);
  const int64_t n_eb = (a.E + kChannels - 1) / kChannels, nc = geo.chunks;
  const dim3 grid(unsigned(n_eb), unsigned(nc), unsigned(a.B));
  auto& alloc = CachingAllocator::get();
  const size_t state_bytes = sizeof(float) * a.B * nc * a.E * a.N;
  float* w_local = nc > 1 ? static_cast<float*>(alloc.allocate(state_bytes, device)) : nullptr;
  float* dbc = static_cast<float*>(alloc.allocate(sizeof(float) * 2 * n_eb * a.B * a.L * a.N, device));
  float* params = static_cast<float*>(alloc.allocate(state_bytes + sizeof(float) * 2 * a.B * nc * a.E, device));
  dispatch_scan(a.act, a.N, [&](auto* tag, auto ns) {
    using T_ = std::remove_pointer_t<decltype(tag)>;
    constexpr int NS = decltype(ns)::value;
    using Sh = Shape<NS>;
    if (nc > 1) {
      const size_t smem = sizeof(float) * size_t(5 * Sh::S * kChannels + 2 * Sh::S * Sh::NP);
      set_smem(chunk_reverse_summary_kernel<T_, NS>, smem);
      chunk_reverse_summary_kernel<T_, NS><<<grid, kThreads, smem, s>>>(a, geo.chunk_length, dout, w_local);
      CUDA_CHECK_LAUNCH();
    }
    const size_t smem = sizeof(float) * size_t(backward_smem_floats<NS>());
    set_smem(chunk_backward_kernel<T_, NS>, smem);
    chunk_backward_kernel<T_, NS><<<grid, kThreads, smem, s>>>(
        a, geo.chunk_length, dout, BackwardBuffers{checkpoints, chunk_delta, w_local, dbc, params}, g);
    CUDA_CHECK_LAUNCH();
    const int64_t count = a.B * a.L * a.N;
    reduce_bc_kernel<T_>
        <<<grid_for(2 * count, 256), 256, 0, s>>>(dbc, n_eb, count, static_cast<T_*>(g.dB), static_cast<T_*>(g.dC));
    CUDA_CHECK_LAUNCH();
  });
  reduce_params_kernel<<<grid_for(a.E * a.N + 2 * a.E, 256), 256, 0, s>>>(params, a.B * nc, a.E, a.N, g.dA, g.dD,
                                                                          g.ddelta_bias);
  CUDA_CHECK_LAUNCH();
  if (w_local) alloc.release(w_local, device);
  alloc.release(dbc, device);
  alloc.release(params, device);
}

}  // namespace serpent::cuda
