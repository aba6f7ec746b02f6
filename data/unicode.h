// The Unicode the tokenizers need, with no library: UTF-8 decoding (invalid bytes become U+FFFD),
// the character classes of the GPT-2 pre-tokenizer pattern (\p{L}, \p{N}, \s) and NFC
// normalization. The data tables are generated from Python's unicodedata by
// tools/gen_unicode_tables.py (data/unicode_tables.cpp records the Unicode version).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace serpent::unicode {

constexpr char32_t kReplacement = 0xFFFD;

// The Unicode version of the generated tables, e.g. "14.0.0".
const char* version();

// Decodes the code point at s[i] and sets `len` to the bytes it used. An ill-formed sequence
// decodes to U+FFFD covering its maximal well-formed prefix (at least one byte): the Unicode
// "maximal subpart" practice, byte for byte what Python's bytes.decode("utf-8", "replace") and
// Rust's String::from_utf8_lossy do. Requires i < s.size().
char32_t decode_utf8(std::string_view s, size_t i, size_t* len);

// Appends the UTF-8 encoding of cp (a scalar value) to out.
void append_utf8(std::string& out, char32_t cp);

// True when s is well-formed UTF-8.
bool is_valid_utf8(std::string_view s);

// s with every ill-formed sequence replaced by U+FFFD as decode_utf8 does; s itself when valid.
std::string sanitize_utf8(std::string_view s);

// The classes of the pre-tokenizer pattern. kSpace is the White_Space property (what \s matches
// in Oniguruma, Hugging Face's regex engine, and what Rust's char::is_whitespace tests).
enum class CharClass : uint8_t { kOther = 0, kLetter = 1, kNumber = 2, kSpace = 3 };
CharClass char_class(char32_t cp);

// Canonical combining class (0 for starters).
uint8_t combining_class(char32_t cp);

// Canonical composition (NFC) of valid UTF-8 text. Text that NFC leaves unchanged (all of ASCII,
// most text) is detected by a quick check and copied.
std::string nfc(std::string_view s);

}  // namespace serpent::unicode
