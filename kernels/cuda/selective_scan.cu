// Selective scan forward and backward on the GPU. The layout and the chunked passes are
// described in kernels/cuda/selective_scan.h; the math in kernels/cpu/selective_scan.h.
//
// Cost model at (B 8, E 1536, L 2048, N 16): 25M (b, e, t) steps, 403M state updates, each an
// exp2 on the special-function unit (16 per SM per clock: ~0.1 ms per pass over all states on an
// H200) plus a few FMAs; activations move ~0.2 GB forward. The forward runs two passes over the
// states, the backward four (chunk summary, checkpoint walk, sub-chunk recompute, reverse).
#include <algorithm>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/selective_scan.h"

namespace serpent::cuda {

namespace {

constexpr int kLanes = 4;                     // threads sharing one channel's states
constexpr int kChannels = 32;                 // channels per block
constexpr int kThreads = kLanes * kChannels;  // 128: four warps of eight channels
constexpr int kWarps = kThreads / 32;
constexpr float kLog2e = 1.4426950408889634f;

// 2^x on the special-function unit (relative error below 2^-22).
__device__ __forceinline__ float exp2_approx(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

__device__ __forceinline__ float sigmoidf(float v) { return 1.f / (1.f + expf(-v)); }

template <class T>
__device__ __forceinline__ float load(const void* p, int64_t i) {
  return to_compute(static_cast<const T*>(p)[i]);
}

// Sub-chunk length for the backward recompute: NS * kSub states live in registers.
template <int NS>
constexpr int sub_length() {
  return NS <= 4 ? 8 : 32 / NS;
}

// What one thread knows about its channel and chunk.
template <int NS>
struct Lane {
  int lane, ch;
  int64_t b, c, d, t0, t1, nc;
  bool valid;
  float A2[NS];  // A * log2(e), 0 for padded states
  float bias;

  __device__ Lane(const ScanArgs& a, int64_t T) {
    lane = threadIdx.x % kLanes;
    ch = threadIdx.x / kLanes;
    b = blockIdx.z;
    c = blockIdx.y;
    nc = gridDim.y;
    d = int64_t(blockIdx.x) * kChannels + ch;
    valid = d < a.E;
    t0 = c * T;
    t1 = t0 + T < a.L ? t0 + T : a.L;
#pragma unroll
    for (int i = 0; i < NS; ++i) {
      const int n = lane + kLanes * i;
      A2[i] = valid && n < a.N ? a.A[d * a.N + n] * kLog2e : 0.f;
    }
    bias = valid && a.delta_bias ? a.delta_bias[d] : 0.f;
  }
  __device__ int n(int i) const { return lane + kLanes * i; }
  // Index of (b, c, d, n) in a (B, nc, E, N) array, and of (b, c, d) in a (B, nc, E) one.
  __device__ int64_t chunk_state(const ScanArgs& a, int64_t chunk, int i) const {
    return ((b * nc + chunk) * a.E + d) * a.N + n(i);
  }
  __device__ int64_t chunk_channel(const ScanArgs& a, int64_t chunk) const { return (b * nc + chunk) * a.E + d; }
  __device__ bool has_state(const ScanArgs& a, int i) const { return valid && n(i) < a.N; }
};

// Copies the chunk's rows of B and C (T x N) into shared memory as float, zero-padded to NP
// columns and past the end of the sequence.
template <class T>
__device__ void load_bc(const ScanArgs& a, int64_t b, int64_t t0, int64_t t1, int64_t chunk_len, int NP, float* Bs,
                        float* Cs) {
  for (int64_t idx = threadIdx.x; idx < chunk_len * NP; idx += blockDim.x) {
    const int64_t t = idx / NP, n = idx % NP;
    const bool in = t0 + t < t1 && n < a.N;
    const int64_t g = (b * a.L + t0 + t) * a.N + n;
    Bs[idx] = in ? load<T>(a.Bm, g) : 0.f;
    Cs[idx] = in ? load<T>(a.Cm, g) : 0.f;
  }
}

struct Step {
  float dt, dsp, u;
};

template <class T>
__device__ __forceinline__ Step load_step(const ScanArgs& a, int64_t idx, bool valid, float bias) {
  if (!valid) return {0.f, 0.f, 0.f};
  const float raw = load<T>(a.delta, idx) + bias;
  const float u = load<T>(a.u, idx);
  if (!a.delta_softplus || raw > 20.f) return {raw, 1.f, u};
  return {log1pf(expf(raw)), sigmoidf(raw), u};
}

// Forward pass 1: each chunk's end state from zero, and its sum of delta.
template <class T, int NS>
__global__ void __launch_bounds__(kThreads) chunk_summary_kernel(ScanArgs a, int64_t TL, float* s_local,
                                                                 float* chunk_delta) {
  extern __shared__ float smem[];
  const int NP = kLanes * NS;
  Lane<NS> l(a, TL);
  float* Bs = smem;
  float* Cs = smem + TL * NP;
  load_bc<T>(a, l.b, l.t0, l.t1, TL, NP, Bs, Cs);
  __syncthreads();
  float s[NS] = {};
  float sum_dt = 0.f;
  for (int64_t t = l.t0; t < l.t1; ++t) {
    const Step st = load_step<T>(a, (l.b * a.L + t) * a.E + l.d, l.valid, l.bias);
    sum_dt += st.dt;
    const float* Bt = Bs + (t - l.t0) * NP;
#pragma unroll
    for (int i = 0; i < NS; ++i) s[i] = exp2_approx(st.dt * l.A2[i]) * s[i] + st.dt * Bt[l.n(i)] * st.u;
  }
#pragma unroll
  for (int i = 0; i < NS; ++i)
    if (l.has_state(a, i)) s_local[l.chunk_state(a, l.c, i)] = s[i];
  if (l.valid && l.lane == 0) chunk_delta[l.chunk_channel(a, l.c)] = sum_dt;
}

// Forward pass 2: the chunk's start state from the earlier chunks' summaries, then the outputs.
template <class T, int NS>
__global__ void __launch_bounds__(kThreads) chunk_output_kernel(ScanArgs a, int64_t TL, const float* s_local,
                                                                const float* chunk_delta, float* checkpoints,
                                                                void* out, float* last_state) {
  extern __shared__ float smem[];
  const int NP = kLanes * NS;
  Lane<NS> l(a, TL);
  float* Bs = smem;
  float* Cs = smem + TL * NP;
  load_bc<T>(a, l.b, l.t0, l.t1, TL, NP, Bs, Cs);
  __syncthreads();
  float s[NS] = {};
  for (int64_t c = 0; c < l.c; ++c) {
    const float sum_dt = l.valid ? chunk_delta[l.chunk_channel(a, c)] : 0.f;
#pragma unroll
    for (int i = 0; i < NS; ++i)
      s[i] = exp2_approx(sum_dt * l.A2[i]) * s[i] + (l.has_state(a, i) ? s_local[l.chunk_state(a, c, i)] : 0.f);
  }
#pragma unroll
  for (int i = 0; i < NS; ++i)
    if (l.has_state(a, i)) checkpoints[l.chunk_state(a, l.c, i)] = s[i];
  const float Dd = l.valid && a.D ? a.D[l.d] : 0.f;
  for (int64_t t = l.t0; t < l.t1; ++t) {
    const int64_t idx = (l.b * a.L + t) * a.E + l.d;
    const Step st = load_step<T>(a, idx, l.valid, l.bias);
    const float* Bt = Bs + (t - l.t0) * NP;
    const float* Ct = Cs + (t - l.t0) * NP;
    float y = 0.f;
#pragma unroll
    for (int i = 0; i < NS; ++i) {
      s[i] = exp2_approx(st.dt * l.A2[i]) * s[i] + st.dt * Bt[l.n(i)] * st.u;
      y += s[i] * Ct[l.n(i)];
    }
    y += __shfl_xor_sync(0xffffffffu, y, 1);
    y += __shfl_xor_sync(0xffffffffu, y, 2);
    if (l.valid && l.lane == 0) {
      y += Dd * st.u;
      if (a.z) {
        const float zv = load<T>(a.z, idx);
        y *= zv * sigmoidf(zv);
      }
      static_cast<T*>(out)[idx] = from_compute<T>(y);
    }
  }
  if (l.c == l.nc - 1)
#pragma unroll
    for (int i = 0; i < NS; ++i)
      if (l.has_state(a, i)) last_state[(l.b * a.E + l.d) * a.N + l.n(i)] = s[i];
}

// dy = dout * silu(z) (or dout), and dz's factor: dz = dout * y * silu'(z).
struct GateGrad {
  float dy, zfac, dout;
};
template <class T>
__device__ __forceinline__ GateGrad gate(const ScanArgs& a, const void* dout, int64_t idx, bool valid) {
  if (!valid) return {0.f, 0.f, 0.f};
  const float go = load<T>(dout, idx);
  if (!a.z) return {go, 0.f, go};
  const float zv = load<T>(a.z, idx), sg = sigmoidf(zv);
  return {go * zv * sg, go * sg * (1.f + zv * (1.f - sg)), go};
}

// Backward pass 1: each chunk's reverse carry from a zero end: W = a_{t0} g_{t0}.
template <class T, int NS>
__global__ void __launch_bounds__(kThreads) chunk_reverse_summary_kernel(ScanArgs a, int64_t TL, const void* dout,
                                                                         float* w_local) {
  extern __shared__ float smem[];
  const int NP = kLanes * NS;
  Lane<NS> l(a, TL);
  float* Bs = smem;
  float* Cs = smem + TL * NP;
  load_bc<T>(a, l.b, l.t0, l.t1, TL, NP, Bs, Cs);
  __syncthreads();
  float carry[NS] = {};
  for (int64_t t = l.t1 - 1; t >= l.t0; --t) {
    const int64_t idx = (l.b * a.L + t) * a.E + l.d;
    const Step st = load_step<T>(a, idx, l.valid, l.bias);
    const GateGrad gg = gate<T>(a, dout, idx, l.valid);
    const float* Ct = Cs + (t - l.t0) * NP;
#pragma unroll
    for (int i = 0; i < NS; ++i) carry[i] = exp2_approx(st.dt * l.A2[i]) * (Ct[l.n(i)] * gg.dy + carry[i]);
  }
#pragma unroll
  for (int i = 0; i < NS; ++i)
    if (l.has_state(a, i)) w_local[l.chunk_state(a, l.c, i)] = carry[i];
}

// Sum over the eight channels of a warp that share this lane's states (lanes 4 apart).
__device__ __forceinline__ float channel_sum(float v) {
  v += __shfl_xor_sync(0xffffffffu, v, 4);
  v += __shfl_xor_sync(0xffffffffu, v, 8);
  v += __shfl_xor_sync(0xffffffffu, v, 16);
  return v;
}
__device__ __forceinline__ float lane_sum(float v) {
  v += __shfl_xor_sync(0xffffffffu, v, 1);
  v += __shfl_xor_sync(0xffffffffu, v, 2);
  return v;
}

struct BackwardBuffers {
  const float* checkpoints;
  const float* chunk_delta;
  const float* w_local;
  float* dbc_partial;    // (2, E blocks, B, L, N)
  float* param_partial;  // dA (B, nc, E, N), then dD and dbias (B, nc, E) each
};

// Backward pass 2: the chunk's true carry, its states recomputed, and the reverse recurrence.
template <class T, int NS>
__global__ void __launch_bounds__(kThreads) chunk_backward_kernel(ScanArgs a, int64_t TL, const void* dout,
                                                                  BackwardBuffers buf, ScanGradArgs g) {
  constexpr int K = sub_length<NS>();
  extern __shared__ float smem[];
  const int NP = kLanes * NS;
  Lane<NS> l(a, TL);
  const int64_t chunk_len = l.t1 - l.t0;
  const int64_t subs = (chunk_len + K - 1) / K;
  float* Bs = smem;
  float* Cs = Bs + TL * NP;
  float* sub_state = Cs + TL * NP;                              // (TL / K, NS, kThreads)
  float* red = sub_state + ((TL + K - 1) / K) * NS * kThreads;  // (2, kWarps, K, NP)
  load_bc<T>(a, l.b, l.t0, l.t1, TL, NP, Bs, Cs);

  // The carry entering from the later chunks: R(c) = W(c+1) + exp(A sum_delta(c+1)) R(c+1).
  float carry[NS] = {};
  for (int64_t c = l.nc - 1; c > l.c; --c) {
    const float sum_dt = l.valid ? buf.chunk_delta[l.chunk_channel(a, c)] : 0.f;
#pragma unroll
    for (int i = 0; i < NS; ++i)
      carry[i] =
          (l.has_state(a, i) ? buf.w_local[l.chunk_state(a, c, i)] : 0.f) + exp2_approx(sum_dt * l.A2[i]) * carry[i];
  }
  // Walk the chunk forward from its checkpoint, keeping every K-th state.
  float s[NS];
#pragma unroll
  for (int i = 0; i < NS; ++i) s[i] = l.has_state(a, i) ? buf.checkpoints[l.chunk_state(a, l.c, i)] : 0.f;
  __syncthreads();
  for (int64_t j = 0; j < subs; ++j) {
#pragma unroll
    for (int i = 0; i < NS; ++i) sub_state[(j * NS + i) * kThreads + threadIdx.x] = s[i];
    for (int64_t t = l.t0 + j * K; t < l.t0 + (j + 1) * K && t < l.t1; ++t) {
      const Step st = load_step<T>(a, (l.b * a.L + t) * a.E + l.d, l.valid, l.bias);
      const float* Bt = Bs + (t - l.t0) * NP;
#pragma unroll
      for (int i = 0; i < NS; ++i) s[i] = exp2_approx(st.dt * l.A2[i]) * s[i] + st.dt * Bt[l.n(i)] * st.u;
    }
  }

  const float Dd = l.valid && a.D ? a.D[l.d] : 0.f;
  float dA_acc[NS] = {};
  float dD_acc = 0.f, dbias_acc = 0.f;
  const int warp = threadIdx.x / 32;
  const bool warp_leader = (threadIdx.x % 32) < kLanes;  // channel 0 of the warp, one per lane
  const int64_t eb = blockIdx.x, n_eb = gridDim.x;

  for (int64_t j = subs - 1; j >= 0; --j) {
    const int64_t ts = l.t0 + j * K;
    // Recompute this sub-chunk's states into registers.
    float s_in[NS], st_s[K][NS], st_dt[K], st_dsp[K], st_u[K];
#pragma unroll
    for (int i = 0; i < NS; ++i) s_in[i] = s[i] = sub_state[(j * NS + i) * kThreads + threadIdx.x];
#pragma unroll
    for (int k = 0; k < K; ++k) {
      const int64_t t = ts + k;
      const bool live = t < l.t1;
      const Step st = live ? load_step<T>(a, (l.b * a.L + t) * a.E + l.d, l.valid, l.bias) : Step{0.f, 0.f, 0.f};
      st_dt[k] = st.dt, st_dsp[k] = st.dsp, st_u[k] = st.u;
      const float* Bt = Bs + (live ? t - l.t0 : 0) * NP;
#pragma unroll
      for (int i = 0; i < NS; ++i) {
        s[i] = live ? exp2_approx(st.dt * l.A2[i]) * s[i] + st.dt * Bt[l.n(i)] * st.u : s[i];
        st_s[k][i] = s[i];
      }
    }
    // Reverse through the sub-chunk.
#pragma unroll
    for (int k = K - 1; k >= 0; --k) {
      const int64_t t = ts + k;
      if (t >= l.t1) continue;  // uniform across the block: every thread shares t
      const int64_t idx = (l.b * a.L + t) * a.E + l.d;
      const float dt = st_dt[k], u = st_u[k];
      const float* Bt = Bs + (t - l.t0) * NP;
      const float* Ct = Cs + (t - l.t0) * NP;
      const GateGrad gg = gate<T>(a, dout, idx, l.valid);
      float y = 0.f, du = 0.f, ddelta = 0.f;
#pragma unroll
      for (int i = 0; i < NS; ++i) {
        const float Bn = Bt[l.n(i)], Cn = Ct[l.n(i)];
        const float sprev = k > 0 ? st_s[k > 0 ? k - 1 : 0][i] : s_in[i];
        const float at = exp2_approx(dt * l.A2[i]);
        const float gn = Cn * gg.dy + carry[i];
        y += st_s[k][i] * Cn;
        const float sa = sprev * at;
        du += gn * dt * Bn;
        ddelta += gn * (l.A2[i] * (1.f / kLog2e) * sa + Bn * u);
        dA_acc[i] += gn * sa * dt;
        const float dB = channel_sum(gn * dt * u);
        const float dC = channel_sum(gg.dy * st_s[k][i]);
        if (warp_leader) {
          red[((0 * kWarps + warp) * K + k) * NP + l.n(i)] = dB;
          red[((1 * kWarps + warp) * K + k) * NP + l.n(i)] = dC;
        }
        carry[i] = at * gn;
      }
      y = lane_sum(y);
      du = lane_sum(du);
      ddelta = lane_sum(ddelta);
      if (l.valid && l.lane == 0) {
        y += Dd * u;
        du += Dd * gg.dy;
        dD_acc += gg.dy * u;
        const float draw = ddelta * st_dsp[k];
        dbias_acc += draw;
        static_cast<T*>(g.du)[idx] = from_compute<T>(du);
        static_cast<T*>(g.ddelta)[idx] = from_compute<T>(draw);
        if (a.z) static_cast<T*>(g.dz)[idx] = from_compute<T>(gg.zfac * y);
      }
    }
    // This block's share of dB and dC for the sub-chunk: add the warps' sums in order.
    __syncthreads();
    for (int idx = threadIdx.x; idx < 2 * K * NP; idx += kThreads) {
      const int which = idx / (K * NP), k = (idx / NP) % K, n = idx % NP;
      const int64_t t = ts + k;
      if (t >= l.t1 || n >= a.N) continue;
      float v = 0.f;
      for (int w = 0; w < kWarps; ++w) v += red[((which * kWarps + w) * K + k) * NP + n];
      buf.dbc_partial[(((which * n_eb + eb) * a.B + l.b) * a.L + t) * a.N + n] = v;
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < NS; ++i)
    if (l.has_state(a, i)) buf.param_partial[l.chunk_state(a, l.c, i)] = dA_acc[i];
  if (l.valid && l.lane == 0) {
    const int64_t rows = a.B * l.nc * a.E * a.N, per = a.B * l.nc * a.E;
    buf.param_partial[rows + l.chunk_channel(a, l.c)] = dD_acc;
    buf.param_partial[rows + per + l.chunk_channel(a, l.c)] = dbias_acc;
  }
}

// dB, dC: sum the E-block partials in order and convert to the activation dtype.
template <class T>
__global__ void reduce_bc_kernel(const float* partial, int64_t n_eb, int64_t count, T* dB, T* dC) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < 2 * count; i += int64_t(gridDim.x) * blockDim.x) {
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

// Calls f with the activation type tag and the states per lane as a compile-time constant.
template <class F>
void dispatch_scan(DType act, int64_t N, F&& f) {
  SERPENT_CHECK(N >= 1 && N <= 64, "selective_scan: d_state must be in [1, 64] on the GPU, got ", N);
  auto with_ns = [&](auto* tag) {
    if (N <= 4) return f(tag, std::integral_constant<int, 1>{});
    if (N <= 8) return f(tag, std::integral_constant<int, 2>{});
    if (N <= 16) return f(tag, std::integral_constant<int, 4>{});
    if (N <= 32) return f(tag, std::integral_constant<int, 8>{});
    return f(tag, std::integral_constant<int, 16>{});
  };
  if (act == DType::bf16) return with_ns(static_cast<__nv_bfloat16*>(nullptr));
  SERPENT_CHECK(act == DType::f32, "selective_scan: activations must be f32 or bf16 on the GPU, got ",
                dtype_name(act));
  return with_ns(static_cast<float*>(nullptr));
}

int64_t states_per_lane(int64_t N) { return N <= 4 ? 1 : N <= 8 ? 2 : N <= 16 ? 4 : N <= 32 ? 8 : 16; }

// Shared memory per block of the backward kernel; the forward kernels need the first term only.
size_t backward_smem(int64_t T, int NS, int K) {
  const int64_t NP = kLanes * NS;
  return sizeof(float) * size_t(2 * T * NP + ((T + K - 1) / K) * NS * kThreads + 2 * kWarps * K * NP);
}

template <class Kernel>
void allow_smem(Kernel kernel, size_t bytes) {
  if (bytes > 48 * 1024) CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
}

}  // namespace

int64_t scan_chunk_length(int64_t L, int64_t N) {
  // Longest chunk whose sub-chunk checkpoints fit in 64 floats per thread (32 KB per block), at
  // most 128 steps; shorter sequences are one chunk.
  const int64_t NS = states_per_lane(N);
  const int64_t K = NS <= 4 ? 8 : 32 / NS;
  const int64_t T = std::min<int64_t>(128, 64 * K / NS);
  return std::max<int64_t>(1, std::min(L, T));
}

void scan_forward(const ScanArgs& a, void* out, float* last_state, float* checkpoints, float* chunk_delta,
                  int device) {
  cudaStream_t s = stream(device);
  const int64_t T = scan_chunk_length(a.L, a.N), nc = scan_chunks(a.L, a.N);
  const dim3 grid(unsigned((a.E + kChannels - 1) / kChannels), unsigned(nc), unsigned(a.B));
  dispatch_scan(a.act, a.N, [&](auto* tag, auto ns) {
    using T_ = std::remove_pointer_t<decltype(tag)>;
    constexpr int NS = decltype(ns)::value;
    const size_t smem = sizeof(float) * size_t(2 * T * kLanes * NS);
    float* s_local = nullptr;
    if (nc > 1) {
      s_local = static_cast<float*>(CachingAllocator::get().allocate(sizeof(float) * a.B * nc * a.E * a.N, device));
      allow_smem(chunk_summary_kernel<T_, NS>, smem);
      chunk_summary_kernel<T_, NS><<<grid, kThreads, smem, s>>>(a, T, s_local, chunk_delta);
      CUDA_CHECK_LAUNCH();
    } else {
      CUDA_CHECK(cudaMemsetAsync(chunk_delta, 0, sizeof(float) * a.B * a.E, s));
    }
    allow_smem(chunk_output_kernel<T_, NS>, smem);
    chunk_output_kernel<T_, NS><<<grid, kThreads, smem, s>>>(a, T, s_local, chunk_delta, checkpoints, out, last_state);
    CUDA_CHECK_LAUNCH();
    if (s_local) CachingAllocator::get().release(s_local, device);
  });
}

void scan_backward(const ScanArgs& a, const void* dout, const float* checkpoints, const float* chunk_delta,
                   const ScanGradArgs& g, int device) {
  cudaStream_t s = stream(device);
  const int64_t T = scan_chunk_length(a.L, a.N), nc = scan_chunks(a.L, a.N);
  const int64_t n_eb = (a.E + kChannels - 1) / kChannels;
  const dim3 grid(unsigned(n_eb), unsigned(nc), unsigned(a.B));
  auto& alloc = CachingAllocator::get();
  const size_t state_bytes = sizeof(float) * a.B * nc * a.E * a.N;
  float* w_local = static_cast<float*>(alloc.allocate(state_bytes, device));
  float* dbc = static_cast<float*>(alloc.allocate(sizeof(float) * 2 * n_eb * a.B * a.L * a.N, device));
  float* params = static_cast<float*>(alloc.allocate(state_bytes + sizeof(float) * 2 * a.B * nc * a.E, device));
  dispatch_scan(a.act, a.N, [&](auto* tag, auto ns) {
    using T_ = std::remove_pointer_t<decltype(tag)>;
    constexpr int NS = decltype(ns)::value;
    const size_t smem_fwd = sizeof(float) * size_t(2 * T * kLanes * NS);
    if (nc > 1) {
      allow_smem(chunk_reverse_summary_kernel<T_, NS>, smem_fwd);
      chunk_reverse_summary_kernel<T_, NS><<<grid, kThreads, smem_fwd, s>>>(a, T, dout, w_local);
      CUDA_CHECK_LAUNCH();
    }
    const size_t smem = backward_smem(T, NS, sub_length<NS>());
    allow_smem(chunk_backward_kernel<T_, NS>, smem);
    chunk_backward_kernel<T_, NS><<<grid, kThreads, smem, s>>>(
        a, T, dout, BackwardBuffers{checkpoints, chunk_delta, w_local, dbc, params}, g);
    CUDA_CHECK_LAUNCH();
    const int64_t count = a.B * a.L * a.N;
    reduce_bc_kernel<T_><<<grid_for(2 * count, 256), 256, 0, s>>>(dbc, n_eb, count, static_cast<T_*>(g.dB),
                                                                  static_cast<T_*>(g.dC));
    CUDA_CHECK_LAUNCH();
  });
  reduce_params_kernel<<<grid_for(a.E * a.N + 2 * a.E, 256), 256, 0, s>>>(params, a.B * nc, a.E, a.N, g.dA, g.dD,
                                                                          g.ddelta_bias);
  CUDA_CHECK_LAUNCH();
  alloc.release(w_local, device);
  alloc.release(dbc, device);
  alloc.release(params, device);
}

}  // namespace serpent::cuda
