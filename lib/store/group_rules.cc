#include "store/group_rules.h"

namespace im::internal {

// 0xC2 always starts a two-byte sequence in valid UTF-8, and 0xC2 0x80..0x9F is exactly
// U+0080..U+009F.
bool HasControlCharacter(std::string_view name) {
  for (size_t i = 0; i < name.size(); ++i) {
    const auto c = static_cast<unsigned char>(name[i]);
    if (c < 0x20 || c == 0x7F) return true;
    if (c == 0xC2 && i + 1 < name.size()) {
      const auto next = static_cast<unsigned char>(name[i + 1]);
      if (next >= 0x80 && next <= 0x9F) return true;
    }
  }
  return false;
}

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
