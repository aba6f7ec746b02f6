// The tokenizer interface's shared parts, the byte tokenizer, and load_tokenizer.
#include "data/tokenizer.h"

#include <filesystem>

#include "core/error.h"
#include "data/bpe.h"
#include "data/unicode.h"

namespace serpent {

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  std::vector<int32_t> ids;
  encode(text, ids);
  return ids;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  return unicode::sanitize_utf8(decode_bytes(ids));
}

namespace {
constexpr std::string_view kEotText = "<|endoftext|>";
}

void ByteTokenizer::encode(std::string_view text, std::vector<int32_t>& out) const {
  size_t i = 0;
  while (i < text.size()) {
    if (text.compare(i, kEotText.size(), kEotText) == 0) {
      out.push_back(kEot);
      i += kEotText.size();
    } else {
      out.push_back(static_cast<unsigned char>(text[i++]));
    }
  }
}

std::string ByteTokenizer::decode_bytes(const std::vector<int32_t>& ids) const {
  std::string out;
  out.reserve(ids.size());
  for (int32_t id : ids) {
    SERPENT_CHECK(id >= 0 && id <= kEot, "decode: token id ", id,
                  " is outside the byte tokenizer's vocabulary [0, 257)");
    if (id == kEot)
      out += kEotText;
    else
      out.push_back(char(id));
  }
  return out;
}

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& spec) {
  if (spec == "byte") return std::make_unique<ByteTokenizer>();
  std::error_code ec;
  std::filesystem::path p(spec);
  if (std::filesystem::is_directory(p, ec)) p /= "tokenizer.json";
  SERPENT_CHECK(std::filesystem::is_regular_file(p, ec), "tokenizer '", spec,
                "' is neither \"byte\" nor a tokenizer.json file (or a folder holding one)");
  return std::make_unique<BpeTokenizer>(p.string());
}

}  // namespace serpent
