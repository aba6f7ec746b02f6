// train.init_from (train/init_from.h): a new run from a serpent checkpoint (with or without
// optimizer state) or a Hugging Face folder, at step 0 with a new optimizer; the model section may
// be left out; shapes decide, and every mismatch is named.
#include <filesystem>

#include "io/checkpoint.h"
#include "io/hf.h"
#include "tests/helpers.h"
#include "train/init_from.h"
#include "train/trainer.h"

namespace fs = std::filesystem;
using namespace serpent;
using namespace serpent::testing;

namespace {

class InitFrom : public ::testing::Test {
 protected:
  void SetUp() override {
    write_text_dataset(data_);
    Config c = base("src");
    c.model.d_model = 16;
    c.model.n_layer = 2;
    c.model.vocab_size = 257;
    c.model.d_state = 4;
    c.model_given = true;
    Trainer t(c, quiet());
    t.run();
    source_ = checkpoint_path(c.checkpoint_dir(), 3);
  }
  Config base(const std::string& name) const {
    Config c;
    c.data.path = data_;
    c.data.seq_len = 32;
    c.data.micro_batch_size = 2;
    c.data.global_batch_tokens = 64;
    c.train.name = name;
    c.train.max_steps = 3;
    c.optim.warmup_steps = 0;
    c.checkpoint.keep_last = 1;
    c.log.runs_dir = runs_;
    return c;
  }
  static TrainerOptions quiet() {
    TrainerOptions o;
    o.progress = false;
    return o;
  }
  TempDir dir_;
  std::string data_ = dir_ / "data", runs_ = dir_ / "runs", source_;
};

}  // namespace

TEST_F(InitFrom, ACheckpointStartsAFreshRunWithItsWeightsAndModel) {
  Config c = base("fine");
  c.train.init_from = source_;  // no model key: the checkpoint's model
  Trainer t(c, quiet());
  EXPECT_EQ(t.config().model.d_model, 16);
  EXPECT_EQ(t.config().model.vocab_size, 257);
  EXPECT_EQ(t.completed_steps(), 0);
  expect_same_tensors(t.model().named_parameters(), load_checkpoint(source_).model);
  t.run();
  const Checkpoint after = load_checkpoint(checkpoint_path(c.checkpoint_dir(), 3));
  EXPECT_EQ(after.optim_step, 3) << "a new optimizer: 3 updates, not 6";
}

TEST_F(InitFrom, AModelOnlyFileAndAHuggingFaceFolderWork) {
  // What import-hf writes: the model section only, no optimizer state.
  const Checkpoint full = load_checkpoint(source_);
  Checkpoint bare;
  bare.config_yaml = full.config_yaml;
  bare.model = full.model;
  save_checkpoint(dir_ / "bare.h5", bare);
  Config c = base("from_bare");
  c.train.init_from = dir_ / "bare.h5";
  expect_same_tensors(Trainer(c, quiet()).model().named_parameters(), full.model);

  // An exported folder: its config.json has the padded vocabulary (264) and dt_rank as a number;
  // a config that names the original model (vocab 257, dt_rank auto) fits, since the shapes do.
  export_hf(source_, dir_ / "hf", "none");
  EXPECT_EQ(mamba_config_from_hf(nlohmann::json::parse(read_text_file(dir_ / "hf/config.json")), "c").vocab_size, 264);
  Config named = base("from_hf");
  named.model = init_source_model(source_);
  named.model_given = true;
  named.train.init_from = dir_ / "hf";
  Trainer t(named, quiet());
  expect_same_tensors(t.model().named_parameters(), full.model);
  EXPECT_EQ(t.config().model.vocab_size, 257);
}

TEST_F(InitFrom, EveryShapeMismatchIsNamed) {
  Config c = base("wide");
  c.model.d_model = 24;
  c.model.n_layer = 2;
  c.model.vocab_size = 257;
  c.model.d_state = 4;
  c.model_given = true;
  c.train.init_from = source_;
  expect_error([&] { Trainer t(c, quiet()); },
               {"train.init_from " + source_ + " does not fit the config's model",
                "backbone.embeddings.weight: [264, 16] there, [264, 24] in the config",
                "backbone.layers.1.mixer.out_proj.weight", "backbone.norm_f.weight", "leave the model section out"});
  c.model.d_model = 16;
  c.model.n_layer = 3;
  expect_error([&] { Trainer t(c, quiet()); }, {"backbone.layers.2.norm.weight is missing"});
  c.train.init_from = dir_ / "nowhere.h5";
  expect_error([&] { Trainer t(c, quiet()); }, {"train.init_from", "nowhere.h5 does not exist"});
}
