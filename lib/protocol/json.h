// Small helpers over RapidJSON for the envelope codec and the handlers: a writer that builds one
// JSON text, and typed field readers that produce the protocol's 400 errors.
//
// Thread-safety: plain objects; use one per thread.
#ifndef IM_PROTOCOL_JSON_H_
#define IM_PROTOCOL_JSON_H_

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "im/status.h"

namespace im::internal {

// Builds one JSON text. Keys and strings are escaped by RapidJSON.
class JsonWriter {
 public:
  JsonWriter() : writer_(buffer_) {}
  void StartObject() { writer_.StartObject(); }
  void EndObject() { writer_.EndObject(); }
  void StartArray() { writer_.StartArray(); }
  void EndArray() { writer_.EndArray(); }
  void Key(std::string_view k) { writer_.Key(k.data(), static_cast<rapidjson::SizeType>(k.size())); }
  void String(std::string_view v) {
    writer_.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
  }
  void Uint64(uint64_t v) { writer_.Uint64(v); }
  void Int64(int64_t v) { writer_.Int64(v); }
  void Int(int v) { writer_.Int(v); }
  void Bool(bool v) { writer_.Bool(v); }
  void Null() { writer_.Null(); }
  // Inserts an already-serialized JSON value (e.g. a stored `extra` object).
  void Raw(std::string_view json, rapidjson::Type type = rapidjson::kObjectType) {
    writer_.RawValue(json.data(), json.size(), type);
  }
  // 64-bit ids travel as decimal strings (JavaScript cannot hold them as numbers).
  void Id64(uint64_t v) { String(std::to_string(v)); }

  void Field(std::string_view k, std::string_view v) { Key(k); String(v); }
  void Field(std::string_view k, const char* v) { Key(k); String(v); }
  void Field(std::string_view k, const std::string& v) { Key(k); String(v); }
  void Field(std::string_view k, uint64_t v) { Key(k); Uint64(v); }
  void Field(std::string_view k, int64_t v) { Key(k); Int64(v); }
  void Field(std::string_view k, int v) { Key(k); Int(v); }
  void Field(std::string_view k, bool v) { Key(k); Bool(v); }

  std::string_view view() const { return {buffer_.GetString(), buffer_.GetSize()}; }
  std::string str() const { return std::string(view()); }

 private:
  rapidjson::StringBuffer buffer_;
  rapidjson::Writer<rapidjson::StringBuffer> writer_;
};

// Appends `v` as a JSON string (quoted and escaped byte for byte as JsonWriter::String does:
// '"', '\\', \b \t \n \f \r, other control bytes as \u00XX, everything else as it is).
// For encoders that assemble a small fixed-shape object without a writer.
void AppendJsonString(std::string* out, std::string_view v);
// Appends the decimal digits of `v`.
void AppendDecimal(std::string* out, uint64_t v);
void AppendDecimal(std::string* out, int64_t v);

// Serializes a RapidJSON value.
std::string ToJson(const rapidjson::Value& value);

// The deepest nesting of arrays and objects any JSON text the library reads may have: a frame
// is an object holding `body` holding `extra`, so 32 leaves room for any real `extra` while a
// text of 100,000 '[' is refused after 33 bytes.
constexpr int kMaxJsonDepth = 32;
// The deepest `extra` object a request can carry: the frame and its body are two levels.
constexpr int kMaxExtraDepth = kMaxJsonDepth - 2;
// What a server frame may nest: a chat.sync page holds `extra` two levels deeper (messages
// array, message) than chat.send does, so a client reads server frames with this bound.
constexpr int kMaxServerFrameDepth = kMaxJsonDepth + 2;

// Parses `text` into `doc`, the one way every JSON text from outside (socket frames, REST bodies,
// token header and claims, server frames read by the client) is parsed. Refuses, without
// parsing, a text that nests arrays and objects deeper than `max_depth` (counted outside
// strings) or holds a NUL byte (RapidJSON reads a NUL-terminated copy of the text and would take
// it for the end of the input); then parses iteratively (no recursion, whatever the input) and validates UTF-8 (so
// nothing malformed is stored or relayed; a lone surrogate escape is malformed too). Trailing
// non-whitespace is an error. On failure: 400 bad_json saying what is wrong and where; `doc`
// is then unspecified.
Status ParseJson(std::string_view text, rapidjson::Document* doc, int max_depth = kMaxJsonDepth);

// Typed readers over a body object. `body` may be null (no body given): then every field is
// missing. A member whose value is JSON null is missing too (an optional field given as null
// counts as absent; a required one is "missing"). Each returns 400 bad_request naming the field on a wrong type or a missing required
// field.
class Fields {
 public:
  explicit Fields(const rapidjson::Value* body) : body_(body) {}

  Status RequiredString(const char* name, std::string* out) const;
  Status OptionalString(const char* name, std::string* out) const;  // keeps *out when absent
  Status RequiredUint64(const char* name, uint64_t* out) const;
  Status OptionalUint64(const char* name, uint64_t* out) const;
  // A non-null JSON object, serialized; keeps *out when absent.
  Status OptionalObject(const char* name, std::string* out) const;
  // The member, or null when absent or null.
  const rapidjson::Value* Get(const char* name) const;
  bool Has(const char* name) const { return Get(name) != nullptr; }

 private:
  const rapidjson::Value* body_;
};

}  // namespace im::internal

#endif  // IM_PROTOCOL_JSON_H_
