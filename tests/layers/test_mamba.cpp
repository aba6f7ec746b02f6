// MambaLM: Hugging Face's parameter names, the forward against a naive float64 evaluation of
// docs/DESIGN.md ("The model"), whole-model gradcheck, init, bad input; a tiny model that learns
// real English; and the whole model on a GPU against the CPU (loss and every gradient in f32 and in
// bf16 mixed precision, and a training step that allocates nothing new once warm).
#include <fstream>
#include <iterator>
#include <map>

#include "tests/helpers.h"
#ifdef SERPENT_CUDA
#include "core/cuda/runtime.h"
#endif

using namespace serpent;
using namespace serpent::testing;

namespace {

// docs/DESIGN.md ("The model") written out with plain loops in double, independent of the ops and kernels.
class NaiveMamba {
 public:
  NaiveMamba(const MambaLM& model) : c_(model.config()) {
    for (const auto& [name, t] : model.named_parameters()) p_[name] = t.to_vector<double>();
  }

  // logits (L, V_pad) for one sequence
  std::vector<std::vector<double>> logits(const std::vector<int64_t>& ids) const {
    const int64_t L = int64_t(ids.size()), Dm = c_.d_model, V = c_.padded_vocab();
    const auto& emb = p_.at("backbone.embeddings.weight");
    Mat h(L, Vec(Dm)), r(L, Vec(Dm, 0.0));
    for (int64_t t = 0; t < L; ++t)
      for (int64_t d = 0; d < Dm; ++d) h[t][d] = emb[ids[t] * Dm + d];
    for (int64_t i = 0; i < c_.n_layer; ++i) {
      const std::string pre = "backbone.layers." + std::to_string(i) + ".";
      for (int64_t t = 0; t < L; ++t)
        for (int64_t d = 0; d < Dm; ++d) r[t][d] = (i == 0 ? 0.0 : r[t][d]) + h[t][d];
      h = mixer(pre + "mixer.", norm(r, p_.at(pre + "norm.weight")));
    }
    for (int64_t t = 0; t < L; ++t)
      for (int64_t d = 0; d < Dm; ++d) r[t][d] += h[t][d];
    Mat x = norm(r, p_.at("backbone.norm_f.weight"));
    Mat out(L, Vec(V, 0.0));
    for (int64_t t = 0; t < L; ++t)
      for (int64_t v = 0; v < V; ++v)
        for (int64_t d = 0; d < Dm; ++d) out[t][v] += x[t][d] * emb[v * Dm + d];
    return out;
  }

 private:
  using Vec = std::vector<double>;
  using Mat = std::vector<Vec>;

  Mat norm(const Mat& x, const Vec& w) const {
    Mat out = x;
    for (auto& row : out) {
      double ms = 0;
      for (double v : row) ms += v * v;
      ms /= double(row.size());
      for (size_t d = 0; d < row.size(); ++d) row[d] = row[d] / std::sqrt(ms + c_.norm_epsilon) * w[d];
    }
    return out;
  }
  // y (L, out) = x (L, in) @ W^T, W (out, in)
  static Mat matvec(const Mat& x, const Vec& W, int64_t out) {
    const int64_t in = int64_t(x[0].size());
    Mat y(x.size(), Vec(out, 0.0));
    for (size_t t = 0; t < x.size(); ++t)
      for (int64_t o = 0; o < out; ++o)
        for (int64_t k = 0; k < in; ++k) y[t][o] += x[t][k] * W[o * in + k];
    return y;
  }
  static double silu(double v) { return v / (1 + std::exp(-v)); }
  static double softplus(double v) { return v > 20 ? v : std::log1p(std::exp(v)); }

  Mat mixer(const std::string& pre, const Mat& x0) const {
    const int64_t L = int64_t(x0.size()), E = c_.d_inner(), N = c_.d_state, R = c_.resolved_dt_rank(), W = c_.d_conv;
    Mat xz = matvec(x0, p_.at(pre + "in_proj.weight"), 2 * E);
    const Vec& cw = p_.at(pre + "conv1d.weight");
    const Vec& cb = p_.at(pre + "conv1d.bias");
    Mat x(L, Vec(E));
    for (int64_t t = 0; t < L; ++t)
      for (int64_t e = 0; e < E; ++e) {
        double acc = cb[e];
        for (int64_t w = 0; w < W; ++w) {
          int64_t s = t - W + 1 + w;
          if (s >= 0) acc += cw[e * W + w] * xz[s][e];
        }
        x[t][e] = silu(acc);
      }
    Mat dbl = matvec(x, p_.at(pre + "x_proj.weight"), R + 2 * N);
    const Vec& dtw = p_.at(pre + "dt_proj.weight");
    const Vec& dtb = p_.at(pre + "dt_proj.bias");
    const Vec& alog = p_.at(pre + "A_log");
    const Vec& Dv = p_.at(pre + "D");
    Mat y(L, Vec(E));
    Mat state(E, Vec(N, 0.0));
    for (int64_t t = 0; t < L; ++t)
      for (int64_t e = 0; e < E; ++e) {
        double dt = 0;
        for (int64_t k = 0; k < R; ++k) dt += dbl[t][k] * dtw[e * R + k];
        const double delta = softplus(dt + dtb[e]);
        double acc = 0;
        for (int64_t n = 0; n < N; ++n) {
          const double A = -std::exp(alog[e * N + n]);
          state[e][n] = std::exp(delta * A) * state[e][n] + delta * dbl[t][R + n] * x[t][e];
          acc += state[e][n] * dbl[t][R + N + n];
        }
        acc += Dv[e] * x[t][e];
        y[t][e] = acc * silu(xz[t][E + e]);
      }
    return matvec(y, p_.at(pre + "out_proj.weight"), c_.d_model);
  }

  MambaConfig c_;
  std::map<std::string, Vec> p_;
};

TEST(MambaLM, ParameterNamesAreHuggingFaces) {
  Generator gen(1);
  MambaLM model(small_config(), gen);
  std::vector<std::string> names;
  for (const auto& [n, t] : model.named_parameters()) names.push_back(n);
  const std::vector<std::string> layer = {"norm.weight",         "mixer.in_proj.weight",
                                          "mixer.conv1d.weight", "mixer.conv1d.bias",
                                          "mixer.x_proj.weight", "mixer.dt_proj.weight",
                                          "mixer.dt_proj.bias",  "mixer.out_proj.weight",
                                          "mixer.A_log",         "mixer.D"};
  std::vector<std::string> expected = {"backbone.embeddings.weight"};
  for (int i = 0; i < 2; ++i)
    for (const auto& n : layer) expected.push_back("backbone.layers." + std::to_string(i) + "." + n);
  expected.push_back("backbone.norm_f.weight");
  std::sort(names.begin(), names.end());
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(names, expected);
  std::map<std::string, Shape> shapes;
  for (const auto& [n, t] : model.named_parameters()) shapes[n] = t.shape();
  EXPECT_EQ(shapes["backbone.embeddings.weight"], (Shape{16, 8}));
  EXPECT_EQ(shapes["backbone.layers.0.mixer.in_proj.weight"], (Shape{32, 8}));
  EXPECT_EQ(shapes["backbone.layers.0.mixer.conv1d.weight"], (Shape{16, 1, 4}));
  EXPECT_EQ(shapes["backbone.layers.0.mixer.x_proj.weight"], (Shape{1 + 32, 16}));
  EXPECT_EQ(shapes["backbone.layers.0.mixer.dt_proj.weight"], (Shape{16, 1}));
  EXPECT_EQ(shapes["backbone.layers.0.mixer.A_log"], (Shape{16, 16}));
  EXPECT_EQ(shapes["backbone.layers.0.mixer.out_proj.weight"], (Shape{8, 16}));
}

TEST(MambaLM, ForwardEqualsNaiveEvaluation) {
  Generator gen(2);
  MambaConfig cfg = small_config();
  MambaLM model(cfg, gen, DType::f64);
  // Make every parameter matter: random norm weights, D and A_log instead of their constant init.
  for (auto& [name, t] : model.named_parameters())
    if (t.dim() == 1 || name.find("A_log") != std::string::npos) t.copy_(uniform(t.shape(), 0.5, 1.5, gen, DType::f64));
  const std::vector<std::vector<int64_t>> seqs = {{3, 1, 4, 1, 5, 9, 2, 6, 5}, {10, 0, 7, 7, 2, 8, 1, 8, 2}};
  Tensor ids = from_vector<int64_t>({3, 1, 4, 1, 5, 9, 2, 6, 5, 10, 0, 7, 7, 2, 8, 1, 8, 2}, {2, 9});
  std::vector<double> got = model.forward(ids).to_vector<double>();
  NaiveMamba naive(model);
  double max_err = 0, max_ref = 0;
  for (size_t b = 0; b < seqs.size(); ++b) {
    auto ref = naive.logits(seqs[b]);
    for (size_t t = 0; t < ref.size(); ++t)
      for (size_t v = 0; v < ref[t].size(); ++v) {
        max_err = std::max(max_err, std::abs(got[(b * 9 + t) * 16 + v] - ref[t][v]));
        max_ref = std::max(max_ref, std::abs(ref[t][v]));
      }
  }
  EXPECT_GT(max_ref, 1e-2);
  EXPECT_LE(max_err, 1e-10);
}

TEST(MambaLM, WholeModelGradcheckEveryParameter) {
  Generator gen(3);
  MambaLM model(small_config(), gen, DType::f64);
  for (auto& [name, t] : model.named_parameters())
    if (t.dim() == 1) t.copy_(uniform(t.shape(), 0.5, 1.5, gen, DType::f64));
  Tensor ids = from_vector<int64_t>({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 9});
  Tensor targets = from_vector<int64_t>({2, 3, 4, 5, 6, 7, 8, 9, 10}, {1, 9});
  std::vector<Tensor> params = model.parameters();
  autograd::GradcheckResult r =
      autograd::gradcheck([&](const std::vector<Tensor>&) { return model.loss(ids, targets); }, params);
  EXPECT_LE(r.max_relative_error, 1e-6) << r.report;
}

// train.recompute full: every block checkpointed gives the loss and every parameter's gradient
// of the plain model (float64, 1e-10; in practice the same bits), on a batch of two sequences.
TEST(MambaLM, RecomputedBlocksGiveThePlainGradients) {
  auto run = [](bool recompute) {
    Generator gen(4);
    MambaLM model(small_config(), gen, DType::f64);
    model.set_recompute_blocks(recompute);
    Tensor ids = from_vector<int64_t>({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 3, 1, 4, 1, 5, 9, 2, 6}, {2, 9});
    Tensor targets = from_vector<int64_t>({2, 3, 4, 5, 6, 7, 8, 9, 10, 1, 4, 1, 5, 9, 2, 6, 5, 3}, {2, 9});
    Tensor loss = model.loss(ids, targets);
    autograd::backward(loss);
    std::vector<std::pair<std::string, std::vector<double>>> out = {{"loss", loss.to_vector<double>()}};
    for (const auto& [name, p] : model.named_parameters()) {
      EXPECT_TRUE(p.grad().defined()) << name;
      out.emplace_back(name, p.grad().to_vector<double>());
    }
    return out;
  };
  const auto plain = run(false), recomputed = run(true);
  ASSERT_EQ(plain.size(), recomputed.size());
  for (size_t i = 0; i < plain.size(); ++i) {
    ASSERT_EQ(plain[i].second.size(), recomputed[i].second.size());
    double worst = 0, scale = 0;
    for (size_t k = 0; k < plain[i].second.size(); ++k) {
      worst = std::max(worst, std::abs(plain[i].second[k] - recomputed[i].second[k]));
      scale = std::max(scale, std::abs(plain[i].second[k]));
    }
    EXPECT_GT(scale, 0.0) << plain[i].first;
    EXPECT_LE(worst, 1e-10 * scale) << plain[i].first;
  }
}

struct Stats {
  double mean = 0, stddev = 0, lo = 1e300, hi = -1e300;
  int64_t n = 0;
};

Stats stats(const Tensor& t) {
  Stats s;
  std::vector<double> v = t.to_vector<double>();
  s.n = int64_t(v.size());
  for (double x : v) s.mean += x / double(v.size()), s.lo = std::min(s.lo, x), s.hi = std::max(s.hi, x);
  for (double x : v) s.stddev += (x - s.mean) * (x - s.mean) / double(v.size());
  s.stddev = std::sqrt(s.stddev);
  return s;
}

// A uniform U(-b, b) draw: inside the bounds, close to them, centred, std b / sqrt(3).
void expect_uniform(const std::string& name, const Tensor& t, double b) {
  SCOPED_TRACE(name);
  Stats s = stats(t);
  // The bound is computed in double and the draw rounded to f32: allow one f32 rounding.
  EXPECT_GE(s.lo, -b * (1 + 1e-7));
  EXPECT_LE(s.hi, b * (1 + 1e-7));
  EXPECT_LT(s.lo, -0.95 * b);
  EXPECT_GT(s.hi, 0.95 * b);
  EXPECT_NEAR(s.mean, 0.0, 5 * b / std::sqrt(3.0 * double(s.n)));
  EXPECT_NEAR(s.stddev, b / std::sqrt(3.0), 0.03 * b / std::sqrt(3.0));
}

TEST(MambaLM, InitializationMatchesDesignOn130mShape) {
  MambaConfig cfg;  // defaults are mamba-130m: d_model 768, 24 layers, vocab 50277
  cfg.d_model = 768;
  cfg.n_layer = 24;
  Generator gen(4);
  MambaLM model(cfg, gen);
  EXPECT_EQ(cfg.padded_vocab(), 50280);
  std::map<std::string, Tensor> p;
  for (const auto& [n, t] : model.named_parameters()) p[n] = t;
  EXPECT_EQ(p.size(), 2u + 24u * 10u);
  EXPECT_NEAR(double(model.num_parameters()), 129.1e6, 0.5e6);

  Stats emb = stats(p["backbone.embeddings.weight"]);
  EXPECT_NEAR(emb.mean, 0.0, 5 * 0.02 / std::sqrt(double(emb.n)));
  EXPECT_NEAR(emb.stddev, 0.02, 0.0002);
  for (int i : {0, 23}) {
    const std::string pre = "backbone.layers." + std::to_string(i) + ".";
    expect_uniform(pre + "in_proj", p[pre + "mixer.in_proj.weight"], 1 / std::sqrt(768.0));
    expect_uniform(pre + "x_proj", p[pre + "mixer.x_proj.weight"], 1 / std::sqrt(1536.0));
    expect_uniform(pre + "dt_proj", p[pre + "mixer.dt_proj.weight"], 1 / std::sqrt(48.0));
    expect_uniform(pre + "out_proj", p[pre + "mixer.out_proj.weight"], 1 / std::sqrt(1536.0) / std::sqrt(24.0));
    // Conv weight and bias, U(-1/sqrt(fan_in), +) with fan_in = d_conv = 4: small (1536 * 4 and
    // 1536 values), so the bounds are checked from both sides and the mean to 5 standard errors.
    for (const char* n : {"mixer.conv1d.weight", "mixer.conv1d.bias"}) {
      Stats s = stats(p[pre + n]);
      EXPECT_GE(s.lo, -0.5);
      EXPECT_LE(s.hi, 0.5);
      EXPECT_LT(s.lo, -0.45);
      EXPECT_GT(s.hi, 0.45);
      EXPECT_NEAR(s.mean, 0.0, 5 * 0.5 / std::sqrt(3.0 * double(s.n)));
      EXPECT_NEAR(s.stddev, 0.5 / std::sqrt(3.0), 0.02);
    }
    for (double v : p[pre + "norm.weight"].to_vector<double>()) ASSERT_EQ(v, 1.0);
    for (double v : p[pre + "mixer.D"].to_vector<double>()) ASSERT_EQ(v, 1.0);
    std::vector<double> alog = p[pre + "mixer.A_log"].to_vector<double>();
    for (int64_t e = 0; e < 1536; e += 97)
      for (int64_t n = 0; n < 16; ++n) ASSERT_NEAR(alog[size_t(e * 16 + n)], std::log(double(n + 1)), 1e-6);
    // softplus(dt bias) is the dt draw: in [dt_min, dt_max], log-uniform.
    double log_mean = 0;
    for (double b : p[pre + "mixer.dt_proj.bias"].to_vector<double>()) {
      const double dt = std::log1p(std::exp(b));
      EXPECT_GE(dt, 1e-3 * (1 - 1e-5));
      EXPECT_LE(dt, 0.1 * (1 + 1e-5));
      log_mean += std::log(dt) / 1536;
    }
    const double mid = (std::log(1e-3) + std::log(0.1)) / 2,
                 spread = (std::log(0.1) - std::log(1e-3)) / std::sqrt(12.0);
    EXPECT_NEAR(log_mean, mid, 5 * spread / std::sqrt(1536.0));
  }
  for (double v : p["backbone.norm_f.weight"].to_vector<double>()) ASSERT_EQ(v, 1.0);
}

TEST(MambaLM, SameSeedSameModel) {
  Generator g1(9), g2(9);
  MambaLM a(small_config(), g1), b(small_config(), g2);
  auto pa = a.named_parameters(), pb = b.named_parameters();
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_EQ(pa[i].second.to_vector<float>(), pb[i].second.to_vector<float>());
}

// ---- bad input: one line naming the problem ----

TEST(MambaLM, TokenIdOutsideVocabularyIsAnError) {
  Generator gen(1);
  MambaLM model(byte_config(), gen);
  Tensor ids = from_vector<int64_t>({72, 105, 300, 33}, {1, 4});
  expect_error([&] { model.forward(ids); }, {"token id 300", "position 2", "[0, 256)"});
  Tensor negative = from_vector<int64_t>({-1}, {1, 1});
  expect_error([&] { model.forward(negative); }, {"token id -1"});
  expect_error(
      [] {
        cross_entropy(zeros({2, 4}), from_vector<int64_t>({1, 4}, {2}));
      },
      {"target 4", "row 1", "[0, 4)"});
}

TEST(MambaLM, EmptyBatchIsAnError) {
  Generator gen(1);
  MambaLM model(byte_config(), gen);
  expect_error([&] { model.forward(Tensor::empty({0, 8}, DType::i64)); }, {"empty batch", "[0, 8]"});
  expect_error([&] { model.forward(Tensor::empty({2, 0}, DType::i64)); }, {"empty batch"});
  expect_error([] { cross_entropy(zeros({0, 5}), Tensor::empty({0}, DType::i64)); }, {"cross_entropy", "empty"});
}

// ---- learning ----
// After 200 AdamW steps on a few KB of Austen (byte tokens), the loss on the text is clearly
// below the text's unigram entropy, which a model that had learned nothing about context cannot
// beat.

std::vector<int64_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return std::vector<int64_t>(s.begin(), s.end());
}

double unigram_entropy_nats(const std::vector<int64_t>& tokens) {
  std::vector<double> count(256, 0.0);
  for (int64_t t : tokens) count[size_t(t & 0xff)] += 1;
  double h = 0;
  for (double c : count)
    if (c > 0) h -= c / double(tokens.size()) * std::log(c / double(tokens.size()));
  return h;
}

TEST(MambaLM, TinyModelBeatsUnigramEntropyOnRealText) {
  std::vector<int64_t> text = read_bytes(data_path("pride_and_prejudice_ch1.txt"));
  for (auto& t : text) t &= 0xff;
  ASSERT_GT(text.size(), 8000u);
  const double entropy = unigram_entropy_nats(text);

  MambaConfig cfg;
  cfg.d_model = 64;
  cfg.n_layer = 2;
  cfg.vocab_size = 256;
  Generator gen(0);
  MambaLM model(cfg, gen);
  AdamW opt(model.named_parameters(), AdamWConfig{0.9, 0.95, 1e-8, 0.1});
  const int64_t B = 8, L = 64, steps = 200;
  auto window_batch = [&](const std::vector<int64_t>& starts) {
    std::vector<int64_t> x, y;
    for (int64_t s : starts)
      for (int64_t t = 0; t < L; ++t) x.push_back(text[size_t(s + t)]), y.push_back(text[size_t(s + t + 1)]);
    const int64_t n = int64_t(starts.size());
    return std::pair{from_vector(x, {n, L}), from_vector(y, {n, L})};
  };

  double first = 0, last = 0;
  for (int64_t step = 0; step < steps; ++step) {
    std::vector<int64_t> starts;
    for (int64_t b = 0; b < B; ++b) starts.push_back(int64_t(gen.uniform() * double(text.size() - L - 1)));
    auto [x, y] = window_batch(starts);
    model.zero_grad();
    Tensor loss = model.loss(x, y);
    autograd::backward(loss);
    const double lr = 3e-3 * std::min(1.0, double(step + 1) / 10);
    opt.step(lr, clip_scale(grad_norm(model.parameters()), 1.0));
    if (step == 0) first = loss.item();
    last = loss.item();
  }

  // Loss over the whole text in consecutive windows, without gradients.
  autograd::NoGradGuard guard;
  std::vector<int64_t> starts;
  for (int64_t s = 0; s + L + 1 <= int64_t(text.size()); s += L) starts.push_back(s);
  auto [x, y] = window_batch(starts);
  const double final_loss = model.loss(x, y).item();
  std::printf("unigram entropy %.3f nats; loss first step %.3f, last step %.3f, whole text %.3f\n", entropy, first,
              last, final_loss);
  EXPECT_NEAR(first, std::log(256.0), 0.3);
  EXPECT_LT(final_loss, entropy - 0.3);
}

// ---- on a GPU ----

class MambaLMCuda : public CudaTest {};

MambaConfig cuda_model_config() {
  MambaConfig c;
  c.d_model = 40;  // d_inner 80: not a multiple of the scan's 32-channel blocks
  c.n_layer = 2;
  c.vocab_size = 97;
  return c;
}

Tensor random_ids(int64_t B, int64_t L, int64_t vocab, Generator& gen) {
  std::vector<int64_t> v(size_t(B * L));
  for (auto& t : v) t = std::min<int64_t>(vocab - 1, int64_t(gen.uniform() * double(vocab)));
  return from_vector(v, {B, L});
}

// Loss and gradients of the same model (same seed) on the cpu and on cuda:0 in compute dtype dt.
void expect_model_parity(uint64_t seed, DType dt, double loss_tol, double grad_tol) {
  Generator g_cpu(seed), g_gpu(seed), g_data(seed + 7);
  MambaLM cpu(cuda_model_config(), g_cpu), gpu(cuda_model_config(), g_gpu);
  gpu.to(Device::cuda(0));
  gpu.set_compute_dtype(dt);
  // Random norm weights and D so that every parameter's gradient is exercised away from its init.
  for (auto* m : {&cpu, &gpu}) {
    Generator g(seed + 3);
    for (auto& [name, t] : m->named_parameters())
      if (t.dim() == 1) t.copy_(uniform(t.shape(), 0.5, 1.5, g, DType::f32));
  }
  Tensor ids = random_ids(3, 37, 97, g_data), targets = random_ids(3, 37, 97, g_data);
  Tensor lc = cpu.loss(ids, targets);
  Tensor lg = gpu.loss(ids.to(Device::cuda(0)), targets.to(Device::cuda(0)));
  autograd::backward(lc);
  autograd::backward(lg);
  EXPECT_LE(std::abs(lg.item() - lc.item()) / std::abs(lc.item()), loss_tol) << "loss " << dtype_name(dt);
  auto pc = cpu.named_parameters(), pg = gpu.named_parameters();
  for (size_t i = 0; i < pc.size(); ++i) {
    ASSERT_TRUE(pg[i].second.grad().defined()) << pg[i].first;
    EXPECT_LE(relative_error(pg[i].second.grad(), pc[i].second.grad()), grad_tol)
        << "gradient of " << pc[i].first << " (" << dtype_name(dt) << ")";
  }
}

TEST_F(MambaLMCuda, F32LossAndEveryGradientMatchTheCpu) {
  expect_model_parity(seed_, DType::f32, 1e-5, 1e-4);
}

// bf16 rounds every activation and matmul operand (relative 2^-9 each); through two layers of
// forward and backward the gradients of the first layer's small tensors drift by up to ~9%
// (measured on an H200, 2026-11-30), so this is a sanity bound, not a precision claim: the f32
// test above is the exact one.
TEST_F(MambaLMCuda, Bf16MixedPrecisionStaysCloseToTheCpu) {
  expect_model_parity(seed_, DType::bf16, 1e-2, 0.15);
}

#ifdef SERPENT_CUDA
TEST_F(MambaLMCuda, TrainingStepAllocatesNothingOnceWarm) {
  Generator gen(seed_);
  MambaLM model(cuda_model_config(), gen);
  model.to(Device::cuda(0));
  model.set_compute_dtype(DType::bf16);
  AdamW opt(model.named_parameters(), AdamWConfig{});
  const std::vector<Tensor> params = model.parameters();
  Tensor ids = random_ids(4, 64, 97, gen).to(Device::cuda(0)), targets = random_ids(4, 64, 97, gen).to(Device::cuda(0));
  auto step = [&] {
    model.zero_grad();
    Tensor loss = model.loss(ids, targets);
    autograd::backward(loss);
    opt.step(1e-3, grad_norm_device(params), 1.0);
  };
  step();
  step();
  const int64_t mallocs = cuda::CachingAllocator::get().stats(0).device_mallocs;
  for (int i = 0; i < 3; ++i) step();
  cuda::synchronize(0);
  EXPECT_EQ(cuda::CachingAllocator::get().stats(0).device_mallocs, mallocs);
}
#endif

}  // namespace
