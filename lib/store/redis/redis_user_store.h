// The Redis UserStore on a RedisClient of the caller's (OpenRedisUserStore makes one of its
// own): for a server that shares one pool among its Redis backends and exports its counters.
#ifndef IM_STORE_REDIS_REDIS_USER_STORE_H_
#define IM_STORE_REDIS_REDIS_USER_STORE_H_

#include <memory>

#include "im/result.h"
#include "im/user_store.h"
#include "store/redis/redis_client.h"

namespace im::internal {

// 500 when libsodium refuses `hash`.
Result<std::shared_ptr<UserStore>> NewRedisUserStore(std::shared_ptr<RedisClient> client,
                                                     const PasswordHashOptions& hash);

}  // namespace im::internal

#endif  // IM_STORE_REDIS_REDIS_USER_STORE_H_
