// The GPT-2 pre-tokenizer: splits text into the pieces matched by the pattern
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// with the leftmost-first alternation and greedy backtracking semantics of the regex engines that
// Hugging Face `tokenizers` (Oniguruma) and OpenAI's encoder (Python `regex`) use. Hand-written
// rather than a regex engine: the alternatives are decided by the first one or two characters,
// so one pass with a character-class lookup is enough.
#pragma once

#include <string_view>
#include <vector>

namespace serpent {

// Appends the pieces of `text` (valid UTF-8) to `pieces`; they cover the text exactly, in order.
void gpt2_pretokenize(std::string_view text, std::vector<std::string_view>& pieces);

}  // namespace serpent
