// Client-side sharding of the Redis backends over several standalone Redis primaries
// (docs/operations.md, "Sharding over several Redis primaries").
//
// RedisOptions::url may list several redis:// URLs separated by commas. Each user and each
// group lives wholly on one of them, picked by a consistent-hash ring over the hash-tag string
// of its keys ("u:<tenant>/<user>", "g:<tenant>/<gid>", escaped as in redis_keys.h). The ring
// gives every shard kRingPointsPerShard points, placed by the shard's position in the list:
// the same list gives the same placement in every process, and appending a shard moves about
// 1/N of the users and groups (to the new shard only). Reordering or removing entries moves
// far more: keys are not migrated, so only append.
#ifndef IM_STORE_REDIS_REDIS_SHARDS_H_
#define IM_STORE_REDIS_REDIS_SHARDS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "im/redis.h"
#include "im/result.h"
#include "im/types.h"

namespace im::internal {

inline constexpr int kRingPointsPerShard = 160;

// The URLs of a RedisOptions::url: one entry for a plain URL, several for a comma list. 400
// bad_request for an empty entry (",," or a trailing comma), a duplicate, or an entry that
// does not parse (ParseRedisUrl's message, naming the entry).
Result<std::vector<std::string>> SplitRedisUrls(std::string_view url);

// True when `url` lists more than one URL (the backends then shard).
bool IsShardedRedisUrl(std::string_view url);

// 64-bit FNV-1a followed by a 64-bit finalizer (so that nearby strings spread over the ring).
// Fixed forever: changing it moves every key.
uint64_t ShardHash(std::string_view text);

// The ring of `shards` shards. Thread-safety: immutable after construction.
class ShardRing {
 public:
  explicit ShardRing(size_t shards);
  size_t size() const { return shards_; }
  // The shard of a hash-tag string.
  size_t ShardOf(std::string_view tag) const;
  size_t ShardOf(const UserKey& user) const;
  size_t ShardOf(const GroupKey& group) const;

 private:
  size_t shards_;
  std::vector<std::pair<uint64_t, size_t>> points_;  // sorted by hash
};

// The hash-tag strings: "u:<tenant>/<user>" and "g:<tenant>/<gid>" (escaped).
std::string UserShardTag(const UserKey& user);
std::string GroupShardTag(const GroupKey& group);

// `redis` with `url` replaced by one shard's URL.
RedisOptions ShardOptions(const RedisOptions& redis, const std::string& url);

// The sharded backends behind the Open* functions of im/redis.h when the URL lists several.
Result<std::shared_ptr<UserStore>> OpenShardedUserStore(const RedisOptions& redis,
                                                        PasswordHashOptions hash);
Result<std::shared_ptr<SessionStore>> OpenShardedSessionStore(const RedisOptions& redis,
                                                              RedisSessionOptions sessions);
Result<std::shared_ptr<GroupService>> OpenShardedGroupService(const RedisOptions& redis,
                                                              GroupLimits limits);
Result<std::shared_ptr<OfflineQueue>> OpenShardedOfflineQueue(const RedisOptions& redis,
                                                              OfflineQueueOptions options);

}  // namespace im::internal

#endif  // IM_STORE_REDIS_REDIS_SHARDS_H_
