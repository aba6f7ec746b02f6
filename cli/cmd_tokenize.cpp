// serpent tokenize: stdin text -> token ids as a JSON array on stdout, or back with --decode.
#include <cstdio>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "core/error.h"
#include "data/tokenizer.h"

namespace serpent {

int cmd_tokenize(const Args& args) {
  ArgParser p("tokenize",
              "Reads text on stdin and prints its token ids as a JSON array. With --decode, reads a JSON array of "
              "ids and prints the bytes they stand for (the exact inverse). Invalid UTF-8 input: see docs/DATA.md.");
  p.option("tokenizer", "PATH|byte", "a tokenizer.json file (or a folder holding one), or \"byte\"")
      .required()
      .option("decode", "", "ids in, text out");
  if (!p.parse(args)) return 0;
  const auto tok = load_tokenizer(p.get("tokenizer"));
  const std::string in((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  if (!p.flag("decode")) {
    const nlohmann::json ids = tok->encode(in);
    std::printf("%s\n", ids.dump().c_str());
    return 0;
  }
  std::vector<int32_t> ids;
  try {
    const auto j = nlohmann::json::parse(in);
    SERPENT_CHECK(j.is_array(), "tokenize --decode: expected a JSON array of token ids on stdin, got ", j.type_name());
    for (const auto& v : j) {
      SERPENT_CHECK(v.is_number_integer(), "tokenize --decode: expected integer token ids, got ", v.dump());
      const int64_t id = v.get<int64_t>();
      SERPENT_CHECK(id >= 0 && id < tok->vocab_size(), "tokenize --decode: token id ", id,
                    " is outside the vocabulary [0, ", tok->vocab_size(), ")");
      ids.push_back(int32_t(id));
    }
  } catch (const nlohmann::json::exception& e) {
    fail("tokenize --decode: stdin is not a JSON array of token ids (", e.what(), ")");
  }
  const std::string text = tok->decode_bytes(ids);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return 0;
}

}  // namespace serpent
