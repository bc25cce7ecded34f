// The Redis TenantStore on a RedisClient of the caller's (OpenRedisTenantStore makes one of its
// own): for a server that shares one pool among its Redis backends.
#ifndef IM_STORE_REDIS_REDIS_TENANT_STORE_H_
#define IM_STORE_REDIS_REDIS_TENANT_STORE_H_

#include <memory>

#include "im/tenant.h"
#include "store/redis/redis_client.h"

namespace im::internal {

std::shared_ptr<TenantStore> NewRedisTenantStore(std::shared_ptr<RedisClient> client);

}  // namespace im::internal

#endif  // IM_STORE_REDIS_REDIS_TENANT_STORE_H_
