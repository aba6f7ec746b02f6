// Byte-level BPE loaded from a Hugging Face tokenizer.json, encoding exactly as Hugging Face
// `tokenizers` does (tests/data/test_bpe.cpp holds it to reference ids made by `tokenizers`):
//
//   1. text that is not valid UTF-8 gets each ill-formed sequence replaced by U+FFFD;
//   2. added tokens with "normalized": false (`<|endoftext|>`, `<|padding|>`) are split out of the
//      raw text, leftmost-longest first, honouring "lstrip" and "rstrip";
//   3. each remaining piece is normalized (NFC when the file asks for it), then added tokens with
//      "normalized": true (GPT-NeoX's runs of spaces) are split out of it the same way;
//   4. each remaining piece is cut by the GPT-2 pattern (data/pretokenize.h), its UTF-8 bytes are
//      the initial symbols, and merges are applied lowest rank first, leftmost first on ties.
//
// Supported tokenizer.json: model BPE without dropout, unk token, subword prefix or suffix and
// byte fallback (ignore_merges honoured); normalizer null or NFC; pre-tokenizer ByteLevel with
// add_prefix_space false and use_regex true; decoder ByteLevel (or null).
// Anything else is refused with an error naming the field, rather than encoded differently.
#pragma once

#include <array>
#include <string>
#include <unordered_map>
#include <vector>

#include "data/tokenizer.h"

namespace serpent {

class BpeTokenizer : public Tokenizer {
 public:
  // Reads and checks a tokenizer.json; errors name the file and the field at fault.
  explicit BpeTokenizer(const std::string& path);

  using Tokenizer::encode;
  void encode(std::string_view text, std::vector<int32_t>& out) const override;
  std::string decode_bytes(const std::vector<int32_t>& ids) const override;
  int64_t vocab_size() const override { return int64_t(id_bytes_.size()); }
  int32_t eot_id() const override;
  std::string name() const override { return path_; }

  // The id of a token (its content as text, e.g. "<|endoftext|>" or "hello"), or -1.
  int32_t token_id(const std::string& content) const;

 private:
  struct Added {
    int32_t id;
    std::string content;
    bool special, normalized, lstrip, rstrip;
  };
  // Leftmost-longest matching over a set of added tokens: a byte trie walked from each position.
  struct Matcher {
    struct Node {
      std::unordered_map<unsigned char, int32_t> next;
      int32_t added = -1;  // index into added_ of the token ending here
    };
    std::vector<Node> nodes{Node{}};
    std::array<bool, 256> first{};
    void add(const std::string& content, int32_t index);
    bool empty() const { return nodes.size() == 1; }
  };
  struct Merge {
    int32_t rank, id;
  };

  // Calls piece(text, -1) for stretches of plain text and piece(match, added index) for added
  // tokens, in order, as Hugging Face's AddedVocabulary::find_matches splits.
  template <class F>
  void split_added(std::string_view text, const Matcher& m, F&& piece) const;
  void encode_plain(std::string_view piece, std::vector<int32_t>& out) const;
  void bpe(std::string_view word, std::vector<int32_t>& out) const;
  const Merge* find_merge(int32_t a, int32_t b) const;

  std::string path_;
  bool nfc_ = false, ignore_merges_ = false;
  std::vector<std::string> id_bytes_;                  // the bytes each id decodes to
  std::unordered_map<std::string, int32_t> bytes_id_;  // model vocabulary, keyed by bytes
  std::array<int32_t, 256> byte_id_{};                 // the id of each single byte
  std::unordered_map<uint64_t, Merge> merges_;
  std::vector<Added> added_;
  Matcher raw_matcher_, normalized_matcher_;
  uint64_t serial_;  // identifies this tokenizer in the per-thread word caches
};

// A Hugging Face tokenizer.json that encodes as the ByteTokenizer does on valid UTF-8: byte-level
// BPE whose 256 one-byte symbols are ids 0-255 in byte order, no merges, and "<|endoftext|>" an
// added special token with id 256. (On invalid UTF-8 the two differ: Hugging Face's Python front
// end never passes such text, and BpeTokenizer replaces it with U+FFFD first, docs/DATA.md.)
std::string byte_tokenizer_json();

}  // namespace serpent
