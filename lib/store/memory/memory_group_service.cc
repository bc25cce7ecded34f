// The in-memory GroupService: groups of one process (or of a test), lost on exit.
//
// Groups live in shards chosen by a hash of the GroupKey, so every operation on one group takes
// exactly one lock, and check-then-write sequences (join under max_members, quit with owner
// hand-over) are atomic per group while different groups rarely contend. Members are an ordered
// map, so a page of Members is a lower_bound and a walk, whatever the group's size.

#include <array>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "im/backends.h"
#include "store/group_rules.h"
#include "im/group_service.h"

namespace im {
namespace internal {
namespace {

constexpr std::string_view kOwnerRole = "owner";
constexpr std::string_view kMemberRole = "member";
constexpr size_t kMaxMembersPage = 500;

// Thread-safety: every method is safe from any thread.
class MemoryGroupService final : public GroupService {
 public:
  explicit MemoryGroupService(GroupLimits limits) : limits_(limits) {}

  Result<GroupInfo> Create(const GroupKey& key, const std::string& name, const std::string& owner,
                           const std::vector<std::string>& members, TimestampMs now) override {
    // Checked before any lock: the size check depends on the request alone.
    std::set<std::string_view> others;
    if (Status s = ValidateGroupCreate(key, name, owner, members, limits_, &others); !s.ok()) {
      return s;
    }

    Group group;
    group.name = name;
    group.owner = owner;
    group.created_ms = now;
    group.members.emplace(owner, Member{std::string(kOwnerRole), now});
    for (std::string_view user : others) {
      group.members.emplace(std::string(user), Member{std::string(kMemberRole), now});
    }
    GroupInfo info = InfoOf(key, group);

    Shard& shard = ShardOf(key);
    std::lock_guard<std::mutex> lock(shard.mu);
    auto [it, inserted] = shard.groups.try_emplace(key);
    if (!inserted) {
      return Status::Error(Code::kConflict, "group_exists", "group " + key.gid + " exists");
    }
    it->second = std::move(group);
    AddToCount(key.tenant, owner, 1);
    for (std::string_view user : others) AddToCount(key.tenant, user, 1);
    return info;
  }

  Result<GroupInfo> Get(const GroupKey& key) override {
    if (Status s = ValidateGroupKey(key); !s.ok()) return s;
    Shard& shard = ShardOf(key);
    std::lock_guard<std::mutex> lock(shard.mu);
    const Group* group = Find(shard, key);
    if (group == nullptr) return GroupNotFound(key);
    return InfoOf(key, *group);
  }

  Status Join(const GroupKey& key, const std::string& user, TimestampMs now) override {
    if (Status s = ValidateGroupKey(key); !s.ok()) return s;
    if (Status s = ValidateGroupUser(user); !s.ok()) return s;
    Shard& shard = ShardOf(key);
    std::lock_guard<std::mutex> lock(shard.mu);
    Group* group = Find(shard, key);
    if (group == nullptr) return GroupNotFound(key);
    if (group->members.count(user) != 0) {
      return Status::Error(Code::kConflict, "already_member", user + " is already a member");
    }
    if (group->members.size() >= limits_.max_members) return GroupFull(limits_);
    group->members.emplace(user, Member{std::string(kMemberRole), now});
    AddToCount(key.tenant, user, 1);
    return Status::OK();
  }

  Status Quit(const GroupKey& key, const std::string& user) override {
    if (Status s = ValidateGroupKey(key); !s.ok()) return s;
    if (Status s = ValidateGroupUser(user); !s.ok()) return s;
    Shard& shard = ShardOf(key);
    std::lock_guard<std::mutex> lock(shard.mu);
    auto group_it = shard.groups.find(key);
    if (group_it == shard.groups.end()) return GroupNotFound(key);
    Group& group = group_it->second;
    auto member_it = group.members.find(user);
    if (member_it == group.members.end()) {
      return Status::Forbidden("not_member", user + " is not a member");
    }
    group.members.erase(member_it);
    AddToCount(key.tenant, user, -1);
    if (group.members.empty()) {
      shard.groups.erase(group_it);
      return Status::OK();
    }
    if (group.owner == user) {
      // A linear scan: owners quit rarely, and an index by join time would cost every join.
      auto heir = group.members.begin();
      for (auto it = std::next(heir); it != group.members.end(); ++it) {
        // Ties in joined_ms keep the earlier (smaller) user id, as the map is ascending.
        if (it->second.joined_ms < heir->second.joined_ms) heir = it;
      }
      heir->second.role = std::string(kOwnerRole);
      group.owner = heir->first;
    }
    return Status::OK();
  }

  Result<MemberPage> Members(const GroupKey& key, std::string_view after, size_t limit) override {
    if (Status s = ValidateGroupKey(key); !s.ok()) return s;
    if (limit < 1 || limit > kMaxMembersPage) {
      return Status::BadRequest("limit must be 1.." + std::to_string(kMaxMembersPage));
    }
    Shard& shard = ShardOf(key);
    std::lock_guard<std::mutex> lock(shard.mu);
    const Group* group = Find(shard, key);
    if (group == nullptr) return GroupNotFound(key);
    MemberPage page;
    auto it = group->members.upper_bound(after);
    for (; it != group->members.end() && page.members.size() < limit; ++it) {
      page.members.push_back(GroupMember{it->first, it->second.role, it->second.joined_ms});
    }
    page.more = it != group->members.end();
    return page;
  }

  Result<bool> IsMember(const GroupKey& key, const std::string& user) override {
    if (Status s = ValidateGroupKey(key); !s.ok()) return s;
    if (Status s = ValidateGroupUser(user); !s.ok()) return s;
    Shard& shard = ShardOf(key);
    std::lock_guard<std::mutex> lock(shard.mu);
    const Group* group = Find(shard, key);
    if (group == nullptr) return GroupNotFound(key);
    return group->members.count(user) != 0;
  }

  Result<std::vector<std::string>> AllMembers(const GroupKey& key) override {
    if (Status s = ValidateGroupKey(key); !s.ok()) return s;
    Shard& shard = ShardOf(key);
    std::lock_guard<std::mutex> lock(shard.mu);
    const Group* group = Find(shard, key);
    if (group == nullptr) return GroupNotFound(key);
    std::vector<std::string> users;
    users.reserve(group->members.size());
    for (const auto& [user, member] : group->members) users.push_back(user);
    return users;
  }

  Result<size_t> CountGroupsOf(const UserKey& user) override {
    if (Status s = ValidateGroupUser(user.user); !s.ok()) return s;
    std::lock_guard<std::mutex> lock(counts_mu_);
    auto it = groups_of_.find(user);
    return it == groups_of_.end() ? 0 : it->second;
  }

 private:
  static constexpr size_t kShards = 16;

  // Called under the group's shard lock, so a user's count moves with each membership change.
  void AddToCount(const std::string& tenant, std::string_view user, int delta) {
    std::lock_guard<std::mutex> lock(counts_mu_);
    UserKey key{tenant, std::string(user)};
    size_t& n = groups_of_[key];
    n += delta;
    if (n == 0) groups_of_.erase(key);
  }

  struct Member {
    std::string role;
    TimestampMs joined_ms = 0;
  };

  struct Group {
    std::string name;
    std::string owner;
    TimestampMs created_ms = 0;
    // Ordered (and transparent, so a string_view cursor needs no copy): Members pages are
    // ascending by user id. The owner is one of them.
    std::map<std::string, Member, std::less<>> members;
  };

  struct Shard {
    std::mutex mu;
    std::unordered_map<GroupKey, Group, GroupKeyHash> groups;
  };

  static GroupInfo InfoOf(const GroupKey& key, const Group& group) {
    GroupInfo info;
    info.key = key;
    info.name = group.name;
    info.owner = group.owner;
    info.member_count = group.members.size();
    info.created_ms = group.created_ms;
    return info;
  }

  static Group* Find(Shard& shard, const GroupKey& key) {
    auto it = shard.groups.find(key);
    return it == shard.groups.end() ? nullptr : &it->second;
  }

  Shard& ShardOf(const GroupKey& key) { return shards_[GroupKeyHash()(key) % kShards]; }

  const GroupLimits limits_;
  std::array<Shard, kShards> shards_;
  std::mutex counts_mu_;  // taken after a shard's lock, never before
  std::unordered_map<UserKey, size_t, UserKeyHash> groups_of_;  // guarded by counts_mu_
};

}  // namespace
}  // namespace internal

std::shared_ptr<GroupService> NewMemoryGroupService(GroupLimits limits) {
  return std::make_shared<internal::MemoryGroupService>(limits);
}

}  // namespace im
