// The shard ring and the sharded UserStore, SessionStore and GroupService: each call goes to
// the shard of its user or group (every key of one user, or of one group, is on one shard, so
// each call keeps the atomicity it has on one Redis). The sharded OfflineQueue is in
// sharded_offline_queue.cc.

#include "store/redis/redis_shards.h"

#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include "base/stable_hash.h"
#include "store/redis/redis_client.h"
#include "store/redis/redis_keys.h"

namespace im::internal {

Result<std::vector<std::string>> SplitRedisUrls(std::string_view url) {
  std::vector<std::string> urls;
  std::set<std::string> seen;
  size_t start = 0;
  for (;;) {
    const size_t comma = url.find(',', start);
    const size_t end = comma == std::string_view::npos ? url.size() : comma;
    std::string entry(url.substr(start, end - start));
    const std::string place = "URL " + std::to_string(urls.size() + 1) + " of the list";
    if (entry.empty()) return Status::BadRequest(place + " is empty");
    if (Result<RedisUrl> parsed = ParseRedisUrl(entry); !parsed.ok()) {
      return Status::BadRequest(place + ": " + std::string(parsed.status().message()));
    }
    if (!seen.insert(entry).second) {
      return Status::BadRequest(place + " ('" + entry + "') is listed twice");
    }
    urls.push_back(std::move(entry));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return urls;
}

bool IsShardedRedisUrl(std::string_view url) { return url.find(',') != std::string_view::npos; }

uint64_t ShardHash(std::string_view text) { return Mix64(Fnv1a(kFnvOffset, text)); }

ShardRing::ShardRing(size_t shards) : shards_(std::max<size_t>(shards, 1)) {
  points_.reserve(shards_ * kRingPointsPerShard);
  for (size_t s = 0; s < shards_; ++s) {
    for (int p = 0; p < kRingPointsPerShard; ++p) {
      points_.emplace_back(ShardHash("shard-" + std::to_string(s) + "-" + std::to_string(p)), s);
    }
  }
  std::sort(points_.begin(), points_.end());
}

size_t ShardRing::ShardOf(std::string_view tag) const {
  if (shards_ == 1) return 0;
  const uint64_t h = ShardHash(tag);
  auto it = std::lower_bound(points_.begin(), points_.end(), std::make_pair(h, size_t{0}));
  return it == points_.end() ? points_.front().second : it->second;
}

size_t ShardRing::ShardOf(const UserKey& user) const { return ShardOf(UserShardTag(user)); }
size_t ShardRing::ShardOf(const GroupKey& group) const { return ShardOf(GroupShardTag(group)); }

namespace {

// "im:{TAG}:" -> "TAG".
std::string TagOfPrefix(const std::string& prefix) {
  return prefix.substr(4, prefix.size() - 6);
}

}  // namespace

std::string UserShardTag(const UserKey& user) { return TagOfPrefix(UserKeyPrefix(user)); }
std::string GroupShardTag(const GroupKey& group) { return TagOfPrefix(GroupKeyPrefix(group)); }

RedisOptions ShardOptions(const RedisOptions& redis, const std::string& url) {
  RedisOptions o = redis;
  o.url = url;
  return o;
}

namespace {

// Opens one backend per shard URL with `open`.
template <typename T, typename Open>
Result<std::vector<std::shared_ptr<T>>> OpenEach(const RedisOptions& redis, Open open) {
  Result<std::vector<std::string>> urls = SplitRedisUrls(redis.url);
  if (!urls.ok()) return urls.status();
  std::vector<std::shared_ptr<T>> shards;
  for (const std::string& url : *urls) {
    Result<std::shared_ptr<T>> shard = open(ShardOptions(redis, url));
    if (!shard.ok()) return shard.status();
    shards.push_back(std::move(shard).value());
  }
  return shards;
}

// Thread-safety: immutable; the shards are safe from any thread.
class ShardedUserStore final : public UserStore {
 public:
  explicit ShardedUserStore(std::vector<std::shared_ptr<UserStore>> shards)
      : shards_(std::move(shards)), ring_(shards_.size()) {}

  Result<UserRecord> Create(const UserKey& key, std::string_view password,
                            std::string_view display_name, TimestampMs now) override {
    return Of(key).Create(key, password, display_name, now);
  }
  Result<UserRecord> Get(const UserKey& key) override { return Of(key).Get(key); }
  Result<UserRecord> VerifyPassword(const UserKey& key, std::string_view password) override {
    return Of(key).VerifyPassword(key, password);
  }

 private:
  UserStore& Of(const UserKey& key) { return *shards_[ring_.ShardOf(key)]; }

  const std::vector<std::shared_ptr<UserStore>> shards_;
  const ShardRing ring_;
};

// Each shard's store refreshes (and reports lost) the sessions put through it.
class ShardedSessionStore final : public SessionStore {
 public:
  explicit ShardedSessionStore(std::vector<std::shared_ptr<SessionStore>> shards)
      : shards_(std::move(shards)), ring_(shards_.size()) {}

  Result<std::vector<SessionInfo>> Put(const SessionInfo& session, KickPolicy policy) override {
    return Of(session.user).Put(session, policy);
  }
  Result<bool> Remove(const SessionInfo& session) override {
    return Of(session.user).Remove(session);
  }
  Result<std::vector<SessionInfo>> Find(const UserKey& user) override {
    return Of(user).Find(user);
  }
  // One FindMany (one round trip) per shard that holds some of `users`.
  Result<std::vector<SessionInfo>> FindMany(const std::vector<UserKey>& users) override {
    std::vector<std::vector<UserKey>> per_shard(shards_.size());
    for (const UserKey& user : users) per_shard[ring_.ShardOf(user)].push_back(user);
    std::vector<SessionInfo> out;
    for (size_t s = 0; s < shards_.size(); ++s) {
      if (per_shard[s].empty()) continue;
      Result<std::vector<SessionInfo>> found = shards_[s]->FindMany(per_shard[s]);
      if (!found.ok()) return found.status();
      for (SessionInfo& info : *found) out.push_back(std::move(info));
    }
    return out;
  }
  // Every shard counts the sessions of its own users.
  Result<size_t> Count(std::string_view tenant) override {
    size_t total = 0;
    for (const auto& shard : shards_) {
      Result<size_t> n = shard->Count(tenant);
      if (!n.ok()) return n.status();
      total += *n;
    }
    return total;
  }

 private:
  SessionStore& Of(const UserKey& key) { return *shards_[ring_.ShardOf(key)]; }

  const std::vector<std::shared_ptr<SessionStore>> shards_;
  const ShardRing ring_;
};

class ShardedGroupService final : public GroupService {
 public:
  explicit ShardedGroupService(std::vector<std::shared_ptr<GroupService>> shards)
      : shards_(std::move(shards)), ring_(shards_.size()) {}

  Result<GroupInfo> Create(const GroupKey& key, const std::string& name, const std::string& owner,
                           const std::vector<std::string>& members, TimestampMs now) override {
    return Of(key).Create(key, name, owner, members, now);
  }
  Result<GroupInfo> Get(const GroupKey& key) override { return Of(key).Get(key); }
  Status Join(const GroupKey& key, const std::string& user, TimestampMs now) override {
    return Of(key).Join(key, user, now);
  }
  Status Quit(const GroupKey& key, const std::string& user) override {
    return Of(key).Quit(key, user);
  }
  Result<MemberPage> Members(const GroupKey& key, std::string_view after,
                             size_t limit) override {
    return Of(key).Members(key, after, limit);
  }
  Result<bool> IsMember(const GroupKey& key, const std::string& user) override {
    return Of(key).IsMember(key, user);
  }
  Result<std::vector<std::string>> AllMembers(const GroupKey& key) override {
    return Of(key).AllMembers(key);
  }
  // Each shard indexes the user's groups it holds: the sum over the shards.
  Result<size_t> CountGroupsOf(const UserKey& user) override {
    size_t n = 0;
    for (const std::shared_ptr<GroupService>& shard : shards_) {
      Result<size_t> part = shard->CountGroupsOf(user);
      if (!part.ok()) return part.status();
      n += *part;
    }
    return n;
  }

 private:
  GroupService& Of(const GroupKey& key) { return *shards_[ring_.ShardOf(key)]; }

  const std::vector<std::shared_ptr<GroupService>> shards_;
  const ShardRing ring_;
};

}  // namespace

Result<std::shared_ptr<UserStore>> OpenShardedUserStore(const RedisOptions& redis,
                                                        PasswordHashOptions hash) {
  auto shards = OpenEach<UserStore>(
      redis, [&](const RedisOptions& o) { return OpenRedisUserStore(o, hash); });
  if (!shards.ok()) return shards.status();
  return std::shared_ptr<UserStore>(std::make_shared<ShardedUserStore>(std::move(*shards)));
}

Result<std::shared_ptr<SessionStore>> OpenShardedSessionStore(const RedisOptions& redis,
                                                              RedisSessionOptions sessions) {
  auto shards = OpenEach<SessionStore>(
      redis, [&](const RedisOptions& o) { return OpenRedisSessionStore(o, sessions); });
  if (!shards.ok()) return shards.status();
  return std::shared_ptr<SessionStore>(std::make_shared<ShardedSessionStore>(std::move(*shards)));
}

Result<std::shared_ptr<GroupService>> OpenShardedGroupService(const RedisOptions& redis,
                                                              GroupLimits limits) {
  auto shards = OpenEach<GroupService>(
      redis, [&](const RedisOptions& o) { return OpenRedisGroupService(o, limits); });
  if (!shards.ok()) return shards.status();
  return std::shared_ptr<GroupService>(std::make_shared<ShardedGroupService>(std::move(*shards)));
}

}  // namespace im::internal
