// Tokenizer encoding speed on one thread: MB/s of UTF-8 text in, over the Austen novels and the
// State of the Union addresses of the shared corpus, for each tokenizer named. Every file is
// encoded as one document, in a fresh thread so each tokenizer starts with an empty word cache.
//
//   build/bench_tokenizer [--corpus ../shared/data/corpus] [--tokenizer PATH|byte ...]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "cli/args.h"
#include "core/error.h"
#include "data/text_source.h"
#include "data/tokenizer.h"

using namespace serpent;

namespace {

struct Set {
  std::string name;
  std::vector<std::string> texts;
  size_t bytes = 0;
};

Set load_set(const std::string& name, const std::string& folder) {
  Set s{name, {}, 0};
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(folder))
    if (e.path().extension() == ".txt") files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  SERPENT_CHECK(!files.empty(), "no .txt files in ", folder);
  for (const auto& f : files) {
    s.texts.push_back(read_file(f));
    s.bytes += s.texts.back().size();
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    ArgParser p("bench_tokenizer", "Single-thread encoding speed of the tokenizers on the Austen and SOTU text.");
    p.option("corpus", "DIR", "the shared corpus folder", "../shared/data/corpus")
        .multi_option("tokenizer", "PATH|byte", "tokenizers to time (default: the bundled GPT-NeoX-20B and GPT-2)")
        .option("repeat", "N", "timed passes over each set (the best is reported)", "3");
    if (!p.parse(Args(argv + 1, argv + argc))) return 0;
    std::vector<std::string> toks = p.get_all("tokenizer");
    if (toks.empty()) toks = {"data/tokenizers/gpt-neox-20b/tokenizer.json", "data/tokenizers/gpt2/tokenizer.json"};
    const std::string corpus = p.get("corpus");
    const std::vector<Set> sets = {load_set("austen", corpus + "/austen"), load_set("sotu", corpus + "/sotu")};
    const int64_t repeat = p.get_int("repeat");
    for (const auto& spec : toks) {
      auto tok = load_tokenizer(spec);
      for (const Set& s : sets) {
        // Cold: the first pass, in a new thread whose word cache starts empty.
        double cold = 0, best = 1e30;
        size_t ntok = 0;
        std::thread([&] {
          for (int64_t r = 0; r < 1 + repeat; ++r) {
            auto t0 = std::chrono::steady_clock::now();
            std::vector<int32_t> ids;
            ntok = 0;
            for (const auto& text : s.texts) {
              ids.clear();
              tok->encode(text, ids);
              ntok += ids.size();
            }
            const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            if (r == 0)
              cold = dt;
            else
              best = std::min(best, dt);
          }
        }).join();
        std::printf("%-48s %-7s %6.2f MB in %8zu tokens: %6.2f MB/s first pass, %6.2f MB/s warm\n", spec.c_str(),
                    s.name.c_str(), double(s.bytes) / 1e6, ntok, double(s.bytes) / 1e6 / cold,
                    double(s.bytes) / 1e6 / best);
      }
    }
    return 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "bench_tokenizer: error: %s\n", e.what());
    return 1;
  }
}
