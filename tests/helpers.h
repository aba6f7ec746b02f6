// The fixtures the tests share: errors and closeness checks, gradcheck and the CUDA parity
// helpers, temporary folders and small files, the small models and datasets many tests build on,
// and running the serpent binary (or any process) from a test. The fake communicator of the
// data-parallel tests lives next to them, in tests/dist/thread_comm.h.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "autograd/engine.h"
#include "autograd/gradcheck.h"
#include "autograd/node.h"
#include "autograd/ops.h"
#include "core/creation.h"
#include "core/storage.h"
#include "data/bpe.h"
#include "data/shard.h"
#include "data/unicode.h"
#include "dist/comm.h"
#include "io/checkpoint.h"
#include "io/hf.h"
#include "io/safetensors.h"
#include "layers/mamba.h"
#include "layers/mamba_config_yaml.h"
#include "optim/adamw.h"

extern char** environ;

#ifndef SERPENT_MPIEXEC
#define SERPENT_MPIEXEC "mpirun"  // a build without MPI, whose tests that start mpirun skip
#endif

namespace serpent::testing {

// ---- paths --------------------------------------------------------------------------------------

// A file of tests/fixtures.
inline std::string data_path(const std::string& name) {
  return std::string(SERPENT_TEST_DATA) + "/" + name;
}

// A file of the source tree (configs/, docs/, data/tokenizers/).
inline std::string source_path(const std::string& rel) {
  return std::string(SERPENT_SOURCE_DIR) + "/" + rel;
}

inline std::string neox_json() {
  return source_path("data/tokenizers/gpt-neox-20b/tokenizer.json");
}
inline std::string gpt2_json() {
  return source_path("data/tokenizers/gpt2/tokenizer.json");
}

// The two BPE tokenizers, loaded once per process (50k merges each).
inline const BpeTokenizer& neox() {
  static const BpeTokenizer t(neox_json());
  return t;
}
inline const BpeTokenizer& gpt2() {
  static const BpeTokenizer t(gpt2_json());
  return t;
}

// UTF-8 of a UTF-32 literal.
inline std::string u8(const char32_t* s) {
  std::string out;
  for (; *s; ++s) unicode::append_utf8(out, *s);
  return out;
}

// ---- errors -------------------------------------------------------------------------------------

// Expects `body` to throw serpent::Error whose message contains every one of `parts`.
template <class F>
void expect_error(F&& body, const std::vector<std::string>& parts) {
  try {
    body();
    ADD_FAILURE() << "expected a serpent::Error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const auto& p : parts)
      EXPECT_NE(msg.find(p), std::string::npos) << "message '" << msg << "' lacks '" << p << "'";
  }
}

// The same, and the message is one line.
template <class F>
void expect_one_line_error(F&& body, const std::vector<std::string>& parts) {
  try {
    body();
    ADD_FAILURE() << "expected a serpent::Error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "message is not one line: " << msg;
    for (const auto& p : parts)
      EXPECT_NE(msg.find(p), std::string::npos) << "message '" << msg << "' lacks '" << p << "'";
  }
}

// ---- closeness, gradcheck -----------------------------------------------------------------------

// A float64 cpu leaf, uniform in [lo, hi), that requires a gradient.
inline Tensor leaf(const Shape& shape, Generator& gen, double lo = -1.0, double hi = 1.0) {
  Tensor t = uniform(shape, lo, hi, gen, DType::f64);
  t.set_requires_grad(true);
  return t;
}

// ||a - b|| / ||b|| over all elements, computed in double on the host.
inline double relative_error(const Tensor& a, const Tensor& b) {
  std::vector<double> x = a.to_vector<double>(), y = b.to_vector<double>();
  EXPECT_EQ(x.size(), y.size());
  double d = 0, n = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    d += (x[i] - y[i]) * (x[i] - y[i]);
    n += y[i] * y[i];
  }
  return std::sqrt(d) / std::max(std::sqrt(n), 1e-30);
}

// Same names, shapes and values, in the same order.
inline void expect_same_tensors(const NamedTensors& a, const NamedTensors& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first);
    EXPECT_EQ(a[i].second.shape(), b[i].second.shape()) << a[i].first;
    EXPECT_EQ(a[i].second.to_vector<float>(), b[i].second.to_vector<float>()) << a[i].first;
  }
}

// Runs gradcheck and expects every input's relative error to be at most tol.
inline void expect_gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                             const std::vector<Tensor>& inputs, double tol = 1e-6) {
  autograd::GradcheckResult r = autograd::gradcheck(fn, inputs);
  EXPECT_LE(r.max_relative_error, tol) << r.report;
}

// Runs fn in f64 and in f32 on the same values; the outputs and input gradients must agree to
// float precision.
inline void expect_f32_matches_f64(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                                   const std::vector<Tensor>& inputs) {
  std::vector<Tensor> d, f;
  for (const Tensor& t : inputs) {
    d.push_back(t.defined() ? t.clone().set_requires_grad(true) : Tensor());
    f.push_back(t.defined() ? t.to(DType::f32).set_requires_grad(true) : Tensor());
  }
  Tensor od = fn(d), of = fn(f);
  EXPECT_LE(relative_error(of, od), 1e-5);
  Generator gen(5);
  Tensor w = randn(od.shape(), gen, DType::f64);
  autograd::backward(sum(mul(od, w)));
  autograd::backward(sum(mul(of, w.to(DType::f32))));
  for (size_t i = 0; i < d.size(); ++i)
    if (d[i].defined()) {
      EXPECT_LE(relative_error(f[i].grad(), d[i].grad()), 1e-4) << "input " << i;
    }
}

// ---- CUDA parity --------------------------------------------------------------------------------

// Base of the CUDA parity fixtures: skips visibly without the CUDA backend or a GPU, and draws a
// fresh seed for each test (printed, so a failure can be replayed).
class CudaTest : public ::testing::Test {
 protected:
  void SetUp() override {
#ifndef SERPENT_CUDA
    GTEST_SKIP() << "built without the CUDA backend: CUDA parity tests run only in CUDA builds";
#else
    if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device visible: CUDA parity tests run on a GPU machine";
#endif
    seed_ = std::random_device{}();
    std::printf("fresh seed %llu\n", (unsigned long long)seed_);
  }
  uint64_t seed_ = 0;
  const Device gpu_ = Device::cuda(0);
};

// CudaTest for the NCCL communicator's tests: skips visibly as well in a build without NCCL.
class NcclTest : public CudaTest {
 protected:
  void SetUp() override {
    CudaTest::SetUp();
    if (IsSkipped()) return;
    if (!have_nccl()) GTEST_SKIP() << "this build has no NCCL";
  }
};

// The parity tolerances: relative, 1e-2 for bf16 results, 1e-5 for f32 ones, 1e-12 for f64.
inline double parity_tolerance(DType dt) {
  return dt == DType::bf16 ? 1e-2 : dt == DType::f32 ? 1e-5 : 1e-12;
}

// x as stored in dt, back in f64 on the host: what a host reference computes with.
inline Tensor rounded(const Tensor& x, DType dt) {
  return x.to(dt).to(DType::f64).clone();
}
inline Tensor host_leaf(const Tensor& x, DType dt) {
  return rounded(x, dt).set_requires_grad(true);
}
inline Tensor device_leaf(const Tensor& x, DType dt, Device gpu) {
  return x.to(dt).to(gpu).set_requires_grad(true);
}

// A device result: its dtype and device, and its distance from the f64 reference.
inline void expect_cuda_close(const Tensor& got, const Tensor& want, DType dt, double tol, const std::string& what) {
  ASSERT_TRUE(got.defined()) << what << " is undefined";
  EXPECT_EQ(got.dtype(), dt) << what;
  EXPECT_TRUE(got.is_cuda()) << what;
  EXPECT_LE(relative_error(got, want), tol) << what;
}
inline void expect_cuda_close(const Tensor& got, const Tensor& want, DType dt, const std::string& what) {
  expect_cuda_close(got, want, dt, parity_tolerance(dt), what);
}

// Runs fn on cpu inputs and on their cuda copies; compares outputs and input gradients.
inline void expect_parity(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                          const std::vector<Tensor>& cpu_inputs, DType dt, Device gpu) {
  std::vector<Tensor> c, g;
  for (const Tensor& t : cpu_inputs) {
    // The reference runs in f64 on the host from the very values the device sees (rounded to dt).
    Tensor r = t.to(dt).to(DType::f64);
    c.push_back(r.clone().set_requires_grad(true));
    g.push_back(r.to(dt).to(gpu).set_requires_grad(true));
  }
  Tensor out_c = fn(c), out_g = fn(g);
  ASSERT_EQ(out_g.device(), gpu);
  EXPECT_LE(relative_error(out_g, out_c), parity_tolerance(dt)) << "forward, " << dtype_name(dt);
  Generator gen(99);
  Tensor w = randn(out_c.shape(), gen, DType::f64);
  autograd::backward(sum(mul(out_c, w)));
  autograd::backward(sum(mul(out_g, w.to(dt).to(gpu))));
  for (size_t i = 0; i < c.size(); ++i)
    EXPECT_LE(relative_error(g[i].grad(), c[i].grad()), parity_tolerance(dt) * 2)
        << "gradient of input " << i << ", " << dtype_name(dt);
}

// ---- files --------------------------------------------------------------------------------------

// A fresh folder under the system temp dir, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "serpent_test_XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data()) ? tmpl : "";
    EXPECT_FALSE(path_.empty()) << "mkdtemp failed";
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }
  // A subfolder, created.
  std::string sub(const std::string& name) const {
    std::filesystem::create_directories(*this / name);
    return *this / name;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A folder unique to this process and name, emptied; left for the test to remove (the
// multi-process tests keep it when they fail, for the ranks' logs).
inline std::string scratch_dir(const std::string& name) {
  const std::string dir = "/tmp/serpent_test_" + std::to_string(::getpid()) + "_" + name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// The bytes of a file; empty when it cannot be read.
inline std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Writes `bytes` to `path`, creating its folder.
inline void write_file(const std::string& path, const std::string& bytes) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), std::streamsize(bytes.size()));
}

inline void write_gz(const std::string& path, const std::string& text) {
  gzFile f = gzopen(path.c_str(), "wb");
  gzwrite(f, text.data(), unsigned(text.size()));
  gzclose(f);
}

inline std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// ---- models -------------------------------------------------------------------------------------

// A model of a few thousand parameters: d_model 8, 2 layers, vocabulary 11 padded to 16.
inline MambaConfig small_config() {
  MambaConfig c;
  c.d_model = 8;
  c.n_layer = 2;
  c.vocab_size = 11;  // padded to 16
  return c;
}

// small_config with a smaller state and conv window: the model of the eval and generate commands.
inline MambaConfig eval_model_config() {
  MambaConfig c = small_config();
  c.d_state = 3;
  c.d_conv = 3;
  return c;
}

// One layer over the 256 byte values.
inline MambaConfig byte_config() {
  MambaConfig c;
  c.d_model = 16;
  c.n_layer = 1;
  c.vocab_size = 256;
  return c;
}

// Odd sizes everywhere, so that no two dimensions can be confused.
inline MambaConfig odd_config() {
  MambaConfig c;
  c.d_model = 10;
  c.n_layer = 3;
  c.vocab_size = 13;  // padded to 16
  c.d_state = 5;
  c.d_conv = 3;
  c.expand = 2;  // d_inner 20
  c.dt_rank = 3;
  return c;
}

// A model whose every parameter is random (A_log and D included, which init makes regular):
// the init plus uniform noise in [-noise, noise).
inline std::unique_ptr<MambaLM> random_model(const MambaConfig& cfg, DType dtype, uint64_t seed, double noise = 0.3) {
  Generator gen(seed);
  auto model = std::make_unique<MambaLM>(cfg, gen, dtype);
  autograd::NoGradGuard no_grad;
  for (auto& [name, p] : model->named_parameters()) {
    Tensor n = uniform(p.shape(), -noise, noise, gen, dtype);
    add_(p, n);
  }
  return model;
}

// A checkpoint holding the model and the model section of the config, plus `extra_config`.
inline void save_model(const std::string& path, const MambaLM& model, const std::string& extra_config) {
  Checkpoint c;
  c.config_yaml = mamba_config_yaml_text(model.config()) + extra_config;
  c.model = model.named_parameters();
  save_checkpoint(path, c);
}

// A small_config model trained two AdamW steps, so that parameters and both moments hold
// distinct values, and a checkpoint of it with every kind of train state.
struct Trained {
  Generator gen{5};
  MambaLM model{small_config(), gen};
  AdamW opt{model.named_parameters(), AdamWConfig{}};
  Trained() {
    Tensor ids = from_vector<int64_t>({1, 2, 3, 4, 5, 6, 7, 8}, {2, 4});
    Tensor tgt = from_vector<int64_t>({2, 3, 4, 5, 6, 7, 8, 9}, {2, 4});
    for (int s = 0; s < 2; ++s) {
      model.zero_grad();
      autograd::backward(model.loss(ids, tgt));
      opt.step(1e-2);
    }
  }
  Checkpoint checkpoint(int64_t step = 7) const {
    Checkpoint c;
    c.config_yaml = mamba_config_yaml_text(model.config()) + "data:\n  tokenizer: byte\n# marker_7f3a\n";
    c.model = model.named_parameters();
    c.optim = opt.state();
    c.optim_step = opt.steps();
    c.train.step = step;
    c.train.tokens_seen = step * 64;
    c.train.rng_seed = 0xfedcba9876543210ull;
    c.train.rng_offset = 123456789;
    c.train.loader = {{1, 2, 3}, {4, 5, 6}};
    c.train.ints["bad_steps"] = 2;
    c.train.doubles["best_val_loss"] = 3.25;
    c.train.int_arrays["skipped"] = {5, 9};
    c.train.double_arrays["recent_losses"] = {4.5, 4.25, 4.125};
    return c;
  }
};

// ---- safetensors and Hugging Face folders -----------------------------------------------------------------------

// A safetensors file assembled by hand: header JSON text, then raw bytes.
inline std::string handmade_safetensors(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[size_t(i)] = char(uint64_t(header.size()) >> (8 * i) & 0xff);
  return out + header + data;
}

template <class T>
std::string raw_bytes(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

// d_model 16 (d_inner 32), 2 layers, vocabulary 11 padded to 16.
inline MambaConfig hf_small_config() {
  MambaConfig c;
  c.d_model = 16;
  c.n_layer = 2;
  c.vocab_size = 11;  // padded to 16
  return c;
}

// Every tensor of the model, random (also the ones initialized to constants).
inline NamedTensors random_tensors(const MambaConfig& cfg, uint64_t seed) {
  Generator gen(seed);
  NamedTensors out;
  for (const auto& [name, shape] : mamba_parameter_shapes(cfg)) out.emplace_back(name, uniform(shape, -1, 1, gen));
  return out;
}

inline nlohmann::json transformers_config(const MambaConfig& cfg) {
  return nlohmann::json::parse(hf_config_json(cfg).dump());
}

inline void write_config(const std::string& dir, const nlohmann::json& j) {
  std::ofstream(dir + "/config.json") << j.dump(2);
}

// A valid single-file HF folder to break in one way per case.
struct Folder {
  TempDir& tmp;
  std::string dir;
  nlohmann::json config;
  NamedTensors tensors;
  Folder(TempDir& t, const std::string& name)
      : tmp(t), dir(t.sub(name)), config(transformers_config(hf_small_config())) {
    tensors = random_tensors(hf_small_config(), 11);
  }
  std::string write() {
    write_config(dir, config);
    write_safetensors(dir + "/model.safetensors", tensors);
    return dir;
  }
  void drop(const std::string& name) {
    std::erase_if(tensors, [&](const auto& kv) { return kv.first == name; });
  }
  void replace(const std::string& name, Tensor t) {
    for (auto& kv : tensors)
      if (kv.first == name) kv.second = t;
  }
};

// ---- datasets -----------------------------------------------------------------------------------

// A byte-level dataset from real English: the first 80% of a chapter of Pride and Prejudice as
// the train shard `dir`/train_000000.bin, the rest as the val shard.
inline void write_text_dataset(const std::string& dir) {
  const std::string text = read_text_file(data_path("pride_and_prejudice_ch1.txt"));
  std::vector<int32_t> ids(text.begin(), text.end());
  for (int32_t& id : ids) id &= 0xff;
  const size_t cut = ids.size() * 8 / 10;
  std::filesystem::create_directories(dir);
  write_shard(dir + "/train_000000.bin", ids.data(), cut, TokenWidth::u16);
  write_shard(dir + "/val_000000.bin", ids.data() + cut, ids.size() - cut, TokenWidth::u16);
}

// A small corpus: two .txt files in a folder (plus a file prepare must skip), and the same JSONL
// lines plain and gzipped, three of them broken.
struct Corpus {
  TempDir dir;
  std::vector<std::string> docs;  // every good document, in reading order
  Corpus() {
    write_file(dir / "txt/a.txt", "First text file.\nTwo lines.\n");
    write_file(dir / "txt/sub/b.txt", "Second file, in a subfolder: caf\xC3\xA9.");
    write_file(dir / "txt/notes.md", "skipped: not .txt");
    std::string jl;
    for (int i = 0; i < 40; ++i) jl += nlohmann::json{{"body", "document number " + std::to_string(i)}}.dump() + "\n";
    jl += "{\"body\": \"unterminated\n";            // broken: invalid JSON
    jl += "[1, 2, 3]\n";                            // broken: not an object
    jl += "{\"text\": \"wrong key\"}\n";            // broken: no "body"
    jl += "\n";                                     // blank: skipped silently
    jl += "{\"body\": \"last line, no newline\"}";  // good
    write_file(dir / "docs.jsonl", jl);
    write_gz(dir / "docs.jsonl.gz", jl);
    docs = {"First text file.\nTwo lines.\n", "Second file, in a subfolder: caf\xC3\xA9."};
    for (int pass = 0; pass < 2; ++pass) {
      for (int i = 0; i < 40; ++i) docs.push_back("document number " + std::to_string(i));
      docs.push_back("last line, no newline");
    }
  }
  std::vector<std::string> inputs() const { return {dir / "txt", dir / "docs.jsonl", dir / "docs.jsonl.gz"}; }
};

// ---- running serpent and other processes --------------------------------------------------------

struct CliResult {
  int code = -1;  // exit status; -1 when the process did not exit normally
  std::string out, err;
};

// Starts `serpent args...` with stdout and stderr going to the given files; returns its pid.
inline pid_t spawn_serpent(const std::vector<std::string>& args, const std::string& out_path,
                           const std::string& err_path) {
  std::vector<std::string> argv_s = {SERPENT_BINARY};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  return rc == 0 ? pid : -1;
}

inline int wait_exit_code(pid_t pid) {
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Runs `serpent args...` to completion, stdout and stderr kept apart; scratch files go to `dir`.
inline CliResult run_serpent(const std::vector<std::string>& args, const std::string& dir) {
  static int counter = 0;
  const std::string base = dir + "/cli_" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
  CliResult r;
  const pid_t pid = spawn_serpent(args, base + ".out", base + ".err");
  if (pid < 0) return r;
  r.code = wait_exit_code(pid);
  r.out = read_text_file(base + ".out");
  r.err = read_text_file(base + ".err");
  std::remove((base + ".out").c_str());
  std::remove((base + ".err").c_str());
  return r;
}

// A command failed with exactly one line on stderr, "serpent COMMAND: error: ...", that contains
// every part.
inline void expect_one_line_error(const CliResult& r, const std::string& command,
                                  const std::vector<std::string>& parts) {
  EXPECT_EQ(r.code, 1);
  const std::vector<std::string> lines = lines_of(r.err);
  ASSERT_EQ(lines.size(), 1u) << r.err;
  EXPECT_EQ(lines[0].rfind("serpent " + command + ": error: ", 0), 0u) << lines[0];
  for (const std::string& p : parts) EXPECT_NE(lines[0].find(p), std::string::npos) << lines[0];
}

struct ShellResult {
  int code = -1;  // exit status; -1 when the command did not exit normally
  std::string output;
};

// Runs a command line through /bin/sh (for pipes and redirections); returns its stdout.
inline ShellResult run_shell(const std::string& command) {
  ShellResult r;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return r;
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof buf, pipe)) r.output.append(buf, n);
  const int status = pclose(pipe);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// This process's mapped address space in kB: about what serpent maps before it allocates anything
// (the same libraries; a CUDA build maps much more than a cpu one).
inline int64_t mapped_kb() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmSize:", 0) == 0) return std::stoll(line.substr(7));
  return 0;
}

// A command line under an address-space limit (ulimit -v, i.e. setrlimit RLIMIT_AS) of
// `limit_mb` on top of what the libraries map: what an input makes serpent allocate beyond it
// fails instead of growing.
inline ShellResult run_limited(int64_t limit_mb, const std::string& command) {
  return run_shell("ulimit -v " + std::to_string(mapped_kb() + limit_mb * 1024) + " && " + command);
}

// `serpent ARGS 2>&1` through the shell: stdout and stderr in one text.
inline ShellResult run_serpent_shell(const std::string& args) {
  return run_shell(std::string(SERPENT_BINARY) + " " + args + " 2>&1");
}

struct Child {
  pid_t pid = -1;
  std::string output_path;
};

// Starts argv[0] (a path) with `env` added to this process's environment, stdout and stderr both
// to output_path, in a process group of its own.
inline Child start_process(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
                           const std::string& output_path) {
  std::vector<std::string> env_s;
  for (char** e = environ; *e; ++e) {
    const std::string kv = *e;
    if (!env.count(kv.substr(0, kv.find('=')))) env_s.push_back(kv);
  }
  for (const auto& [k, v] : env) env_s.push_back(k + "=" + v);
  std::vector<char*> envp, args;
  for (std::string& s : env_s) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_s = argv;
  for (std::string& s : argv_s) args.push_back(s.data());
  args.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, output_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  Child c;
  c.output_path = output_path;
  if (posix_spawn(&c.pid, args[0], &fa, &attr, args.data(), envp.data()) != 0) c.pid = -1;
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  return c;
}

// Waits up to timeout_s; past it the child's process group is killed and -2 returned. Otherwise
// the exit code, or -1 when it died of a signal.
inline int wait_process(const Child& c, double timeout_s) {
  if (c.pid < 0) return -3;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(c.pid, &status, WNOHANG);
    if (r == c.pid) return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(-c.pid, SIGKILL);
      ::waitpid(c.pid, &status, 0);
      return -2;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

struct ProcessResult {
  int code = -3;
  std::string output;
};

inline ProcessResult run_process(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
                                 const std::string& output_path, double timeout_s) {
  ProcessResult r;
  r.code = wait_process(start_process(argv, env, output_path), timeout_s);
  r.output = read_text_file(output_path);
  return r;
}

// This test binary's own path (to run some of its tests as MPI ranks).
inline std::string self_path() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, size_t(n)) : std::string();
}

// mpirun with what a test run as root on a small machine needs.
inline std::vector<std::string> mpirun_argv(int ranks) {
  std::vector<std::string> a = {SERPENT_MPIEXEC, "--oversubscribe", "--bind-to", "none", "-np", std::to_string(ranks)};
  if (::geteuid() == 0) a.insert(a.begin() + 1, "--allow-run-as-root");
  return a;
}

// A TCP port nothing listens on right now.
inline int free_port_for_test() {
  const int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(s);
  return ntohs(a.sin_port);
}

// The pids whose parent is `parent` (from /proc), in increasing order.
inline std::vector<pid_t> child_processes(pid_t parent) {
  std::vector<pid_t> out;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const std::string stat = read_text_file(entry.path().string() + "/stat");
    // pid (comm) state ppid ...: the command may hold spaces, so read after the last ')'.
    const size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    char state = 0;
    int ppid = 0;
    if (std::sscanf(stat.c_str() + close + 1, " %c %d", &state, &ppid) == 2 && ppid == parent)
      out.push_back(pid_t(std::stol(name)));
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace serpent::testing
