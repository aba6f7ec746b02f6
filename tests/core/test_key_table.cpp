// The config codec (core/key_table.h): numbers as messages and YAML show them, typed reading,
// ranges, the nearest key; and that the model section reads the same through the model's own
// codec (checkpoints, import-hf) as through the training config, since both use one table.
#include "core/key_table.h"
#include "layers/mamba_config_yaml.h"
#include "tests/helpers.h"
#include "train/config.h"

using namespace serpent;
using namespace serpent::testing;

TEST(KeyTable, NumbersReadBackExactlyAndStayFloatsInYaml) {
  EXPECT_EQ(keys::format_number(0.003), "0.003");
  EXPECT_EQ(keys::format_number(1e-5), "1.0e-05");
  EXPECT_EQ(keys::format_number(2), "2");
  EXPECT_EQ(keys::yaml_number(2), "2.0");
  EXPECT_EQ(keys::yaml_number(1e-5), "1.0e-05");
  EXPECT_EQ(keys::yaml_number(0.1), "0.1");
  for (double v : {0.1, 1.0 / 3, 6e-4, 1e300, -2.5e-17, 123456789.0}) {
    double back = 0;
    ASSERT_TRUE(keys::parse_double(keys::yaml_number(v), &back)) << v;
    EXPECT_EQ(back, v);
  }
  int64_t i = 0;
  EXPECT_TRUE(keys::parse_int("3e11", &i));
  EXPECT_EQ(i, 300000000000);
  EXPECT_FALSE(keys::parse_int("2.5", &i));
  EXPECT_FALSE(keys::parse_int("1e400", &i));
  double d = 0;
  EXPECT_FALSE(keys::parse_double("inf", &d));
  EXPECT_FALSE(keys::parse_double("nan", &d));
  EXPECT_FALSE(keys::parse_double("1.5x", &d));
}

TEST(KeyTable, RangesAndTypesAreReportedByKey) {
  int64_t v = 5;
  keys::assign("x.yaml", "model.n_layer", v, keys::at_least(1), YAML::Node("12"));
  EXPECT_EQ(v, 12);
  expect_error([&] { keys::assign("x.yaml", "model.n_layer", v, keys::at_least(1), YAML::Node("0")); },
               {"x.yaml: model.n_layer must be >= 1, got 0"});
  expect_error([&] { keys::assign("x.yaml", "model.n_layer", v, keys::at_least(1), YAML::Node("many")); },
               {"x.yaml: model.n_layer expects an integer, got 'many'"});
  EXPECT_EQ(v, 12) << "a rejected value must leave the member alone";
  int64_t rank = 3;
  keys::assign("s", "model.dt_rank", rank, keys::rank_or_auto(), YAML::Node("auto"));
  EXPECT_EQ(rank, 0);
  std::string dev = "cpu";
  expect_error([&] { keys::assign("s", "train.device", dev, keys::device_name(), YAML::Node("gpu")); },
               {"train.device must be cpu, cuda or cuda:N, got 'gpu'"});
  expect_error([] { keys::check_range("optim.decay_fraction", 0.0, keys::interval(0, 1, true, false)); },
               {"optim.decay_fraction must be in (0, 1], got 0"});
}

TEST(KeyTable, NearestKeyPrefersTheSameNameInAnotherSection) {
  const std::vector<std::string> keys = {"model.d_model", "train.seed", "optim.lr", "optim.warmup_steps"};
  EXPECT_EQ(keys::nearest_key("train.lr", keys), "optim.lr");
  EXPECT_EQ(keys::nearest_key("optim.warmup", keys), "optim.warmup_steps");
  EXPECT_EQ(keys::nearest_key("model.d_modle", keys), "model.d_model");
  EXPECT_EQ(keys::nearest_key("optimizer", keys), "optim");
  EXPECT_EQ(keys::sections_of(keys), (std::vector<std::string>{"model", "train", "optim"}));
}

TEST(KeyTable, TheModelSectionIsOneTableForBothCodecs) {
  // The training config's keys begin with the model section's, in the same order.
  const std::vector<std::string>& all = config_keys();
  const std::vector<std::string>& model = mamba_config_keys();
  ASSERT_GE(all.size(), model.size());
  for (size_t i = 0; i < model.size(); ++i) EXPECT_EQ(all[i], "model." + model[i]);
  // The same text gives the same model and the same message through either path.
  const std::string text = "model:\n  d_model: 96\n  n_layer: 3\n  dt_rank: auto\n  norm_epsilon: 1.0e-06\n";
  EXPECT_EQ(Config::parse(text, "a.yaml").model, mamba_config_from_config_text(text, "a.yaml"));
  for (const char* bad :
       {"model:\n  n_layer: 0\n", "model:\n  d_state: wide\n", "model:\n  d_modle: 4\n", "model:\n  conv_bias: 1\n"}) {
    std::string via_config, via_model;
    try {
      Config::parse(bad, "a.yaml");
    } catch (const Error& e) {
      via_config = e.what();
    }
    try {
      mamba_config_from_config_text(bad, "a.yaml");
    } catch (const Error& e) {
      via_model = e.what();
    }
    EXPECT_FALSE(via_config.empty()) << bad;
    EXPECT_EQ(via_config, via_model) << bad;
  }
  // What the model codec writes, the training config reads back to the same model.
  MambaConfig m = small_config();
  m.norm_epsilon = 3e-6;
  m.dt_rank = 5;
  EXPECT_EQ(Config::parse(mamba_config_yaml_text(m), "m.yaml").model, m);
}
