// Per-device bad-id records: one record in device memory, its pinned host mirror, and an event
// that marks when the latest copy of the record has landed (see kernels/cuda/index_check.h).
#include <map>
#include <mutex>

#include "core/cuda/runtime.h"
#include "core/error.h"
#include "kernels/cuda/index_check.cuh"
#include "kernels/cuda/index_check.h"

namespace serpent::cuda {

namespace {

struct RecordState {
  BadIndexRecord* device = nullptr;
  BadIndexRecord* host = nullptr;  // pinned: the copy back is truly asynchronous
  cudaEvent_t copied = nullptr;
  bool pending = false;  // a copy has been queued since the last raise
};

class Records {
 public:
  static Records& get() {
    static Records instance;
    return instance;
  }
  std::mutex mutex;
  // Created on first use (the one-time allocations may synchronize; later calls never do).
  RecordState& at(int device) {
    RecordState& r = states_[device];
    if (!r.device) {
      stream(device);  // makes the device current
      CUDA_CHECK(cudaMalloc(&r.device, sizeof(BadIndexRecord)));
      CUDA_CHECK(cudaMemset(r.device, 0, sizeof(BadIndexRecord)));
      CUDA_CHECK(cudaHostAlloc(&r.host, sizeof(BadIndexRecord), cudaHostAllocDefault));
      *r.host = BadIndexRecord{};
      CUDA_CHECK(cudaEventCreateWithFlags(&r.copied, cudaEventDisableTiming));
    }
    return r;
  }
  RecordState* find(int device) {
    auto it = states_.find(device);
    return it == states_.end() ? nullptr : &it->second;
  }

 private:
  std::map<int, RecordState> states_;
};

// Throws for a record that has reached the host; resets it first so the next call starts clean.
void raise_if_recorded(RecordState& r, int device) {
  const BadIndexRecord rec = *r.host;
  r.pending = false;
  if (rec.state == 0) return;
  *r.host = BadIndexRecord{};
  CUDA_CHECK(cudaMemsetAsync(r.device, 0, sizeof(BadIndexRecord), stream(device)));
  if (IndexKind(rec.kind) == IndexKind::token_id)
    fail("embedding: token id ", rec.value, " at position ", rec.position, " is outside the vocabulary [0, ", rec.bound,
         ") (ids on cuda:", device, ", checked on the device)");
  fail("linear_cross_entropy: target ", rec.value, " at row ", rec.position, " is outside [0, ", rec.bound,
       ") and is not the ignore index ", rec.ignore_index, " (targets on cuda:", device, ", checked on the device)");
}

}  // namespace

BadIndexRecord* bad_index_record(int device) {
  Records& all = Records::get();
  std::lock_guard<std::mutex> lock(all.mutex);
  return all.at(device).device;
}

void publish_bad_index_record(int device) {
  Records& all = Records::get();
  std::lock_guard<std::mutex> lock(all.mutex);
  RecordState& r = all.at(device);
  cudaStream_t s = stream(device);
  CUDA_CHECK(cudaMemcpyAsync(r.host, r.device, sizeof(BadIndexRecord), cudaMemcpyDeviceToHost, s));
  CUDA_CHECK(cudaEventRecord(r.copied, s));
  r.pending = true;
}

void raise_recorded_bad_index(int device) {
  Records& all = Records::get();
  std::lock_guard<std::mutex> lock(all.mutex);
  RecordState* r = all.find(device);
  if (!r || !r->pending) return;
  const cudaError_t ready = cudaEventQuery(r->copied);
  if (ready == cudaErrorNotReady) return;
  CUDA_CHECK(ready);
  raise_if_recorded(*r, device);
}

void check_indices(int device) {
  Records& all = Records::get();
  std::lock_guard<std::mutex> lock(all.mutex);
  RecordState* r = all.find(device);
  if (!r || !r->pending) return;
  CUDA_CHECK(cudaEventSynchronize(r->copied));
  raise_if_recorded(*r, device);
}

}  // namespace serpent::cuda
