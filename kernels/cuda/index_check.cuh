// Device side of the bad-id record (see kernels/cuda/index_check.h). .cu files only.
#pragma once

#include <cstdint>

namespace serpent::cuda {

enum class IndexKind : int { token_id = 0, target = 1 };

struct BadIndexRecord {
  unsigned long long state;  // 0: nothing recorded; 1: the fields below hold the first report
  int kind;                  // IndexKind
  long long position, value, bound, ignore_index;
};

// Records a bad id unless one is already recorded (the first thread to claim the record wins).
__device__ __forceinline__ void record_bad_index(BadIndexRecord* r, IndexKind kind, int64_t position, int64_t value,
                                                 int64_t bound, int64_t ignore_index) {
  if (atomicCAS(&r->state, 0ull, 1ull) != 0ull) return;
  r->kind = int(kind);
  r->position = position;
  r->value = value;
  r->bound = bound;
  r->ignore_index = ignore_index;
}

// Host side, for launchers: the device's record to hand to a kernel, and, after that kernel is
// queued, the async copy of the record to the host.
BadIndexRecord* bad_index_record(int device);
void publish_bad_index_record(int device);

}  // namespace serpent::cuda
