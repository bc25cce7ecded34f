// imd's configuration: a TOML file (every key optional) overridden by command-line flags.
#ifndef IMD_CONFIG_H_
#define IMD_CONFIG_H_

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "im/backends.h"
#include "im/options.h"
#include "im/result.h"
#include "route/route_rules.h"
#include "im/tenant.h"

namespace imd {

struct Config {
  im::ServerOptions server;          // [server] keys (docs/embedding.md lists them)
  std::string data_dir = "./data";   // keys/, and the stores of later backends
  // OfflineQueue backend URI: "leveldb:DIR" or "memory:"; "" = leveldb:<data>/inbox.
  std::string inbox;
  // GroupService backend URI: "leveldb:DIR" or "memory:"; "" = leveldb:<data>/groups.
  std::string groups;
  size_t max_group_members = 5000;
  // UserStore backend URI: "leveldb:DIR" or "memory:"; "" = leveldb:<data>/users.
  std::string users;
  // SessionStore backend URI: "memory:" (or "") = this process only.
  // Each of inbox, groups, users and sessions may also be "redis://host:port/db" (the Redis
  // backends; one connection pool per distinct URL for users and sessions), or a comma list of
  // such URLs: the backend shards users and groups over them (docs/operations.md, Sharding).
  std::string sessions;
  // TenantStore backend URI: "leveldb:DIR", "memory:" or "redis://..."; "" = the users URL when
  // that is Redis (every node sees one registry), else leveldb:<data>/tenants.
  std::string tenants_store;
  // [tenants.<name>]: written to the registry at start for each tenant it has no record of.
  std::vector<im::TenantRecord> tenants;
  // [cluster]: this node in the node registry (used when any store is on Redis).
  std::string advertise_tcp;  // "host:port" clients reach the TCP port at; "" = as bound
  std::string advertise_ws;   // "ws://host:port/ws"; "" = as bound
  int64_t cluster_heartbeat_ms = 5000;   // node registry heartbeat
  int64_t cluster_node_ttl_ms = 15000;   // a silent node leaves the registry within this
  int64_t session_ttl_ms = 60000;        // a dead node's sessions expire within this
  std::string cluster_redis;  // the registry's and router's Redis; "" = the sessions URL
  // This node as routing sees it (docs/operations.md, Routing and canary rules).
  std::string version_tag = "stable";
  std::string region;
  std::string pool;
  int64_t weight = 100;
  bool drain_exit = true;  // after a drain by command: exit once empty (false: idle)
  // [routing]: the rules of GET /v1/route and of the canary moves (the same on every node).
  im::internal::RouteRules routing;
  int64_t rebalance_interval_ms = 5000;  // how often a node looks for users on the wrong side
  int64_t route_cache_ms = 1000;  // how old a route answer's view of the registry may be (0: none)
  im::LevelDbOptions leveldb;  // [storage] sync_writes, compression, write_buffer_bytes, ...
  std::string filter_words_file;     // [filter] words_file; "" = no filter
  std::string filter_mode = "reject";  // [filter] mode: "reject" or "mask"
  // [keys]: tenant = "hex" (one unnamed key), or tenant = [{kid = "k2", key = "hex"}, ...] (key
  // rotation: the first signs). Empty = <data>/keys/*.key.
  struct KeyEntry {
    std::string kid;
    std::string hex;
  };
  std::map<std::string, std::vector<KeyEntry>> keys;
  int64_t token_leeway_s = 30;
  int64_t drain_timeout_ms = 10000;  // [server] drain_timeout_ms: SIGTERM/SIGINT deadline
  bool event_log_set = false;        // [server] event_log given ("" turns it off)
  bool commit_on_worker_set = false;  // [server] commit_on_worker given
  // [log]: the program log (im/log.h). file "" (unset) = <data>/imd.log; set to "" = no file.
  std::string log_level = "info";
  bool log_console = true;
  std::string log_file;
  bool log_file_set = false;
  size_t log_max_file_bytes = 16 << 20;
  size_t log_max_files = 4;
  int64_t retention_s = 7 * 24 * 3600;
  size_t max_inbox = 10000;
  // [storage] redis_*: the pool settings of every Redis connection pool of imd (storage and
  // cluster), im::RedisOptions's fields of the same names.
  int64_t redis_connect_timeout_ms = 1000;
  int64_t redis_command_timeout_ms = 1000;
  int64_t redis_pool_size = 8;
  int64_t dedup_window_s = 24 * 3600;
};

// The raw bytes of a key written in hex (at least 32 hex characters); nullopt when it is not.
std::optional<std::string> HexKey(std::string_view hex);

// True for a "redis://" backend URI.
inline bool IsRedisUrl(std::string_view uri) { return uri.rfind("redis://", 0) == 0; }

// Reads `path` into `config` (keys not in the file keep their values). 400 on a syntax error,
// an unknown key or a wrong type, naming the key.
im::Status LoadConfigFile(const std::string& path, Config* config);
// The same for a TOML text; `source` names it in error messages.
im::Status LoadConfigText(std::string_view text, std::string_view source, Config* config);

}  // namespace imd

#endif  // IMD_CONFIG_H_
