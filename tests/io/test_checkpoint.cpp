// HDF5 checkpoints (io/checkpoint.h): exact round trip, the layout read back through the raw
// HDF5 C API, damage detection (truncation, flipped bytes), fallback to the previous checkpoint,
// atomic saves, listing and pruning a folder of checkpoints, and names that are refused.
// `serpent inspect` is in cli/test_cmd_inspect.cpp.
#include <hdf5.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>

#include "io/checkpoint.h"
#include "tests/helpers.h"

namespace fs = std::filesystem;
using namespace serpent;
using namespace serpent::testing;

namespace {

// The parameter names of docs/DESIGN.md ("Parameters"), written out independently of the model code.
std::vector<std::pair<std::string, Shape>> design_parameters(const MambaConfig& c) {
  const int64_t D = c.d_model, E = c.d_inner(), N = c.d_state, R = c.resolved_dt_rank();
  std::vector<std::pair<std::string, Shape>> out = {{"backbone.embeddings.weight", {c.padded_vocab(), D}},
                                                    {"backbone.norm_f.weight", {D}}};
  for (int64_t i = 0; i < c.n_layer; ++i) {
    const std::string p = "backbone.layers." + std::to_string(i) + ".";
    out.insert(out.end(), {{p + "norm.weight", {D}},
                           {p + "mixer.in_proj.weight", {2 * E, D}},
                           {p + "mixer.conv1d.weight", {E, 1, c.d_conv}},
                           {p + "mixer.conv1d.bias", {E}},
                           {p + "mixer.x_proj.weight", {R + 2 * N, E}},
                           {p + "mixer.dt_proj.weight", {E, R}},
                           {p + "mixer.dt_proj.bias", {E}},
                           {p + "mixer.A_log", {E, N}},
                           {p + "mixer.D", {E}},
                           {p + "mixer.out_proj.weight", {D, E}}});
  }
  return out;
}

// Byte offset of a dataset's data in the file, through the raw API.
uint64_t data_offset(const std::string& file, const std::string& dataset) {
  hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t d = H5Dopen2(f, dataset.c_str(), H5P_DEFAULT);
  const haddr_t off = H5Dget_offset(d);
  H5Dclose(d);
  H5Fclose(f);
  EXPECT_NE(off, HADDR_UNDEF) << dataset;
  return off;
}

void flip_byte(const std::string& file, uint64_t offset) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(std::streamoff(offset));
  char c = 0;
  f.read(&c, 1);
  c = char(c ^ 0x5a);
  f.seekp(std::streamoff(offset));
  f.write(&c, 1);
}

uint64_t find_bytes(const std::string& file, const std::string& needle) {
  std::ifstream in(file, std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t at = s.find(needle);
  EXPECT_NE(at, std::string::npos) << needle;
  return at;
}

TEST(Checkpoint, RoundTripIsExact) {
  TempDir dir;
  Trained t;
  const Checkpoint saved = t.checkpoint();
  save_checkpoint(dir / "a.h5", saved);
  const Checkpoint back = load_checkpoint(dir / "a.h5");
  EXPECT_EQ(back.config_yaml, saved.config_yaml);
  expect_same_tensors(back.model, saved.model);
  expect_same_tensors(back.optim, saved.optim);
  EXPECT_EQ(back.optim_step, 2);
  EXPECT_EQ(back.train, saved.train);
  for (const auto& [name, tensor] : back.model) EXPECT_EQ(tensor.dtype(), DType::f32);

  // The loaded state drives a fresh model and optimizer to the same next step.
  Generator other(99);
  MambaLM model(small_config(), other);
  model.load_state_dict(back.model);
  AdamW opt(model.named_parameters(), AdamWConfig{});
  opt.load_state(back.optim, back.optim_step);
  expect_same_tensors(model.named_parameters(), saved.model);
}

TEST(Checkpoint, ModelOnlyLoadSkipsTheRest) {
  TempDir dir;
  Trained t;
  save_checkpoint(dir / "a.h5", t.checkpoint());
  const Checkpoint back = load_checkpoint(dir / "a.h5", CheckpointParts::model_only);
  expect_same_tensors(back.model, t.model.named_parameters());
  EXPECT_FALSE(back.has_optim());
  EXPECT_EQ(back.train, TrainState{});
  EXPECT_FALSE(back.config_yaml.empty());
}

TEST(Checkpoint, LayoutThroughRawHdf5HoldsEveryDesignTensor) {
  TempDir dir;
  Trained t;
  const Checkpoint c = t.checkpoint(7);
  const std::string path = dir / "layout.h5";
  save_checkpoint(path, c);
  std::map<std::string, Tensor> params(c.model.begin(), c.model.end()), moments(c.optim.begin(), c.optim.end());

  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  auto read_dataset = [&](const std::string& name, hid_t mem_type, void* buf, Shape* shape, H5T_class_t* cls,
                          size_t* size) {
    hid_t d = H5Dopen2(f, name.c_str(), H5P_DEFAULT);
    ASSERT_GE(d, 0) << name;
    hid_t type = H5Dget_type(d), space = H5Dget_space(d);
    *cls = H5Tget_class(type);
    *size = H5Tget_size(type);
    const int nd = H5Sget_simple_extent_ndims(space);
    std::vector<hsize_t> dims(static_cast<size_t>(nd));
    H5Sget_simple_extent_dims(space, dims.data(), nullptr);
    shape->assign(dims.begin(), dims.end());
    if (buf) {
      EXPECT_GE(H5Dread(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf), 0) << name;
    }
    H5Tclose(type);
    H5Sclose(space);
    H5Dclose(d);
  };
  auto expect_f32 = [&](const std::string& name, const Tensor& want, const Shape& design_shape) {
    SCOPED_TRACE(name);
    Shape shape;
    H5T_class_t cls;
    size_t size;
    std::vector<float> v(size_t(shape_numel(design_shape)));
    read_dataset(name, H5T_NATIVE_FLOAT, v.data(), &shape, &cls, &size);
    EXPECT_EQ(cls, H5T_FLOAT);
    EXPECT_EQ(size, 4u);
    EXPECT_EQ(shape, design_shape);
    EXPECT_EQ(v, want.to_vector<float>());
  };
  auto scalar_i64 = [&](const std::string& name) {
    Shape shape;
    H5T_class_t cls;
    size_t size;
    int64_t v = -1;
    read_dataset(name, H5T_NATIVE_INT64, &v, &shape, &cls, &size);
    EXPECT_EQ(cls, H5T_INTEGER) << name;
    EXPECT_TRUE(shape.empty()) << name;
    return v;
  };

  const auto design = design_parameters(small_config());
  EXPECT_EQ(design.size(), c.model.size());
  for (const auto& [name, shape] : design) {
    ASSERT_TRUE(params.count(name)) << name;
    expect_f32("/model/" + name, params[name], shape);
    expect_f32("/optim/" + name + ".exp_avg", moments[name + ".exp_avg"], shape);
    expect_f32("/optim/" + name + ".exp_avg_sq", moments[name + ".exp_avg_sq"], shape);
  }
  EXPECT_EQ(scalar_i64("/optim/step"), 2);
  EXPECT_EQ(scalar_i64("/train/step"), 7);
  EXPECT_EQ(scalar_i64("/train/tokens_seen"), 7 * 64);
  EXPECT_EQ(scalar_i64("/train/bad_steps"), 2);
  {
    Shape shape;
    H5T_class_t cls;
    size_t size;
    uint64_t seed = 0, offset = 0;
    read_dataset("/train/rng_seed", H5T_NATIVE_UINT64, &seed, &shape, &cls, &size);
    read_dataset("/train/rng_offset", H5T_NATIVE_UINT64, &offset, &shape, &cls, &size);
    EXPECT_EQ(seed, 0xfedcba9876543210ull);
    EXPECT_EQ(offset, 123456789u);
    std::vector<int64_t> rank1(3);
    read_dataset("/train/loader/rank_1", H5T_NATIVE_INT64, rank1.data(), &shape, &cls, &size);
    EXPECT_EQ(rank1, (std::vector<int64_t>{4, 5, 6}));
    double best = 0;
    read_dataset("/train/best_val_loss", H5T_NATIVE_DOUBLE, &best, &shape, &cls, &size);
    EXPECT_EQ(best, 3.25);
  }
  // Root attributes: the config as a UTF-8 string, the format and its version.
  {
    hid_t a = H5Aopen(f, "config", H5P_DEFAULT);
    ASSERT_GE(a, 0);
    hid_t mem = H5Tcopy(H5T_C_S1);
    H5Tset_size(mem, H5T_VARIABLE);
    H5Tset_cset(mem, H5T_CSET_UTF8);
    char* text = nullptr;
    ASSERT_GE(H5Aread(a, mem, &text), 0);
    EXPECT_EQ(std::string(text), c.config_yaml);
    H5free_memory(text);
    H5Tclose(mem);
    H5Aclose(a);
    int64_t version = 0;
    a = H5Aopen(f, "format_version", H5P_DEFAULT);
    H5Aread(a, H5T_NATIVE_INT64, &version);
    H5Aclose(a);
    EXPECT_EQ(version, kCheckpointFormatVersion);
  }
  // A dataset's crc32 attribute is zlib's CRC-32 of its little-endian bytes.
  {
    const std::string name = "/model/backbone.layers.1.mixer.A_log";
    hid_t d = H5Dopen2(f, name.c_str(), H5P_DEFAULT);
    hid_t a = H5Aopen(d, "crc32", H5P_DEFAULT);
    uint32_t stored = 0;
    H5Aread(a, H5T_NATIVE_UINT32, &stored);
    H5Aclose(a);
    H5Dclose(d);
    const std::vector<float> v = params["backbone.layers.1.mixer.A_log"].to_vector<float>();
    EXPECT_EQ(stored, uint32_t(crc32(0, reinterpret_cast<const Bytef*>(v.data()), uInt(v.size() * 4))));
  }
  H5Fclose(f);
}

TEST(Checkpoint, TruncatedFileIsDetected) {
  TempDir dir;
  Trained t;
  const std::string good = dir / "good.h5";
  save_checkpoint(good, t.checkpoint());
  const uint64_t size = fs::file_size(good);
  for (uint64_t keep : {size - 1, size - 700, size / 2, uint64_t(100), uint64_t(0)}) {
    SCOPED_TRACE(keep);
    const std::string cut = dir / "cut.h5";
    fs::copy_file(good, cut, fs::copy_options::overwrite_existing);
    fs::resize_file(cut, keep);
    expect_error([&] { load_checkpoint(cut); }, {cut});
    expect_error([&] { verify_checkpoint(cut); }, {cut});
  }
}

TEST(Checkpoint, FlippedByteInATensorIsDetectedAndNamed) {
  TempDir dir;
  Trained t;
  const std::string path = dir / "a.h5";
  save_checkpoint(path, t.checkpoint());
  flip_byte(path, data_offset(path, "/model/backbone.layers.1.mixer.A_log") + 13);
  expect_error([&] { load_checkpoint(path); }, {path, "damaged", "/model/backbone.layers.1.mixer.A_log", "checksum"});
  expect_error([&] { load_checkpoint(path, CheckpointParts::model_only); }, {path, "A_log"});
}

TEST(Checkpoint, FlippedByteInTrainStateOrConfigIsDetected) {
  TempDir dir;
  Trained t;
  const std::string a = dir / "a.h5", b = dir / "b.h5";
  save_checkpoint(a, t.checkpoint());
  fs::copy_file(a, b);
  flip_byte(a, data_offset(a, "/train/step"));
  expect_error([&] { load_checkpoint(a); }, {a, "/train/step", "checksum"});
  // The config is an attribute: its bytes are covered by the manifest checksum.
  flip_byte(b, find_bytes(b, "marker_7f3a") + 3);
  expect_error([&] { load_checkpoint(b, CheckpointParts::model_only); }, {b, "damaged", "manifest"});
}

TEST(Checkpoint, DamagedOptimizerStateFailsFullLoadOnly) {
  TempDir dir;
  Trained t;
  const std::string path = dir / "a.h5";
  save_checkpoint(path, t.checkpoint());
  flip_byte(path, data_offset(path, "/optim/backbone.embeddings.weight.exp_avg_sq") + 40);
  expect_error([&] { load_checkpoint(path); }, {path, "/optim/backbone.embeddings.weight.exp_avg_sq"});
  expect_same_tensors(load_checkpoint(path, CheckpointParts::model_only).model, t.model.named_parameters());
}

TEST(Checkpoint, FallsBackPastDamagedCheckpoints) {
  TempDir dir;
  Trained t;
  const std::string d = dir.path();
  for (int64_t step : {10, 20, 30}) save_checkpoint(checkpoint_path(d, step), t.checkpoint(step));
  EXPECT_EQ(latest_valid_checkpoint(d), checkpoint_path(d, 30));

  fs::resize_file(checkpoint_path(d, 30), fs::file_size(checkpoint_path(d, 30)) / 2);
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(latest_valid_checkpoint(d), checkpoint_path(d, 20));
  const std::string warning = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(warning.find("warning"), std::string::npos) << warning;
  EXPECT_NE(warning.find("step_00000030.h5"), std::string::npos) << warning;

  flip_byte(checkpoint_path(d, 20), data_offset(checkpoint_path(d, 20), "/model/backbone.norm_f.weight"));
  ::testing::internal::CaptureStderr();
  auto loaded = load_latest_checkpoint(d);
  ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(loaded.has_value());
  EXPECT_EQ(loaded->first, checkpoint_path(d, 10));
  EXPECT_EQ(loaded->second.train.step, 10);
  expect_same_tensors(loaded->second.model, t.model.named_parameters());

  fs::resize_file(checkpoint_path(d, 10), 10);
  ::testing::internal::CaptureStderr();
  EXPECT_FALSE(latest_valid_checkpoint(d).has_value());
  EXPECT_FALSE(load_latest_checkpoint(d).has_value());
  ::testing::internal::GetCapturedStderr();
  EXPECT_FALSE(latest_valid_checkpoint(dir / "missing").has_value());
}

TEST(Checkpoint, FailedSaveLeavesThePreviousFileIntact) {
  TempDir dir;
  Trained t;
  const std::string path = dir / "a.h5";
  save_checkpoint(path, t.checkpoint(1));
  Checkpoint broken = t.checkpoint(2);
  broken.model[3].second = Tensor();  // fails after the first tensors are already in the file
  expect_error([&] { save_checkpoint(path, broken); }, {path, broken.model[3].first, "undefined"});
  EXPECT_EQ(load_checkpoint(path).train.step, 1);
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir.path())) files.push_back(e.path().filename().string());
  EXPECT_EQ(files, std::vector<std::string>{"a.h5"});  // no temporary file left behind
}

TEST(Checkpoint, ListsNewestFirstAndPrunesToTheLastK) {
  TempDir dir;
  Trained t;
  const std::string d = dir.path();
  EXPECT_EQ(checkpoint_path(d, 42), (dir / "step_00000042.h5"));
  for (int64_t step : {5, 100000000, 99, 7}) save_checkpoint(checkpoint_path(d, step), t.checkpoint(step));
  std::ofstream(dir / "notes.txt") << "not a checkpoint";
  std::ofstream(dir / ".step_00000200.h5.tmp.4242") << "left by a crash";
  EXPECT_EQ(list_checkpoints(d), (std::vector<std::string>{checkpoint_path(d, 100000000), checkpoint_path(d, 99),
                                                           checkpoint_path(d, 7), checkpoint_path(d, 5)}));
  prune_checkpoints(d, 2);
  EXPECT_EQ(list_checkpoints(d), (std::vector<std::string>{checkpoint_path(d, 100000000), checkpoint_path(d, 99)}));
  EXPECT_FALSE(fs::exists(dir / ".step_00000200.h5.tmp.4242"));
  EXPECT_TRUE(fs::exists(dir / "notes.txt"));
  expect_error([&] { prune_checkpoints(d, 0); }, {"keep_last", "0"});
}

TEST(Checkpoint, BadNamesAreRefused) {
  TempDir dir;
  Trained t;
  Checkpoint c = t.checkpoint();
  c.model[0].first = "backbone/embeddings";
  expect_error([&] { save_checkpoint(dir / "a.h5", c); }, {"backbone/embeddings", "'/'"});
  c = t.checkpoint();
  c.train.ints["step"] = 3;
  expect_error([&] { save_checkpoint(dir / "a.h5", c); }, {"'step'", "reserved"});
  c = t.checkpoint();
  c.train.doubles["bad_steps"] = 1.0;
  expect_error([&] { save_checkpoint(dir / "a.h5", c); }, {"'bad_steps'", "twice"});
  EXPECT_FALSE(fs::exists(dir / "a.h5"));
}

TEST(Checkpoint, OtherFilesAreNotCheckpoints) {
  TempDir dir;
  expect_error([&] { load_checkpoint(dir / "missing.h5"); }, {"missing.h5", "no such file"});
  std::ofstream(dir / "text.h5") << "hello";
  expect_error([&] { load_checkpoint(dir / "text.h5"); }, {"text.h5", "not an HDF5 file"});
  EXPECT_FALSE(is_checkpoint_file(dir / "text.h5"));
  hid_t f = H5Fcreate((dir / "other.h5").c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  H5Fclose(f);
  expect_error([&] { load_checkpoint(dir / "other.h5"); }, {"other.h5", "not a serpent checkpoint"});
  EXPECT_FALSE(is_checkpoint_file(dir / "other.h5"));
  Trained t;
  save_checkpoint(dir / "ours.h5", t.checkpoint());
  EXPECT_TRUE(is_checkpoint_file(dir / "ours.h5"));
}

TEST(Checkpoint, AShapeLargerThanTheFileIsDamageNotAnAllocation) {
  // HDF5 stores a dataset that was never written in no bytes and reads it as its fill value: a
  // file of a few kB could make a reader allocate 2^50 bytes.
  TempDir dir;
  Trained t;
  save_checkpoint(dir / "c.h5", t.checkpoint());
  hid_t f = H5Fopen((dir / "c.h5").c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  const hsize_t dims[2] = {hsize_t(1) << 24, hsize_t(1) << 24};
  hid_t space = H5Screate_simple(2, dims, nullptr);
  hid_t d = H5Dcreate2(f, "/model/huge", H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  ASSERT_GE(d, 0);
  H5Dclose(d);
  H5Sclose(space);
  H5Fclose(f);
  EXPECT_LT(std::filesystem::file_size(dir / "c.h5"), uint64_t(1) << 24);
  for (auto parts : {CheckpointParts::all, CheckpointParts::model_only})
    expect_error([&] { load_checkpoint(dir / "c.h5", parts); },
                 {"c.h5", "/model/huge has a shape larger than the file can hold"});
  expect_error([&] { read_checkpoint_summary(dir / "c.h5"); }, {"/model/huge", "larger than the file"});
}

}  // namespace
