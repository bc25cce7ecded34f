// JSON views of groups shared by the socket commands and the REST API.
#ifndef IM_CORE_GROUP_JSON_H_
#define IM_CORE_GROUP_JSON_H_

#include <string>

#include "core/http_path.h"
#include "im/group_service.h"
#include "protocol/json.h"

namespace im::internal {

// {"gid","name","owner","member_count","created_ms"}
inline std::string GroupJson(const GroupInfo& g) {
  JsonWriter w;
  w.StartObject();
  w.Field("gid", g.key.gid);
  w.Field("name", g.name);
  w.Field("owner", g.owner);
  w.Field("member_count", static_cast<uint64_t>(g.member_count));
  w.Field("created_ms", static_cast<int64_t>(g.created_ms));
  w.EndObject();
  return w.str();
}

// {"members":[{"user","role","joined_ms"}...],"more"}; with `with_next` (REST) and more to come,
// also "next": the last user id percent-encoded, the exact `after` query value of the next page.
inline std::string MemberPageJson(const MemberPage& page, bool with_next = false) {
  JsonWriter w;
  w.StartObject();
  w.Key("members");
  w.StartArray();
  for (const GroupMember& m : page.members) {
    w.StartObject();
    w.Field("user", m.user);
    w.Field("role", m.role);
    w.Field("joined_ms", static_cast<int64_t>(m.joined_ms));
    w.EndObject();
  }
  w.EndArray();
  w.Field("more", page.more);
  if (with_next && page.more && !page.members.empty()) {
    w.Field("next", PercentEncode(page.members.back().user));
  }
  w.EndObject();
  return w.str();
}

}  // namespace im::internal

#endif  // IM_CORE_GROUP_JSON_H_
