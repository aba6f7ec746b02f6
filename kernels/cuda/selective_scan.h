// The selective scan on the GPU (kernels/cuda/selective_scan.cu); the CPU twin and the math are
// in kernels/cpu/selective_scan.h.
//
// Parallel layout: four threads share one (batch, channel) and split its N states between them,
// 32 channels make a block, and time is cut into chunks that run in parallel when batch x
// channels alone would leave the GPU idle:
//   forward  pass 1: each chunk's end state from a zero start, and the chunk's sum of delta
//            pass 2: each chunk's true start state (combining the earlier chunks' summaries:
//                    s_in(c) = exp(A sum_delta(c-1)) s_in(c-1) + s_end_local(c-1)), then the
//                    outputs; the state at every segment start (S steps) is kept for backward.
//   backward pass 1: each chunk's reverse-recurrence carry from a zero end
//            pass 2: the true carry from the later chunks, then segment by segment from the
//                    end: states recomputed from the segment's checkpoint (every K-th kept in
//                    shared memory, K at a time in registers), then the reverse recurrence with
//                    every gradient.
// Gradients summed over channels (dB, dC) go through per-block partials and a fixed-order
// second pass, as do those summed over batch and time (dA, dD, d delta_bias): the result is
// bitwise reproducible. exp(delta A), delta B u and the states are never stored at
// (B, L, E, N).
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace serpent::cuda {

struct ScanArgs {
  const void* u;            // (B, L, E) act
  const void* delta;        // (B, L, E) act, before bias and softplus
  const float* A;           // (E, N)
  const void* Bm;           // (B, L, N) act
  const void* Cm;           // (B, L, N) act
  const float* D;           // (E) or null
  const void* z;            // (B, L, E) act or null
  const float* delta_bias;  // (E) or null
  bool delta_softplus;
  int64_t B, L, E, N;
  DType act;  // f32 or bf16
};

// How a scan is cut: time chunks that run in parallel (when batch x channels cannot fill the
// GPU alone) and the segments whose start states the forward keeps for backward.
struct SelectiveScanGeometry {
  int64_t chunk_length, chunks, segments;
};
int64_t selective_scan_chunk_length(int64_t L, int64_t N, int64_t blocks_per_chunk, int sms);
SelectiveScanGeometry selective_scan_geometry(int64_t B, int64_t L, int64_t E, int64_t N, int device);

// out (B, L, E) act; last_state (B, E, N) f32; checkpoints (B, segments, E, N) f32 and
// chunk_delta (B, chunks, E) f32 are written for backward (see selective_scan_geometry).
void selective_scan_forward(const ScanArgs& a, void* out, float* last_state, float* checkpoints, float* chunk_delta, int device);

struct ScanGradArgs {
  void* du;            // (B, L, E) act
  void* ddelta;        // (B, L, E) act
  float* dA;           // (E, N)
  void* dB;            // (B, L, N) act
  void* dC;            // (B, L, N) act
  float* dD;           // (E) or null
  void* dz;            // (B, L, E) act or null
  float* ddelta_bias;  // (E) or null
};

// dout (B, L, E) act. Uses the forward's checkpoints and chunk_delta.
void selective_scan_backward(const ScanArgs& a, const void* dout, const float* checkpoints, const float* chunk_delta,
                   const ScanGradArgs& g, int device);

}  // namespace serpent::cuda
