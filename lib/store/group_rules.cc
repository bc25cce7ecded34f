#include "store/group_rules.h"

#include "base/utf8.h"

namespace im::internal {

Status ValidateGroupKey(const GroupKey& key) {
  if (!IsValidId(key.tenant)) return Status::BadRequest("invalid tenant");
  if (!IsValidId(key.gid)) return Status::BadRequest("invalid gid");
  return Status::OK();
}

Status ValidateGroupUser(const std::string& user) {
  if (!IsValidId(user)) return Status::BadRequest("invalid user id");
  return Status::OK();
}

Status ValidateGroupName(const std::string& name, const GroupLimits& limits) {
  if (name.empty()) return Status::BadRequest("group name is empty");
  if (name.size() > limits.max_name_bytes) {
    return Status::BadRequest("group name is longer than " +
                              std::to_string(limits.max_name_bytes) + " bytes");
  }
  if (!IsValidUtf8(name)) return Status::BadRequest("group name is not valid UTF-8");
  if (HasControlCharacter(name)) return Status::BadRequest("group name has control characters");
  return Status::OK();
}

Status GroupNotFound(const GroupKey& key) { return Status::NotFound("no group " + key.gid); }

Status GroupFull(const GroupLimits& limits) {
  return Status::Forbidden("group_full", "the group has reached its limit of " +
                                             std::to_string(limits.max_members) + " members");
}

Status ValidateGroupCreate(const GroupKey& key, const std::string& name, const std::string& owner,
                           const std::vector<std::string>& members, const GroupLimits& limits,
                           std::set<std::string_view>* others) {
  if (Status s = ValidateGroupKey(key); !s.ok()) return s;
  if (Status s = ValidateGroupName(name, limits); !s.ok()) return s;
  if (!IsValidId(owner)) return Status::BadRequest("invalid owner id");
  for (const std::string& member : members) {
    if (Status s = ValidateGroupUser(member); !s.ok()) return s;
  }
  others->clear();
  others->insert(members.begin(), members.end());
  others->erase(owner);
  if (others->size() + 1 > limits.max_members) return GroupFull(limits);
  return Status::OK();
}

}  // namespace im::internal
