// Text sources for `serpent prepare`: documents from text files, folders of them, and JSONL
// (plain, gzip- or zstd-compressed) with the text under a configurable key.
//
//   * a .txt, .text or .md file is one document, its bytes as they are; so is a file named on the
//     command line without an extension that holds text. Any other file named on the command
//     line (.json.gz, .parquet, a binary file) is refused by name, never read as text;
//   * a folder is walked recursively in sorted path order; its .txt and JSONL files are read,
//     other files are skipped and counted;
//   * a .jsonl / .jsonl.gz / .jsonl.zst line is one document: a JSON object whose `text_key`
//     member is a string. A line that is not such an object is "broken": reported on stderr as file:line with
//     the reason, skipped and counted. Blank lines are skipped silently.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/compressed_file.h"

namespace serpent {

class DocumentReader {
 public:
  DocumentReader(const std::vector<std::string>& inputs, std::string text_key);
  ~DocumentReader();

  // The next document into `text`; false once every input is exhausted.
  bool next(std::string& text);

  int64_t broken_lines() const { return broken_lines_; }
  int64_t skipped_files() const { return skipped_files_; }
  const std::vector<std::string>& files() const { return files_; }
  // Progress: bytes of the input files consumed so far (compressed bytes for .gz) and in all;
  // the text they gave (decompressed).
  uint64_t bytes_done() const;
  uint64_t text_bytes_done() const;
  uint64_t bytes_total() const { return bytes_total_; }

 private:
  struct Stream;
  bool open_next_file();

  std::vector<std::string> files_;
  std::string text_key_;
  size_t file_index_ = 0;
  std::unique_ptr<Stream> stream_;
  int64_t broken_lines_ = 0, skipped_files_ = 0;
  uint64_t bytes_total_ = 0, bytes_before_ = 0;  // bytes_before_: in files already finished
  uint64_t text_before_ = 0;                     // text of the files already finished
};

}  // namespace serpent
