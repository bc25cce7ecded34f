// GroupOps: the core's group commands (create, info, join, quit, members) and the group events
// they append, the same for every front: socket group.* commands and the REST /v1/groups
// endpoints both call it. (im::GroupService is the storage interface it works on.)
//
// Membership changes (create, join, quit) run on the committer thread, in order with the
// message appends, so membership and the messages a member receives never disagree; each
// appends its event (type "system", extra {"event","user"}) to the members in the same step.
// Their `done` is called once on the committer thread, unless the call returns an error.
// Reads (info, members) run on the calling thread.
//
// Thread-safety: every method is safe from any thread; reads block on storage.
#ifndef IM_CORE_GROUP_OPS_H_
#define IM_CORE_GROUP_OPS_H_

#include <functional>
#include <set>
#include <string>
#include <vector>

#include "core/committer.h"
#include "core/mid.h"
#include "core/rate_limits.h"
#include "im/content_filter.h"
#include "im/group_service.h"
#include "ops/event_log.h"
#include "protocol/json.h"
#include "tenant/tenant_directory.h"

namespace im::internal {

class GroupOps {
 public:
  struct Deps {
    GroupService* groups;  // may be null: every call answers 503
    Committer* committer;
    ContentFilter* filter;
    EventLog* events;
    Clock* clock;
    const TenantDirectory* tenants;  // the max_group_members and max_groups_per_user quotas
    RateLimits* limits;              // group_user_*: may be null (no limit)
  };
  struct CreateArgs {
    std::string name;
    std::string gid;  // "" = generated ("g" + a time-ordered id)
    std::vector<std::string> members;
  };
  using CreateDone = std::function<void(const Result<GroupInfo>&)>;
  using ChangeDone = std::function<void(const Status&)>;

  explicit GroupOps(Deps deps) : deps_(deps) {}

  // The body of group.create and POST /v1/groups: `name`, `gid`, `members` (required on the
  // socket, optional in REST).
  static Status ParseCreate(const Fields& f, bool members_required, CreateArgs* args);

  // Creates a group owned by `owner` (the content filter on the name), then appends the
  // `created` event to every member.
  Status Create(const UserKey& owner, CreateArgs args, CreateDone done);
  Result<GroupInfo> Info(const GroupKey& key);
  // Joined: every member hears it, the newcomer included. Quit: the remaining members.
  Status Join(const GroupKey& key, const std::string& user, ChangeDone done);
  Status Quit(const GroupKey& key, const std::string& user, ChangeDone done);
  // A page of members. `member`: the caller, who must be a member (403 not_member, also for a
  // group that does not exist: permission before existence); null for an admin.
  Result<MemberPage> Members(const GroupKey& key, const std::string* member,
                             const std::string& after, size_t limit);

 private:
  Status Change(const GroupKey& key, const std::string& user, bool join, ChangeDone done);
  TenantQuotas QuotasOf(const std::string& tenant) const;
  // The tenant's max_group_members quota (0 = none of its own).
  uint64_t MaxMembers(const std::string& tenant) const;
  // 403 too_many_groups when `user` is a member of `max` groups already.
  Status CheckGroupsOf(const UserKey& user, uint64_t max);
  // The tenant's max_groups_per_user for everyone a create names (the owner and the members,
  // once each). On the committer thread, like the join's check, in order with the other
  // membership changes.
  Status CheckCreateQuota(const UserKey& owner, const std::set<std::string>& everyone);
  // 403 group_full when `user` joining `key` would pass the tenant's max_group_members, 403
  // too_many_groups when `user` is in max_groups_per_user groups (on the committer thread, in
  // order with the other membership changes).
  Status CheckJoinQuota(const GroupKey& key, const std::string& user);
  void AppendEvent(Committer& committer, const GroupKey& group, const std::string& actor,
                   const std::string& event);

  Deps deps_;
  MidGenerator group_ids_{0};
};

}  // namespace im::internal

#endif  // IM_CORE_GROUP_OPS_H_
