// The prepare pipeline: one reader thread, encoding workers, and the calling thread writing
// shards in document order (see data/prepare.h).
#include "data/prepare.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/error.h"
#include "core/rng.h"
#include "data/sha256.h"
#include "data/shard.h"
#include "data/text_source.h"
#include "data/tokenizer.h"

namespace serpent {

namespace fs = std::filesystem;

namespace {

constexpr size_t kChunkBytes = 1 << 22;  // documents are handed to workers in chunks of ~4 MB
constexpr size_t kChunkDocs = 4096;

struct Chunk {
  int64_t seq = 0, first_doc = 0;
  uint64_t input_pos = 0;  // input bytes consumed once this chunk was read, for the progress bar
  uint64_t text_pos = 0;   // the text they gave (decompressed)
  std::vector<std::string> docs;
};

struct Encoded {
  std::vector<int32_t> train, val;
  int64_t docs_train = 0, docs_val = 0, bytes = 0, bytes_val = 0;
  uint64_t input_pos = 0, text_pos = 0;
};

// The files of a dataset in `dir`: its shards and manifest.
std::vector<fs::path> dataset_files(const std::string& dir) {
  std::vector<fs::path> found;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    const bool shard = e.path().extension() == ".bin" && (name.rfind("train_", 0) == 0 || name.rfind("val_", 0) == 0);
    if (shard || name == "manifest.json") found.push_back(e.path());
  }
  std::sort(found.begin(), found.end());
  return found;
}

// The new dataset is written into a hidden folder inside `out` and only replaces the old one
// once it is complete, so a bad input (a typo, an empty folder, a truncated file) leaves the old
// dataset as it was. Dropped without commit(), the folder goes with everything in it.
class Staging {
 public:
  explicit Staging(const std::string& out)
      : out_(out), dir_((fs::path(out) / (".prepare-" + std::to_string(::getpid()))).string()) {
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  ~Staging() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  Staging(const Staging&) = delete;
  Staging& operator=(const Staging&) = delete;
  const std::string& dir() const { return dir_; }

  // Removes the old dataset's files and moves the new ones in, the manifest last, so that a
  // manifest in `out` always describes shards that are all there.
  void commit() {
    for (const fs::path& p : dataset_files(out_)) fs::remove(p);
    std::vector<fs::path> staged = dataset_files(dir_);
    std::stable_partition(staged.begin(), staged.end(),
                          [](const fs::path& p) { return p.filename() != "manifest.json"; });
    for (const fs::path& p : staged) fs::rename(p, fs::path(out_) / p.filename());
  }

 private:
  std::string out_, dir_;
};

class ProgressBar {
 public:
  ProgressBar(bool on, uint64_t total) : on_(on), tty_(isatty(2)), total_(total), t0_(clock::now()), last_(t0_) {}

  // done: input bytes read (compressed where the input is), of total_; text: the text they gave.
  void update(uint64_t done, uint64_t text, int64_t tokens, bool final = false) {
    if (!on_) return;
    const auto now = clock::now();
    const double since = std::chrono::duration<double>(now - last_).count();
    if (!final && since < (tty_ ? 0.2 : 10.0)) return;
    last_ = now;
    const double secs = std::max(1e-9, std::chrono::duration<double>(now - t0_).count());
    const double frac = total_ ? std::min(1.0, double(done) / double(total_)) : 1.0;
    const int width = 30, filled = int(frac * width);
    std::string bar(size_t(filled), '=');
    if (filled < width) bar += '>' + std::string(size_t(width - filled - 1), ' ');
    std::fprintf(stderr, "%sprepare [%s] %3.0f%% of %.1f MB of input, %.1f MB of text, %.2fM tokens, %.1f MB/s%s",
                 tty_ ? "\r" : "", bar.c_str(), 100 * frac, double(total_) / 1e6, double(text) / 1e6,
                 double(tokens) / 1e6, double(text) / 1e6 / secs, tty_ && !final ? "" : "\n");
    std::fflush(stderr);
  }

 private:
  using clock = std::chrono::steady_clock;
  bool on_, tty_;
  uint64_t total_;
  clock::time_point t0_, last_;
};

}  // namespace

PrepareResult prepare_dataset(const PrepareOptions& o) {
  SERPENT_CHECK(!o.inputs.empty(), "prepare: no --input given");
  SERPENT_CHECK(!o.out.empty(), "prepare: no --out folder given");
  SERPENT_CHECK(o.val_fraction >= 0 && o.val_fraction < 1, "prepare: --val-fraction must be in [0, 1), got ",
                o.val_fraction);
  SERPENT_CHECK(o.shard_tokens > 0, "prepare: --shard-tokens must be positive, got ", o.shard_tokens);
  const auto tok = load_tokenizer(o.tokenizer);
  const int32_t eot = tok->eot_id();
  const TokenWidth width = token_width_for(tok->vocab_size());
  std::error_code ec;
  fs::create_directories(o.out, ec);
  SERPENT_CHECK(fs::is_directory(o.out), "prepare: cannot create output folder '", o.out, "'");
  const std::vector<fs::path> old = dataset_files(o.out);
  SERPENT_CHECK(old.empty() || o.overwrite, "output folder '", o.out, "' already holds a dataset (",
                old.empty() ? "" : old.front().filename().string(), " ...); use --overwrite to replace it");
  Staging staging(o.out);

  DocumentReader reader(o.inputs, o.text_key);
  const int threads = o.threads > 0 ? o.threads : std::max(1, int(std::thread::hardware_concurrency()));
  const size_t in_flight = size_t(2 * threads + 2);

  std::mutex mu;
  std::condition_variable cv;
  std::deque<Chunk> todo;
  std::map<int64_t, Encoded> done;
  int64_t chunks_read = 0, chunks_written = 0;
  bool reading_done = false, stop = false;
  std::exception_ptr error;

  auto set_error = [&](std::exception_ptr e) {
    std::lock_guard<std::mutex> lock(mu);
    if (!error) error = e;
    stop = true;
    cv.notify_all();
  };

  std::thread read_thread([&] {
    try {
      int64_t doc = 0;
      std::string text;
      bool more = true;
      while (more) {
        Chunk c;
        size_t bytes = 0;
        while (bytes < kChunkBytes && c.docs.size() < kChunkDocs && (more = reader.next(text))) {
          bytes += text.size();
          c.docs.push_back(std::move(text));
        }
        if (c.docs.empty()) break;
        c.input_pos = reader.bytes_done();
        c.text_pos = reader.text_bytes_done();
        c.first_doc = doc;
        doc += int64_t(c.docs.size());
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return stop || size_t(chunks_read - chunks_written) < in_flight; });
        if (stop) return;
        c.seq = chunks_read++;
        todo.push_back(std::move(c));
        cv.notify_all();
      }
      std::lock_guard<std::mutex> lock(mu);
      reading_done = true;
      cv.notify_all();
    } catch (...) {
      set_error(std::current_exception());
    }
  });

  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t)
    workers.emplace_back([&] {
      try {
        for (;;) {
          Chunk c;
          {
            std::unique_lock<std::mutex> lock(mu);
            cv.wait(lock, [&] { return stop || !todo.empty() || reading_done; });
            if (stop || todo.empty()) return;
            c = std::move(todo.front());
            todo.pop_front();
          }
          Encoded e;
          e.input_pos = c.input_pos;
          e.text_pos = c.text_pos;
          for (size_t i = 0; i < c.docs.size(); ++i) {
            const uint64_t doc = uint64_t(c.first_doc) + i;
            const bool val = philox::uniform(o.seed, doc, 0.0, 1.0) < o.val_fraction;
            std::vector<int32_t>& dst = val ? e.val : e.train;
            tok->encode(c.docs[i], dst);
            dst.push_back(eot);
            (val ? e.docs_val : e.docs_train) += 1;
            e.bytes += int64_t(c.docs[i].size());
            if (val) e.bytes_val += int64_t(c.docs[i].size());
          }
          std::lock_guard<std::mutex> lock(mu);
          done.emplace(c.seq, std::move(e));
          cv.notify_all();
        }
      } catch (...) {
        set_error(std::current_exception());
      }
    });

  PrepareResult res;
  ShardSequenceWriter train(staging.dir(), "train", o.shard_tokens, width),
      val(staging.dir(), "val", o.shard_tokens, width);
  ProgressBar bar(o.progress, reader.bytes_total());
  try {
    for (;;) {
      Encoded e;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait_for(lock, std::chrono::milliseconds(200), [&] {
          return stop || done.count(chunks_written) || (reading_done && chunks_written == chunks_read);
        });
        if (stop) break;
        if (reading_done && chunks_written == chunks_read) break;
        auto it = done.find(chunks_written);
        if (it == done.end()) continue;
        e = std::move(it->second);
        done.erase(it);
        ++chunks_written;
        cv.notify_all();
      }
      train.append(e.train.data(), e.train.size());
      val.append(e.val.data(), e.val.size());
      res.documents_train += e.docs_train;
      res.documents_val += e.docs_val;
      res.text_bytes += e.bytes;
      res.text_bytes_val += e.bytes_val;
      bar.update(e.input_pos, e.text_pos, train.tokens() + val.tokens());
    }
  } catch (...) {
    set_error(std::current_exception());
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    stop = true;
    cv.notify_all();
  }
  read_thread.join();
  for (auto& w : workers) w.join();
  if (error) std::rethrow_exception(error);
  bar.update(reader.bytes_total(), reader.text_bytes_done(), train.tokens() + val.tokens(), true);

  const auto& train_shards = train.finish();
  const auto& val_shards = val.finish();
  res.tokens_train = train.tokens();
  res.tokens_val = val.tokens();
  res.broken_lines = reader.broken_lines();
  SERPENT_CHECK(res.tokens_train > 0, "prepare: the inputs gave no training documents");

  nlohmann::ordered_json shards = nlohmann::ordered_json::array();
  for (const auto* set : {&train_shards, &val_shards})
    for (const auto& s : *set) {
      shards.push_back({{"file", fs::path(s.path).filename().string()},
                        {"split", set == &train_shards ? "train" : "val"},
                        {"tokens", s.tokens},
                        {"sha256", s.sha256}});
      res.shards.push_back((fs::path(o.out) / fs::path(s.path).filename()).string());
    }
  nlohmann::ordered_json tokenizer = {{"name", o.tokenizer}, {"vocab_size", tok->vocab_size()}, {"eot_id", eot}};
  tokenizer["sha256"] =
      o.tokenizer == "byte" ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(sha256_file(tok->name()));
  nlohmann::ordered_json m = {
      {"format", "serpent-dataset"},
      {"version", 1},
      {"tokenizer", tokenizer},
      {"token_dtype", width == TokenWidth::u16 ? "uint16" : "uint32"},
      {"shard_format", width == TokenWidth::u16 ? "llm.c magic 20240520 version 1" : "llm.c magic 20240801 version 7"},
      {"seed", o.seed},
      {"val_fraction", o.val_fraction},
      {"shard_tokens", o.shard_tokens},
      {"text_key", o.text_key},
      {"inputs", o.inputs},
      {"files", reader.files().size()},
      {"skipped_files", reader.skipped_files()},
      {"text_bytes", res.text_bytes},
      // Per split, for bits per byte (serpent eval): the UTF-8 bytes of the documents' text.
      {"bytes", {{"train", res.text_bytes - res.text_bytes_val}, {"val", res.text_bytes_val}}},
      {"broken_lines", res.broken_lines},
      {"documents", {{"train", res.documents_train}, {"val", res.documents_val}}},
      {"tokens", {{"train", res.tokens_train}, {"val", res.tokens_val}}},
      {"shards", shards},
  };
  res.manifest = (fs::path(o.out) / "manifest.json").string();
  {
    const std::string staged = (fs::path(staging.dir()) / "manifest.json").string();
    std::ofstream f(staged);
    f << m.dump(2) << "\n";
    SERPENT_CHECK(f.good(), "prepare: error writing '", staged, "'");
  }
  staging.commit();
  if (o.progress) {
    std::fprintf(stderr,
                 "prepare: %lld documents (%lld train, %lld val), %lld tokens (%lld train, %lld val) in %zu shards",
                 (long long)(res.documents_train + res.documents_val), (long long)res.documents_train,
                 (long long)res.documents_val, (long long)(res.tokens_train + res.tokens_val),
                 (long long)res.tokens_train, (long long)res.tokens_val, res.shards.size());
    if (res.broken_lines) std::fprintf(stderr, "; %lld broken lines skipped", (long long)res.broken_lines);
    std::fprintf(stderr, "\n");
  }
  if (res.documents_val == 0 && o.val_fraction > 0)
    std::fprintf(stderr, "prepare: warning: no document was drawn for val (val fraction %g of %lld documents)\n",
                 o.val_fraction, (long long)res.documents_train);
  return res;
}

}  // namespace serpent
