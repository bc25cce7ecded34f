#include "registry.h"

#include <algorithm>
#include <functional>
#include <map>
#include <mutex>
#include <utility>

#include "im/backends.h"
#if IM_WITH_REDIS
#include "im/redis.h"
#include "store/redis/redis_client.h"
#include "store/redis/redis_session_store.h"
#include "store/redis/redis_shards.h"
#include "store/redis/redis_tenant_store.h"
#include "store/redis/redis_user_store.h"
#endif

namespace imd {
namespace {

struct RedisTuning {
  int connect_timeout_ms = 0;  // 0 = im::RedisOptions's default
  int command_timeout_ms = 0;
  int pool_size = 0;
};
RedisTuning& Tuning() {
  static RedisTuning tuning;
  return tuning;
}

#if IM_WITH_REDIS
// `label` names the pool in the im_redis_* metrics (docs/operations.md, metrics).
im::RedisOptions RedisOptionsOf(const std::string& url, const std::string& label) {
  im::RedisOptions o;
  o.url = url;
  o.metrics_label = label;
  const RedisTuning& t = Tuning();
  if (t.connect_timeout_ms > 0) o.connect_timeout_ms = t.connect_timeout_ms;
  if (t.command_timeout_ms > 0) o.command_timeout_ms = t.command_timeout_ms;
  if (t.pool_size > 0) o.pool_size = t.pool_size;
  return o;
}
#else
im::Status NoRedis(const std::string& uri) {
  return im::Status::BadRequest("'" + uri + "': this imd was built without the Redis backends");
}
#endif

}  // namespace

void SetRedisTuning(int connect_timeout_ms, int command_timeout_ms, int pool_size) {
  Tuning() = RedisTuning{connect_timeout_ms, command_timeout_ms, pool_size};
}

#if IM_WITH_REDIS
im::Result<std::shared_ptr<im::internal::RedisClient>> SharedRedisClient(
    const std::string& url, const std::string& label) {
  static std::mutex mu;
  static std::map<std::pair<std::string, std::string>, std::shared_ptr<im::internal::RedisClient>>
      clients;
  std::lock_guard<std::mutex> lock(mu);
  auto it = clients.find({label, url});
  if (it != clients.end()) return it->second;
  auto client = im::internal::RedisClient::Create(RedisOptionsOf(url, label));
  if (!client.ok()) return client.status();
  clients[{label, url}] = *client;
  return *client;
}
#endif

std::string UriScheme(const std::string& uri) {
  auto colon = uri.find(':');
  return colon == std::string::npos ? uri : uri.substr(0, colon);
}

im::Result<std::shared_ptr<im::OfflineQueue>> OpenOfflineQueue(const std::string& uri,
                                                               im::OfflineQueueOptions options,
                                                               im::LevelDbOptions db) {
  using Factory = std::function<im::Result<std::shared_ptr<im::OfflineQueue>>(
      const std::string& rest, im::OfflineQueueOptions, im::LevelDbOptions)>;
  static const std::map<std::string, Factory> kFactories = {
      {"memory",
       [](const std::string&, im::OfflineQueueOptions o, im::LevelDbOptions)
           -> im::Result<std::shared_ptr<im::OfflineQueue>> {
         return im::NewMemoryOfflineQueue(o);
       }},
      {"leveldb",
       [](const std::string& dir, im::OfflineQueueOptions o, im::LevelDbOptions d)
           -> im::Result<std::shared_ptr<im::OfflineQueue>> {
         if (dir.empty()) return im::Status::BadRequest("leveldb: needs a directory");
         return im::OpenLevelDbOfflineQueue(dir, o, d);
       }},
  };
  std::string scheme = UriScheme(uri);
#if IM_WITH_REDIS
  if (scheme == "redis") return im::OpenRedisOfflineQueue(RedisOptionsOf(uri, "inbox"), options);
#else
  if (scheme == "redis") return NoRedis(uri);
#endif
  auto it = kFactories.find(scheme);
  if (it == kFactories.end()) {
    return im::Status::BadRequest("unknown inbox backend '" + scheme + "' in '" + uri + "'");
  }
  return it->second(uri.substr(std::min(uri.size(), scheme.size() + 1)), options, db);
}

im::Result<std::shared_ptr<im::GroupService>> OpenGroupService(const std::string& uri,
                                                               im::GroupLimits limits,
                                                               im::LevelDbOptions db) {
  std::string scheme = UriScheme(uri);
  std::string rest = uri.substr(std::min(uri.size(), scheme.size() + 1));
  if (scheme == "memory") return im::NewMemoryGroupService(limits);
  if (scheme == "leveldb") {
    if (rest.empty()) return im::Status::BadRequest("leveldb: needs a directory");
    return im::OpenLevelDbGroupService(rest, limits, db);
  }
#if IM_WITH_REDIS
  if (scheme == "redis") return im::OpenRedisGroupService(RedisOptionsOf(uri, "groups"), limits);
#else
  if (scheme == "redis") return NoRedis(uri);
#endif
  return im::Status::BadRequest("unknown groups backend '" + scheme + "' in '" + uri + "'");
}

im::Result<std::shared_ptr<im::UserStore>> OpenUserStore(const std::string& uri,
                                                         im::LevelDbOptions db) {
  std::string scheme = UriScheme(uri);
  std::string rest = uri.substr(std::min(uri.size(), scheme.size() + 1));
  if (scheme == "memory") return im::NewMemoryUserStore();
  if (scheme == "leveldb") {
    if (rest.empty()) return im::Status::BadRequest("leveldb: needs a directory");
    return im::OpenLevelDbUserStore(rest, {}, db);
  }
#if IM_WITH_REDIS
  if (scheme == "redis") {
    // A list of URLs: the accounts shard over them (one pool per shard).
    if (im::internal::IsShardedRedisUrl(uri)) {
      return im::OpenRedisUserStore(RedisOptionsOf(uri, "users"));
    }
    auto client = SharedRedisClient(uri, "users");
    if (!client.ok()) return client.status();
    return im::internal::NewRedisUserStore(*client, {});
  }
#else
  if (scheme == "redis") return NoRedis(uri);
#endif
  return im::Status::BadRequest("unknown users backend '" + scheme + "' in '" + uri + "'");
}

im::Result<std::shared_ptr<im::TenantStore>> OpenTenantStore(const std::string& uri,
                                                             im::LevelDbOptions db) {
  std::string scheme = UriScheme(uri);
  std::string rest = uri.substr(std::min(uri.size(), scheme.size() + 1));
  if (scheme == "memory") return im::NewMemoryTenantStore();
  if (scheme == "leveldb") {
    if (rest.empty()) return im::Status::BadRequest("leveldb: needs a directory");
    return im::OpenLevelDbTenantStore(rest, db);
  }
#if IM_WITH_REDIS
  if (scheme == "redis") {
    // The registry is small and read by every node: with a list of URLs it lives on the first.
    auto client = SharedRedisClient(uri.substr(0, uri.find(',')), "tenants");
    if (!client.ok()) return client.status();
    return im::internal::NewRedisTenantStore(*client);
  }
#else
  if (scheme == "redis") return NoRedis(uri);
#endif
  return im::Status::BadRequest("unknown tenants backend '" + scheme + "' in '" + uri + "'");
}

im::Result<std::shared_ptr<im::SessionStore>> OpenSessionStore(
    const std::string& uri, int64_t session_ttl_ms,
    std::function<void(const im::SessionInfo&)> on_lost) {
  if (uri.empty() || uri == "memory:") return im::NewMemorySessionStore();
  if (UriScheme(uri) != "redis") {
    return im::Status::BadRequest("unknown sessions backend '" + UriScheme(uri) + "' in '" + uri +
                                  "'");
  }
#if IM_WITH_REDIS
  im::RedisSessionOptions o;
  o.session_ttl_ms = session_ttl_ms;
  o.refresh_interval_ms = std::max<int64_t>(1, session_ttl_ms / 3);
  o.on_lost = std::move(on_lost);
  // A list of URLs: the sessions shard over them (one pool per shard).
  if (im::internal::IsShardedRedisUrl(uri)) {
    return im::OpenRedisSessionStore(RedisOptionsOf(uri, "sessions"), std::move(o));
  }
  auto client = SharedRedisClient(uri, "sessions");
  if (!client.ok()) return client.status();
  return im::internal::NewRedisSessionStore(*client, std::move(o));
#else
  (void)session_ttl_ms;
  (void)on_lost;
  return NoRedis(uri);
#endif
}

}  // namespace imd
