#include "protocol/json.h"

#include <string>

namespace im::internal {

std::string ToJson(const rapidjson::Value& value) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  value.Accept(writer);
  return std::string(buffer.GetString(), buffer.GetSize());
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
  if (it == body_->MemberEnd()) return nullptr;
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
  if (v == nullptr || v->IsNull()) return Status::OK();
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
  if (v == nullptr || v->IsNull()) return Status::OK();
  if (!v->IsUint64()) return WrongType(name, "a non-negative integer");
  *out = v->GetUint64();
  return Status::OK();
}

Status Fields::OptionalObject(const char* name, std::string* out) const {
  const rapidjson::Value* v = Get(name);
  if (v == nullptr || v->IsNull()) return Status::OK();
  if (!v->IsObject()) return WrongType(name, "an object");
  *out = ToJson(*v);
  return Status::OK();
}

}  // namespace im::internal
