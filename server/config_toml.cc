#include "config_toml.h"

#include <algorithm>
#include <sstream>

namespace imd::internal {

im::Status Reader::Finish() {
  if (!status_.ok()) return status_;
  for (auto& [k, v] : t_) {
    const std::string key(k.str());
    if (seen_.count(key) == 0) {
      std::string closest = Closest(key);
      return Error(v, key, "unknown key" + (closest.empty() ? std::string()
                                                           : "; did you mean " + section_ +
                                                                 closest + "?"));
    }
  }
  return im::Status::OK();
}

im::Status Reader::Error(const toml::node& n, const std::string& key,
                         const std::string& what) const {
  return im::Status::BadRequest(std::to_string(n.source().begin.line) + ": " + section_ + key +
                                ": " + what);
}

const char* Reader::TypeName(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    default: return "a date or time";
  }
}

std::string Reader::Closest(const std::string& key) const {
  std::string best;
  size_t best_distance = std::max<size_t>(2, key.size() / 3) + 1;
  for (const std::string& known : seen_) {
    std::vector<size_t> row(known.size() + 1);
    for (size_t j = 0; j <= known.size(); ++j) row[j] = j;
    for (size_t i = 1; i <= key.size(); ++i) {
      size_t diagonal = row[0];
      row[0] = i;
      for (size_t j = 1; j <= known.size(); ++j) {
        size_t up = row[j];
        row[j] = std::min({row[j] + 1, row[j - 1] + 1,
                           diagonal + (key[i - 1] == known[j - 1] ? 0 : 1)});
        diagonal = up;
      }
    }
    if (row[known.size()] < best_distance) {
      best_distance = row[known.size()];
      best = known;
    }
  }
  return best;
}

namespace {

// toml++ bounds nested arrays and inline tables (256 levels) but not dotted keys, and it
// recurses once per key part: a key of 50,000 parts ("a.a.a...", also inside an inline table)
// overflows the stack. A key and an inline table sit on one line, so a line may hold at most
// kMaxDots dots outside strings and comments (as many as toml++'s own nesting bound; imd's keys
// have two parts, a float one dot).
constexpr int kMaxDots = 256;

}  // namespace

im::Status CheckDots(const std::string& text, const std::string& path) {
  enum { kNormal, kBasic, kLiteral, kMultiBasic, kMultiLiteral, kComment } state = kNormal;
  int dots = 0, line = 1;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n') {
      ++line;
      dots = 0;
      if (state == kComment || state == kBasic || state == kLiteral) state = kNormal;
      continue;
    }
    switch (state) {
      case kNormal:
        if (text.compare(i, 3, "\"\"\"") == 0) {
          state = kMultiBasic;
          i += 2;
        } else if (text.compare(i, 3, "'''") == 0) {
          state = kMultiLiteral;
          i += 2;
        } else if (c == '"') {
          state = kBasic;
        } else if (c == '\'') {
          state = kLiteral;
        } else if (c == '#') {
          state = kComment;
        } else if (c == '.' && ++dots > kMaxDots) {
          return im::Status::BadRequest(path + ": more than " + std::to_string(kMaxDots) +
                                        " dots outside strings on line " + std::to_string(line) +
                                        " (a key nested that deep is refused)");
        }
        break;
      case kBasic:
      case kMultiBasic:
        if (c == '\\') {
          ++i;  // an escaped character (a newline after '\\' only continues a multi-line one)
          if (i < text.size() && text[i] == '\n') ++line;
        } else if (state == kBasic && c == '"') {
          state = kNormal;
        } else if (state == kMultiBasic && text.compare(i, 3, "\"\"\"") == 0) {
          state = kNormal;
          i += 2;
        }
        break;
      case kLiteral:
        if (c == '\'') state = kNormal;
        break;
      case kMultiLiteral:
        if (text.compare(i, 3, "'''") == 0) {
          state = kNormal;
          i += 2;
        }
        break;
      case kComment:
        break;
    }
  }
  return im::Status::OK();
}

// A TOML syntax error, naming the source and the line.
im::Status ParseError(std::string_view source, const toml::parse_error& e) {
  std::ostringstream msg;
  msg << source << ": " << e.description() << " (line " << e.source().begin.line << ")";
  return im::Status::BadRequest(msg.str());
}

// "LINE: section.key: what" for the key's line in `t`.
im::Status AtLine(const toml::table& t, const std::string& section, const char* key,
                  const std::string& what) {
  const toml::node* n = t.get(key);
  const std::string line = n ? std::to_string(n->source().begin.line) + ": " : std::string();
  return im::Status::BadRequest(line + section + key + ": " + what);
}

// An array of strings at `key` ("" when absent), each checked by `check` ("" = fine).
im::Status StringArray(const toml::table& t, const std::string& section, const char* key,
                       const std::function<std::string(const std::string&)>& check,
                       std::vector<std::string>* out) {
  const toml::node* n = t.get(key);
  if (n == nullptr) return im::Status::OK();
  const toml::array* a = n->as_array();
  if (a == nullptr) return AtLine(t, section, key, "expected an array of strings");
  for (const toml::node& e : *a) {
    if (!e.is_string()) return AtLine(t, section, key, "expected an array of strings");
    const std::string v = *e.value<std::string>();
    if (std::string what = check ? check(v) : ""; !what.empty()) {
      return AtLine(t, section, key, "'" + v + "': " + what);
    }
    out->push_back(v);
  }
  return im::Status::OK();
}

}  // namespace imd::internal
