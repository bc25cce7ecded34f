// The key names of the Redis OfflineQueue (lib/store/redis/redis_offline_queue.cc), for the
// queue itself and for tests that inspect or damage its data. docs/operations.md (Redis
// backends) describes what each key holds.
#ifndef IM_STORE_REDIS_REDIS_OFFLINE_QUEUE_H_
#define IM_STORE_REDIS_REDIS_OFFLINE_QUEUE_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "im/types.h"

namespace im::internal {

// One per Redis database: the run_id of the redis-server process that last checked it, and
// the token every inbox epoch ends with (a new token is a new epoch for every inbox).
inline constexpr std::string_view kRedisInstanceKey = "im:instance";
// Every inbox that holds entries, scored by the ts of its oldest entry (the age sweep's list).
inline constexpr std::string_view kRedisInboxHeadsKey = "im:inbox-heads";
// Every stored message body key, scored by the message's ts (the retention sweep's list).
inline constexpr std::string_view kRedisMessageIndexKey = "im:message-index";
// Every dedup key, scored by the time it was recorded (the dedup sweep's list).
inline constexpr std::string_view kRedisDedupIndexKey = "im:dedup-index";

// im:{u:<tenant>/<user>}:inbox, a hash: `epoch` (fixed at creation), `seq` (the last seq
// handed out; never decremented).
std::string RedisInboxKey(const UserKey& user);
// im:{u:<tenant>/<user>}:entries, a list of "<mid> <ts>", one per retained seq, oldest first.
std::string RedisInboxEntriesKey(const UserKey& user);
// im:{u:<tenant>/<user>}:acks, a hash: device -> "<seq> <instance token>".
std::string RedisInboxAcksKey(const UserKey& user);
// im:{m:<tenant>/<mid>}:body, the message stored once whatever the fan-out.
std::string RedisMessageKey(std::string_view tenant, uint64_t mid);

class RedisScript;
// The bounded sweep of an index of keys scored by time (KEYS: the index; ARGV: the score bound,
// '(' for exclusive, and the budget): deletes the keys scored up to it and returns how many.
const RedisScript& RedisSweepIndexScript();

}  // namespace im::internal

#endif  // IM_STORE_REDIS_REDIS_OFFLINE_QUEUE_H_
