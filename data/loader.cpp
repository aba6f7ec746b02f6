// Training and validation loaders over token shards (see data/loader.h).
#include "data/loader.h"

#include <algorithm>
#include <bit>

#include "core/error.h"
#include "core/rng.h"

namespace serpent {

WindowIndex::WindowIndex(const std::vector<std::string>& shards, int64_t seq_len, bool include_partial)
    : L_(seq_len), partial_(include_partial) {
  SERPENT_CHECK(seq_len > 0, "loader: seq_len must be positive, got ", seq_len);
  SERPENT_CHECK(!shards.empty(), "loader: no shards given");
  starts_.push_back(0);
  for (const std::string& p : shards) {
    shards_.emplace_back(p);
    const int64_t T = shards_.back().size();
    // Window k covers tokens [kL, kL + L]: full windows need kL + L < T; a partial one needs two
    // tokens (one input, one target).
    const int64_t n = T < 2 ? 0 : (include_partial ? (T - 1 + L_ - 1) / L_ : (T - 1) / L_);
    starts_.push_back(starts_.back() + n);
  }
}

int64_t WindowIndex::read(int64_t w, int64_t* in, int64_t* tgt, int64_t vocab_size) const {
  const size_t s = size_t(std::upper_bound(starts_.begin(), starts_.end(), w) - starts_.begin()) - 1;
  const ShardReader& shard = shards_[s];
  const int64_t start = (w - starts_[s]) * L_;
  const int64_t len = std::min(L_ + 1, shard.size() - start);  // tokens in this window
  for (int64_t t = 0; t < len; ++t) {
    const int64_t id = shard.at(start + t);
    SERPENT_CHECK(vocab_size <= 0 || id < vocab_size, "shard '", shard.path(), "': token ", id, " at position ",
                  start + t, " is outside the vocabulary of ", vocab_size, " ids");
    if (t < L_) in[t] = id;
    if (t > 0) tgt[t - 1] = id;
  }
  for (int64_t t = len; t < L_; ++t) in[t] = 0;
  for (int64_t t = len - 1; t < L_; ++t) tgt[t] = -100;
  return len;
}

int64_t shuffled_window(int64_t p, int64_t n, uint64_t seed, int64_t epoch) {
  SERPENT_CHECK(p >= 0 && p < n, "shuffled_window: position ", p, " outside [0, ", n, ")");
  if (n == 1) return 0;
  // A balanced Feistel network on 2 * half bits is a bijection of [0, 4^half) for any round
  // function; walking the cycle until the value falls below n restricts it to [0, n).
  const int bits = std::bit_width(uint64_t(n - 1));
  const int half = (bits + 1) / 2;
  const uint64_t mask = (uint64_t(1) << half) - 1;
  const philox::U32x4 k = philox::block(uint64_t(epoch), seed);
  const uint64_t key = (uint64_t(k.v[0]) << 32) | k.v[1];
  uint64_t x = uint64_t(p);
  do {
    uint64_t l = x >> half, r = x & mask;
    for (uint64_t round = 0; round < 4; ++round) {
      const philox::U32x4 f = philox::block((round << 32) | r, key);
      const uint64_t next = l ^ (((uint64_t(f.v[0]) << 32) | f.v[1]) & mask);
      l = r;
      r = next;
    }
    x = (l << half) | r;
  } while (x >= uint64_t(n));
  return int64_t(x);
}

namespace {

void check_options(const LoaderOptions& o) {
  SERPENT_CHECK(o.batch_size > 0, "loader: batch_size must be positive, got ", o.batch_size);
  SERPENT_CHECK(o.world_size > 0 && o.rank >= 0 && o.rank < o.world_size, "loader: rank ", o.rank,
                " outside [0, world_size = ", o.world_size, ")");
  SERPENT_CHECK(o.prefetch >= 0, "loader: prefetch must be >= 0, got ", o.prefetch);
}

Batch empty_batch(int64_t rows, int64_t L) {
  return {Tensor::empty({rows, L}, DType::i64), Tensor::empty({rows, L}, DType::i64)};
}

}  // namespace

DataLoader::DataLoader(const std::vector<std::string>& shards, const LoaderOptions& options)
    : opt_(options), index_((check_options(options), shards), options.seq_len, false) {
  const int64_t per_step = opt_.world_size * opt_.batch_size;
  SERPENT_CHECK(index_.size() >= per_step, "loader: the ", shards.size(), " shards hold ", index_.size(),
                " windows of ", opt_.seq_len + 1, " tokens, fewer than one step needs (world_size ", opt_.world_size,
                " x batch_size ", opt_.batch_size, " = ", per_step, ")");
  returned_ = {opt_.seed, 0, 0, opt_.seq_len, index_.size()};
  produced_ = returned_;
  start();
}

DataLoader::~DataLoader() {
  stop();
}

Batch DataLoader::make_batch(const LoaderState& at) const {
  const int64_t B = opt_.batch_size, L = opt_.seq_len;
  Batch b = empty_batch(B, L);
  int64_t* in = b.inputs.data<int64_t>();
  int64_t* tgt = b.targets.data<int64_t>();
  for (int64_t i = 0; i < B; ++i) {
    const int64_t pos = at.offset + opt_.rank * B + i;
    index_.read(shuffled_window(pos, index_.size(), at.seed, at.epoch), in + i * L, tgt + i * L, opt_.vocab_size);
  }
  return b;
}

LoaderState DataLoader::advance(LoaderState s) const {
  const int64_t per_step = opt_.world_size * opt_.batch_size;
  s.offset += per_step;
  if (s.offset + per_step > s.num_windows) {
    s.epoch += 1;
    s.offset = 0;
  }
  return s;
}

void DataLoader::start() {
  if (opt_.prefetch == 0) return;
  stopping_ = false;
  worker_ = std::thread([this] { produce(); });
}

void DataLoader::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
  queue_.clear();
  error_ = nullptr;
}

void DataLoader::produce() {
  for (;;) {
    LoaderState at;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || queue_.size() < size_t(opt_.prefetch); });
      if (stopping_) return;
      at = produced_;
    }
    Ready r;
    try {
      r.batch = make_batch(at);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu_);
      error_ = std::current_exception();
      cv_.notify_all();
      return;
    }
    r.after = advance(at);
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    produced_ = r.after;
    queue_.push_back(std::move(r));
    cv_.notify_all();
  }
}

Batch DataLoader::next_batch() {
  if (opt_.prefetch == 0) {
    Batch b = make_batch(returned_);
    returned_ = advance(returned_);
    return b;
  }
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return !queue_.empty() || error_; });
  if (queue_.empty()) std::rethrow_exception(error_);
  Ready r = std::move(queue_.front());
  queue_.pop_front();
  returned_ = r.after;
  cv_.notify_all();
  return std::move(r.batch);
}

LoaderState DataLoader::state() const {
  return returned_;
}

void DataLoader::restore(const LoaderState& s) {
  SERPENT_CHECK(s.seq_len == opt_.seq_len && s.num_windows == index_.size(), "loader: cannot restore a position from ",
                "data of ", s.num_windows, " windows of ", s.seq_len + 1, " tokens onto data of ", index_.size(),
                " windows of ", opt_.seq_len + 1, " tokens (other shards or another seq_len)");
  SERPENT_CHECK(s.epoch >= 0 && s.offset >= 0 && s.offset < s.num_windows, "loader: bad saved position (epoch ",
                s.epoch, ", offset ", s.offset, ")");
  stop();
  // A state saved with another world_size or batch_size continues the same order from the same
  // window; if the rest of the epoch is too short for a step, the next epoch starts.
  LoaderState at = s;
  if (at.offset + opt_.world_size * opt_.batch_size > at.num_windows) {
    at.epoch += 1;
    at.offset = 0;
  }
  returned_ = produced_ = at;
  start();
}

ValLoader::ValLoader(const std::vector<std::string>& shards, const LoaderOptions& options)
    : opt_(options), index_((check_options(options), shards), options.seq_len, true) {
  SERPENT_CHECK(index_.size() > 0, "validation loader: the ", shards.size(), " shards hold no tokens to predict");
}

int64_t ValLoader::num_windows() const {
  const int64_t n = index_.size(), w = opt_.world_size, r = opt_.rank;
  return n / w + (r < n % w ? 1 : 0);
}

int64_t ValLoader::num_batches() const {
  return (num_windows() + opt_.batch_size - 1) / opt_.batch_size;
}

int64_t ValLoader::num_target_tokens() const {
  int64_t total = 0;
  for (const ShardReader& s : index_.shards()) total += std::max<int64_t>(s.size() - 1, 0);
  return total;
}

bool ValLoader::next(Batch& batch) {
  const int64_t mine = num_windows();
  if (next_ >= mine) return false;
  const int64_t rows = std::min(opt_.batch_size, mine - next_), L = opt_.seq_len;
  batch = empty_batch(rows, L);
  int64_t* in = batch.inputs.data<int64_t>();
  int64_t* tgt = batch.targets.data<int64_t>();
  for (int64_t i = 0; i < rows; ++i) {
    const int64_t w = (next_ + i) * opt_.world_size + opt_.rank;
    index_.read(w, in + i * L, tgt + i * L, opt_.vocab_size);
  }
  next_ += rows;
  return true;
}

}  // namespace serpent
