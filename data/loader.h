// Data loaders over token shards (data/shard.h).
//
// Training: DataLoader
//   Each shard is cut into windows of L + 1 tokens that start every L tokens (window k of a shard
//   is tokens [k L, k L + L], so inputs and targets of consecutive windows tile the shard; the
//   last < L + 1 tokens of a shard are not used). All windows of all shards are numbered
//   0 .. N-1 and every epoch visits them in a pseudo-random order drawn from (seed, epoch): a
//   keyed bijection of [0, N) (a Feistel network with cycle walking), so the order costs no
//   memory and any position in it is reached in O(1).
//   A step consumes world_size * B consecutive windows of that order: rank r takes the B at
//   offset r * B, so ranks never share a window. When fewer than world_size * B windows are left
//   the epoch ends and the next starts with a fresh order.
//
//   Usage by a trainer:
//     DataLoader loader(find_shards(dir, "train"), {.batch_size = B, .seq_len = L, .seed = s,
//                                                   .rank = r, .world_size = w});
//     loader.restore(saved);                 // optional: resume where a checkpoint left off
//     Batch b = loader.next_batch();         // b.inputs, b.targets: (B, L) i64 on the cpu
//     LoaderState s = loader.state();        // store in the checkpoint (s.to_array(): 5 integers)
//
//   state() is the position after the last batch next_batch() returned (not what the prefetch
//   thread has read ahead); restore(s) makes the next batches exactly those that followed s.
//   The state is the same on every rank (it counts windows consumed by all ranks together).
//
//   A background thread prepares the next `prefetch` batches, so next_batch() returns at once
//   unless the loader cannot keep up. Errors in it (a token outside the vocabulary) are thrown
//   from next_batch().
//
// Validation: ValLoader
//   Visits the windows of the val shards once, in shard order, rank r taking windows r, r + w,
//   r + 2w, ... The last, shorter window of each shard is included, padded to L with input 0 and
//   target -100 (cross_entropy's ignore index), so every token of the split but the first of
//   each shard is a target exactly once. The last batch of a rank may have fewer than B rows.
#pragma once

#include <array>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/tensor.h"
#include "data/shard.h"

namespace serpent {

struct Batch {
  Tensor inputs;   // (rows, L) i64
  Tensor targets;  // (rows, L) i64: inputs shifted left by one token; -100 where padded
};

struct LoaderOptions {
  int64_t batch_size = 8;  // B: rows per rank and step
  int64_t seq_len = 256;   // L
  uint64_t seed = 0;
  int64_t rank = 0, world_size = 1;
  int prefetch = 4;        // batches prepared ahead by the background thread (0: none)
  int64_t vocab_size = 0;  // when > 0, every token read is checked against it
};

// The training loader's position: a few integers a checkpoint stores.
struct LoaderState {
  uint64_t seed = 0;
  int64_t epoch = 0;
  int64_t offset = 0;       // windows of this epoch's order consumed by all ranks together
  int64_t seq_len = 0;      // the L and window count of the data it belongs to, so that a state
  int64_t num_windows = 0;  // restored onto other data or another L is refused

  std::array<int64_t, 5> to_array() const { return {int64_t(seed), epoch, offset, seq_len, num_windows}; }
  static LoaderState from_array(const std::array<int64_t, 5>& a) { return {uint64_t(a[0]), a[1], a[2], a[3], a[4]}; }
  bool operator==(const LoaderState&) const = default;
};

// The windows of a list of shards: window w is L + 1 tokens of one shard.
class WindowIndex {
 public:
  WindowIndex(const std::vector<std::string>& shards, int64_t seq_len, bool include_partial);
  int64_t size() const { return starts_.back(); }
  int64_t seq_len() const { return L_; }
  // Reads window w into in/tgt (L values each), padding a short window; returns its length.
  int64_t read(int64_t w, int64_t* in, int64_t* tgt, int64_t vocab_size) const;
  const std::vector<ShardReader>& shards() const { return shards_; }

 private:
  std::vector<ShardReader> shards_;
  std::vector<int64_t> starts_;  // starts_[s]: the first window of shard s; back() = total
  int64_t L_;
  bool partial_;
};

// Position p of epoch `epoch`'s visiting order over n windows (a bijection of [0, n)).
int64_t shuffled_window(int64_t p, int64_t n, uint64_t seed, int64_t epoch);

class DataLoader {
 public:
  DataLoader(const std::vector<std::string>& shards, const LoaderOptions& options);
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  Batch next_batch();
  LoaderState state() const;
  void restore(const LoaderState& s);

  int64_t num_windows() const { return index_.size(); }
  int64_t steps_per_epoch() const { return index_.size() / (opt_.world_size * opt_.batch_size); }

 private:
  struct Ready {
    Batch batch;
    LoaderState after;
  };
  Batch make_batch(const LoaderState& at) const;
  LoaderState advance(LoaderState s) const;
  void start();
  void stop();
  void produce();

  LoaderOptions opt_;
  WindowIndex index_;
  LoaderState returned_;  // after the last batch handed out
  LoaderState produced_;  // after the last batch the producer made

  std::thread worker_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Ready> queue_;
  std::exception_ptr error_;
  bool stopping_ = false;
};

class ValLoader {
 public:
  ValLoader(const std::vector<std::string>& shards, const LoaderOptions& options);
  // The next batch of this rank's windows; false once they are all visited (reset() to go again).
  bool next(Batch& batch);
  void reset() { next_ = 0; }
  int64_t num_batches() const;        // of this rank
  int64_t num_windows() const;        // of this rank
  int64_t num_target_tokens() const;  // targets that are not padding, all ranks together

 private:
  LoaderOptions opt_;
  WindowIndex index_;
  int64_t next_ = 0;  // index into this rank's windows
};

}  // namespace serpent
