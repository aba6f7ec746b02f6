// A tiny MambaLM learns real English: after 200 AdamW steps on a few KB of Austen (byte tokens),
// its loss on the text is clearly below the text's unigram entropy, which a model that had
// learned nothing about context cannot beat.
#include <fstream>
#include <iterator>

#include "autograd/node.h"
#include "helpers.h"
#include "layers/mamba.h"
#include "optim/adamw.h"

using namespace serpent;
using namespace serpent::testing;

namespace {

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

TEST(Learning, TinyModelBeatsUnigramEntropyOnRealText) {
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

}  // namespace
