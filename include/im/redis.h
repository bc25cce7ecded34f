// Factory functions of the Redis backends (libim::redis, built when hiredis is found:
// CMake option IM_WITH_REDIS). Each returns an interface; the implementation types and hiredis
// stay private. Every backend talks to one Redis server through its own small pool of
// synchronous connections (RedisOptions); the inbox also pipelines the committer's storage
// batches (OfflineQueue::AppendBatchAsync) on one more connection of its own.
//
// What a caller sees when Redis is down or slow: every call answers 503 "unavailable" (a
// refused or broken connection, a connect or command timeout, no free pooled connection within
// command_timeout_ms), and works again by itself once Redis answers (reconnect with capped
// backoff). A round trip waits at most command_timeout_ms for a free connection, then
// connect_timeout_ms to connect when it must, then command_timeout_ms for each reply. An error
// reply of Redis itself (out of memory, a wrong key type) is 500 "internal" with Redis's text.
//
// Given several URLs (RedisOptions::url), the storage backends shard their users and groups
// over several Redis servers, one pool each (docs/operations.md, Sharding over several Redis
// primaries).
//
// Thread-safety: the returned backends are safe from any thread; calls block on Redis.
#ifndef IM_REDIS_H_
#define IM_REDIS_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "im/group_service.h"
#include "im/offline_queue.h"
#include "im/result.h"
#include "im/router.h"
#include "im/session_store.h"
#include "im/tenant.h"
#include "im/user_store.h"

namespace im {

struct RedisOptions {
  // redis://[[user]:password@]host[:port][/db]: port 6379 and db 0 when left out. A URL that
  // does not parse is refused at open with 400 bad_request naming the problem. Several URLs
  // separated by commas (standalone primaries, every node listing them in the same order):
  // the UserStore, SessionStore, GroupService and OfflineQueue put each user and each group on
  // one of them by consistent hashing; an empty or repeated entry is 400. The Router takes one.
  std::string url = "redis://127.0.0.1:6379/0";
  // Bound on one TCP connect (and the AUTH/SELECT after it).
  int connect_timeout_ms = 1000;
  // Bound on one command or pipeline round trip, and on the wait for a free pooled connection.
  // A command that times out drops its connection (the late reply must not be read by the next
  // caller) and answers 503.
  int command_timeout_ms = 1000;
  // Connections per backend, opened on demand. Callers beyond it wait (see command_timeout_ms).
  int pool_size = 8;
  // After a failed connect, new connects are refused (503 at once) for a backoff that doubles
  // from reconnect_min_ms up to reconnect_max_ms and resets on the first success.
  int reconnect_min_ms = 50;
  int reconnect_max_ms = 2000;
  // The `backend` label of this pool's im_redis_* metrics (GET /metrics of every server in the
  // process; pools with one label are summed). imd uses inbox, groups, users, sessions and
  // cluster.
  std::string metrics_label = "other";
};

// Accounts in Redis, with the semantics of OpenLevelDbUserStore: Argon2id hashes (libsodium,
// `hash`), 409 user_exists decided atomically by Redis (one Lua script). One hash per account at
// `im:{u:<tenant>/<user>}:account` (docs/operations.md, Redis backends). Opening does not
// contact Redis (a server may start before it); 400 for a bad URL or pool size, 500 when
// libsodium refuses `hash`.
Result<std::shared_ptr<UserStore>> OpenRedisUserStore(const RedisOptions& redis,
                                                      PasswordHashOptions hash = {});

struct RedisSessionOptions {
  // A session stays in Redis this long after it was put or last refreshed. The store refreshes
  // the sessions put through it every refresh_interval_ms, from a thread of its own, as long as
  // it lives (a destroyed store, like a dead node, leaves its sessions to expire). So a node
  // that dies takes its sessions out of every Find within session_ttl_ms.
  int64_t session_ttl_ms = 60'000;
  // Below session_ttl_ms; a third of it leaves room for two failed refreshes.
  int64_t refresh_interval_ms = 20'000;
  // Called from the refresh thread with a session put through this store that is no longer in
  // Redis: another node displaced it, or it expired (Redis was unreachable for longer than the
  // TTL, or lost data). Its connection is not found by others any more; the owner should close
  // it, so that the client logs in again. May be empty.
  std::function<void(const SessionInfo&)> on_lost;
};

// Sessions in Redis, with the semantics of NewMemorySessionStore. One hash per user at
// `im:{u:<tenant>/<user>}:sessions` (a field per device); Put applies the kick policy in one Lua
// script, Remove is a compare-and-delete on the session id (one script), FindMany reads every
// user in one round trip. Count reads a sorted set per tenant, `im:{t:<tenant>}:online`, and the
// set of tenants `im:tenants`. Opening does not contact Redis; 400 for a bad URL or
// refresh_interval_ms not in 1..session_ttl_ms-1.
Result<std::shared_ptr<SessionStore>> OpenRedisSessionStore(const RedisOptions& redis,
                                                            RedisSessionOptions sessions = {});

// Inboxes in Redis, with the semantics of OpenLevelDbOfflineQueue: seqs from a per-user counter
// that is never reused within an epoch, the message body stored once whatever the fan-out, each
// AppendBatch one atomic Lua script (so every inbox holds a batch's messages in one relative
// order), dedup keys with a TTL, retention by age and max_inbox (Expire), acks that only go
// up. Every inbox epoch changes when Redis may have lost acknowledged writes (a restart without
// appendonly yes and appendfsync always, a promoted replica, a flushed database). Needs every
// key on one Redis (a standalone primary, not Redis Cluster). docs/operations.md, Redis
// backends, has the key layout. Opening does not contact Redis.
// Sharded (several URLs): each inbox on its user's shard; an AppendBatch is atomic per shard
// only, a retry under the same dedup key completes the shards an attempt missed, and group
// messages get a per-group gseq (Message::gseq, AppendResult::gseq).
Result<std::shared_ptr<OfflineQueue>> OpenRedisOfflineQueue(const RedisOptions& redis,
                                                            OfflineQueueOptions options = {});

// Groups in Redis, with the semantics of OpenLevelDbGroupService: every mutation one Lua script
// over the group's three keys (one hash-tag slot), so 409 group_exists, already_member,
// group_full and the owner hand-over are decided atomically whichever node asks.
// docs/operations.md, Redis backends, has the key layout. Opening does not contact Redis.
Result<std::shared_ptr<GroupService>> OpenRedisGroupService(const RedisOptions& redis,
                                                            GroupLimits limits = {});

// The tenant registry in Redis: one hash `im:tenant-registry` (tenant -> the record's JSON), read
// by every node. Opening does not contact Redis; 400 for a bad URL.
Result<std::shared_ptr<TenantStore>> OpenRedisTenantStore(const RedisOptions& redis);

// The Router of node `node_id` in a cluster whose SessionStore is on Redis (OpenRedisSessionStore):
// this node's connections directly, a session of another node (SessionInfo::node) through that
// node's pub/sub channel `im:node:<id>`. Deliver to another node buffers; Flush publishes one
// message per node carrying the buffered frames and their target sessions. A kick (Close) to
// another node is published at once. The engine's fan-out uses neither: it hands each delivery
// step's pushes, by user, to every node in one publish on the fan-out channel `im:fanout:<db>`,
// and each node pushes to its own connections (docs/operations.md, How a push crosses nodes).
// A publish that fails is sent again every 200 ms for up to 30 s (at most 4 MiB waiting), so a
// push may arrive late or twice; one lost all the same (a node not subscribed at that moment)
// stays in the inbox, and the client syncs when it sees the seq gap. The subscriber reconnects by itself (capped backoff). Node channels are
// global to a Redis server: node ids must be unique per server.
// 400 for a bad URL or an invalid node id; a Redis that is down is not an error here.
Result<std::shared_ptr<Router>> OpenRedisRouter(const RedisOptions& redis, std::string node_id);

}  // namespace im

#endif  // IM_REDIS_H_
