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
// Written by earlier versions, no longer: body keys without a TTL scored by the message's ts,
// and dedup keys scored by the time they were recorded. Expire drains what is left in them.
inline constexpr std::string_view kRedisLegacyMessageIndexKey = "im:message-index";
inline constexpr std::string_view kRedisLegacyDedupIndexKey = "im:dedup-index";

// im:{u:<tenant>/<user>}:inbox, a hash: `epoch` (fixed at creation), `seq` (the last seq
// handed out; never decremented), `ack:<device>` ("<seq> <instance token>", per device).
std::string RedisInboxKey(const UserKey& user);
// im:{u:<tenant>/<user>}:entries, a list of "<mid> <ts>", one per retained seq, oldest first.
std::string RedisInboxEntriesKey(const UserKey& user);
// im:{u:<tenant>/<user>}:acks, a hash: device -> "<seq> <instance token>", written by earlier
// versions only; read for a device whose inbox hash has no `ack:<device>` yet.
std::string RedisInboxAcksKey(const UserKey& user);
// im:{m:<tenant>/<mid>}:body, the message stored once whatever the fan-out.
std::string RedisMessageKey(std::string_view tenant, uint64_t mid);

// The TTL of a message body: the retention period plus as much again, at most a minute more
// (Expire's inbox sweep decides by the node's clock when an entry is too old; the TTL, in Redis's
// clock, only bounds memory, so a clock difference must not take a body before its entry).
int64_t RedisBodyTtlMs(int64_t retention_ms);
// The TTL of a dedup record: the window plus a minute (the record holds when it was made, and
// the node's clock decides freshness from that; the TTL only bounds memory).
int64_t RedisDedupTtlMs(int64_t window_ms);

// A string: Expire(now) raises it to now - dedup window (never lowers it); every dedup record
// made at or before it is forgotten, as if swept, while its key waits for its TTL.
inline constexpr std::string_view kRedisDedupFloorKey = "im:dedup-floor";

}  // namespace im::internal

#endif  // IM_STORE_REDIS_REDIS_OFFLINE_QUEUE_H_
