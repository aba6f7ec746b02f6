// The text of messages (core/error.h): bytes that are not printable UTF-8 shown as \xNN, numbers
// with thousands separators, byte counts in binary units.
#include "core/error.h"
#include "tests/helpers.h"

using namespace serpent;
using namespace serpent::testing;

TEST(ErrorText, PrintableKeepsUtf8AndEscapesTheRest) {
  EXPECT_EQ(printable("plain text, caf\xC3\xA9, \xE2\x9C\x93, \xF0\x9F\x90\x8D"),
            "plain text, caf\xC3\xA9, \xE2\x9C\x93, \xF0\x9F\x90\x8D");
  EXPECT_EQ(printable(std::string("a\x01"
                                  "b\n\x7f",
                                  5)),
            "a\\x01b\\x0a\\x7f");
  EXPECT_EQ(printable("\xFF\xFE"), "\\xff\\xfe");           // not UTF-8 at all
  EXPECT_EQ(printable("\xC3"), "\\xc3");                    // truncated sequence
  EXPECT_EQ(printable("\xC0\xAF"), "\\xc0\\xaf");           // overlong
  EXPECT_EQ(printable("\xED\xA0\x80"), "\\xed\\xa0\\x80");  // a surrogate
  EXPECT_EQ(printable(std::string("\0x", 2)), "\\x00x");
}

TEST(ErrorText, NumbersAndSizes) {
  EXPECT_EQ(with_commas(0), "0");
  EXPECT_EQ(with_commas(999), "999");
  EXPECT_EQ(with_commas(129135360), "129,135,360");
  EXPECT_EQ(with_commas(-1234567), "-1,234,567");
  EXPECT_EQ(bytes_text(512 << 20), "512 MiB");
  EXPECT_EQ(bytes_text(int64_t(3) << 29), "1.5 GiB");
}

TEST(ErrorText, CommandLineErrorsAreOnePrintableLineWithExitCode1) {
  const ShellResult unknown = run_serpent_shell("trian");
  EXPECT_EQ(unknown.code, 1) << unknown.output;
  EXPECT_NE(unknown.output.find("serpent: unknown command 'trian'"), std::string::npos) << unknown.output;
  const ShellResult none = run_serpent_shell("");
  EXPECT_EQ(none.code, 1) << none.output;
  EXPECT_NE(none.output.find("usage: serpent <command>"), std::string::npos) << none.output;
  EXPECT_EQ(run_serpent_shell("--help").code, 0);
  // Raw bytes from the command line come back escaped, on one line.
  const ShellResult bytes = run_serpent_shell("eval --checkpoint \"$(printf '/no/such\\001\\377.h5')\"");
  EXPECT_EQ(bytes.code, 1) << bytes.output;
  EXPECT_NE(bytes.output.find("\\x01\\xff"), std::string::npos) << bytes.output;
  EXPECT_EQ(lines_of(bytes.output).size(), 1u) << bytes.output;
}
