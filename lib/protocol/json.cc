#include "protocol/json.h"

#include <rapidjson/error/en.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>

#include "base/utf8.h"

namespace im::internal {

void AppendJsonString(std::string* out, std::string_view v) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  out->push_back('"');
  size_t plain = 0;  // start of the run not yet appended
  for (size_t i = 0; i < v.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(v[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out->append(v.data() + plain, i - plain);
    plain = i + 1;
    out->push_back('\\');
    switch (c) {
      case '"': out->push_back('"'); break;
      case '\\': out->push_back('\\'); break;
      case '\b': out->push_back('b'); break;
      case '\t': out->push_back('t'); break;
      case '\n': out->push_back('n'); break;
      case '\f': out->push_back('f'); break;
      case '\r': out->push_back('r'); break;
      default: {
        const char u[] = {'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
        out->append(u, sizeof u);
      }
    }
  }
  out->append(v.data() + plain, v.size() - plain);
  out->push_back('"');
}

namespace {

// 20 characters hold every uint64_t and every int64_t (the sign included).
template <typename Int>
void AppendInteger(std::string* out, Int v) {
  char digits[20];
  const auto end = std::to_chars(digits, digits + sizeof digits, v).ptr;
  out->append(digits, static_cast<size_t>(end - digits));
}

}  // namespace

void AppendDecimal(std::string* out, uint64_t v) { AppendInteger(out, v); }
void AppendDecimal(std::string* out, int64_t v) { AppendInteger(out, v); }

std::string ToJson(const rapidjson::Value& value) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  value.Accept(writer);
  return std::string(buffer.GetString(), buffer.GetSize());
}

namespace {

Status BadJson(std::string message) {
  return Status::Error(Code::kBadRequest, "bad_json", std::move(message));
}

// The value of the four hex digits at text[i..i+4), or -1.
int Hex4(std::string_view text, size_t i) {
  if (i + 4 > text.size()) return -1;
  int v = 0;
  for (size_t k = i; k < i + 4; ++k) {
    const char c = text[k];
    const int d = c >= '0' && c <= '9'   ? c - '0'
                  : c >= 'a' && c <= 'f' ? c - 'a' + 10
                  : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                         : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

// The first position from `i` on that holds '"', a backslash or a byte above 0x7F (or the
// text's size): 16 bytes at a time where SSE2 is there, never reading past the text.
size_t SkipPlainAscii(std::string_view text, size_t i) {
  const size_t n = text.size();
#if defined(__SSE2__)
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  while (i + 16 <= n) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(text.data() + i));
    const int special = _mm_movemask_epi8(
        _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)), v));
    if (special != 0) return i + static_cast<size_t>(__builtin_ctz(special));
    i += 16;
  }
#endif
  while (i < n && static_cast<unsigned char>(text[i]) < 0x80 && text[i] != '"' &&
         text[i] != '\\') {
    ++i;
  }
  return i;
}

// Checks what the parser does not: arrays and objects nested deeper than `max_depth` (outside
// strings), and an escaped low surrogate (\uDC00-\uDFFF) that does not follow an escaped high
// one, which RapidJSON would store as bytes that are not UTF-8. The scan sees strings as the
// parser does for every prefix the parser accepts, so the parser never nests deeper than this
// count. It also checks that every string is well-formed UTF-8 (no overlong form, surrogate,
// code point above U+10FFFF or cut sequence), with the parser's own message, so the parser runs
// without its per-character encoding check; a byte above 0x7F outside a string is the parser's
// error, as before.
Status ScanJson(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false;
  bool after_high = false;  // the previous string character was an escaped high surrogate
  const size_t n = text.size();
  for (size_t i = 0; i < n; ++i) {
    if (in_string) {
      // Plain ASCII inside a string needs nothing but a look: skip it in a tight loop.
      const size_t start = i;
      i = SkipPlainAscii(text, i);
      if (i == n) break;
      if (i != start) after_high = false;
    }
    const char c = text[i];
    if (in_string) {
      bool high = false;
      if (c == '\\') {
        if (i + 1 < text.size() && text[i + 1] == 'u') {
          const int u = Hex4(text, i + 2);
          if (u >= 0xDC00 && u <= 0xDFFF && !after_high) {
            return BadJson("invalid JSON: a lone low surrogate escape at offset " +
                           std::to_string(i));
          }
          high = u >= 0xD800 && u <= 0xDBFF;
          if (u >= 0) i += 4;  // the hex digits are not characters of their own
        }
        ++i;  // the escaped character cannot end the string
      } else if (c == '"') {
        in_string = false;
      } else if (static_cast<unsigned char>(c) >= 0x80) {
        uint32_t cp;
        const size_t n = DecodeUtf8(text, i, &cp);
        if (n == 0) {
          return BadJson(std::string("invalid JSON: ") +
                         rapidjson::GetParseError_En(rapidjson::kParseErrorStringInvalidEncoding) +
                         " at offset " + std::to_string(i));
        }
        i += n - 1;
      }
      after_high = high;
    } else if (c == '"') {
      in_string = true;
      after_high = false;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) {
        return BadJson("invalid JSON: nested deeper than " + std::to_string(max_depth) +
                       " arrays and objects at offset " + std::to_string(i));
      }
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return Status::OK();
}

// True when `v` holds a number the parser took as infinite (a literal beyond the range of a
// double, e.g. 1e309): RapidJSON reads it without an error but cannot write it back. Recurses
// at most as deep as the scan allowed.
bool HasNonFinite(const rapidjson::Value& v) {
  if (v.IsDouble()) return !std::isfinite(v.GetDouble());
  if (v.IsArray()) {
    for (const auto& e : v.GetArray()) {
      if (HasNonFinite(e)) return true;
    }
  } else if (v.IsObject()) {
    for (const auto& m : v.GetObject()) {
      if (HasNonFinite(m.value)) return true;
    }
  }
  return false;
}

}  // namespace

// The largest copy buffer a thread keeps between parses.
constexpr size_t kKeptParseBuffer = 64 << 10;

Status ParseJson(std::string_view text, rapidjson::Document* doc, int max_depth) {
  if (const size_t nul = text.find('\0'); nul != std::string_view::npos) {
    return BadJson("invalid JSON: NUL byte at offset " + std::to_string(nul));
  }
  if (Status s = ScanJson(text, max_depth); !s.ok()) return s;
  // The encoding was checked by the scan. The parser reads a NUL-terminated copy (the text holds
  // no NUL, so the terminator ends it exactly): RapidJSON copies strings and skips whitespace
  // 16 bytes at a time from such a stream (RAPIDJSON_SSE2), not from a sized one. Its aligned
  // loads may read up to 15 bytes past the terminator, so the copy has that much capacity.
  constexpr unsigned kFlags = rapidjson::kParseIterativeFlag;
  thread_local std::string copy;
  copy.reserve(text.size() + 16);
  copy.assign(text);
  doc->Parse<kFlags>(copy.c_str());
  if (copy.capacity() > kKeptParseBuffer) std::string().swap(copy);
  if (doc->HasParseError()) {
    return BadJson(std::string("invalid JSON: ") + rapidjson::GetParseError_En(doc->GetParseError()) +
                   " at offset " + std::to_string(doc->GetErrorOffset()));
  }
  if (HasNonFinite(*doc)) return BadJson("invalid JSON: a number beyond the range of a double");
  return Status::OK();
}

namespace {
Status WrongType(const char* name, const char* type) {
  return Status::BadRequest(std::string("field '") + name + "' must be " + type);
}
Status Missing(const char* name) {
  return Status::BadRequest(std::string("missing field '") + name + "'");
}
}  // namespace

const rapidjson::Value* Fields::Get(const char* name) const {
  if (body_ == nullptr || !body_->IsObject()) return nullptr;
  auto it = body_->FindMember(name);
  // A member given as null counts as absent (protocol.md section 1), for every reader below.
  if (it == body_->MemberEnd() || it->value.IsNull()) return nullptr;
  return &it->value;
}

Status Fields::RequiredString(const char* name, std::string* out) const {
  const rapidjson::Value* v = Get(name);
  if (v == nullptr) return Missing(name);
  if (!v->IsString()) return WrongType(name, "a string");
  out->assign(v->GetString(), v->GetStringLength());
  return Status::OK();
}

Status Fields::OptionalString(const char* name, std::string* out) const {
  const rapidjson::Value* v = Get(name);
  if (v == nullptr) return Status::OK();
  if (!v->IsString()) return WrongType(name, "a string");
  out->assign(v->GetString(), v->GetStringLength());
  return Status::OK();
}

Status Fields::RequiredUint64(const char* name, uint64_t* out) const {
  const rapidjson::Value* v = Get(name);
  if (v == nullptr) return Missing(name);
  if (!v->IsUint64()) return WrongType(name, "a non-negative integer");
  *out = v->GetUint64();
  return Status::OK();
}

Status Fields::OptionalUint64(const char* name, uint64_t* out) const {
  const rapidjson::Value* v = Get(name);
  if (v == nullptr) return Status::OK();
  if (!v->IsUint64()) return WrongType(name, "a non-negative integer");
  *out = v->GetUint64();
  return Status::OK();
}

Status Fields::OptionalObject(const char* name, std::string* out) const {
  const rapidjson::Value* v = Get(name);
  if (v == nullptr) return Status::OK();
  if (!v->IsObject()) return WrongType(name, "an object");
  *out = ToJson(*v);
  return Status::OK();
}

}  // namespace im::internal
