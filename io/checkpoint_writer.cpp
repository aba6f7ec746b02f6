#include "io/checkpoint_writer.h"

#include <filesystem>

namespace serpent {

CheckpointWriter::~CheckpointWriter() {
  if (thread_.joinable()) thread_.join();
}

void CheckpointWriter::save(const std::string& path, Checkpoint c, int64_t keep_last) {
  wait();
  auto write = [this, path, keep_last](Checkpoint ckpt) {
    const auto t0 = std::chrono::steady_clock::now();
    try {
      save_checkpoint(path, ckpt);
      prune_checkpoints(std::filesystem::path(path).parent_path().string(), keep_last);
    } catch (...) {
      error_ = std::current_exception();
    }
    write_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  if (async_) {
    thread_ = std::thread(write, std::move(c));
  } else {
    write(std::move(c));
    wait();
  }
}

void CheckpointWriter::wait() {
  if (thread_.joinable()) thread_.join();
  if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

NamedTensors host_copies(const NamedTensors& tensors) {
  NamedTensors out;
  out.reserve(tensors.size());
  for (const auto& [name, t] : tensors)
    out.emplace_back(name, t.device().is_cpu() ? t.clone() : t.detach().to(Device::cpu()));
  return out;
}

namespace {
constexpr size_t kStagingAlignment = 64;  // every view starts on a cache line (and any dtype's size)

size_t aligned(size_t n) {
  return (n + kStagingAlignment - 1) / kStagingAlignment * kStagingAlignment;
}

double seconds_between(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}
}  // namespace

HostStaging::~HostStaging() {
  if (pending_.valid()) pending_.wait();
}

size_t HostStaging::bytes_for(const NamedTensors& tensors) {
  size_t n = 0;
  for (const auto& [name, t] : tensors) n += aligned(t.nbytes());
  return n;
}

void HostStaging::reserve(size_t bytes) {
  if (pending_.valid() || capacity() >= bytes) return;
  pending_ = std::async(std::launch::async, [bytes] { return Storage::pinned_host(bytes); });
}

std::vector<NamedTensors> HostStaging::copy(const std::vector<NamedTensors>& groups) {
  const auto t0 = std::chrono::steady_clock::now();
  size_t need = 0;
  for (const NamedTensors& g : groups) need += bytes_for(g);
  if (pending_.valid()) {
    std::shared_ptr<Storage> reserved = pending_.get();
    if (reserved->nbytes() >= need) buffer_ = std::move(reserved);
  }
  // A buffer that views of the last copy still share, or one too small, is not written over.
  if (!buffer_ || buffer_.use_count() > 1 || buffer_->nbytes() < need) {
    buffer_.reset();
    buffer_ = Storage::pinned_host(need);
  }
  const auto t1 = std::chrono::steady_clock::now();

  std::vector<NamedTensors> out(groups.size());
  size_t offset = 0;
  for (size_t i = 0; i < groups.size(); ++i) {
    out[i].reserve(groups[i].size());
    for (const auto& [name, t] : groups[i]) {
      auto impl = std::make_shared<TensorImpl>();
      impl->storage = buffer_;
      impl->offset = int64_t(offset / dtype_size(t.dtype()));
      impl->shape = t.shape();
      impl->dtype = t.dtype();
      Tensor view(std::move(impl));
      copy_bytes(view.data_ptr(), Device::cpu(), t.data_ptr(), t.device(), t.nbytes());
      out[i].emplace_back(name, std::move(view));
      offset += aligned(t.nbytes());
    }
  }
  alloc_seconds_ = seconds_between(t0, t1);
  copy_seconds_ = seconds_between(t1, std::chrono::steady_clock::now());
  return out;
}

}  // namespace serpent
