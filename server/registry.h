// Backend registry: builds backends from URIs ("memory:", "leveldb:./data/inbox",
// "redis://127.0.0.1:6379/0"). The name-to-factory table lives here, in the server only; the
// library exposes plain factory functions.
#ifndef IMD_REGISTRY_H_
#define IMD_REGISTRY_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "im/backends.h"
#include "im/offline_queue.h"
#include "im/result.h"
#include "im/session_store.h"
#if IM_WITH_REDIS
#include "store/redis/redis_client.h"
#endif

namespace imd {

// The Redis pool settings of every backend opened after this call and of SharedRedisClient
// (config [storage] redis_*; im::RedisOptions's defaults until called). Call before opening.
void SetRedisTuning(int connect_timeout_ms, int command_timeout_ms, int pool_size);

// The scheme of a backend URI: "memory" for "memory:", "redis" for "redis://...".
std::string UriScheme(const std::string& uri);

im::Result<std::shared_ptr<im::OfflineQueue>> OpenOfflineQueue(const std::string& uri,
                                                               im::OfflineQueueOptions options,
                                                               im::LevelDbOptions db);

im::Result<std::shared_ptr<im::GroupService>> OpenGroupService(const std::string& uri,
                                                               im::GroupLimits limits,
                                                               im::LevelDbOptions db);

im::Result<std::shared_ptr<im::UserStore>> OpenUserStore(const std::string& uri,
                                                         im::LevelDbOptions db);

// The tenant registry: "memory:", "leveldb:DIR" or "redis://...".
im::Result<std::shared_ptr<im::TenantStore>> OpenTenantStore(const std::string& uri,
                                                             im::LevelDbOptions db);

#if IM_WITH_REDIS
// One Redis connection pool per URL and use (`label`: its im_redis_* metrics label, "users",
// "sessions", or "cluster" for the router, the node registry and the node-number claim).
im::Result<std::shared_ptr<im::internal::RedisClient>> SharedRedisClient(
    const std::string& url, const std::string& label);
#endif

// "memory:" (or ""): this process's sessions; "redis://...": sessions shared in Redis
// (session_ttl_ms; `on_lost` is called for a session of this node that is gone from Redis).
im::Result<std::shared_ptr<im::SessionStore>> OpenSessionStore(
    const std::string& uri, int64_t session_ttl_ms,
    std::function<void(const im::SessionInfo&)> on_lost);

}  // namespace imd

#endif  // IMD_REGISTRY_H_
