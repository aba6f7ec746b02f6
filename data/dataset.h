// A prepared dataset as training uses it: the shards its manifest.json lists, checked before the
// first step (docs/DATA.md, "What is checked").
//
// Every start: the manifest parses; every listed shard exists, its header is valid and its token
// count is the manifest's; the per-split totals add up; shards in the folder that the manifest
// does not list are not used (a warning names them). Once per dataset: every shard's sha256
// against the manifest and the largest token id in it, which must fit the model's vocabulary.
// That full read is cached in <dir>/.verified.json by each shard's size and modification time,
// so a later run on the same files only compares the cached largest id; a changed or replaced
// shard is read again. A folder without a manifest (shards made by other tools) gets the header
// and vocabulary checks, cached the same way.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace serpent {

struct DatasetShards {
  std::vector<std::string> train, val;  // paths, in the manifest's (or name) order
  std::vector<std::string> warnings;    // for the user: unlisted shards, a cache that could not be written
  int64_t bytes_read = 0;               // shard bytes read in full this time (0 when the cache held everything)
};

// `where`: a dataset folder, or a glob pattern of train shards (the val shards: the same pattern
// with its last "train" read as "val"; data/shard.h).
// Throws serpent::Error naming the file and the check at fault. `progress(done, total)` is
// called while shards are read in full (bytes).
DatasetShards open_dataset(const std::string& where, int64_t vocab_size,
                           const std::function<void(int64_t, int64_t)>& progress = {});

}  // namespace serpent
