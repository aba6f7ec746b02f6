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

}  // namespace serpent
