#include "io/checkpoint.h"

#include <fcntl.h>
#include <hdf5.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

namespace fs = std::filesystem;

namespace serpent {

static_assert(std::endian::native == std::endian::little,
              "checkpoint checksums are taken over little-endian bytes, which is this host's memory order");

namespace {

constexpr const char* kFormatName = "serpent-checkpoint";
const std::set<std::string> kReservedTrainNames = {"step", "tokens_seen", "rng_seed", "rng_offset", "loader"};

// ---- HDF5 plumbing ----

// HDF5 prints its error stack to stderr by default; we turn failures into one serpent::Error
// instead, so printing is off while a checkpoint call runs.
class QuietHdf5 {
 public:
  QuietHdf5() {
    H5Eget_auto2(H5E_DEFAULT, &func_, &data_);
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  }
  ~QuietHdf5() { H5Eset_auto2(H5E_DEFAULT, func_, data_); }
  QuietHdf5(const QuietHdf5&) = delete;
  QuietHdf5& operator=(const QuietHdf5&) = delete;

 private:
  H5E_auto2_t func_ = nullptr;
  void* data_ = nullptr;
};

// The most specific messages of the current HDF5 error stack, e.g. "truncated file: eof = ...".
std::string hdf5_error_text() {
  std::vector<std::string> msgs;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_UPWARD,
      [](unsigned, const H5E_error2_t* e, void* out) -> herr_t {
        auto* v = static_cast<std::vector<std::string>*>(out);
        if (e->desc && *e->desc && v->size() < 2) v->push_back(e->desc);
        return 0;
      },
      &msgs);
  std::string text;
  for (const auto& m : msgs) text += (text.empty() ? "" : "; ") + m;
  return text.empty() ? "no detail from HDF5" : text;
}

// One HDF5 identifier, closed with the function that matches its kind.
class Hid {
 public:
  Hid() = default;
  Hid(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  Hid(Hid&& o) noexcept : id_(std::exchange(o.id_, -1)), close_(o.close_) {}
  Hid& operator=(Hid&& o) noexcept {
    reset();
    id_ = std::exchange(o.id_, -1);
    close_ = o.close_;
    return *this;
  }
  Hid(const Hid&) = delete;
  Hid& operator=(const Hid&) = delete;
  ~Hid() { reset(); }

  hid_t get() const { return id_; }
  // Closes now and reports whether HDF5 managed to (the file close is where data reaches disk).
  bool close() {
    const bool ok = id_ < 0 || close_(id_) >= 0;
    id_ = -1;
    return ok;
  }

 private:
  void reset() {
    if (id_ >= 0) close_(id_);
    id_ = -1;
  }
  hid_t id_ = -1;
  herr_t (*close_)(hid_t) = nullptr;
};

// Everything that can go wrong with one file is reported against its path.
struct FileErrors {
  std::string path;

  [[noreturn]] void hdf5_fail(const std::string& what) const {
    fail("checkpoint ", path, ": ", what, " failed: ", hdf5_error_text());
  }
  hid_t check(hid_t id, const std::string& what) const {
    if (id < 0) hdf5_fail(what);
    return id;
  }
  void check(herr_t status, const char* what, const std::string& detail) const {
    if (status < 0) hdf5_fail(str_cat(what, " ", detail));
  }
  [[noreturn]] void damaged(const std::string& what) const {
    fail("checkpoint ", path, " is damaged: ", what, " (the file is corrupt or incomplete; use an earlier checkpoint)");
  }
};

uint32_t crc32_of(const void* data, size_t n, uint32_t crc = 0) {
  return uint32_t(crc32_z(crc, static_cast<const Bytef*>(data), n));
}

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08x", v);
  return buf;
}

// The element types a checkpoint holds, with their file and memory HDF5 types.
enum class Kind { f32, f64, i64, u64 };
const char* kind_name(Kind k) {
  switch (k) {
    case Kind::f32:
      return "f32";
    case Kind::f64:
      return "f64";
    case Kind::i64:
      return "i64";
    case Kind::u64:
      return "u64";
  }
  return "?";
}
hid_t file_type(Kind k) {
  switch (k) {
    case Kind::f32:
      return H5T_IEEE_F32LE;
    case Kind::f64:
      return H5T_IEEE_F64LE;
    case Kind::i64:
      return H5T_STD_I64LE;
    case Kind::u64:
      return H5T_STD_U64LE;
  }
  return -1;
}
hid_t memory_type(Kind k) {
  switch (k) {
    case Kind::f32:
      return H5T_NATIVE_FLOAT;
    case Kind::f64:
      return H5T_NATIVE_DOUBLE;
    case Kind::i64:
      return H5T_NATIVE_INT64;
    case Kind::u64:
      return H5T_NATIVE_UINT64;
  }
  return -1;
}

// One dataset as the manifest describes it.
struct Entry {
  std::string path;  // "/model/backbone.norm_f.weight"
  Kind kind = Kind::f32;
  Shape shape;
  uint32_t crc = 0;  // the dataset's crc32 attribute
};

// The text whose crc32 is the root's manifest_crc32: format, config and every dataset's identity.
std::string manifest_text(int64_t version, const std::string& config, std::vector<Entry> entries) {
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.path < b.path; });
  std::string text = str_cat(kFormatName, " ", version, "\nconfig ", config.size(), " ",
                             hex32(crc32_of(config.data(), config.size())), "\n");
  for (const Entry& e : entries)
    text += str_cat(e.path, " ", kind_name(e.kind), " ", shape_str(e.shape), " ", hex32(e.crc), "\n");
  return text;
}

Hid file_access_plist() {
  Hid fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  // Keep HDF5's file locking, but do not fail on file systems without it (some network mounts).
  H5Pset_file_locking(fapl.get(), true, true);
  return fapl;
}

// ---- writing ----

class Writer {
 public:
  explicit Writer(const std::string& tmp_path, const std::string& final_path) : err_{final_path} {
    Hid fapl = file_access_plist();
    file_ = Hid(err_.check(H5Fcreate(tmp_path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()),
                           "creating temporary file " + tmp_path),
                H5Fclose);
  }

  // A group whose links remember their creation order, so tensors load back in the order saved.
  Hid group(const Hid& parent, const std::string& name) {
    Hid gcpl(H5Pcreate(H5P_GROUP_CREATE), H5Pclose);
    H5Pset_link_creation_order(gcpl.get(), H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
    return Hid(err_.check(H5Gcreate2(parent.get(), name.c_str(), H5P_DEFAULT, gcpl.get(), H5P_DEFAULT),
                          "creating group " + name),
               H5Gclose);
  }
  const Hid& file() const { return file_; }

  // Writes shape-many elements of kind from data as parent/name, with its crc32 attribute.
  void dataset(const Hid& parent, const std::string& parent_path, const std::string& name, Kind kind,
               const Shape& shape, const void* data) {
    const std::string path = parent_path + "/" + name;
    std::vector<hsize_t> dims(shape.begin(), shape.end());
    Hid space(
        err_.check(shape.empty() ? H5Screate(H5S_SCALAR) : H5Screate_simple(int(dims.size()), dims.data(), nullptr),
                   "creating the dataspace of " + path),
        H5Sclose);
    Hid ds(err_.check(H5Dcreate2(parent.get(), name.c_str(), file_type(kind), space.get(), H5P_DEFAULT, H5P_DEFAULT,
                                 H5P_DEFAULT),
                      "creating dataset " + path),
           H5Dclose);
    const size_t nbytes = size_t(shape_numel(shape)) * (kind == Kind::f32 ? 4 : 8);
    if (nbytes > 0)
      err_.check(H5Dwrite(ds.get(), memory_type(kind), H5S_ALL, H5S_ALL, H5P_DEFAULT, data), "writing", path);
    const uint32_t crc = crc32_of(data, nbytes);
    attribute(ds, "crc32", H5T_STD_U32LE, H5T_NATIVE_UINT32, &crc, path);
    entries_.push_back({path, kind, shape, crc});
  }

  void attribute(const Hid& obj, const char* name, hid_t ftype, hid_t mtype, const void* value,
                 const std::string& where) {
    Hid space(H5Screate(H5S_SCALAR), H5Sclose);
    Hid attr(err_.check(H5Acreate2(obj.get(), name, ftype, space.get(), H5P_DEFAULT, H5P_DEFAULT),
                        str_cat("creating attribute ", name, " of ", where)),
             H5Aclose);
    err_.check(H5Awrite(attr.get(), mtype, value), "writing attribute", str_cat(name, " of ", where));
  }

  void string_attribute(const Hid& obj, const char* name, const std::string& value) {
    Hid type(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(type.get(), H5T_VARIABLE);
    H5Tset_cset(type.get(), H5T_CSET_UTF8);
    const char* p = value.c_str();
    attribute(obj, name, type.get(), type.get(), &p, "/");
  }

  void tensors(const Hid& group, const std::string& group_path, const NamedTensors& tensors) {
    for (const auto& [name, t] : tensors) {
      SERPENT_CHECK(t.defined(), "checkpoint ", err_.path, ": tensor '", name, "' is undefined");
      const Tensor host = t.to(Device::cpu()).to(DType::f32);
      dataset(group, group_path, name, Kind::f32, host.shape(), host.data_ptr());
    }
  }

  void finish(int64_t version, const std::string& config) {
    const uint32_t manifest = [&] {
      const std::string text = manifest_text(version, config, entries_);
      return crc32_of(text.data(), text.size());
    }();
    attribute(file_, "manifest_crc32", H5T_STD_U32LE, H5T_NATIVE_UINT32, &manifest, "/");
    err_.check(H5Fflush(file_.get(), H5F_SCOPE_GLOBAL), "flushing", "the file");
    if (!file_.close()) err_.hdf5_fail("closing the file");
  }

 private:
  FileErrors err_;
  Hid file_;
  std::vector<Entry> entries_;
};

void check_name(const std::string& path, const std::string& what, const std::string& name) {
  SERPENT_CHECK(!name.empty() && name.find('/') == std::string::npos && name != "." && name != "..", "checkpoint ",
                path, ": ", what, " name '", name,
                "' is not usable as an HDF5 dataset name (empty, '.', '..' or containing '/')");
}

void check_names(const std::string& path, const Checkpoint& c) {
  std::set<std::string> seen;
  for (const auto& [name, t] : c.model) {
    check_name(path, "parameter", name);
    SERPENT_CHECK(seen.insert(name).second, "checkpoint ", path, ": parameter '", name, "' appears twice");
  }
  seen.clear();
  for (const auto& [name, t] : c.optim) {
    check_name(path, "optimizer state", name);
    SERPENT_CHECK(name != "step", "checkpoint ", path, ": optimizer state may not be named 'step' (it is reserved)");
    SERPENT_CHECK(seen.insert(name).second, "checkpoint ", path, ": optimizer state '", name, "' appears twice");
  }
  seen.clear();
  auto extra = [&](const std::string& name) {
    check_name(path, "train state", name);
    SERPENT_CHECK(!kReservedTrainNames.count(name), "checkpoint ", path, ": train state name '", name,
                  "' is reserved for the field of that name");
    SERPENT_CHECK(seen.insert(name).second, "checkpoint ", path, ": train state '", name,
                  "' is given twice (names are shared by ints, doubles and arrays)");
  };
  for (const auto& kv : c.train.ints) extra(kv.first);
  for (const auto& kv : c.train.doubles) extra(kv.first);
  for (const auto& kv : c.train.int_arrays) extra(kv.first);
  for (const auto& kv : c.train.double_arrays) extra(kv.first);
}

void fsync_path(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  SERPENT_CHECK(fd >= 0, "checkpoint: cannot open ", path, " to sync it to disk: ", std::strerror(errno));
  const int rc = ::fsync(fd);
  const int saved = errno;
  ::close(fd);
  SERPENT_CHECK(rc == 0 || directory, "checkpoint: fsync of ", path, " failed: ", std::strerror(saved));
}

std::string temp_path_for(const std::string& path) {
  const fs::path p(path);
  return (p.parent_path() / str_cat(".", p.filename().string(), ".tmp.", ::getpid())).string();
}

// ---- reading ----

class Reader {
 public:
  explicit Reader(const std::string& path) : err_{path} {
    std::error_code ec;
    SERPENT_CHECK(fs::is_regular_file(path, ec), "checkpoint ", path, ": no such file");
    file_bytes_ = fs::file_size(path, ec);
    Hid fapl = file_access_plist();
    const hid_t id = H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl.get());
    if (id < 0) {
      const std::string detail = hdf5_error_text();
      SERPENT_CHECK(has_hdf5_signature(path), path, " is not a serpent checkpoint: it is not an HDF5 file");
      fail("checkpoint ", path, " cannot be opened (truncated or damaged): ", detail);
    }
    file_ = Hid(id, H5Fclose);
    SERPENT_CHECK(H5Aexists(file_.get(), "format") > 0 && string_attribute("format") == kFormatName, path,
                  " is an HDF5 file but not a serpent checkpoint (no format = \"", kFormatName, "\" attribute)");
    version_ = scalar_attribute<int64_t>(file_, "format_version", H5T_NATIVE_INT64, "/");
    SERPENT_CHECK(version_ >= 1 && version_ <= kCheckpointFormatVersion, "checkpoint ", path, " has format version ",
                  version_, "; this build of serpent reads versions 1 to ", kCheckpointFormatVersion);
    config_ = string_attribute("config");
    walk("/", "");
    const std::string text = manifest_text(version_, config_, [&] {
      std::vector<Entry> v;
      for (const auto& [p, e] : entries_) v.push_back(e);
      return v;
    }());
    const uint32_t stored = scalar_attribute<uint32_t>(file_, "manifest_crc32", H5T_NATIVE_UINT32, "/");
    if (crc32_of(text.data(), text.size()) != stored)
      err_.damaged("its list of datasets, shapes, checksums and config does not match manifest_crc32");
  }

  static bool has_hdf5_signature(const std::string& path) {
    static const char sig[8] = {'\x89', 'H', 'D', 'F', '\r', '\n', '\x1a', '\n'};
    std::ifstream in(path, std::ios::binary);
    char head[8] = {};
    in.read(head, 8);
    return in.gcount() == 8 && std::memcmp(head, sig, 8) == 0;
  }

  const std::string& path() const { return err_.path; }
  int64_t version() const { return version_; }
  const std::string& config() const { return config_; }
  uint64_t file_bytes() const { return file_bytes_; }
  bool has(const std::string& path) const { return entries_.count(path) > 0; }
  bool has_group(const std::string& path) const { return groups_.count(path) > 0; }

  const Entry& entry(const std::string& path) const {
    auto it = entries_.find(path);
    if (it == entries_.end()) err_.damaged("dataset " + path + " is missing");
    return it->second;
  }
  // Datasets directly under group (in saved order).
  std::vector<const Entry*> children(const std::string& group) const {
    std::vector<const Entry*> out;
    auto it = group_children_.find(group);
    if (it == group_children_.end()) return out;
    for (const std::string& p : it->second) out.push_back(&entries_.at(p));
    return out;
  }

  // Reads a dataset's bytes into dst (sized by the caller) and checks its crc32.
  void read(const Entry& e, void* dst) const {
    Hid ds(err_.check(H5Dopen2(file_.get(), e.path.c_str(), H5P_DEFAULT), "opening " + e.path), H5Dclose);
    const size_t nbytes = size_t(shape_numel(e.shape)) * (e.kind == Kind::f32 ? 4 : 8);
    if (nbytes > 0)
      if (H5Dread(ds.get(), memory_type(e.kind), H5S_ALL, H5S_ALL, H5P_DEFAULT, dst) < 0)
        fail("checkpoint ", err_.path, " is damaged: reading ", e.path, " failed (", hdf5_error_text(), ")");
    const uint32_t crc = crc32_of(dst, nbytes);
    if (crc != e.crc)
      err_.damaged(str_cat("tensor ", e.path, " fails its checksum (stored crc32 ", hex32(e.crc), ", computed ",
                           hex32(crc), ")"));
  }

  Tensor read_tensor(const Entry& e) const {
    SERPENT_CHECK(e.kind == Kind::f32, "checkpoint ", err_.path, ": ", e.path, " is ", kind_name(e.kind),
                  ", expected f32");
    Tensor t = Tensor::empty(e.shape, DType::f32);
    read(e, t.data_ptr());
    return t;
  }

  template <class T>
  std::vector<T> read_values(const Entry& e, Kind want) const {
    SERPENT_CHECK(e.kind == want, "checkpoint ", err_.path, ": ", e.path, " is ", kind_name(e.kind), ", expected ",
                  kind_name(want));
    std::vector<T> v(size_t(shape_numel(e.shape)));
    read(e, v.data());
    return v;
  }
  template <class T>
  T read_scalar(const std::string& path, Kind want) const {
    const Entry& e = entry(path);
    SERPENT_CHECK(e.shape.empty(), "checkpoint ", err_.path, ": ", path, " has shape ", shape_str(e.shape),
                  ", expected a scalar");
    return read_values<T>(e, want)[0];
  }

 private:
  std::string string_attribute(const char* name) const {
    Hid attr(err_.check(H5Aopen(file_.get(), name, H5P_DEFAULT), str_cat("opening attribute ", name)), H5Aclose);
    Hid type(H5Aget_type(attr.get()), H5Tclose);
    SERPENT_CHECK(H5Tget_class(type.get()) == H5T_STRING && H5Tis_variable_str(type.get()) > 0, "checkpoint ",
                  err_.path, ": attribute ", name, " is not a variable-length string");
    Hid mem(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(mem.get(), H5T_VARIABLE);
    H5Tset_cset(mem.get(), H5Tget_cset(type.get()));
    char* p = nullptr;
    err_.check(H5Aread(attr.get(), mem.get(), &p), "reading attribute", name);
    std::string s = p ? p : "";
    H5free_memory(p);
    return s;
  }

  template <class T>
  T scalar_attribute(const Hid& obj, const char* name, hid_t mtype, const std::string& where) const {
    if (H5Aexists(obj.get(), name) <= 0) err_.damaged(str_cat(where, " has no ", name, " attribute"));
    Hid attr(err_.check(H5Aopen(obj.get(), name, H5P_DEFAULT), str_cat("opening attribute ", name, " of ", where)),
             H5Aclose);
    T value{};
    err_.check(H5Aread(attr.get(), mtype, &value), "reading attribute", str_cat(name, " of ", where));
    return value;
  }

  static std::optional<Kind> kind_of(hid_t type) {
    const size_t size = H5Tget_size(type);
    switch (H5Tget_class(type)) {
      case H5T_FLOAT:
        if (size == 4) return Kind::f32;
        if (size == 8) return Kind::f64;
        return std::nullopt;
      case H5T_INTEGER:
        if (size != 8) return std::nullopt;
        return H5Tget_sign(type) == H5T_SGN_NONE ? Kind::u64 : Kind::i64;
      default:
        return std::nullopt;
    }
  }

  // Records every dataset below group_path ("/" or "/model"), children in creation order.
  void walk(const std::string& group_path, const std::string& prefix) {
    Hid group(err_.check(H5Gopen2(file_.get(), group_path.c_str(), H5P_DEFAULT), "opening group " + group_path),
              H5Gclose);
    groups_.insert(group_path);
    H5G_info_t info;
    err_.check(H5Gget_info(group.get(), &info), "listing", group_path);
    H5_index_t index = H5_INDEX_CRT_ORDER;
    for (hsize_t i = 0; i < info.nlinks; ++i) {
      ssize_t len = H5Lget_name_by_idx(group.get(), ".", index, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
      if (len < 0 && i == 0 && index == H5_INDEX_CRT_ORDER) {  // a group without creation order: go by name
        index = H5_INDEX_NAME;
        len = H5Lget_name_by_idx(group.get(), ".", index, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
      }
      if (len < 0) err_.hdf5_fail("listing " + group_path);
      std::string name(size_t(len) + 1, '\0');
      H5Lget_name_by_idx(group.get(), ".", index, H5_ITER_INC, i, name.data(), name.size(), H5P_DEFAULT);
      name.resize(size_t(len));
      const std::string path = prefix + "/" + name;
      Hid obj(err_.check(H5Oopen(file_.get(), path.c_str(), H5P_DEFAULT), "opening " + path), H5Oclose);
      const H5I_type_t type = H5Iget_type(obj.get());
      if (type == H5I_GROUP) {
        walk(path, path);
        continue;
      }
      if (type != H5I_DATASET) err_.damaged(path + " is neither a group nor a dataset");
      Entry e;
      e.path = path;
      Hid dtype(H5Dget_type(obj.get()), H5Tclose);
      auto kind = kind_of(dtype.get());
      if (!kind) err_.damaged(path + " has an element type other than f32, f64, i64 or u64");
      e.kind = *kind;
      Hid space(err_.check(H5Dget_space(obj.get()), "reading the shape of " + path), H5Sclose);
      const int nd = H5Sget_simple_extent_ndims(space.get());
      if (nd < 0) err_.hdf5_fail("reading the shape of " + path);
      std::vector<hsize_t> dims(static_cast<size_t>(nd));
      H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
      // serpent writes every dataset contiguous and uncompressed, so none can hold more bytes than
      // the file: a larger shape (which HDF5 would fill on read) is damage, caught before any
      // allocation is sized by it.
      uint64_t bytes = e.kind == Kind::f32 ? 4 : 8;
      for (hsize_t d : dims) {
        if (d != 0 && bytes > file_bytes_ / d) err_.damaged(path + " has a shape larger than the file can hold");
        bytes *= d;
      }
      e.shape.assign(dims.begin(), dims.end());
      e.crc = scalar_attribute<uint32_t>(obj, "crc32", H5T_NATIVE_UINT32, path);
      group_children_[group_path == "/" ? "" : group_path].push_back(path);
      entries_[path] = std::move(e);
    }
  }

  FileErrors err_;
  Hid file_;
  uint64_t file_bytes_ = 0;
  int64_t version_ = 0;
  std::string config_;
  std::map<std::string, Entry> entries_;
  std::map<std::string, std::vector<std::string>> group_children_;
  std::set<std::string> groups_;
};

void read_train(const Reader& r, TrainState& t) {
  t.step = r.read_scalar<int64_t>("/train/step", Kind::i64);
  t.tokens_seen = r.read_scalar<int64_t>("/train/tokens_seen", Kind::i64);
  t.rng_seed = r.read_scalar<uint64_t>("/train/rng_seed", Kind::u64);
  t.rng_offset = r.read_scalar<uint64_t>("/train/rng_offset", Kind::u64);
  if (!r.has_group("/train/loader")) fail("checkpoint ", r.path(), " is damaged: group /train/loader is missing");
  const size_t ranks = r.children("/train/loader").size();
  for (size_t i = 0; i < ranks; ++i)
    t.loader.push_back(r.read_values<int64_t>(r.entry("/train/loader/rank_" + std::to_string(i)), Kind::i64));
  for (const Entry* e : r.children("/train")) {
    const std::string name = e->path.substr(std::string("/train/").size());
    if (kReservedTrainNames.count(name)) continue;
    SERPENT_CHECK(e->shape.size() <= 1, "checkpoint ", r.path(), ": ", e->path, " has shape ", shape_str(e->shape),
                  "; train state holds scalars and 1-D arrays");
    const bool scalar = e->shape.empty();
    if (e->kind == Kind::i64 && scalar)
      t.ints[name] = r.read_values<int64_t>(*e, Kind::i64)[0];
    else if (e->kind == Kind::i64)
      t.int_arrays[name] = r.read_values<int64_t>(*e, Kind::i64);
    else if (e->kind == Kind::f64 && scalar)
      t.doubles[name] = r.read_values<double>(*e, Kind::f64)[0];
    else if (e->kind == Kind::f64)
      t.double_arrays[name] = r.read_values<double>(*e, Kind::f64);
    else
      fail("checkpoint ", r.path(), ": ", e->path, " is ", kind_name(e->kind), "; train state holds i64 and f64");
  }
}

NamedTensors read_group(const Reader& r, const std::string& group, bool skip_step) {
  NamedTensors out;
  for (const Entry* e : r.children(group)) {
    const std::string name = e->path.substr(group.size() + 1);
    if (skip_step && name == "step") continue;
    out.emplace_back(name, r.read_tensor(*e));
  }
  return out;
}

}  // namespace

void save_checkpoint(const std::string& path, const Checkpoint& c) {
  check_names(path, c);
  const fs::path final_path(path);
  std::error_code ec;
  if (final_path.has_parent_path()) fs::create_directories(final_path.parent_path(), ec);
  SERPENT_CHECK(!ec, "checkpoint ", path, ": cannot create its folder: ", ec.message());
  const std::string tmp = temp_path_for(path);
  QuietHdf5 quiet;
  try {
    Writer w(tmp, path);
    Hid model = w.group(w.file(), "model");
    w.tensors(model, "/model", c.model);
    if (c.has_optim()) {
      Hid optim = w.group(w.file(), "optim");
      w.tensors(optim, "/optim", c.optim);
      w.dataset(optim, "/optim", "step", Kind::i64, {}, &c.optim_step);
    }
    Hid train = w.group(w.file(), "train");
    const TrainState& t = c.train;
    w.dataset(train, "/train", "step", Kind::i64, {}, &t.step);
    w.dataset(train, "/train", "tokens_seen", Kind::i64, {}, &t.tokens_seen);
    w.dataset(train, "/train", "rng_seed", Kind::u64, {}, &t.rng_seed);
    w.dataset(train, "/train", "rng_offset", Kind::u64, {}, &t.rng_offset);
    {
      Hid loader = w.group(train, "loader");
      for (size_t r = 0; r < t.loader.size(); ++r)
        w.dataset(loader, "/train/loader", "rank_" + std::to_string(r), Kind::i64, {int64_t(t.loader[r].size())},
                  t.loader[r].data());
    }
    for (const auto& [name, v] : t.ints) w.dataset(train, "/train", name, Kind::i64, {}, &v);
    for (const auto& [name, v] : t.doubles) w.dataset(train, "/train", name, Kind::f64, {}, &v);
    for (const auto& [name, v] : t.int_arrays)
      w.dataset(train, "/train", name, Kind::i64, {int64_t(v.size())}, v.data());
    for (const auto& [name, v] : t.double_arrays)
      w.dataset(train, "/train", name, Kind::f64, {int64_t(v.size())}, v.data());
    train = Hid();
    model = Hid();
    w.string_attribute(w.file(), "format", kFormatName);
    w.attribute(w.file(), "format_version", H5T_STD_I64LE, H5T_NATIVE_INT64, &kCheckpointFormatVersion, "/");
    w.string_attribute(w.file(), "config", c.config_yaml);
    w.finish(kCheckpointFormatVersion, c.config_yaml);
    fsync_path(tmp, false);
    fs::rename(tmp, path, ec);
    SERPENT_CHECK(!ec, "checkpoint ", path, ": cannot rename the temporary file ", tmp, " into place: ", ec.message());
  } catch (...) {
    fs::remove(tmp, ec);
    throw;
  }
  fsync_path(final_path.has_parent_path() ? final_path.parent_path().string() : ".", true);
}

Checkpoint load_checkpoint(const std::string& path, CheckpointParts parts) {
  QuietHdf5 quiet;
  Reader r(path);
  Checkpoint c;
  c.config_yaml = r.config();
  if (!r.has_group("/model")) fail("checkpoint ", path, " is damaged: group /model is missing");
  c.model = read_group(r, "/model", false);
  if (parts == CheckpointParts::model_only) return c;
  if (r.has_group("/optim")) {
    c.optim = read_group(r, "/optim", true);
    c.optim_step = r.read_scalar<int64_t>("/optim/step", Kind::i64);
  }
  read_train(r, c.train);
  return c;
}

void verify_checkpoint(const std::string& path) {
  load_checkpoint(path, CheckpointParts::all);
}

CheckpointSummary read_checkpoint_summary(const std::string& path) {
  QuietHdf5 quiet;
  Reader r(path);
  CheckpointSummary s;
  s.format_version = r.version();
  s.config_yaml = r.config();
  s.file_bytes = r.file_bytes();
  for (const Entry* e : r.children("/model")) {
    s.model.emplace_back(e->path.substr(7), e->shape);
    s.num_parameters += shape_numel(e->shape);
  }
  for (const Entry* e : r.children("/optim"))
    if (e->path != "/optim/step") s.optim.emplace_back(e->path.substr(7), e->shape);
  if (r.has("/optim/step")) s.optim_step = r.read_scalar<int64_t>("/optim/step", Kind::i64);
  read_train(r, s.train);
  return s;
}

bool is_checkpoint_file(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec) || !Reader::has_hdf5_signature(path)) return false;
  QuietHdf5 quiet;
  Hid fapl = file_access_plist();
  Hid file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl.get()), H5Fclose);
  if (file.get() < 0 || H5Aexists(file.get(), "format") <= 0) return false;
  Hid attr(H5Aopen(file.get(), "format", H5P_DEFAULT), H5Aclose);
  Hid type(H5Aget_type(attr.get()), H5Tclose);
  if (attr.get() < 0 || H5Tget_class(type.get()) != H5T_STRING || H5Tis_variable_str(type.get()) <= 0) return false;
  Hid mem(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(mem.get(), H5T_VARIABLE);
  H5Tset_cset(mem.get(), H5Tget_cset(type.get()));  // HDF5 converts VL strings only between equal character sets
  char* p = nullptr;
  if (H5Aread(attr.get(), mem.get(), &p) < 0) return false;
  const bool ours = p && std::string(p) == kFormatName;
  H5free_memory(p);
  return ours;
}

}  // namespace serpent
