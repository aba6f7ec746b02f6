// Errors: every failure a user can cause is a serpent::Error whose message names the operation,
// what it saw (shapes, dtypes, values, files) and what it expected; and the helpers that write
// such messages.
#pragma once

#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace serpent {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// Concatenates any streamable values into one string.
template <class... Parts>
std::string str_cat(Parts&&... parts) {
  std::ostringstream out;
  (out << ... << std::forward<Parts>(parts));
  return out.str();
}

template <class... Parts>
[[noreturn]] void fail(Parts&&... parts) {
  throw Error(str_cat(std::forward<Parts>(parts)...));
}

// A message as a terminal should show it: valid UTF-8 and printable characters as they are, any
// other byte (control characters, invalid UTF-8 from a damaged file) as \xNN, so that an error
// quoting bad input stays one readable line.
std::string printable(const std::string& text);

// 129135360 -> "129,135,360".
std::string with_commas(int64_t n);
// "12.3 GiB", "512 MiB".
std::string bytes_text(int64_t bytes);

}  // namespace serpent

// SERPENT_CHECK(cond, "op: ", "expected ... got ", x) throws serpent::Error with the message.
#define SERPENT_CHECK(cond, ...)               \
  do {                                         \
    if (!(cond)) ::serpent::fail(__VA_ARGS__); \
  } while (0)
