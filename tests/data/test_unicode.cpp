// The Unicode building blocks of the tokenizers (data/unicode.h): UTF-8 decoding and the
// replacement of ill-formed bytes, character classes, NFC.
#include "data/unicode.h"
#include "tests/helpers.h"

namespace serpent {
namespace {

using testing::u8;

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

}  // namespace
}  // namespace serpent
