// Errors: every failure a user can cause is a serpent::Error whose message names the operation,
// what it saw (shapes, dtypes, values, files) and what it expected.
#pragma once

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

}  // namespace serpent

// SERPENT_CHECK(cond, "op: ", "expected ... got ", x) throws serpent::Error with the message.
#define SERPENT_CHECK(cond, ...)               \
  do {                                         \
    if (!(cond)) ::serpent::fail(__VA_ARGS__); \
  } while (0)
