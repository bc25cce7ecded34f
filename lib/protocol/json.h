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

// Serializes a RapidJSON value.
std::string ToJson(const rapidjson::Value& value);

// Typed readers over a body object. `body` may be null (no body given): then every field is
// missing. Each returns 400 bad_request naming the field on a wrong type or a missing required
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
  // The member, or null when absent.
  const rapidjson::Value* Get(const char* name) const;
  bool Has(const char* name) const { return Get(name) != nullptr; }

 private:
  const rapidjson::Value* body_;
};

}  // namespace im::internal

#endif  // IM_PROTOCOL_JSON_H_
