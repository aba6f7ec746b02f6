// Byte-level BPE (data/bpe.h): the GPT-2 pre-tokenizer, exactness against Hugging Face
// `tokenizers` reference ids (tests/fixtures/tokenizer/refs_*.json.gz), round trips, added tokens and
// their flags, concurrent encoding, and the tokenizer.json features it refuses.
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

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
using testing::gpt2;
using testing::neox;

using testing::u8;

std::vector<std::string> pieces(const std::string& text) {
  std::vector<std::string_view> p;
  gpt2_pretokenize(text, p);
  return std::vector<std::string>(p.begin(), p.end());
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
    GTEST_SKIP() << "reference ids tests/fixtures/tokenizer/refs_" << label
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
  // A text added to the test set after the references were made is listed, not silently ignored.
  for (const auto& f : std::filesystem::directory_iterator(data_path("tokenizer/texts"))) {
    bool found = false;
    for (const auto& e : texts) found = found || e["name"] == f.path().filename().string();
    if (!found)
      std::printf("[ WARNING  ] %s has no %s reference ids yet: regenerate with tools/make_tokenizer_refs.py\n",
                  f.path().filename().c_str(), label.c_str());
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

// ---- Round trips and added tokens ------------------------------------------------------------

// Every text of the test set comes back from decode(encode(text)): as is for GPT-2, in NFC for
// GPT-NeoX (whose normalizer is NFC), invalid UTF-8 with its bytes replaced by U+FFFD.
TEST(Bpe, RoundTripsTheTestSet) {
  for (const auto& e : std::filesystem::directory_iterator(data_path("tokenizer/texts"))) {
    const std::string raw = read_file(e.path().string());
    const std::string clean = unicode::sanitize_utf8(raw);
    EXPECT_EQ(gpt2().decode(gpt2().encode(raw)), clean) << e.path();
    EXPECT_EQ(neox().decode(neox().encode(raw)), unicode::nfc(clean)) << e.path();
  }
}

TEST(Bpe, RoundTripsRandomText) {
  Generator gen(11);
  // Code points drawn from ranges that exercise every path: ASCII, Latin-1, combining marks,
  // Hangul jamo and syllables, CJK, emoji, white space of all kinds.
  const std::vector<std::pair<char32_t, char32_t>> ranges = {
      {0x20, 0x7E},     {0x09, 0x0D},     {0xA0, 0xFF},       {0x300, 0x36F},   {0x1100, 0x1175}, {0x11A8, 0x11C2},
      {0xAC00, 0xAC40}, {0x4E00, 0x4E40}, {0x1F600, 0x1F640}, {0x2000, 0x200B}, {0x3000, 0x3003}};
  for (int trial = 0; trial < 200; ++trial) {
    std::string s;
    const int n = 1 + int(gen.uniform() * 60);
    for (int k = 0; k < n; ++k) {
      const auto& r = ranges[size_t(gen.uniform() * double(ranges.size()))];
      unicode::append_utf8(s, r.first + char32_t(gen.uniform() * double(r.second - r.first + 1)));
    }
    if (gen.uniform() < 0.2) s = gen.uniform() < 0.5 ? "<|endoftext|>" + s : s + "<|endoftext|>";
    EXPECT_EQ(gpt2().decode_bytes(gpt2().encode(s)), s);
    EXPECT_EQ(neox().decode_bytes(neox().encode(s)), unicode::nfc(s));
    ByteTokenizer bt;
    EXPECT_EQ(bt.decode_bytes(bt.encode(s)), s);
  }
}

TEST(Bpe, EndOfTextInsideTextIsTheSpecialId) {
  EXPECT_EQ(neox().eot_id(), 0);
  EXPECT_EQ(gpt2().eot_id(), 50256);
  EXPECT_EQ(neox().vocab_size(), 50277);
  EXPECT_EQ(gpt2().vocab_size(), 50257);
  EXPECT_EQ(gpt2().encode("<|endoftext|>"), (std::vector<int32_t>{50256}));
  // "Hello" = 15496, " world" = 995 in GPT-2's encoder.json.
  EXPECT_EQ(gpt2().encode("Hello<|endoftext|> world"), (std::vector<int32_t>{15496, 50256, 995}));
  EXPECT_EQ(neox().encode("<|padding|><|endoftext|>"), (std::vector<int32_t>{1, 0}));
  // GPT-NeoX's runs of spaces are added tokens: "  " (two spaces) is id 50276, and the word after
  // a run loses its leading space, as in Hugging Face.
  EXPECT_EQ(neox().token_id("  "), 50276);
  const auto ids = neox().encode("a  b");
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids[1], 50276);
  EXPECT_EQ(neox().decode(ids), "a  b");
}

TEST(Bpe, InvalidUtf8IsReplacedBeforeEncoding) {
  const std::string bad = "caf\xE9 \xF0\x9F\x98 ok \xED\xA0\x80";
  const std::string R = "\xEF\xBF\xBD";
  const std::string replaced = "caf" + R + " " + R + " ok " + R + R + R;
  EXPECT_EQ(gpt2().encode(bad), gpt2().encode(replaced));
  EXPECT_EQ(neox().encode(bad), neox().encode(replaced));
  EXPECT_EQ(gpt2().decode(gpt2().encode(bad)), replaced);
}

// A tiny tokenizer.json whose added tokens use every flag; the expected splits follow Hugging
// Face's AddedVocabulary rules (leftmost-longest match; lstrip / rstrip take the white space
// beside the token; "normalized" tokens are matched after NFC).
std::string tiny_tokenizer_json(const std::string& extra_added = "") {
  nlohmann::json vocab = nlohmann::json::object();
  // GPT-2's byte-to-character map, rebuilt independently of data/bpe.cpp: printable Latin-1
  // stands for itself, the other bytes take U+0100 onwards in order.
  int next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
    std::string ch;
    unicode::append_utf8(ch, char32_t(printable ? b : next++));
    vocab[ch] = b;
  }
  vocab["ab"] = 256;
  vocab["abc"] = 257;
  nlohmann::json j = {
      {"version", "1.0"},
      {"normalizer", {{"type", "NFC"}}},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", {"a b", "ab c"}}}},
  };
  j["added_tokens"] = nlohmann::json::parse(
      R"([{"id": 258, "content": "<L>", "lstrip": true, "rstrip": false, "normalized": false, "special": true},
          {"id": 259, "content": "<R>", "lstrip": false, "rstrip": true, "normalized": false, "special": true},
          {"id": 260, "content": "<LR>", "lstrip": true, "rstrip": true, "normalized": false, "special": true},
          {"id": 261, "content": "\u00e9t\u00e9", "normalized": true, "special": false},
          {"id": 262, "content": "<L>>", "normalized": false, "special": false})" +
      extra_added + "]");
  return j.dump();
}

TEST(Bpe, AddedTokenFlagsFollowHuggingFace) {
  testing::TempDir dir;
  testing::write_file(dir / "tokenizer.json", tiny_tokenizer_json());
  BpeTokenizer t(dir / "tokenizer.json");
  using V = std::vector<int32_t>;
  EXPECT_EQ(t.vocab_size(), 263);
  EXPECT_EQ(t.encode("abc ab"), (V{257, 32, 256}));         // merges; " " alone is byte 32 (no Ġab token)
  EXPECT_EQ(t.encode("x  <L>y"), (V{'x', 258, 'y'}));       // lstrip eats the spaces before
  EXPECT_EQ(t.encode("x<R>  y"), (V{'x', 259, 'y'}));       // rstrip eats the spaces after
  EXPECT_EQ(t.encode("x \t<LR>\n y"), (V{'x', 260, 'y'}));  // both
  EXPECT_EQ(t.encode("x <R> y"), (V{'x', 32, 259, 'y'}));   // no lstrip: the space before stays
  EXPECT_EQ(t.encode("<L>>"), (V{262}));                    // longest match wins
  // "été" is matched after NFC: the decomposed spelling finds it too.
  EXPECT_EQ(t.encode("\xC3\xA9t\xC3\xA9"), (V{261}));
  EXPECT_EQ(t.encode("e\xCC\x81te\xCC\x81"), (V{261}));
  EXPECT_EQ(t.decode(V{'x', 258, 'y'}), "x<L>y");
}

TEST(Bpe, IgnoreMergesTakesWholeWordsFromTheVocabulary) {
  testing::TempDir dir;
  auto j = nlohmann::json::parse(tiny_tokenizer_json());
  j["model"]["vocab"]["xyz"] = 263;  // reachable by no merge
  testing::write_file(dir / "off.json", j.dump());
  j["model"]["ignore_merges"] = true;
  testing::write_file(dir / "on.json", j.dump());
  using V = std::vector<int32_t>;
  EXPECT_EQ(BpeTokenizer(dir / "off.json").encode("xyz abc"), (V{'x', 'y', 'z', 32, 257}));
  EXPECT_EQ(BpeTokenizer(dir / "on.json").encode("xyz abc"), (V{263, 32, 257}));
}

// Many threads encoding at once (as `serpent prepare` does) give what one thread gives.
TEST(Bpe, ConcurrentEncodingMatchesSequential) {
  std::vector<std::string> texts;
  for (const auto& e : std::filesystem::directory_iterator(data_path("tokenizer/texts")))
    texts.push_back(read_file(e.path().string()));
  std::vector<std::vector<int32_t>> want;
  for (const auto& t : texts) want.push_back(neox().encode(t));
  std::vector<std::vector<std::vector<int32_t>>> got(4);
  std::vector<std::thread> threads;
  for (size_t k = 0; k < got.size(); ++k)
    threads.emplace_back([&, k] {
      for (size_t i = 0; i < texts.size(); ++i) got[k].push_back(neox().encode(texts[(i + k * 7) % texts.size()]));
    });
  for (auto& t : threads) t.join();
  for (size_t k = 0; k < got.size(); ++k)
    for (size_t i = 0; i < texts.size(); ++i) EXPECT_EQ(got[k][i], want[(i + k * 7) % texts.size()]) << k << " " << i;
}

TEST(Bpe, RefusesWhatItCannotEncodeExactly) {
  testing::TempDir dir;
  testing::write_file(
      dir / "sw.json",
      tiny_tokenizer_json(R"(,{"id": 263, "content": "<W>", "single_word": true, "normalized": false})"));
  testing::expect_error([&] { BpeTokenizer t(dir / "sw.json"); }, {"sw.json", "<W>", "single_word"});
  testing::write_file(dir / "broken.json", "{\"model\": ");
  testing::expect_error([&] { BpeTokenizer t(dir / "broken.json"); }, {"broken.json", "not valid JSON"});
  auto j = nlohmann::json::parse(tiny_tokenizer_json());
  j["normalizer"] = {{"type", "NFKC"}};
  testing::write_file(dir / "nfkc.json", j.dump());
  testing::expect_error([&] { BpeTokenizer t(dir / "nfkc.json"); }, {"nfkc.json", "NFKC"});
  j = nlohmann::json::parse(tiny_tokenizer_json());
  j["pre_tokenizer"].erase("add_prefix_space");  // Hugging Face's default is true
  testing::write_file(dir / "prefix.json", j.dump());
  testing::expect_error([&] { BpeTokenizer t(dir / "prefix.json"); }, {"prefix.json", "add_prefix_space"});
  j = nlohmann::json::parse(tiny_tokenizer_json());
  j["model"]["merges"].push_back("c d");
  testing::write_file(dir / "merge.json", j.dump());
  testing::expect_error([&] { BpeTokenizer t(dir / "merge.json"); }, {"merge.json", "merge 2", "cd"});
  testing::expect_error([] { load_tokenizer("/nonexistent/tok.json"); }, {"/nonexistent/tok.json"});
  // An id beyond the file's token count is refused before the id tables are sized by it.
  testing::write_file(dir / "far.json", tiny_tokenizer_json(R"(,{"id": 400000000, "content": "<X>"})"));
  testing::expect_error([&] { BpeTokenizer t(dir / "far.json"); },
                        {"far.json", "added token", "400000000", "without gaps"});
  testing::write_file(dir / "far_empty.json", tiny_tokenizer_json(R"(,{"id": 99999999, "content": ""})"));
  testing::expect_error([&] { BpeTokenizer t(dir / "far_empty.json"); }, {"far_empty.json", "99999999"});
  testing::write_file(dir / "negative.json", tiny_tokenizer_json(R"(,{"id": -1, "content": "<N>"})"));
  testing::expect_error([&] { BpeTokenizer t(dir / "negative.json"); }, {"negative.json", "-1"});
  testing::write_file(dir / "text_id.json", tiny_tokenizer_json(R"(,{"id": "263", "content": "<T>"})"));
  testing::expect_error([&] { BpeTokenizer t(dir / "text_id.json"); }, {"text_id.json", "ids are integers"});
}

}  // namespace
}  // namespace serpent
