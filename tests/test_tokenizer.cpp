// Tokenizers: Unicode building blocks, the GPT-2 pre-tokenizer, byte-level BPE exactness against
// Hugging Face `tokenizers` reference ids (tests/data/tokenizer/refs_*.json.gz), round trips,
// the byte tokenizer and `serpent tokenize`.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "data/bpe.h"
#include "data/pretokenize.h"
#include "data/sha256.h"
#include "data/text_source.h"
#include "data/tokenizer.h"
#include "data/unicode.h"
#include "tests/helpers.h"

namespace serpent {
namespace {

using testing::data_path;

std::string repo_path(const std::string& rel) {
  return std::string(SERPENT_SOURCE_DIR) + "/" + rel;
}
std::string neox_json() {
  return repo_path("data/tokenizers/gpt-neox-20b/tokenizer.json");
}
std::string gpt2_json() {
  return repo_path("data/tokenizers/gpt2/tokenizer.json");
}

// Tokenizers are slow-ish to load (50k merges); share one of each across the tests.
const BpeTokenizer& neox() {
  static const BpeTokenizer t(neox_json());
  return t;
}
const BpeTokenizer& gpt2() {
  static const BpeTokenizer t(gpt2_json());
  return t;
}

std::string u8(const char32_t* s) {
  std::string out;
  for (; *s; ++s) unicode::append_utf8(out, *s);
  return out;
}

std::vector<std::string> pieces(const std::string& text) {
  std::vector<std::string_view> p;
  gpt2_pretokenize(text, p);
  return std::vector<std::string>(p.begin(), p.end());
}

// ---- Unicode ---------------------------------------------------------------------------------

TEST(Unicode, DecodesValidUtf8) {
  const std::string s = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80";  // a é € 😀
  size_t i = 0, len;
  std::vector<char32_t> cps;
  while (i < s.size()) {
    cps.push_back(unicode::decode_utf8(s, i, &len));
    i += len;
  }
  EXPECT_EQ(cps, (std::vector<char32_t>{U'a', 0xE9, 0x20AC, 0x1F600}));
  std::string back;
  for (char32_t c : cps) unicode::append_utf8(back, c);
  EXPECT_EQ(back, s);
  EXPECT_TRUE(unicode::is_valid_utf8(s));
  EXPECT_TRUE(unicode::is_valid_utf8("\xEF\xBF\xBD"));  // U+FFFD itself is valid
}

// Each maximal ill-formed subsequence becomes one U+FFFD; the expectations follow the Unicode
// standard's examples (chapter 3.9, "U+FFFD Substitution of Maximal Subparts").
TEST(Unicode, ReplacesInvalidUtf8LikePython) {
  const std::string R = "\xEF\xBF\xBD";
  EXPECT_EQ(unicode::sanitize_utf8("a\x80z"), "a" + R + "z");            // lone continuation
  EXPECT_EQ(unicode::sanitize_utf8("\xC3z"), R + "z");                   // lead without continuation
  EXPECT_EQ(unicode::sanitize_utf8("\xE2\x82z"), R + "z");               // truncated 3-byte: one U+FFFD
  EXPECT_EQ(unicode::sanitize_utf8("\xF0\x9F\x98z"), R + "z");           // truncated 4-byte: one U+FFFD
  EXPECT_EQ(unicode::sanitize_utf8("\xC0\xAF"), R + R);                  // overlong: C0 is never valid
  EXPECT_EQ(unicode::sanitize_utf8("\xE0\x80\xAF"), R + R + R);          // overlong 3-byte
  EXPECT_EQ(unicode::sanitize_utf8("\xED\xA0\x80"), R + R + R);          // surrogate
  EXPECT_EQ(unicode::sanitize_utf8("\xF4\x90\x80\x80"), R + R + R + R);  // above U+10FFFF
  EXPECT_EQ(unicode::sanitize_utf8("\xF5\xFF"), R + R);                  // never-valid bytes
  EXPECT_EQ(unicode::sanitize_utf8("\xE2\x28\xA1"), R + "(" + R);        // bad second byte
  EXPECT_EQ(unicode::sanitize_utf8("x\xE2\x82"), "x" + R);               // truncated at the end
  // Table 3-8 of the standard: 61 F1 80 80 E1 80 C2 62 80 63 80 BF 64
  EXPECT_EQ(unicode::sanitize_utf8("\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64"),
            "a" + R + R + R + "b" + R + "c" + R + R + "d");
  EXPECT_FALSE(unicode::is_valid_utf8("\xED\xA0\x80"));
}

TEST(Unicode, CharacterClasses) {
  using unicode::CharClass;
  EXPECT_EQ(unicode::char_class(U'a'), CharClass::kLetter);
  EXPECT_EQ(unicode::char_class(0x4E2D), CharClass::kLetter);   // 中 Lo
  EXPECT_EQ(unicode::char_class(0x02B0), CharClass::kLetter);   // modifier letter Lm
  EXPECT_EQ(unicode::char_class(0x1D400), CharClass::kLetter);  // mathematical bold A
  EXPECT_EQ(unicode::char_class(U'7'), CharClass::kNumber);
  EXPECT_EQ(unicode::char_class(0x00B2), CharClass::kNumber);  // superscript two, No
  EXPECT_EQ(unicode::char_class(0x2160), CharClass::kNumber);  // roman numeral one, Nl
  EXPECT_EQ(unicode::char_class(0x0301), CharClass::kOther);   // combining acute, Mn
  EXPECT_EQ(unicode::char_class(0x1F600), CharClass::kOther);  // emoji, So
  for (char32_t s :
       {0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2000, 0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000})
    EXPECT_EQ(unicode::char_class(s), CharClass::kSpace) << std::hex << uint32_t(s);
  // Not White_Space, although some libraries call them spaces.
  for (char32_t s : {0x1C, 0x1F, 0x180E, 0x200B, 0xFEFF})
    EXPECT_EQ(unicode::char_class(s), CharClass::kOther) << std::hex << uint32_t(s);
  EXPECT_EQ(unicode::combining_class(0x0301), 230);
  EXPECT_EQ(unicode::combining_class(0x0323), 220);
  EXPECT_EQ(unicode::combining_class(U'a'), 0);
}

// NFC cases from UAX #15 and the standard's composition rules.
TEST(Unicode, NfcComposesDecomposesAndReorders) {
  EXPECT_EQ(unicode::nfc("plain ascii stays"), "plain ascii stays");
  EXPECT_EQ(unicode::nfc(u8(U"e\u0301")), u8(U"\u00E9"));
  EXPECT_EQ(unicode::nfc(u8(U"\u212B")), u8(U"\u00C5"));               // angstrom sign: singleton
  EXPECT_EQ(unicode::nfc(u8(U"\u2126")), u8(U"\u03A9"));               // ohm sign
  EXPECT_EQ(unicode::nfc(u8(U"\u1100\u1161\u11A8")), u8(U"\uAC01"));   // Hangul jamo L V T
  EXPECT_EQ(unicode::nfc(u8(U"\uAC00\u11A8")), u8(U"\uAC01"));         // LV syllable + T
  EXPECT_EQ(unicode::nfc(u8(U"\u1E9B\u0323")), u8(U"\u1E9B\u0323"));   // UAX #15 example
  EXPECT_EQ(unicode::nfc(u8(U"A\u0307\u0323")), u8(U"\u1EA0\u0307"));  // reordered, then composed
  EXPECT_EQ(unicode::nfc(u8(U"\u0344")), u8(U"\u0308\u0301"));         // non-starter decomposition
  EXPECT_EQ(unicode::nfc(u8(U"\u0958")), u8(U"\u0915\u093C"));         // composition exclusion
  EXPECT_EQ(unicode::nfc(u8(U"\uF900")), u8(U"\u8C48"));               // CJK compatibility ideograph
  EXPECT_EQ(unicode::nfc(u8(U"\uFB01")), u8(U"\uFB01"));               // compatibility only: kept
  EXPECT_EQ(unicode::nfc(u8(U"\u0301e")), u8(U"\u0301e"));             // leading mark composes with nothing
  EXPECT_EQ(unicode::nfc(u8(U"a\u0308\u0301x e\u0301")), u8(U"\u00E4\u0301x \u00E9"));
}

// ---- Pre-tokenizer ---------------------------------------------------------------------------

TEST(Pretokenize, Gpt2PatternByHand) {
  using V = std::vector<std::string>;
  EXPECT_EQ(pieces("Hello world"), (V{"Hello", " world"}));
  EXPECT_EQ(pieces("a  b"), (V{"a", " ", " b"}));  // \s+(?!\S) leaves the last space to the word
  EXPECT_EQ(pieces("a   \n b"), (V{"a", "   \n", " b"}));
  EXPECT_EQ(pieces("end  "), (V{"end", "  "}));  // trailing run kept whole
  EXPECT_EQ(pieces("I'm it's we'll 'S"), (V{"I", "'m", " it", "'s", " we", "'ll", " '", "S"}));
  EXPECT_EQ(pieces("x 123abc"), (V{"x", " 123", "abc"}));
  EXPECT_EQ(pieces("a!?b ...c"), (V{"a", "!?", "b", " ...", "c"}));
  EXPECT_EQ(pieces("\t\tx"), (V{"\t", "\t", "x"}));  // only a plain space joins the next word
  EXPECT_EQ(pieces(u8(U"caf\u00E9 e\u0301")), (V{u8(U"caf\u00E9"), " e", u8(U"\u0301")}));
  EXPECT_EQ(pieces(u8(U"x\u3000y")), (V{"x", u8(U"\u3000"), "y"}));
  EXPECT_EQ(pieces(""), V{});
}

// ---- Exactness against Hugging Face ----------------------------------------------------------

struct RefCase {
  std::string name;
  nlohmann::json entry;
};

// The reference file for one tokenizer, or null when it is absent.
std::shared_ptr<nlohmann::json> load_refs(const std::string& label) {
  const std::string path = data_path("tokenizer/refs_" + label + ".json.gz");
  if (!std::filesystem::exists(path)) return nullptr;
  return std::make_shared<nlohmann::json>(nlohmann::json::parse(read_file(path)));
}

std::string first_difference(const std::vector<int32_t>& got, const std::vector<int32_t>& want) {
  size_t k = 0;
  while (k < got.size() && k < want.size() && got[k] == want[k]) ++k;
  return str_cat("first difference at token ", k, " of ", want.size(), " (got ",
                 k < got.size() ? std::to_string(got[k]) : "end", ", want ",
                 k < want.size() ? std::to_string(want[k]) : "end", ")");
}

void check_exact(const BpeTokenizer& tok, const std::string& label) {
  auto refs = load_refs(label);
  if (!refs)
    GTEST_SKIP() << "reference ids tests/data/tokenizer/refs_" << label
                 << ".json.gz are absent (made by tools/make_tokenizer_refs.py on the GPU machine)";
  const auto texts = (*refs)["texts"];
  ASSERT_GE(texts.size(), 27u);
  size_t total_bytes = 0, total_tokens = 0, lines = 0;
  for (const auto& e : texts) {
    const std::string name = e["name"];
    const std::string raw = read_file(data_path("tokenizer/texts/" + name));
    ASSERT_EQ(sha256_hex(raw), e["sha256"].get<std::string>())
        << name << " differs from the text the references were made from";
    const auto want = e["ids"].get<std::vector<int32_t>>();
    const auto got = tok.encode(raw);
    EXPECT_EQ(got, want) << label << " " << name << ": " << first_difference(got, want);
    // Decoding the reference ids gives what Hugging Face's decode gives.
    EXPECT_EQ(sha256_hex(tok.decode(want)), e["decoded_sha256"].get<std::string>()) << label << " " << name;
    if (e.contains("lines")) {
      size_t start = 0, k = 0;
      for (const auto& line_ids : e["lines"]) {
        const size_t nl = raw.find('\n', start);
        const std::string line = raw.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
        const auto lw = line_ids.get<std::vector<int32_t>>();
        EXPECT_EQ(tok.encode(line), lw) << label << " " << name << " line " << k + 1 << ": "
                                        << first_difference(tok.encode(line), lw);
        start = nl + 1;
        ++k;
        ++lines;
      }
    }
    total_bytes += raw.size();
    total_tokens += want.size();
  }
  if (!::testing::Test::HasFailure())
    std::printf("[ exact    ] %s: %zu texts, %zu bytes, %zu tokens and %zu single lines match Hugging Face %s\n",
                label.c_str(), texts.size(), total_bytes, total_tokens, lines,
                (*refs)["tokenizers_version"].get<std::string>().c_str());
}

TEST(TokenizerExact, GptNeox20bMatchesHuggingFace) {
  check_exact(neox(), "gpt-neox-20b");
}
TEST(TokenizerExact, Gpt2MatchesHuggingFace) {
  check_exact(gpt2(), "gpt2");
}

}  // namespace
}  // namespace serpent
