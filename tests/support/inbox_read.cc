#include "support/inbox_read.h"

namespace im::test {
namespace {

std::string StringField(const rapidjson::Value& v, const char* name) {
  auto it = v.FindMember(name);
  return it != v.MemberEnd() && it->value.IsString() ? it->value.GetString() : "";
}

}  // namespace

bool SyncAll(RawClient& client, std::vector<SyncedMessage>* out, int limit) {
  out->clear();
  uint64_t after = 0;
  for (uint32_t id = 900000;; ++id) {
    rapidjson::Document d;
    if (!client.Call(id, "chat.sync",
                     "{\"after\":" + std::to_string(after) +
                         ",\"limit\":" + std::to_string(limit) + "}",
                     &d, 10000) ||
        CodeOf(d) != 0 || !d.HasMember("body") || !d["body"].IsObject()) {
      return false;
    }
    const rapidjson::Value& body = d["body"];
    if (!body.HasMember("messages") || !body["messages"].IsArray()) return false;
    for (const rapidjson::Value& m : body["messages"].GetArray()) {
      if (!m.HasMember("seq") || !m["seq"].IsUint64() || m["seq"].GetUint64() <= after) {
        return false;
      }
      after = m["seq"].GetUint64();
      out->push_back(SyncedMessage{after, StringField(m, "mid"), StringField(m, "from"),
                                   StringField(m, "to"), StringField(m, "body")});
    }
    if (!body.HasMember("more") || !body["more"].IsBool()) return false;
    if (!body["more"].GetBool()) return true;
  }
}

}  // namespace im::test
