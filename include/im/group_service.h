// GroupService: groups and their members.
//
// Thread-safety: implementations are safe from any thread. Calls may block on storage.
#ifndef IM_GROUP_SERVICE_H_
#define IM_GROUP_SERVICE_H_

#include <string>
#include <string_view>
#include <vector>

#include "im/result.h"
#include "im/types.h"

namespace im {

struct GroupInfo {
  GroupKey key;
  std::string name;
  std::string owner;
  size_t member_count = 0;  // owner included
  TimestampMs created_ms = 0;
};

struct GroupMember {
  std::string user;
  std::string role;  // "owner" or "member"
  TimestampMs joined_ms = 0;
};

struct MemberPage {
  std::vector<GroupMember> members;  // ascending by user id
  bool more = false;
};

struct GroupLimits {
  size_t max_members = 5000;    // join or create beyond it: 403 group_full
  size_t max_name_bytes = 128;  // longer (or empty, or invalid UTF-8) name: 400 bad_request
};

class GroupService {
 public:
  virtual ~GroupService() = default;

  // Creates the group with `owner` as owner and member plus `members` (duplicates and the owner
  // in `members` are ignored; every id must pass IsValidId, else 400). 409 conflict when the gid
  // exists in the tenant, 403 group_full over max_members.
  virtual Result<GroupInfo> Create(const GroupKey& key, const std::string& name,
                                   const std::string& owner,
                                   const std::vector<std::string>& members, TimestampMs now) = 0;
  // 404 when missing.
  virtual Result<GroupInfo> Get(const GroupKey& key) = 0;
  // 404 when the group is missing, 409 already_member, 403 group_full.
  virtual Status Join(const GroupKey& key, const std::string& user, TimestampMs now) = 0;
  // 404 when the group is missing, 403 not_member. When the owner quits, the longest-standing
  // member (earliest joined_ms, then smallest user id) becomes owner; when the last member
  // quits, the group is deleted (404 afterwards, and its gid may be created again).
  virtual Status Quit(const GroupKey& key, const std::string& user) = 0;
  // Members with user id > after, ascending, at most `limit` (1..500, else 400). 404 when the
  // group is missing.
  virtual Result<MemberPage> Members(const GroupKey& key, std::string_view after,
                                     size_t limit) = 0;
  // 404 when the group is missing.
  virtual Result<bool> IsMember(const GroupKey& key, const std::string& user) = 0;
  // Every member (ascending), for fan-out. 404 when the group is missing.
  virtual Result<std::vector<std::string>> AllMembers(const GroupKey& key) = 0;
  // How many groups of its tenant `user` is a member of (owner or not): every create that
  // named it and every join, less every quit (the max_groups_per_user quota).
  virtual Result<size_t> CountGroupsOf(const UserKey& user) = 0;
};

}  // namespace im

#endif  // IM_GROUP_SERVICE_H_
