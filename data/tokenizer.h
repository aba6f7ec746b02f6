// Tokenizers: text <-> token ids.
//
//  * ByteTokenizer: ids 0..255 are the bytes, 256 is end-of-text (vocabulary 257). The literal
//    text "<|endoftext|>" encodes to 256, as it does in the BPE tokenizers, so every tokenizer
//    treats documents alike; everything else is its bytes, unchanged (invalid UTF-8 included).
//  * BpeTokenizer (data/bpe.h): Hugging Face tokenizer.json byte-level BPE (GPT-2, GPT-NeoX).
//
// Encoding is const and thread-safe: one tokenizer can serve every thread of `serpent prepare`.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace serpent {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Appends the ids of `text` to `out`. Text that is not valid UTF-8 is read as docs/DATA.md
  // says (BPE: each ill-formed sequence becomes U+FFFD first).
  virtual void encode(std::string_view text, std::vector<int32_t>& out) const = 0;
  std::vector<int32_t> encode(std::string_view text) const;

  // The bytes the ids stand for: the exact inverse of encode on valid, normalized text. A cut
  // in the middle of a character gives bytes that are not valid UTF-8. Throws on an id outside
  // the vocabulary, naming it.
  virtual std::string decode_bytes(const std::vector<int32_t>& ids) const = 0;
  // decode_bytes with each ill-formed sequence replaced by U+FFFD: what Hugging Face's decode
  // returns.
  std::string decode(const std::vector<int32_t>& ids) const;

  virtual int64_t vocab_size() const = 0;  // 1 + the largest id
  virtual int32_t eot_id() const = 0;      // the end-of-text id that separates documents
  virtual std::string name() const = 0;    // "byte", or the tokenizer.json path
};

class ByteTokenizer : public Tokenizer {
 public:
  static constexpr int32_t kEot = 256;
  using Tokenizer::encode;
  void encode(std::string_view text, std::vector<int32_t>& out) const override;
  std::string decode_bytes(const std::vector<int32_t>& ids) const override;
  int64_t vocab_size() const override { return 257; }
  int32_t eot_id() const override { return kEot; }
  std::string name() const override { return "byte"; }
};

// "byte" gives the ByteTokenizer; anything else is a tokenizer.json file, or a folder that
// holds one.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& spec);

}  // namespace serpent
