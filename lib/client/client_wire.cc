#include "client/client_wire.h"

#include <cstdlib>

namespace im::internal {

std::string Str(const rapidjson::Value& v, const char* k) {
  auto it = v.FindMember(k);
  return it != v.MemberEnd() && it->value.IsString()
             ? std::string(it->value.GetString(), it->value.GetStringLength())
             : std::string();
}
uint64_t U64(const rapidjson::Value& v, const char* k) {
  auto it = v.FindMember(k);
  if (it == v.MemberEnd()) return 0;
  if (it->value.IsUint64()) return it->value.GetUint64();
  if (it->value.IsString()) return std::strtoull(it->value.GetString(), nullptr, 10);
  return 0;
}
int64_t I64(const rapidjson::Value& v, const char* k) {
  auto it = v.FindMember(k);
  return it != v.MemberEnd() && it->value.IsInt64() ? it->value.GetInt64() : 0;
}
bool Bool(const rapidjson::Value& v, const char* k) {
  auto it = v.FindMember(k);
  return it != v.MemberEnd() && it->value.IsBool() && it->value.GetBool();
}

ReceivedMessage ParseMessage(const rapidjson::Value& m) {
  ReceivedMessage r;
  r.seq = U64(m, "seq");
  r.message.mid = U64(m, "mid");
  r.message.from = Str(m, "from");
  r.message.to = Str(m, "to");
  r.message.group = Str(m, "group");
  r.message.type = Str(m, "type");
  r.message.body = Str(m, "body");
  r.message.ts = I64(m, "ts");
  r.message.gseq = U64(m, "gseq");
  auto extra = m.FindMember("extra");
  if (extra != m.MemberEnd() && extra->value.IsObject()) {
    r.message.extra = ToJson(extra->value);
  }
  return r;
}

Status ParseBody(const Result<std::string>& r, rapidjson::Document* d) {
  if (!r.ok()) return r.status();
  if (!ParseJson(*r, d, kMaxServerFrameDepth).ok() || !d->IsObject()) {
    return Status::Internal("malformed response body");
  }
  return Status::OK();
}

LoginInfo ParseLogin(const rapidjson::Document& d) {
  LoginInfo info;
  info.user = Str(d, "user");
  info.tenant = Str(d, "tenant");
  info.session = Str(d, "session");
  info.node = Str(d, "node");
  info.epoch = Str(d, "epoch");
  info.last_seq = U64(d, "last_seq");
  info.acked_seq = U64(d, "acked_seq");
  info.heartbeat_s = static_cast<int>(I64(d, "heartbeat_s"));
  info.server_ms = I64(d, "server_ms");
  return info;
}

std::string LoginBody(const std::string& token, const std::string& device) {
  JsonWriter w;
  w.StartObject();
  w.Field("token", token);
  w.Field("device", device);
  w.EndObject();
  return w.str();
}

}  // namespace im::internal
