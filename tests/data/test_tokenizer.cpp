// The tokenizer interface (data/tokenizer.h): the byte tokenizer, load_tokenizer, and decode's
// check of the ids for both kinds of tokenizer.
#include "data/tokenizer.h"
#include "tests/helpers.h"

namespace serpent {
namespace {

using testing::gpt2;

TEST(Tokenizer, DecodeRejectsIdsOutsideTheVocabulary) {
  testing::expect_error([] { gpt2().decode({50257}); }, {"50257", "outside the vocabulary"});
  testing::expect_error([] { ByteTokenizer().decode({-1}); }, {"-1", "outside"});
}

TEST(Tokenizer, ByteTokenizer) {
  ByteTokenizer bt;
  EXPECT_EQ(bt.vocab_size(), 257);
  EXPECT_EQ(bt.eot_id(), 256);
  EXPECT_EQ(bt.encode("ab<|endoftext|>\xFF"), (std::vector<int32_t>{97, 98, 256, 255}));
  EXPECT_EQ(bt.decode_bytes({104, 105, 256, 0}), std::string("hi<|endoftext|>\0", 16));
  EXPECT_EQ(load_tokenizer("byte")->name(), "byte");
}

}  // namespace
}  // namespace serpent
