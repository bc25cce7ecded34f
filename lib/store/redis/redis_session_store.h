// The Redis SessionStore on a RedisClient of the caller's (OpenRedisSessionStore makes one of
// its own). For tests and for backends that share one pool.
#ifndef IM_STORE_REDIS_REDIS_SESSION_STORE_H_
#define IM_STORE_REDIS_REDIS_SESSION_STORE_H_

#include <memory>

#include "im/redis.h"
#include "im/result.h"
#include "im/session_store.h"
#include "store/redis/redis_client.h"

namespace im::internal {

// 400 when refresh_interval_ms is not in 1..session_ttl_ms-1. Starts the refresh thread.
Result<std::shared_ptr<SessionStore>> NewRedisSessionStore(std::shared_ptr<RedisClient> client,
                                                           RedisSessionOptions options);

}  // namespace im::internal

#endif  // IM_STORE_REDIS_REDIS_SESSION_STORE_H_
