// Byte-level BPE from tokenizer.json: loading and checks, added-token splitting, merges, decoding.
#include "data/bpe.h"

#include <algorithm>
#include <atomic>
#include <fstream>
#include <nlohmann/json.hpp>
#include <queue>

#include "core/error.h"
#include "data/pretokenize.h"
#include "data/unicode.h"

namespace serpent {

namespace {

using json = nlohmann::json;

// GPT-2's byte <-> printable character map: bytes that are printable Latin-1 stand for
// themselves, the other 68 are moved to U+0100 upwards in byte order, so every token of the
// vocabulary is a visible string.
struct ByteLevelAlphabet {
  std::array<char32_t, 256> byte_char{};
  std::unordered_map<char32_t, unsigned char> char_byte;
  ByteLevelAlphabet() {
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      byte_char[b] = printable ? char32_t(b) : next++;
      char_byte[byte_char[b]] = static_cast<unsigned char>(b);
    }
  }
};

const ByteLevelAlphabet& alphabet() {
  static const ByteLevelAlphabet a;
  return a;
}

// The bytes a byte-level token string stands for into *out; false when a character is outside
// the alphabet (Hugging Face's decoder then emits the token's own UTF-8 instead).
bool byte_level_bytes(const std::string& token, std::string* out) {
  const auto& a = alphabet();
  out->clear();
  size_t i = 0, len;
  while (i < token.size()) {
    auto it = a.char_byte.find(unicode::decode_utf8(token, i, &len));
    if (it == a.char_byte.end()) return false;
    out->push_back(char(it->second));
    i += len;
  }
  return true;
}

std::atomic<uint64_t> g_next_serial{1};

// Words already merged, per thread (encoding is const and shared across threads). Bounded so a
// long run over varied text cannot grow it without limit; it never changes a result.
struct WordCache {
  uint64_t owner = 0;
  std::unordered_map<std::string, std::vector<int32_t>> words;
};
thread_local WordCache t_cache;
constexpr size_t kCacheMaxWords = 1 << 17;
constexpr size_t kCacheMaxWordBytes = 64;

const json& field(const json& j, const char* key, const std::string& where, const std::string& path) {
  auto it = j.find(key);
  SERPENT_CHECK(it != j.end(), path, ": tokenizer.json has no \"", where, key, "\"");
  return *it;
}

bool flag_or(const json& j, const char* key, bool dflt) {
  auto it = j.find(key);
  return it == j.end() || it->is_null() ? dflt : it->get<bool>();
}

}  // namespace

void BpeTokenizer::Matcher::add(const std::string& content, int32_t index) {
  int32_t node = 0;
  for (char ch : content) {
    const auto b = static_cast<unsigned char>(ch);
    auto it = nodes[size_t(node)].next.find(b);
    if (it == nodes[size_t(node)].next.end()) {
      nodes.push_back(Node{});
      const int32_t fresh = int32_t(nodes.size() - 1);
      nodes[size_t(node)].next[b] = fresh;
      node = fresh;
    } else {
      node = it->second;
    }
  }
  // Two added tokens with the same content: Hugging Face keeps the later one.
  nodes[size_t(node)].added = index;
  first[static_cast<unsigned char>(content[0])] = true;
}

BpeTokenizer::BpeTokenizer(const std::string& path) : path_(path), serial_(g_next_serial++) {
  std::ifstream in(path, std::ios::binary);
  SERPENT_CHECK(in, "cannot open tokenizer file '", path, "'");
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {
    fail(path, ": not valid JSON (", e.what(), ")");
  }
  try {
    const json& model = field(j, "model", "", path);
    const std::string type = model.value("type", "BPE");
    SERPENT_CHECK(type == "BPE", path, ": model.type is \"", type, "\"; only byte-level \"BPE\" is supported");
    SERPENT_CHECK(!model.contains("dropout") || model["dropout"].is_null(), path,
                  ": model.dropout is set; BPE dropout is not supported");
    SERPENT_CHECK(!model.contains("unk_token") || model["unk_token"].is_null(), path,
                  ": model.unk_token is set; byte-level BPE has no unknown token");
    for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"})
      SERPENT_CHECK(!model.contains(k) || model[k].is_null() || model[k] == "", path, ": model.", k,
                    " is set; it is not supported");
    SERPENT_CHECK(!flag_or(model, "byte_fallback", false), path, ": model.byte_fallback is not supported");
    ignore_merges_ = flag_or(model, "ignore_merges", false);

    const json& norm = field(j, "normalizer", "", path);
    if (!norm.is_null()) {
      const std::string t = norm.value("type", "");
      SERPENT_CHECK(t == "NFC", path, ": normalizer type \"", t, "\" is not supported (only NFC or null)");
      nfc_ = true;
    }
    const json& pre = field(j, "pre_tokenizer", "", path);
    SERPENT_CHECK(!pre.is_null() && pre.value("type", "") == "ByteLevel", path,
                  ": pre_tokenizer must be ByteLevel, got ", pre.dump());
    // GPT-2 and GPT-NeoX use neither option; they are refused rather than left untested.
    SERPENT_CHECK(!flag_or(pre, "add_prefix_space", true), path,
                  ": pre_tokenizer.add_prefix_space is true; only false (as in GPT-2 and GPT-NeoX) is supported");
    SERPENT_CHECK(flag_or(pre, "use_regex", true), path, ": pre_tokenizer.use_regex is false; it is not supported");
    const json& dec = field(j, "decoder", "", path);
    SERPENT_CHECK(dec.is_null() || dec.value("type", "") == "ByteLevel", path, ": decoder must be ByteLevel, got ",
                  dec.dump());

    // Vocabulary: token string -> id.
    const json& vocab = field(model, "vocab", "model.", path);
    SERPENT_CHECK(vocab.is_object(), path, ": model.vocab must be an object of token: id");
    // The ids must be 0 .. count-1 without gaps, so none can reach the number of entries: checked
    // before the id tables are sized from the largest one.
    const json& added = field(j, "added_tokens", "", path);
    SERPENT_CHECK(added.is_array(), path, ": added_tokens must be a list");
    const int64_t entries = int64_t(vocab.size() + added.size());
    auto checked_id = [&](const json& v, const std::string& what) {
      SERPENT_CHECK(v.is_number_integer(), path, ": ", what, " has id ", v.dump(), "; ids are integers");
      const bool in_range = v.is_number_unsigned() ? v.get<uint64_t>() < uint64_t(entries)
                                                   : v.get<int64_t>() >= 0 && v.get<int64_t>() < entries;
      SERPENT_CHECK(in_range, path, ": ", what, " has id ", v.dump(), ", outside 0 .. ", entries - 1,
                    " (the file holds ", entries, " tokens, whose ids must be 0 .. ", entries - 1, " without gaps)");
      return v.get<int64_t>();
    };
    int64_t max_id = -1;
    for (auto it = vocab.begin(); it != vocab.end(); ++it)
      max_id = std::max(max_id, checked_id(it.value(), "token \"" + it.key() + "\""));
    for (const json& a : added) {
      SERPENT_CHECK(a.is_object() && a.contains("id"), path, ": every entry of added_tokens needs an id");
      max_id = std::max(max_id, checked_id(a.at("id"), "an added token"));
    }
    SERPENT_CHECK(max_id >= 0, path, ": the vocabulary is empty");
    id_bytes_.assign(size_t(max_id + 1), std::string());
    std::vector<bool> assigned(size_t(max_id + 1), false);
    std::unordered_map<std::string, int32_t> token_id;  // byte-level strings, for the merges
    std::string bytes;
    for (auto it = vocab.begin(); it != vocab.end(); ++it) {
      const int64_t id = it.value().get<int64_t>();
      SERPENT_CHECK(id >= 0, path, ": negative id ", id, " for token \"", it.key(), "\"");
      token_id[it.key()] = int32_t(id);
      assigned[size_t(id)] = true;
      if (byte_level_bytes(it.key(), &bytes)) {
        id_bytes_[size_t(id)] = bytes;
        bytes_id_[bytes] = int32_t(id);
      } else {
        id_bytes_[size_t(id)] = it.key();
      }
    }
    for (int b = 0; b < 256; ++b) {
      std::string one;
      unicode::append_utf8(one, alphabet().byte_char[size_t(b)]);
      // GPT-NeoX lacks the bytes that never occur in UTF-8 (C0, C1, F5..FF): encoded text is
      // always valid UTF-8, so they are never looked up.
      auto it = token_id.find(one);
      const bool never_in_utf8 = b == 0xC0 || b == 0xC1 || b >= 0xF5;
      SERPENT_CHECK(it != token_id.end() || never_in_utf8, path,
                    ": the vocabulary lacks the byte-level token for byte ", b, " (\"", one, "\")");
      byte_id_[size_t(b)] = it == token_id.end() ? -1 : it->second;
    }

    // Merges: "a b" strings (older files) or ["a", "b"] pairs; rank = position in the list.
    const json& merges = field(model, "merges", "model.", path);
    merges_.reserve(merges.size() * 2);
    for (size_t r = 0; r < merges.size(); ++r) {
      std::string a, b;
      if (merges[r].is_string()) {
        const std::string m = merges[r].get<std::string>();
        const size_t sp = m.find(' ');
        SERPENT_CHECK(sp != std::string::npos && m.find(' ', sp + 1) == std::string::npos, path, ": merge ", r, " \"",
                      m, "\" is not two tokens separated by one space");
        a = m.substr(0, sp);
        b = m.substr(sp + 1);
      } else {
        SERPENT_CHECK(merges[r].is_array() && merges[r].size() == 2, path, ": merge ", r, " is not a pair");
        a = merges[r][0].get<std::string>();
        b = merges[r][1].get<std::string>();
      }
      auto ia = token_id.find(a), ib = token_id.find(b), ic = token_id.find(a + b);
      SERPENT_CHECK(ia != token_id.end() && ib != token_id.end(), path, ": merge ", r, " (\"", a, "\", \"", b,
                    "\") uses a token that is not in the vocabulary");
      SERPENT_CHECK(ic != token_id.end(), path, ": merge ", r, " makes \"", a + b,
                    "\", which is not in the vocabulary");
      const uint64_t key = (uint64_t(uint32_t(ia->second)) << 32) | uint32_t(ib->second);
      merges_.emplace(key, Merge{int32_t(r), ic->second});  // the first (lowest) rank wins
    }

    // Added tokens, split out before the model sees the text.
    for (const json& a : added) {
      Added t;
      t.id = a.at("id").get<int32_t>();
      t.content = a.at("content").get<std::string>();
      t.special = flag_or(a, "special", false);
      t.normalized = flag_or(a, "normalized", !t.special);
      t.lstrip = flag_or(a, "lstrip", false);
      t.rstrip = flag_or(a, "rstrip", false);
      SERPENT_CHECK(!flag_or(a, "single_word", false), path, ": added token \"", t.content, "\" (id ", t.id,
                    ") has single_word set, which is not supported");
      SERPENT_CHECK(!t.content.empty(), path, ": added token ", t.id, " has empty content");
      SERPENT_CHECK(unicode::is_valid_utf8(t.content), path, ": added token ", t.id, " is not valid UTF-8");
      // Decoding follows Hugging Face's ByteLevel decoder: through the byte map when every
      // character is in it, else the content's own bytes.
      std::string dec_bytes;
      if (!byte_level_bytes(t.content, &dec_bytes)) dec_bytes = t.content;
      id_bytes_[size_t(t.id)] = dec_bytes;
      assigned[size_t(t.id)] = true;
      const int32_t index = int32_t(added_.size());
      if (t.normalized)
        normalized_matcher_.add(nfc_ ? unicode::nfc(t.content) : t.content, index);
      else
        raw_matcher_.add(t.content, index);
      added_.push_back(std::move(t));
    }
    for (size_t id = 0; id < assigned.size(); ++id)
      SERPENT_CHECK(assigned[id], path, ": token id ", id, " is unused; ids must be 0 .. ", max_id, " without gaps");
  } catch (const json::exception& e) {
    fail(path, ": unexpected tokenizer.json content (", e.what(), ")");
  }
}

int32_t BpeTokenizer::token_id(const std::string& content) const {
  for (const Added& a : added_)
    if (a.content == content) return a.id;
  auto it = bytes_id_.find(content);
  return it == bytes_id_.end() ? -1 : it->second;
}

int32_t BpeTokenizer::eot_id() const {
  const int32_t id = token_id("<|endoftext|>");
  SERPENT_CHECK(id >= 0, path_, ": the tokenizer has no <|endoftext|> token to separate documents");
  return id;
}

namespace {

bool is_space_at(std::string_view s, size_t i, size_t* len) {
  return unicode::char_class(unicode::decode_utf8(s, i, len)) == unicode::CharClass::kSpace;
}

// Byte offset where the trailing run of white space of s begins.
size_t trailing_space_start(std::string_view s) {
  size_t end = s.size();
  while (end > 0) {
    size_t start = end - 1;
    while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    size_t len;
    if (!is_space_at(s, start, &len)) break;
    end = start;
  }
  return end;
}

size_t leading_space_len(std::string_view s) {
  size_t i = 0, len;
  while (i < s.size() && is_space_at(s, i, &len)) i += len;
  return i;
}

}  // namespace

template <class F>
void BpeTokenizer::split_added(std::string_view text, const Matcher& m, F&& piece) const {
  if (m.empty()) {
    piece(text, -1);
    return;
  }
  size_t done = 0, i = 0;
  while (i < text.size()) {
    if (!m.first[static_cast<unsigned char>(text[i])]) {
      ++i;
      continue;
    }
    // Longest added token starting at i.
    int32_t node = 0, found = -1;
    size_t found_end = 0;
    for (size_t k = i; k < text.size(); ++k) {
      auto it = m.nodes[size_t(node)].next.find(static_cast<unsigned char>(text[k]));
      if (it == m.nodes[size_t(node)].next.end()) break;
      node = it->second;
      if (m.nodes[size_t(node)].added >= 0) {
        found = m.nodes[size_t(node)].added;
        found_end = k + 1;
      }
    }
    if (found < 0) {
      ++i;
      continue;
    }
    const Added& a = added_[size_t(found)];
    size_t start = i, stop = found_end;
    if (a.lstrip) start = std::max(trailing_space_start(text.substr(0, start)), done);
    if (a.rstrip) stop += leading_space_len(text.substr(stop));
    if (done < start) piece(text.substr(done, start - done), -1);
    piece(text.substr(start, stop - start), found);
    done = stop;
    i = found_end;  // the search resumes after the match itself, as Aho-Corasick's iterator does
  }
  if (done < text.size()) piece(text.substr(done), -1);
}

void BpeTokenizer::encode(std::string_view text, std::vector<int32_t>& out) const {
  const std::string clean = unicode::sanitize_utf8(text);
  split_added(clean, raw_matcher_, [&](std::string_view piece, int32_t added) {
    if (added >= 0) {
      out.push_back(added_[size_t(added)].id);
      return;
    }
    const std::string normalized = nfc_ ? unicode::nfc(piece) : std::string(piece);
    split_added(normalized, normalized_matcher_, [&](std::string_view p, int32_t a) {
      if (a >= 0)
        out.push_back(added_[size_t(a)].id);
      else
        encode_plain(p, out);
    });
  });
}

void BpeTokenizer::encode_plain(std::string_view piece, std::vector<int32_t>& out) const {
  std::vector<std::string_view> words;
  gpt2_pretokenize(piece, words);
  for (std::string_view w : words) bpe(w, out);
}

const BpeTokenizer::Merge* BpeTokenizer::find_merge(int32_t a, int32_t b) const {
  auto it = merges_.find((uint64_t(uint32_t(a)) << 32) | uint32_t(b));
  return it == merges_.end() ? nullptr : &it->second;
}

void BpeTokenizer::bpe(std::string_view word, std::vector<int32_t>& out) const {
  if (word.size() == 1) {
    out.push_back(byte_id_[static_cast<unsigned char>(word[0])]);
    return;
  }
  WordCache& cache = t_cache;
  if (cache.owner != serial_) {
    cache.words.clear();
    cache.owner = serial_;
  }
  const bool cacheable = word.size() <= kCacheMaxWordBytes;
  if (cacheable) {
    auto it = cache.words.find(std::string(word));
    if (it != cache.words.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> ids;
  auto whole = ignore_merges_ ? bytes_id_.find(std::string(word)) : bytes_id_.end();
  if (whole != bytes_id_.end()) {
    ids.push_back(whole->second);
  } else {
    // Symbols in a linked list; candidate merges in a min-heap on (rank, position). A popped
    // candidate is stale when its left symbol is gone or the pair there now makes another token:
    // Hugging Face's Word::merge_all, step for step.
    struct Sym {
      int32_t id, prev, next;
      bool alive;
    };
    const int32_t n = int32_t(word.size());
    std::vector<Sym> sym(static_cast<size_t>(n));
    for (int32_t k = 0; k < n; ++k)
      sym[size_t(k)] = {byte_id_[static_cast<unsigned char>(word[size_t(k)])], k - 1, k + 1 < n ? k + 1 : -1, true};
    struct Cand {
      int32_t rank, pos, id;
      bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
    };
    std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
    for (int32_t k = 0; k + 1 < n; ++k)
      if (const Merge* m = find_merge(sym[size_t(k)].id, sym[size_t(k + 1)].id)) heap.push({m->rank, k, m->id});
    while (!heap.empty()) {
      const Cand c = heap.top();
      heap.pop();
      Sym& left = sym[size_t(c.pos)];
      if (!left.alive || left.next < 0) continue;
      Sym& right = sym[size_t(left.next)];
      const Merge* m = find_merge(left.id, right.id);
      if (!m || m->id != c.id) continue;
      left.id = c.id;
      right.alive = false;
      left.next = right.next;
      if (left.next >= 0) sym[size_t(left.next)].prev = c.pos;
      if (left.prev >= 0)
        if (const Merge* p = find_merge(sym[size_t(left.prev)].id, left.id)) heap.push({p->rank, left.prev, p->id});
      if (left.next >= 0)
        if (const Merge* q = find_merge(left.id, sym[size_t(left.next)].id)) heap.push({q->rank, c.pos, q->id});
    }
    for (int32_t k = 0; k >= 0; k = sym[size_t(k)].next) ids.push_back(sym[size_t(k)].id);
  }
  out.insert(out.end(), ids.begin(), ids.end());
  if (cacheable) {
    if (cache.words.size() >= kCacheMaxWords) cache.words.clear();
    cache.words.emplace(std::string(word), std::move(ids));
  }
}

std::string BpeTokenizer::decode_bytes(const std::vector<int32_t>& ids) const {
  std::string out;
  for (int32_t id : ids) {
    SERPENT_CHECK(id >= 0 && id < int32_t(id_bytes_.size()), "decode: token id ", id, " is outside the vocabulary [0, ",
                  id_bytes_.size(), ") of ", path_);
    out += id_bytes_[size_t(id)];
  }
  return out;
}

std::string byte_tokenizer_json() {
  nlohmann::ordered_json vocab = nlohmann::ordered_json::object();
  for (int b = 0; b < 256; ++b) {
    std::string symbol;
    unicode::append_utf8(symbol, alphabet().byte_char[size_t(b)]);
    vocab[symbol] = b;
  }
  vocab["<|endoftext|>"] = 256;
  const nlohmann::ordered_json byte_level = {
      {"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
  nlohmann::ordered_json j;
  j["version"] = "1.0";
  j["truncation"] = nullptr;
  j["padding"] = nullptr;
  j["added_tokens"] = {{{"id", 256},
                        {"content", "<|endoftext|>"},
                        {"single_word", false},
                        {"lstrip", false},
                        {"rstrip", false},
                        {"normalized", false},
                        {"special", true}}};
  j["normalizer"] = nullptr;
  j["pre_tokenizer"] = byte_level;
  j["post_processor"] = nullptr;
  j["decoder"] = byte_level;
  j["model"] = {{"type", "BPE"},
                {"dropout", nullptr},
                {"unk_token", nullptr},
                {"continuing_subword_prefix", nullptr},
                {"end_of_word_suffix", nullptr},
                {"fuse_unk", false},
                {"byte_fallback", false},
                {"ignore_merges", false},
                {"vocab", vocab},
                {"merges", nlohmann::ordered_json::array()}};
  return j.dump(2) + "\n";
}

}  // namespace serpent
