// [storage] and [cluster]: the backends, their Redis settings, and this node in the registry.
#include <string>
#include <tuple>

#include "config_sections.h"
#include "config_toml.h"
#if IM_WITH_REDIS
#include "store/redis/redis_client.h"
#include "store/redis/redis_shards.h"
#endif

namespace imd::internal {

namespace {

// [storage] redis_*: a timeout past ten minutes or a pool past 1024 connections per backend is
// a typo, not a setting (hiredis takes the timeouts as int milliseconds).
constexpr int64_t kMaxRedisTimeoutMs = 600'000;
constexpr int64_t kMaxRedisPoolSize = 1024;

// A redis:// value of `key` must parse (and this imd must have the Redis backends). With
// `list`, it may be a comma list of URLs (the backends shard over them): each must parse.
im::Status CheckRedisUrl(const toml::table& t, const std::string& section, const char* key,
                         bool list = false) {
  const toml::node* n = t.get(key);
  if (n == nullptr || !n->is_string()) return im::Status::OK();
  const std::string url = *n->value<std::string>();
  if (!IsRedisUrl(url)) return im::Status::OK();
#if IM_WITH_REDIS
  if (!list && im::internal::IsShardedRedisUrl(url)) {
    return AtLine(t, section, key, "must be one redis:// URL, not a list");
  }
  auto parsed = im::internal::SplitRedisUrls(url);
  if (!parsed.ok()) return AtLine(t, section, key, std::string(parsed.status().message()));
  return im::Status::OK();
#else
  (void)list;
  return AtLine(t, section, key, "this imd was built without the Redis backends (hiredis)");
#endif
}

}  // namespace

// [storage]: the backends and their settings.
im::Status ApplyStorage(const toml::table& t, Config* c) {
  Reader r(t, "storage.");
  r.Get<std::string>("inbox", &c->inbox);
  r.Get<bool>("sync_writes", &c->leveldb.sync_writes);
  r.Get<bool>("compression", &c->leveldb.compression);
  r.Get<int64_t>("write_buffer_bytes", &c->leveldb.write_buffer_bytes);
  r.Get<int64_t>("max_file_bytes", &c->leveldb.max_file_bytes);
  r.Get<int64_t>("block_cache_bytes", &c->leveldb.block_cache_bytes);
  r.Get<std::string>("groups", &c->groups);
  r.Get<int64_t>("max_group_members", &c->max_group_members);
  r.Get<std::string>("users", &c->users);
  r.Get<int64_t>("retention_s", &c->retention_s);
  r.Get<int64_t>("max_inbox", &c->max_inbox);
  r.Get<int64_t>("dedup_window_s", &c->dedup_window_s);
  r.Get<std::string>("sessions", &c->sessions);
  r.Get<std::string>("tenants", &c->tenants_store);
  r.Get<int64_t>("redis_connect_timeout_ms", &c->redis_connect_timeout_ms);
  r.Get<int64_t>("redis_command_timeout_ms", &c->redis_command_timeout_ms);
  r.Get<int64_t>("redis_pool_size", &c->redis_pool_size);
  im::Status s = r.Finish();
  if (!s.ok()) return s;
  for (const auto& [key, value, max] :
       {std::tuple{"redis_connect_timeout_ms", c->redis_connect_timeout_ms, kMaxRedisTimeoutMs},
        std::tuple{"redis_command_timeout_ms", c->redis_command_timeout_ms, kMaxRedisTimeoutMs},
        std::tuple{"redis_pool_size", c->redis_pool_size, kMaxRedisPoolSize}}) {
    if (value < 1 || value > max) {
      return AtLine(t, "storage.", key, "must be in 1.." + std::to_string(max));
    }
  }
  for (const char* key : {"inbox", "groups", "users", "sessions"}) {
    if (s = CheckRedisUrl(t, "storage.", key, /*list=*/true); !s.ok()) return s;
  }
  if (s = CheckRedisUrl(t, "storage.", "tenants"); !s.ok()) return s;
  if (!c->sessions.empty() && c->sessions != "memory:" && !IsRedisUrl(c->sessions)) {
    return AtLine(t, "storage.", "sessions", "must be \"memory:\" or a redis:// URL");
  }
  return im::Status::OK();
}

// [cluster]: this node in the node registry.
im::Status ApplyCluster(const toml::table& t, Config* c) {
  Reader r(t, "cluster.");
  r.Get<std::string>("node_id", &c->server.node_id);
  r.Get<std::string>("redis", &c->cluster_redis);
  r.Get<std::string>("advertise_tcp", &c->advertise_tcp);
  r.Get<std::string>("advertise_ws", &c->advertise_ws);
  r.Get<int64_t>("heartbeat_ms", &c->cluster_heartbeat_ms);
  r.Get<int64_t>("node_ttl_ms", &c->cluster_node_ttl_ms);
  r.Get<int64_t>("session_ttl_ms", &c->session_ttl_ms);
  r.Get<std::string>("version_tag", &c->version_tag);
  r.Get<std::string>("region", &c->region);
  r.Get<std::string>("pool", &c->pool);
  r.Get<int64_t>("weight", &c->weight);
  r.Get<int64_t>("drain_kicks_per_second", &c->server.drain_kicks_per_second);
  r.Get<bool>("drain_exit", &c->drain_exit);
  im::Status s = r.Finish();
  if (!s.ok()) return s;
  if (s = CheckRedisUrl(t, "cluster.", "redis"); !s.ok()) return s;
  if (!c->cluster_redis.empty() && !IsRedisUrl(c->cluster_redis)) {
    return AtLine(t, "cluster.", "redis", "must be a redis:// URL");
  }
  if (c->cluster_heartbeat_ms < 1 || c->cluster_heartbeat_ms >= c->cluster_node_ttl_ms) {
    return im::Status::BadRequest("cluster.heartbeat_ms must be in 1..node_ttl_ms-1");
  }
  if (c->session_ttl_ms < 3) return im::Status::BadRequest("cluster.session_ttl_ms must be >= 3");
  if (c->weight < 1 || c->weight > 10000) {
    return AtLine(t, "cluster.", "weight", "must be in 1..10000");
  }
  if (c->version_tag.empty()) return AtLine(t, "cluster.", "version_tag", "must not be empty");
  return im::Status::OK();
}

}  // namespace imd::internal
