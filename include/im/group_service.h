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
  size_t max_members = 5000;  // join or create beyond it: 403 group_full
  size_t max_name_bytes = 128;
};

class GroupService {
 public:
  virtual ~GroupService() = default;

  // Creates the group with `owner` as owner and member plus `members`. 409 when it exists.
  virtual Result<GroupInfo> Create(const GroupKey& key, const std::string& name,
                                   const std::string& owner,
                                   const std::vector<std::string>& members, TimestampMs now) = 0;
  // 404 when missing.
  virtual Result<GroupInfo> Get(const GroupKey& key) = 0;
  // 404 when the group is missing, 409 already_member.
  virtual Status Join(const GroupKey& key, const std::string& user, TimestampMs now) = 0;
  // 404 when the group is missing, 403 not_member.
  virtual Status Quit(const GroupKey& key, const std::string& user) = 0;
  // Members with user id > after, ascending, at most `limit`.
  virtual Result<MemberPage> Members(const GroupKey& key, std::string_view after,
                                     size_t limit) = 0;
  virtual Result<bool> IsMember(const GroupKey& key, const std::string& user) = 0;
  // Every member, for fan-out.
  virtual Result<std::vector<std::string>> AllMembers(const GroupKey& key) = 0;
};

}  // namespace im

#endif  // IM_GROUP_SERVICE_H_
