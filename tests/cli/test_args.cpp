// The command-line parser (cli/args.h) and the conventions every command shares: required
// options marked in --help and reported together in the help's order, long help lines wrapped,
// `serpent --version`.
#include "cli/args.h"
#include "tests/helpers.h"

using namespace serpent;
using namespace serpent::testing;

namespace {

ArgParser demo() {
  ArgParser p("demo", std::string(300, 'x') + " " +
                          "a description long enough to need more than one line of the "
                          "terminal, so that wrapping has something to do");
  p.option("first", "A", "the first required option").required();
  p.option("optional", "N",
           "an optional one with a help text that is long enough to wrap at least once within "
           "the hundred columns the help keeps to",
           "7");
  p.multi_option("second", "B", "the second required option").required();
  return p;
}

}  // namespace

TEST(Args, MissingRequiredOptionsAreReportedTogetherInHelpOrder) {
  expect_error([] { demo().parse({}); }, {"missing required options --first, --second", "serpent demo --help"});
  expect_error([] { demo().parse({"--second", "b"}); }, {"missing required option --first "});
  ArgParser p = demo();
  ASSERT_TRUE(p.parse({"--second", "b1", "b2", "--first=a"}));
  EXPECT_EQ(p.get("first"), "a");
  EXPECT_EQ(p.get_all("second"), (std::vector<std::string>{"b1", "b2"}));
  EXPECT_EQ(p.get_int("optional"), 7);
}

TEST(Args, HelpMarksRequiredOptionsAndWraps) {
  const std::string h = demo().help();
  EXPECT_NE(h.find("usage: serpent demo --first A --second B ... [options]"), std::string::npos) << h;
  EXPECT_NE(h.find("(required) the first required option"), std::string::npos) << h;
  EXPECT_EQ(h.find("(required) an optional"), std::string::npos) << h;
  for (const std::string& line : lines_of(h)) EXPECT_LE(line.size(), 300u + 1) << line;
  size_t long_lines = 0;
  for (const std::string& line : lines_of(h))
    if (line.size() > 100 && line.find(' ') != std::string::npos) ++long_lines;
  EXPECT_EQ(long_lines, 0u) << h;  // only a single unbreakable word may exceed the width
  // Every command's help keeps to the width too.
  for (const char* cmd :
       {"train", "eval", "generate", "prepare", "tokenize", "export-hf", "import-hf", "inspect", "bench"}) {
    const ShellResult r = run_serpent_shell(std::string(cmd) + " --help");
    EXPECT_EQ(r.code, 0) << cmd;
    for (const std::string& line : lines_of(r.output)) EXPECT_LE(line.size(), 100u) << cmd << ": " << line;
  }
}

TEST(Args, VersionNamesTheBuild) {
  const ShellResult r = run_serpent_shell("--version");
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.output.rfind("serpent ", 0), 0u) << r.output;
  for (const char* part : {"commit ", " build; CUDA ", ", NCCL ", ", MPI "})
    EXPECT_NE(r.output.find(part), std::string::npos) << part << " in " << r.output;
  EXPECT_EQ(lines_of(r.output).size(), 1u);
}
