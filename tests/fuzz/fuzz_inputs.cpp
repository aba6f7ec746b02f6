// The input fuzzer that ctest runs (Fuzz.Inputs): valid tokenizer.json, config.json, safetensors,
// dataset manifests and token shards, mutated from a fixed seed, each handed to the code that
// reads it. Every case must end in success or a serpent::Error: a crash, any other exception (an
// "internal error" to the user) or an allocation beyond the address-space limit set at the start
// is a failure, printed with the case's number and kind so that it can be replayed
// (--only N). Structure-aware mutations put extreme values where numbers were (sizes of 2^63, -1,
// 1e308, fractions), delete and duplicate fields; byte-level ones flip, insert, delete and cut.
//
// Usage: serpent_fuzz [--cases N] [--seed S] [--only CASE] [--limit-mb MB]
#include <sys/resource.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "core/creation.h"
#include "core/error.h"
#include "data/bpe.h"
#include "data/dataset.h"
#include "data/shard.h"
#include "io/hf.h"
#include "io/safetensors.h"
#include "layers/mamba_config.h"

namespace fs = std::filesystem;
using namespace serpent;

namespace {

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void write_all(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

const char* kExtremes[] = {"9223372036854775807",
                           "18446744073709551615",
                           "99999999999999999999",
                           "-1",
                           "-9223372036854775808",
                           "0",
                           "1e308",
                           "1.5",
                           "4294967296",
                           "2147483648",
                           "400000000",
                           "1e29",
                           "65536",
                           "\"7\"",
                           "null",
                           "[]",
                           "{}",
                           "true"};

// One mutation of `text`, chosen by rng.
std::string mutate(std::string text, std::mt19937_64& rng) {
  auto pick = [&](size_t n) { return n ? size_t(rng() % n) : 0; };
  const int rounds = 1 + int(rng() % 3);
  for (int r = 0; r < rounds && !text.empty(); ++r) {
    switch (rng() % 7) {
      case 0: {  // a number becomes an extreme value
        std::vector<size_t> starts;
        for (size_t i = 0; i < text.size(); ++i)
          if (std::isdigit(static_cast<unsigned char>(text[i])) &&
              (i == 0 || !std::isalnum(static_cast<unsigned char>(text[i - 1]))))
            starts.push_back(i);
        if (starts.empty()) break;
        const size_t at = starts[pick(starts.size())];
        size_t end = at;
        while (end < text.size() && (std::isdigit(static_cast<unsigned char>(text[end])) || text[end] == '.' ||
                                     text[end] == 'e' || text[end] == '-'))
          ++end;
        text.replace(at, end - at, kExtremes[pick(std::size(kExtremes))]);
        break;
      }
      case 1:  // flip a byte
        text[pick(text.size())] ^= char(1 << (rng() % 8));
        break;
      case 2:  // set a byte to something odd
        text[pick(text.size())] = "\0\xff\"{}[],:\\"[pick(11)];
        break;
      case 3:  // cut the end
        text.resize(pick(text.size()));
        break;
      case 4: {  // delete a span
        const size_t at = pick(text.size());
        text.erase(at, std::min<size_t>(text.size() - at, 1 + pick(64)));
        break;
      }
      case 5: {  // duplicate a span
        const size_t at = pick(text.size()), n = std::min<size_t>(text.size() - at, 1 + pick(64));
        text.insert(pick(text.size()), text.substr(at, n));
        break;
      }
      default:  // insert random bytes
        for (size_t k = 0, n = 1 + pick(8); k < n; ++k)
          text.insert(text.begin() + long(pick(text.size())), char(rng()));
    }
  }
  return text;
}

struct Seeds {
  std::string dir;
  std::string tokenizer, config, safetensors, manifest, shard;
};

Seeds make_seeds(const std::string& dir) {
  Seeds s;
  s.dir = dir;
  s.tokenizer = byte_tokenizer_json();
  MambaConfig c;
  c.d_model = 16;
  c.n_layer = 2;
  c.vocab_size = 11;
  s.config = hf_config_json(c).dump(1);
  NamedTensors tensors;
  Generator gen(1);
  for (const auto& [name, shape] : mamba_parameter_shapes(c)) tensors.emplace_back(name, uniform(shape, -1, 1, gen));
  write_safetensors(dir + "/seed.safetensors", tensors);
  s.safetensors = read_all(dir + "/seed.safetensors");
  std::vector<int32_t> ids(600);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = int32_t(i * 7 % 257);
  const std::string sha = write_shard(dir + "/seed.bin", ids.data(), ids.size(), TokenWidth::u16);
  s.shard = read_all(dir + "/seed.bin");
  s.manifest =
      nlohmann::json{{"format", "serpent-dataset"},
                     {"version", 1},
                     {"tokenizer", {{"name", "byte"}, {"vocab_size", 257}, {"eot_id", 256}}},
                     {"tokens", {{"train", 600}, {"val", 0}}},
                     {"shards", {{{"file", "train_000000.bin"}, {"split", "train"}, {"tokens", 600}, {"sha256", sha}}}}}
          .dump(1);
  return s;
}

// One case: the kind, and the work that must end in success or serpent::Error.
void run_case(const Seeds& s, int kind, std::mt19937_64& rng, const std::string& work) {
  fs::remove_all(work);
  fs::create_directories(work);
  switch (kind) {
    case 0: {
      write_all(work + "/tokenizer.json", mutate(s.tokenizer, rng));
      BpeTokenizer t(work + "/tokenizer.json");
      t.decode(t.encode("fuzzing a tokenizer <|endoftext|> caf\xC3\xA9"));
      break;
    }
    case 1: {
      write_all(work + "/config.json", mutate(s.config, rng));
      write_all(work + "/model.safetensors", s.safetensors);
      read_hf_dir(work);
      break;
    }
    case 2: {
      write_all(work + "/config.json", s.config);
      write_all(work + "/model.safetensors",
                mutate(s.safetensors.substr(0, 8 + 2048), rng) + s.safetensors.substr(8 + 2048));
      SafetensorsReader r(work + "/model.safetensors");
      for (const SafetensorsEntry& e : r.entries()) r.read(e.name);
      read_hf_dir(work);
      break;
    }
    case 3: {
      write_all(work + "/train_000000.bin", s.shard);
      write_all(work + "/manifest.json", mutate(s.manifest, rng));
      open_dataset(work, 257);
      break;
    }
    default: {
      write_all(work + "/train_000000.bin", mutate(s.shard.substr(0, 1024), rng) + s.shard.substr(1024));
      ShardReader r(work + "/train_000000.bin");
      r.check_vocab(257);
      open_dataset(work, 257);
    }
  }
}

const char* kKinds[] = {"tokenizer.json", "config.json", "safetensors header", "manifest", "shard header"};

}  // namespace

int main(int argc, char** argv) {
  int64_t cases = 3000, seed = 1, only = -1, limit_mb = 2048;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    const int64_t v = std::stoll(argv[i + 1]);
    if (a == "--cases")
      cases = v;
    else if (a == "--seed")
      seed = v;
    else if (a == "--only")
      only = v;
    else if (a == "--limit-mb")
      limit_mb = v;
  }
  // Beyond this, an allocation fails (std::bad_alloc) instead of growing: the bound on what any
  // input may make serpent allocate.
  const rlimit lim{rlim_t(limit_mb) << 20, rlim_t(limit_mb) << 20};
  setrlimit(RLIMIT_AS, &lim);

  const std::string root = (fs::temp_directory_path() / ("serpent_fuzz_" + std::to_string(::getpid()))).string();
  fs::create_directories(root);
  const Seeds seeds = make_seeds(root);
  int64_t failures = 0, errors = 0;
  int64_t per_kind[5] = {};
  for (int64_t c = 0; c < cases; ++c) {
    if (only >= 0 && c != only) continue;
    std::mt19937_64 rng(uint64_t(seed) * 1000003u + uint64_t(c));
    const int kind = int(c % 5);
    ++per_kind[kind];
    try {
      run_case(seeds, kind, rng, root + "/case");
    } catch (const Error&) {
      ++errors;  // the expected way to refuse a bad input
    } catch (const std::bad_alloc&) {
      ++failures;
      std::printf("case %lld (%s): an allocation beyond the %lld MB limit\n", (long long)c, kKinds[kind],
                  (long long)limit_mb);
    } catch (const std::exception& e) {
      ++failures;
      std::printf("case %lld (%s): internal error: %s\n", (long long)c, kKinds[kind], printable(e.what()).c_str());
    }
  }
  fs::remove_all(root);
  std::printf(
      "fuzz: %lld cases (%lld tokenizer.json, %lld config.json, %lld safetensors, %lld manifest, %lld shard), "
      "%lld refused with an error, %lld failures\n",
      (long long)(per_kind[0] + per_kind[1] + per_kind[2] + per_kind[3] + per_kind[4]), (long long)per_kind[0],
      (long long)per_kind[1], (long long)per_kind[2], (long long)per_kind[3], (long long)per_kind[4], (long long)errors,
      (long long)failures);
  return failures ? 1 : 0;
}
