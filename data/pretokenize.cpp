// The GPT-2 pattern, alternative by alternative (see data/pretokenize.h).
#include "data/pretokenize.h"

#include "data/unicode.h"

namespace serpent {

namespace {

using unicode::CharClass;

// ASCII classes inline; the rest through the Unicode tables.
struct Cursor {
  std::string_view s;

  CharClass cls_at(size_t i, size_t* len) const {
    const unsigned char b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) {
      *len = 1;
      if ((b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z')) return CharClass::kLetter;
      if (b >= '0' && b <= '9') return CharClass::kNumber;
      if (b == ' ' || (b >= 0x09 && b <= 0x0D)) return CharClass::kSpace;
      return CharClass::kOther;
    }
    return unicode::char_class(unicode::decode_utf8(s, i, len));
  }

  // End of the run of characters of class `k` that starts at i.
  size_t run(size_t i, CharClass k) const {
    size_t len;
    while (i < s.size() && cls_at(i, &len) == k) i += len;
    return i;
  }
};

// Length of a contraction ('s 't 're 've 'm 'll 'd) at s[i] == '\'', or 0.
size_t contraction(std::string_view s, size_t i) {
  if (i + 1 >= s.size()) return 0;
  const char a = s[i + 1];
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  if (i + 2 >= s.size()) return 0;
  const char b = s[i + 2];
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  return 0;
}

}  // namespace

void gpt2_pretokenize(std::string_view text, std::vector<std::string_view>& pieces) {
  const Cursor c{text};
  size_t i = 0;
  while (i < text.size()) {
    size_t len, end;
    const CharClass k = c.cls_at(i, &len);
    if (text[i] == '\'' && (end = contraction(text, i)) != 0) {
      end += i;
    } else if (text[i] == ' ' && i + 1 < text.size() && c.cls_at(i + 1, &len) != CharClass::kSpace) {
      // " ?X+": the optional space binds to a following letter, number or other run.
      end = c.run(i + 1, c.cls_at(i + 1, &len));
    } else if (k != CharClass::kSpace) {
      end = c.run(i, k);
    } else {
      // \s+(?!\S) backs off one character when the run is followed by a non-space, so that
      // the last space can join the next word; a single space before a non-space is \s+.
      end = c.run(i, CharClass::kSpace);
      if (end < text.size()) {
        size_t last = end - 1;
        while ((static_cast<unsigned char>(text[last]) & 0xC0) == 0x80) --last;
        if (last > i) end = last;
      }
    }
    pieces.push_back(text.substr(i, end - i));
    i = end;
  }
}

}  // namespace serpent
