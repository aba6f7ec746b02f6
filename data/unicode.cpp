// UTF-8 coding, character classes and NFC over the generated tables in data/unicode_tables.cpp.
#include "data/unicode.h"

#include <algorithm>
#include <memory>
#include <unordered_map>
#include <vector>

namespace serpent::unicode {

namespace tables {
extern const char kUnicodeVersion[];
extern const uint32_t kCharClassRanges[][3];
extern const size_t kCharClassRangesSize;
extern const uint32_t kCombiningClassRanges[][3];
extern const size_t kCombiningClassRangesSize;
extern const uint32_t kDecompositions[][3];
extern const size_t kDecompositionsSize;
extern const uint32_t kCompositions[][3];
extern const size_t kCompositionsSize;
}  // namespace tables

const char* version() {
  return tables::kUnicodeVersion;
}

namespace {

// Hangul syllables compose and decompose by arithmetic (Unicode chapter 3.12).
constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr char32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount, kSCount = kLCount * kNCount;

constexpr char32_t kMaxCodePoint = 0x10FFFF;

// Per-code-point lookups: flat arrays for the Basic Multilingual Plane (where nearly all text
// lives), binary search over the range tables above it.
struct Tables {
  std::vector<uint8_t> cls_bmp = std::vector<uint8_t>(0x10000, 0);
  std::vector<uint8_t> ccc_bmp = std::vector<uint8_t>(0x10000, 0);
  // Code points where NFC may change the text: not a starter, or not NFC-stable, or able to
  // combine with a preceding character. NFC never acts across any other code point.
  std::vector<bool> unsafe = std::vector<bool>(kMaxCodePoint + 1, false);
  std::unordered_map<char32_t, std::pair<char32_t, char32_t>> decomposition;
  std::unordered_map<uint64_t, char32_t> composition;

  Tables() {
    for (size_t r = 0; r < tables::kCharClassRangesSize; ++r)
      for (uint32_t c = tables::kCharClassRanges[r][0]; c <= tables::kCharClassRanges[r][1] && c < 0x10000; ++c)
        cls_bmp[c] = uint8_t(tables::kCharClassRanges[r][2]);
    for (size_t r = 0; r < tables::kCombiningClassRangesSize; ++r)
      for (uint32_t c = tables::kCombiningClassRanges[r][0]; c <= tables::kCombiningClassRanges[r][1]; ++c) {
        if (c < 0x10000) ccc_bmp[c] = uint8_t(tables::kCombiningClassRanges[r][2]);
        unsafe[c] = true;
      }
    for (size_t i = 0; i < tables::kDecompositionsSize; ++i) {
      const uint32_t* d = tables::kDecompositions[i];
      decomposition[d[0]] = {d[1], d[2]};
      unsafe[d[0]] = true;
    }
    for (size_t i = 0; i < tables::kCompositionsSize; ++i) {
      const uint32_t* c = tables::kCompositions[i];
      composition[key(c[0], c[1])] = c[2];
      unsafe[c[1]] = true;
    }
    // A primary composite that is a starter comes back unchanged from NFC; it is safe unless it
    // can itself combine with what precedes it.
    std::vector<bool> second(kMaxCodePoint + 1, false);
    for (size_t i = 0; i < tables::kCompositionsSize; ++i) second[tables::kCompositions[i][1]] = true;
    for (size_t i = 0; i < tables::kCompositionsSize; ++i) {
      char32_t c = tables::kCompositions[i][2];
      if (!second[c] && lookup_ccc(c) == 0) unsafe[c] = false;
    }
    for (char32_t c = kVBase; c < kVBase + kVCount; ++c) unsafe[c] = true;
    for (char32_t c = kTBase + 1; c < kTBase + kTCount; ++c) unsafe[c] = true;
  }

  static uint64_t key(char32_t a, char32_t b) { return (uint64_t(a) << 32) | uint64_t(b); }

  static uint32_t search(const uint32_t (*ranges)[3], size_t n, char32_t cp) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
      size_t mid = (lo + hi) / 2;
      if (ranges[mid][1] < cp)
        lo = mid + 1;
      else
        hi = mid;
    }
    return lo < n && ranges[lo][0] <= cp ? ranges[lo][2] : 0;
  }

  uint8_t lookup_ccc(char32_t cp) const {
    if (cp < 0x10000) return ccc_bmp[cp];
    return uint8_t(search(tables::kCombiningClassRanges, tables::kCombiningClassRangesSize, cp));
  }
};

const Tables& tabs() {
  static const Tables t;
  return t;
}

bool is_cont(unsigned char b) {
  return (b & 0xC0) == 0x80;
}

}  // namespace

char32_t decode_utf8(std::string_view s, size_t i, size_t* len) {
  const unsigned char b0 = static_cast<unsigned char>(s[i]);
  const size_t n = s.size() - i;
  if (b0 < 0x80) {
    *len = 1;
    return b0;
  }
  // Allowed range of the second byte and the number of continuation bytes, by lead byte
  // (Unicode Table 3-7, well-formed UTF-8 byte sequences).
  unsigned char lo = 0x80, hi = 0xBF;
  size_t need;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    *len = 1;
    return kReplacement;
  }
  char32_t cp = b0 & (0x3F >> need);
  for (size_t k = 1; k <= need; ++k) {
    const unsigned char b = k < n ? static_cast<unsigned char>(s[i + k]) : 0;
    const bool ok = k < n && (k == 1 ? (b >= lo && b <= hi) : is_cont(b));
    if (!ok) {
      *len = k;  // the maximal subpart seen so far becomes one U+FFFD
      return kReplacement;
    }
    cp = (cp << 6) | (b & 0x3F);
  }
  *len = need + 1;
  return cp;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(char(cp));
  } else if (cp < 0x800) {
    out.push_back(char(0xC0 | (cp >> 6)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(char(0xE0 | (cp >> 12)));
    out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(char(0xF0 | (cp >> 18)));
    out.push_back(char(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  }
}

bool is_valid_utf8(std::string_view s) {
  size_t i = 0, len;
  while (i < s.size()) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    // U+FFFD itself is valid, so a replacement is told apart by its length.
    if (decode_utf8(s, i, &len) == kReplacement && !(len == 3 && s.compare(i, 3, "\xEF\xBF\xBD") == 0)) return false;
    i += len;
  }
  return true;
}

std::string sanitize_utf8(std::string_view s) {
  if (is_valid_utf8(s)) return std::string(s);
  std::string out;
  out.reserve(s.size() + 16);
  size_t i = 0, len;
  while (i < s.size()) {
    append_utf8(out, decode_utf8(s, i, &len));
    i += len;
  }
  return out;
}

CharClass char_class(char32_t cp) {
  if (cp < 0x10000) return CharClass(tabs().cls_bmp[cp]);
  return CharClass(Tables::search(tables::kCharClassRanges, tables::kCharClassRangesSize, cp));
}

uint8_t combining_class(char32_t cp) {
  return tabs().lookup_ccc(cp);
}

namespace {

void decompose(char32_t cp, std::vector<char32_t>& out, const Tables& t) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const char32_t s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount != 0) out.push_back(kTBase + s % kTCount);
    return;
  }
  auto it = t.decomposition.find(cp);
  if (it == t.decomposition.end()) {
    out.push_back(cp);
    return;
  }
  decompose(it->second.first, out, t);
  if (it->second.second != 0) decompose(it->second.second, out, t);
}

// The primary composite of (a, b), or 0.
char32_t compose(char32_t a, char32_t b, const Tables& t) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase && b < kTBase + kTCount)
    return a + (b - kTBase);
  auto it = t.composition.find(Tables::key(a, b));
  return it == t.composition.end() ? 0 : it->second;
}

// Full NFC of one region: decompose, put each run of non-starters in canonical order (a stable
// sort by combining class), then compose each character with the last starter unless blocked.
void nfc_region(std::string_view s, std::string& out, const Tables& t) {
  std::vector<char32_t> cps;
  size_t i = 0, len;
  while (i < s.size()) {
    decompose(decode_utf8(s, i, &len), cps, t);
    i += len;
  }
  for (size_t a = 0; a < cps.size();) {
    if (t.lookup_ccc(cps[a]) == 0) {
      ++a;
      continue;
    }
    size_t b = a;
    while (b < cps.size() && t.lookup_ccc(cps[b]) != 0) ++b;
    std::stable_sort(cps.begin() + long(a), cps.begin() + long(b),
                     [&](char32_t x, char32_t y) { return t.lookup_ccc(x) < t.lookup_ccc(y); });
    a = b;
  }
  if (cps.empty()) return;
  size_t starter = 0, kept = 1;
  bool have_starter = t.lookup_ccc(cps[0]) == 0;  // marks before the first starter compose with nothing
  int last_class = t.lookup_ccc(cps[0]);
  for (size_t k = 1; k < cps.size(); ++k) {
    const char32_t c = cps[k];
    const int cls = t.lookup_ccc(c);
    const char32_t composite = have_starter ? compose(cps[starter], c, t) : 0;
    if (composite != 0 && (last_class < cls || last_class == 0)) {
      cps[starter] = composite;
      continue;
    }
    if (cls == 0) {
      starter = kept;
      have_starter = true;
    }
    last_class = cls;
    cps[kept++] = c;
  }
  for (size_t k = 0; k < kept; ++k) append_utf8(out, cps[k]);
}

}  // namespace

std::string nfc(std::string_view s) {
  const Tables& t = tabs();
  size_t i = 0, len;
  // Quick check: most text has no unsafe code point at all.
  while (i < s.size()) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    if (t.unsafe[decode_utf8(s, i, &len)]) break;
    i += len;
  }
  if (i == s.size()) return std::string(s);

  // Normalize each region from the last safe code point before an unsafe one up to the next safe
  // one; everything between regions is copied.
  std::string out;
  out.reserve(s.size() + 8);
  size_t copied = 0, last_safe = 0;
  i = 0;
  while (i < s.size()) {
    const char32_t c = decode_utf8(s, i, &len);
    if (!t.unsafe[c]) {
      last_safe = i;
      i += len;
      continue;
    }
    size_t end = i + len;
    while (end < s.size()) {
      size_t l2;
      if (!t.unsafe[decode_utf8(s, end, &l2)]) break;
      end += l2;
    }
    const size_t start = std::max(last_safe, copied);
    out.append(s.substr(copied, start - copied));
    nfc_region(s.substr(start, end - start), out, t);
    copied = last_safe = i = end;
  }
  out.append(s.substr(copied));
  return out;
}

}  // namespace serpent::unicode
