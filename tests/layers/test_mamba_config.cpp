// The model's configuration: invalid values are errors naming the key, and the model section of
// the YAML config (layers/mamba_config_yaml.h) round-trips every field and names bad keys.
#include "tests/helpers.h"

using namespace serpent;
using namespace serpent::testing;

namespace {

TEST(ModelConfig, InvalidValuesAreNamed) {
  MambaConfig c = byte_config();
  c.d_state = 0;
  Generator gen(1);
  expect_error([&] { MambaLM m(c, gen); }, {"model.d_state", "must be in [1, 1024]", "got 0"});
  c = byte_config();
  c.bias = true;
  expect_error([&] { MambaLM m(c, gen); }, {"model.bias"});
}

TEST(ModelYaml, RoundTripsEveryField) {
  MambaConfig c;
  c.d_model = 40;
  c.n_layer = 3;
  c.vocab_size = 50277;
  c.pad_vocab_size_multiple = 16;
  c.d_state = 8;
  c.d_conv = 3;
  c.expand = 3;
  c.dt_rank = 5;
  c.dt_min = 0.0015;
  c.dt_max = 0.2;
  c.dt_init_floor = 3e-5;
  c.conv_bias = false;
  c.bias = true;
  c.rms_norm = false;
  c.norm_epsilon = 1e-6;
  c.residual_in_fp32 = false;
  c.tie_embeddings = false;
  const std::string text = mamba_config_yaml_text(c);
  EXPECT_NE(text.find("norm_epsilon: 1.0e-06"), std::string::npos) << text;
  EXPECT_NE(text.find("dt_rank: 5"), std::string::npos) << text;
  const MambaConfig back = mamba_config_from_config_text(text, "test");
  EXPECT_EQ(mamba_config_yaml_text(back), text);
  EXPECT_EQ(back.dt_min, 0.0015);
  EXPECT_EQ(back.dt_init_floor, 3e-5);
  EXPECT_EQ(back.norm_epsilon, 1e-6);
  EXPECT_FALSE(back.conv_bias);
  EXPECT_TRUE(back.bias);
  EXPECT_EQ(mamba_config_keys().size(), 17u);

  const MambaConfig defaults = mamba_config_from_config_text("model:\n  d_model: 64\n  dt_rank: auto\n", "test");
  EXPECT_EQ(defaults.d_model, 64);
  EXPECT_EQ(defaults.dt_rank, 0);
  EXPECT_EQ(defaults.resolved_dt_rank(), 4);
  EXPECT_EQ(defaults.n_layer, MambaConfig{}.n_layer);
  EXPECT_NE(mamba_config_yaml_text(defaults).find("dt_rank: auto"), std::string::npos);
}

TEST(ModelYaml, ErrorsNameTheKey) {
  expect_error([] { mamba_config_from_config_text("model:\n  d_modle: 64\n", "cfg.yaml"); },
               {"cfg.yaml", "model.d_modle", "unknown key", "did you mean 'model.d_model'"});
  expect_error([] { mamba_config_from_config_text("model:\n  d_model: wide\n", "cfg.yaml"); },
               {"model.d_model", "integer", "wide"});
  expect_error([] { mamba_config_from_config_text("model:\n  rms_norm: 3\n", "cfg.yaml"); }, {"model.rms_norm"});
  expect_error([] { mamba_config_from_config_text("model:\n  dt_rank: big\n", "cfg.yaml"); },
               {"model.dt_rank", "auto"});
  expect_error([] { mamba_config_from_config_text("train:\n  steps: 3\n", "cfg.yaml"); },
               {"cfg.yaml", "no model section"});
  expect_error([] { mamba_config_from_config_text("model: [1, 2\n", "cfg.yaml"); }, {"cfg.yaml", "not valid YAML"});
}

}  // namespace
