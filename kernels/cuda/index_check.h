// Validation of ids that already live on a GPU (token ids for embedding, targets for the loss),
// without a host sync in the training step (kernels/cuda/index_check.cu).
//
// Ids that arrive from the host data loader on the cpu are checked on the host before upload, with
// an immediate error. For ids already on the device, the consuming kernel checks each id as it
// reads it: a bad one is not dereferenced (embedding writes a NaN row, the loss a NaN row loss, so
// the loss turns non-finite), and the first bad id any thread sees is recorded in a per-device
// record in device memory. After the kernel, an async copy brings the record into pinned host
// memory. The host looks at that copy at the start of the next embedding or loss call on the
// device (only if the copy has already landed: it never waits), and in check_indices, which waits;
// either throws the same serpent::Error the cpu check would have, naming the op, id and position.
// An error therefore surfaces at the latest one call later, or at the next check_indices (call it
// where the host syncs anyway, e.g. when it reads the loss).
#pragma once

namespace serpent::cuda {

// Throws if a kernel on `device` recorded a bad id and the record has reached the host; never waits.
void raise_recorded_bad_index(int device);
// Waits for the work queued on `device`, then throws as raise_recorded_bad_index.
void check_indices(int device);

}  // namespace serpent::cuda
