// Validation rules and errors shared by the GroupService backends, so memory and LevelDB answer
// the same request with the same status.
#ifndef IM_STORE_GROUP_RULES_H_
#define IM_STORE_GROUP_RULES_H_

#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "im/group_service.h"
#include "im/status.h"

namespace im::internal {

Status ValidateGroupKey(const GroupKey& key);               // 400 for a bad tenant or gid
Status ValidateGroupUser(const std::string& user);          // 400 for a bad user id
Status ValidateGroupName(const std::string& name, const GroupLimits& limits);  // 400
Status GroupNotFound(const GroupKey& key);                  // 404
Status GroupFull(const GroupLimits& limits);                // 403 group_full

// Checks a Create request: 400 for a bad key, name, owner or member id, 403 group_full when
// the owner and the distinct other members exceed the limit. Fills `others` with the distinct
// members other than the owner (views into `members`).
Status ValidateGroupCreate(const GroupKey& key, const std::string& name, const std::string& owner,
                           const std::vector<std::string>& members, const GroupLimits& limits,
                           std::set<std::string_view>* others);

}  // namespace im::internal

#endif  // IM_STORE_GROUP_RULES_H_
