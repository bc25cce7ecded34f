#include "protocol/json.h"

#include <rapidjson/error/en.h>

#include <string>

namespace im::internal {

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

// The offset at which `text` opens an array or object nested deeper than `max_depth`, outside
// strings; npos when it does not. The scan sees strings as the parser does for every prefix the
// parser accepts, so the parser never nests deeper than this count.
size_t FirstTooDeep(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // the escaped character cannot end the string
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return i;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return std::string_view::npos;
}

}  // namespace

Status ParseJson(std::string_view text, rapidjson::Document* doc, int max_depth) {
  if (const size_t nul = text.find('\0'); nul != std::string_view::npos) {
    return BadJson("invalid JSON: NUL byte at offset " + std::to_string(nul));
  }
  if (const size_t deep = FirstTooDeep(text, max_depth); deep != std::string_view::npos) {
    return BadJson("invalid JSON: nested deeper than " + std::to_string(max_depth) +
                   " arrays and objects at offset " + std::to_string(deep));
  }
  constexpr unsigned kFlags =
      rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag;
  doc->Parse<kFlags>(text.data(), text.size());
  if (doc->HasParseError()) {
    return BadJson(std::string("invalid JSON: ") + rapidjson::GetParseError_En(doc->GetParseError()) +
                   " at offset " + std::to_string(doc->GetErrorOffset()));
  }
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
