// The TOML reading helpers of imd's configuration (config.cc and the config_*.cc of each
// section): the typed key reader, errors that name the key's line, string arrays, and the check
// that keeps a hostile file from overflowing the parser's stack.
#ifndef IMD_CONFIG_TOML_H_
#define IMD_CONFIG_TOML_H_

#include <toml++/toml.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "im/status.h"

namespace imd::internal {

// Reads one TOML table: a Reader per table, Get per key (exact TOML types, no negative
// numbers), Finish for the first error or an unknown key.
class Reader {
 public:
  Reader(const toml::table& table, std::string section) : t_(table), section_(std::move(section)) {}

  template <typename T, typename Out>
  void Get(const char* key, Out* out) {
    seen_.insert(key);
    const toml::node* n = t_.get(key);
    if (n == nullptr || !status_.ok()) return;
    // Exact types only: toml++'s value<T>() would also turn 1 into true and 2.0 into 2.
    bool exact = true;
    if constexpr (std::is_same_v<T, bool>) exact = n->is_boolean();
    if constexpr (std::is_same_v<T, int64_t>) exact = n->is_integer();
    // A rate may be written 2 or 0.5.
    if constexpr (std::is_same_v<T, double>) exact = n->is_floating_point() || n->is_integer();
    if constexpr (std::is_same_v<T, std::string>) exact = n->is_string();
    // Converted only when exact: toml++ turns a float too large for int64 into one by a cast
    // that is undefined behaviour.
    std::optional<T> v;
    if (exact) v = n->value<T>();
    if constexpr (std::is_same_v<T, double>) {
      if (v && !std::isfinite(*v)) v.reset();
    }
    if (!v) {
      const char* expected = std::is_same_v<T, bool>      ? "a boolean (true or false)"
                             : std::is_same_v<T, int64_t> ? "an integer"
                             : std::is_same_v<T, double>  ? "a number"
                                                          : "a string";
      status_ = Error(*n, key, std::string("expected ") + expected + ", not " + TypeName(*n));
      return;
    }
    if constexpr (std::is_arithmetic_v<Out> && !std::is_same_v<Out, bool>) {
      if (*v < 0) {
        status_ = Error(*n, key, "must not be negative");
        return;
      }
    }
    *out = static_cast<Out>(*v);
  }

  // The first error Get met, else 400 for a key of the table no Get or Skip named (with the
  // nearest known key when it looks like a typo).
  im::Status Finish();
  void Skip(const char* key) { seen_.insert(key); }

 private:
  // "LINE: section.key: what"; LoadConfigText puts the file name in front.
  im::Status Error(const toml::node& n, const std::string& key, const std::string& what) const;
  static const char* TypeName(const toml::node& n);
  // The known key nearest to `key` by edit distance, when near enough to be a typo ("").
  std::string Closest(const std::string& key) const;

  const toml::table& t_;
  std::string section_;
  std::set<std::string> seen_;
  im::Status status_;
};

// 400 when a line of `text` holds more than 256 dots outside strings and comments (see
// config_toml.cc); `path` names the file.
im::Status CheckDots(const std::string& text, const std::string& path);

// A TOML syntax error, naming the source and the line.
im::Status ParseError(std::string_view source, const toml::parse_error& e);

// "LINE: section.key: what" for the key's line in `t`.
im::Status AtLine(const toml::table& t, const std::string& section, const char* key,
                  const std::string& what);

// An array of strings at `key` ("" when absent), each checked by `check` ("" = fine).
im::Status StringArray(const toml::table& t, const std::string& section, const char* key,
                       const std::function<std::string(const std::string&)>& check,
                       std::vector<std::string>* out);

}  // namespace imd::internal

#endif  // IMD_CONFIG_TOML_H_
