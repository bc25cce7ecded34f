// imd: the reference server. `imd` serves; `imd token` prints a token for a user; `imd repair`
// repairs damaged LevelDB storage.
#include <signal.h>
#include <sodium.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string_view>
#include <utility>

#include "config.h"
#include "im/auth.h"
#include "im/backends.h"
#include "im/log.h"
#include "im/server.h"
#include "im/version.h"
#include "ops/log.h"
#include "registry.h"
#include "routing.h"
#if IM_WITH_REDIS
#include "route/redis_router.h"
#include "store/redis/node_registry.h"
#endif

namespace {

std::string KeyDir(const imd::Config& c) { return c.data_dir + "/keys"; }

im::Result<std::shared_ptr<im::KeyStore>> OpenKeys(const imd::Config& c, bool create_missing) {
  if (c.keys.empty()) return im::OpenDirKeyStore(KeyDir(c), create_missing);
  std::map<std::string, std::vector<im::SigningKey>> raw;
  for (const auto& [tenant, entries] : c.keys) {
    for (const imd::Config::KeyEntry& e : entries) {
      auto bin = imd::HexKey(e.hex);
      if (!bin) {
        return im::Status::BadRequest("keys." + tenant +
                                      (e.kid.empty() ? "" : " (kid " + e.kid + ")") +
                                      " must be at least 32 hex characters");
      }
      raw[tenant].push_back({e.kid, std::move(*bin)});
    }
  }
  return im::NewRotatingKeyStore(std::move(raw));
}

// Exit codes: 2 for a mistake on the command line, 1 for any other failure (a bad config file
// included).
constexpr int kUsageError = 2;

// One line on stderr, without the protocol code (an HTTP status means nothing to a shell).
int Fail(const im::Status& s, int exit_code = 1) {
  const std::string what = s.message().empty() ? std::string(s.error()) : std::string(s.message());
  std::fprintf(stderr, "imd: %s\n", what.c_str());
  return exit_code;
}

// <data>/imd.pid while a server runs: its pid, and a fingerprint of the default tenant's
// signing key, so `imd token` can tell when it would sign with another key.
std::string PidFile(const imd::Config& c) { return c.data_dir + "/imd.pid"; }

std::string Fingerprint(const std::string& key) {
  unsigned char hash[8];
  crypto_generichash(hash, sizeof(hash), reinterpret_cast<const unsigned char*>(key.data()),
                     key.size(), nullptr, 0);
  char hex[2 * sizeof(hash) + 1];
  sodium_bin2hex(hex, sizeof(hex), hash, sizeof(hash));
  return hex;
}

// The absolute form of `dir`, for messages a user reads in another directory.
std::string Absolute(const std::string& dir) {
  std::error_code ec;
  std::filesystem::path p = std::filesystem::absolute(dir, ec);
  return ec ? dir : p.lexically_normal().string();
}

// The repair command for this data dir (and config file), as the operator should type it.
std::string RepairCommand(const imd::Config& c, const std::string& config_path) {
  std::string command = "imd repair --data " + c.data_dir;
  if (!config_path.empty()) command += " --config " + config_path;
  return command;
}

// The directory of a "leveldb:DIR" backend URI; empty for other backends.
std::string LevelDbDir(const std::string& uri);

// A storage open failure; for a held LOCK, who holds it; for damage, what to do about it.
int FailOpen(const im::Status& s, const imd::Config& c, const std::string& config_path,
             const std::string& uri) {
  if (s.code() == im::Code::kUnavailable && !LevelDbDir(uri).empty()) {
    std::fprintf(stderr, "imd: another imd is using %s (LOCK held)\n",
                 Absolute(LevelDbDir(uri)).c_str());
    return 1;
  }
  Fail(s);
  if (s.error() == "damaged") {
    std::fprintf(stderr,
                 "imd: refusing to start on damaged storage. Stop every imd using %s, then run "
                 "`%s`: it recovers what it can and gives every inbox a new epoch, so clients "
                 "resync from seq 0\n",
                 c.data_dir.c_str(), RepairCommand(c, config_path).c_str());
  }
  return 1;
}

// The directory of a "leveldb:DIR" backend URI; empty for other backends.
std::string LevelDbDir(const std::string& uri) {
  constexpr std::string_view kScheme = "leveldb:";
  return uri.rfind(kScheme, 0) == 0 ? uri.substr(kScheme.size()) : std::string();
}

// `imd repair`: LevelDB's RepairDB on the inbox, groups, users and tenants databases, then a new epoch for
// every inbox. The databases must not be open: a running imd holds their LOCK and is refused.
int RunRepair(imd::Config c) {
  if (c.inbox.empty()) c.inbox = "leveldb:" + c.data_dir + "/inbox";
  if (c.groups.empty()) c.groups = "leveldb:" + c.data_dir + "/groups";
  if (c.users.empty()) c.users = "leveldb:" + c.data_dir + "/users";
  if (c.tenants_store.empty()) c.tenants_store = "leveldb:" + c.data_dir + "/tenants";
  const std::pair<const char*, const std::string*> stores[] = {
      {"inbox", &c.inbox}, {"groups", &c.groups}, {"users", &c.users},
      {"tenants", &c.tenants_store}};
  int repaired = 0;
  for (const auto& [name, uri] : stores) {
    const std::string dir = LevelDbDir(*uri);
    if (dir.empty()) {
      std::printf("imd: %s: %s is not LevelDB, skipped\n", name, uri->c_str());
      continue;
    }
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec) || std::filesystem::is_empty(dir, ec)) {
      std::printf("imd: %s: no database at %s, skipped\n", name, dir.c_str());
      continue;
    }
    if (std::string_view(name) == "inbox") {
      auto renewed = im::RepairLevelDbOfflineQueue(dir, c.leveldb);
      if (!renewed.ok()) return Fail(renewed.status());
      std::printf("imd: inbox: repaired %s; %zu inboxes have a new epoch (clients resync from "
                  "seq 0)\n", dir.c_str(), *renewed);
    } else {
      if (im::Status s = im::RepairLevelDb(dir); !s.ok()) return Fail(s);
      std::printf("imd: %s: repaired %s\n", name, dir.c_str());
    }
    ++repaired;
  }
  std::printf("imd: repair done: %d LevelDB databases repaired; what LevelDB could not read is "
              "in each database's lost/ directory and its LOG file\n", repaired);
  return 0;
}

// What `imd token` tells on stderr (its stdout is the token alone): that it created a key, and
// that a server running on the same data directory signs with another key.
void ExplainTokenKey(const imd::Config& c, const std::string& tenant, bool created,
                     im::KeyStore& keys) {
  const std::string dir = Absolute(KeyDir(c));
  if (created) {
    std::fprintf(stderr,
                 "imd token: created a new signing key for tenant '%s' in %s/ (a server on "
                 "another data directory will refuse this token: pass --data DIR)\n",
                 tenant.c_str(), dir.c_str());
  }
  std::ifstream in(PidFile(c));
  std::string word, recorded_tenant, recorded;
  long pid = 0;
  if (!(in >> word >> pid) || word != "pid" || pid <= 0) return;
  if (kill(static_cast<pid_t>(pid), 0) != 0 && errno != EPERM) return;  // not running
  while (in >> word >> recorded_tenant >> recorded) {
    if (word != "key" || recorded_tenant != tenant) continue;
    auto key = keys.KeyFor(tenant);
    if (key.ok() && Fingerprint(*key) != recorded) {
      std::fprintf(stderr,
                   "imd token: the imd running on %s (pid %ld) signs tenant '%s' with another "
                   "key than %s/%s.key, and will refuse this token (the key file changed after "
                   "it started: restart it)\n",
                   Absolute(c.data_dir).c_str(), pid, tenant.c_str(), dir.c_str(),
                   tenant.c_str());
    }
  }
}

int RunToken(const imd::Config& c, const std::string& user, const std::string& tenant,
             int64_t ttl) {
  if (!im::IsValidId(user) || !im::IsValidId(tenant)) {
    return Fail(im::Status::BadRequest("user and tenant must be 1-64 bytes without control "
                                       "characters"), kUsageError);
  }
  if (ttl <= 0) return Fail(im::Status::BadRequest("--ttl must be positive"), kUsageError);
  const bool had_key =
      !c.keys.empty() || std::filesystem::exists(KeyDir(c) + "/" + tenant + ".key");
  auto keys = OpenKeys(c, /*create_missing=*/true);
  if (!keys.ok()) return Fail(keys.status());
  auto token = im::SignHs256Token(**keys, im::UserKey{tenant, user}, ttl,
                                  im::SystemClock()->NowMs());
  if (token.ok()) {
    ExplainTokenKey(c, tenant, !had_key && std::filesystem::exists(KeyDir(c) + "/" + tenant +
                                                                   ".key"), **keys);
  }
  if (!token.ok()) return Fail(token.status());
  std::printf("%s\n", token->c_str());
  return 0;
}

im::LogOptions LogOptionsOf(const imd::Config& c) {
  im::LogOptions lo;
  lo.level = *im::ParseLogLevel(c.log_level);  // validated when the config was read
  lo.console = c.log_console;
  lo.file = c.log_file_set ? c.log_file : c.data_dir + "/imd.log";
  lo.max_file_bytes = c.log_max_file_bytes;
  lo.max_files = c.log_max_files;
  return lo;
}

// SIGHUP: re-reads the config file for what may change without a restart (the log level) and
// reloads the word filter.
void Reload(const std::string& config_path, const std::shared_ptr<im::WordFilter>& filter,
            imd::Routing& routing) {
  if (!config_path.empty()) {
    imd::Config fresh;
    im::Status s = imd::LoadConfigFile(config_path, &fresh);
    if (!s.ok()) {
      IM_LOG_ERROR("SIGHUP: config not reloaded: {}", s.ToString());
    } else {
      im::LogLevel level = *im::ParseLogLevel(fresh.log_level);
      im::SetLogLevel(level);
      IM_LOG_WARN("SIGHUP: log level is {}", im::LogLevelName(level));
      routing.SetRules(fresh.routing);
      IM_LOG_WARN("SIGHUP: routing rules reloaded (canary_percent {})",
                  fresh.routing.canary_percent);
    }
  }
  if (filter) {
    im::Status r = filter->Reload();
    IM_LOG_INFO("SIGHUP: filter reload: {} ({} words)", r.ToString(), filter->word_count());
  }
}

// Writes each [tenants.<name>] section to the registry when it has no record of that tenant.
// A stored record is kept (the admin API may have changed it since; a restart must not undo a
// suspension), and a difference from the config is logged.
im::Status SeedTenants(const imd::Config& c, im::TenantStore& store) {
  for (im::TenantRecord record : c.tenants) {
    auto stored = store.Get(record.name);
    if (stored.ok()) {
      im::TenantRecord mine = record;
      mine.updated_ms = stored->updated_ms;
      mine.keys = stored->keys;  // only the admin API writes keys to the registry
      if (im::TenantRecordJson(mine) != im::TenantRecordJson(*stored)) {
        IM_LOG_WARN("[tenants.{}] differs from the registry's record, which is kept (change it "
                    "with PUT /v1/admin/tenants/{})", record.name, record.name);
      }
      continue;
    }
    if (stored.status().code() != im::Code::kNotFound) return stored.status();
    record.updated_ms = im::SystemClock()->NowMs();
    if (im::Status s = store.Put(record); !s.ok()) return s;
    IM_LOG_INFO("tenant '{}' written to the registry from [tenants.{}]", record.name,
                record.name);
  }
  return im::Status::OK();
}

#if IM_WITH_REDIS
im::internal::NodeRegistryOptions NodeRegistryOptionsOf(const imd::Config& c) {
  im::internal::NodeRegistryOptions o;
  o.ttl_ms = c.cluster_node_ttl_ms;
  o.heartbeat_ms = c.cluster_heartbeat_ms;
  return o;
}

// Message ids embed [server] node_number: two live nodes with one number could hand out one mid
// twice (and the inbox stores a message body once per mid). So a cluster node claims its number
// in Redis, im:node-number:<n> = its node id, for node_ttl_ms, renewed at every heartbeat.
// Answers "" when the claim is this node's, else the id of the node that holds the number.
im::Result<std::string> ClaimNodeNumber(im::internal::RedisClient& redis, int number,
                                        const std::string& node_id, int64_t ttl_ms) {
  static const im::internal::RedisScript kClaim(R"(
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return holder end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return '')");
  auto r = redis.Eval(kClaim, {"im:node-number:" + std::to_string(number)},
                      {node_id, std::to_string(ttl_ms)});
  if (!r.ok()) return r.status();
  return r->str;
}

// Gives the number up at a clean stop (only when this node still holds it).
void ReleaseNodeNumber(im::internal::RedisClient& redis, int number, const std::string& node_id) {
  static const im::internal::RedisScript kRelease(R"(
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0)");
  (void)redis.Eval(kRelease, {"im:node-number:" + std::to_string(number)}, {node_id});
}

// A node registry failure; for a held id, what to do about it.
int FailRegistry(const im::Status& s, const std::string& node_id, const std::string& url) {
  if (s.code() == im::Code::kConflict) {
    std::fprintf(stderr,
                 "imd: node id '%s' is held by a live node in %s: give this node another "
                 "[cluster] node_id (or wait until the other one's entry expires)\n",
                 node_id.c_str(), url.c_str());
    return 1;
  }
  std::fprintf(stderr, "imd: cannot register node '%s' in %s: %s\n", node_id.c_str(),
               url.c_str(), s.ToString().c_str());
  return 1;
}
#endif

int RunServer(imd::Config c, const std::string& config_path) {
  std::error_code ec;
  std::filesystem::create_directories(c.data_dir, ec);
  if (ec) return Fail(im::Status::Unavailable("cannot create " + c.data_dir + ": " + ec.message()));
  if (im::Status s = im::ConfigureLogging(LogOptionsOf(c)); !s.ok()) return Fail(s);
  bool fresh_key = c.keys.empty() && !std::filesystem::exists(KeyDir(c) + "/default.key");
  auto keys = OpenKeys(c, /*create_missing=*/false);
  if (!keys.ok()) return Fail(keys.status());
  if (fresh_key) {
    // First start: make the default tenant's signing key so `imd token` works at once.
    auto created = im::OpenDirKeyStore(KeyDir(c), true);
    if (!created.ok()) return Fail(created.status());
    auto k = (*created)->KeyFor(im::kDefaultTenant);
    if (!k.ok()) return Fail(k.status());
    std::printf("imd: created a signing key for tenant 'default' in %s/\n", KeyDir(c).c_str());
  }

  // Block the stop signals before any thread starts (the storage backends start some: the Redis
  // ones refresh, heartbeat and subscribe), so only sigwait below receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  im::OfflineQueueOptions qo;
  qo.retention_ms = c.retention_s * 1000;
  qo.max_inbox = c.max_inbox;
  qo.dedup_window_ms = c.dedup_window_s * 1000;
  if (c.inbox.empty()) c.inbox = "leveldb:" + c.data_dir + "/inbox";
  const im::LevelDbOptions& db = c.leveldb;
  auto inbox = imd::OpenOfflineQueue(c.inbox, qo, db);
  if (!inbox.ok()) return FailOpen(inbox.status(), c, config_path, c.inbox);

  if (c.groups.empty()) c.groups = "leveldb:" + c.data_dir + "/groups";
  im::GroupLimits gl;
  gl.max_members = c.max_group_members;
  auto groups = imd::OpenGroupService(c.groups, gl, db);
  if (!groups.ok()) return FailOpen(groups.status(), c, config_path, c.groups);

  if (c.users.empty()) c.users = "leveldb:" + c.data_dir + "/users";
  auto users = imd::OpenUserStore(c.users, db);
  if (!users.ok()) return FailOpen(users.status(), c, config_path, c.users);

  if (c.tenants_store.empty()) {
    c.tenants_store = imd::IsRedisUrl(c.users) ? c.users : "leveldb:" + c.data_dir + "/tenants";
  }
  auto tenants = imd::OpenTenantStore(c.tenants_store, db);
  if (!tenants.ok()) return FailOpen(tenants.status(), c, config_path, c.tenants_store);
  if (im::Status s = SeedTenants(c, **tenants); !s.ok()) return Fail(s);

  // Keys a tenant's registry record holds come first (added and removed through the admin API,
  // seen by every node within tenant_refresh_ms); the others are [keys] or <data>/keys.
  std::shared_ptr<im::KeyStore> token_keys =
      im::NewTenantKeyStore(*tenants, *keys, c.server.tenant_refresh_ms);

  im::ServerDeps deps;
  deps.tenants = *tenants;
  deps.groups = *groups;
  deps.users = *users;
  deps.token_keys = token_keys;
  std::shared_ptr<im::WordFilter> filter;
  if (!c.filter_words_file.empty()) {
    im::WordFilterOptions fo;
    fo.words_file = c.filter_words_file;
    fo.mode = c.filter_mode == "mask" ? im::FilterMode::kMask : im::FilterMode::kReject;
    auto f = im::OpenWordFilter(fo);
    if (!f.ok()) return Fail(f.status());
    filter = *f;
    deps.filter = filter;
    deps.reload_filter = [filter] { return filter->Reload(); };
    std::printf("imd: filter %s: %zu words (%s)\n", c.filter_words_file.c_str(),
                filter->word_count(), c.filter_mode.c_str());
  }
  const bool cluster = imd::IsRedisUrl(c.sessions);
  const std::string node_id = c.server.node_id.empty()
                                  ? "node-" + std::to_string(c.server.node_number)
                                  : c.server.node_id;
  // A session of this node that is gone from the shared store (displaced by a login elsewhere,
  // or expired while Redis was unreachable) is closed: the client logs in again.
  auto router_slot = std::make_shared<std::weak_ptr<im::Router>>();
  auto sessions = imd::OpenSessionStore(
      c.sessions, c.session_ttl_ms, [router_slot](const im::SessionInfo& lost) {
        if (auto router = router_slot->lock()) {
          router->Close(lost, im::Frame{}, im::close_code::kKicked, "session lost");
        }
      });
  if (!sessions.ok()) return FailOpen(sessions.status(), c, config_path, c.sessions);
  deps.sessions = *sessions;
  deps.router = im::NewLocalRouter();
#if IM_WITH_REDIS
  std::shared_ptr<im::internal::RedisClient> cluster_redis;
  im::RedisOptions cluster_options;
  if (cluster) {
    // Sessions sharded over a list of URLs: the registry and router use the first.
    cluster_options.url =
        c.cluster_redis.empty() ? c.sessions.substr(0, c.sessions.find(',')) : c.cluster_redis;
    cluster_options.metrics_label = "cluster";
    cluster_options.connect_timeout_ms = static_cast<int>(c.redis_connect_timeout_ms);
    cluster_options.command_timeout_ms = static_cast<int>(c.redis_command_timeout_ms);
    cluster_options.pool_size = static_cast<int>(c.redis_pool_size);
    auto client = imd::SharedRedisClient(cluster_options.url, "cluster");
    if (!client.ok()) return Fail(client.status());
    cluster_redis = *client;
    // Refuse early, before binding, when a live node holds the id (Start below checks again).
    im::internal::NodeInfo probe;
    probe.id = node_id;
    probe.version = im::LinkedVersion();
    auto registry = im::internal::RedisNodeRegistry::Start(cluster_redis, probe,
                                                           NodeRegistryOptionsOf(c), nullptr);
    if (!registry.ok()) return FailRegistry(registry.status(), node_id, cluster_options.url);
    registry->reset();  // deregisters; the heartbeat after Start registers the node for good
    auto holder = ClaimNodeNumber(*cluster_redis, c.server.node_number, node_id,
                                  c.cluster_node_ttl_ms);
    if (!holder.ok()) return FailRegistry(holder.status(), node_id, cluster_options.url);
    if (!holder->empty()) {
      std::fprintf(stderr,
                   "imd: [server] node_number %d is held by live node '%s': every node of a "
                   "cluster needs its own node_number (0..1023), it goes into every message id\n",
                   static_cast<int>(c.server.node_number), holder->c_str());
      return 1;
    }
    auto router = im::internal::RedisRouter::Start(cluster_redis, cluster_options, node_id);
    if (!router.ok()) return Fail(router.status());
    deps.router = *router;
  }
#else
  if (cluster) return Fail(im::Status::BadRequest("this imd was built without Redis"));
#endif
  *router_slot = deps.router;
  deps.inbox = *inbox;
  im::Hs256Options ho;
  ho.leeway_s = c.token_leeway_s;
  deps.tokens = im::NewHs256Verifier(token_keys, ho);

  // GET /v1/route and drain by command (server/routing.h); this node's entry is set once bound.
  imd::Routing routing(c);
  deps.route = routing.RouteHook();
  deps.drain_node = routing.DrainHook();
  deps.routing_rules = routing.RulesHook();
  c.server.token_grace_ms = c.token_leeway_s * 1000;
  c.server.inbox_retention_s = c.retention_s;
  c.server.inbox_max = c.max_inbox;
  if (!c.event_log_set) c.server.event_log_path = c.data_dir + "/events.log";
  im::Server server(c.server, deps);
  im::Status s = server.Start();
  if (!s.ok()) return Fail(s);
  // The bound addresses (a configured port 0 shows the port the OS chose).
  auto bound = [](const std::string& listen, uint16_t port) {
    return listen.substr(0, listen.rfind(':')) + ":" + std::to_string(port);
  };
  im::internal::RouteNode route_self;
  route_self.id = node_id;
  route_self.tcp_address = !c.advertise_tcp.empty() ? c.advertise_tcp
                           : server.tcp_port() ? bound(c.server.tcp_listen, server.tcp_port())
                                               : "";
  route_self.ws_address = !c.advertise_ws.empty() ? c.advertise_ws
                          : server.http_port()
                              ? "ws://" + bound(c.server.http_listen, server.http_port()) + "/ws"
                              : "";
  route_self.tag = c.version_tag;
  route_self.region = c.region;
  route_self.pool = c.pool;
  route_self.weight = c.weight;
  routing.SetSelf(route_self);
#if IM_WITH_REDIS
  std::unique_ptr<im::internal::RedisNodeRegistry> node_registry;
  if (cluster) {
    im::internal::NodeInfo self;
    self.id = node_id;
    self.tcp_address = route_self.tcp_address;
    self.ws_address = route_self.ws_address;
    self.version = im::LinkedVersion();
    self.tag = c.version_tag;
    self.region = c.region;
    self.pool = c.pool;
    self.weight = c.weight;
    std::shared_ptr<im::Router> router = deps.router;
    const int number = c.server.node_number;
    const int64_t ttl_ms = c.cluster_node_ttl_ms;
    // The load callback runs at every heartbeat: it renews the node number's claim too.
    auto registry = im::internal::RedisNodeRegistry::Start(
        cluster_redis, self, NodeRegistryOptionsOf(c),
        [router, cluster_redis, number, node_id, ttl_ms] {
          auto holder = ClaimNodeNumber(*cluster_redis, number, node_id, ttl_ms);
          if (holder.ok() && !holder->empty()) {
            IM_LOG_ERROR("cluster: node_number {} was taken over by node '{}' (this node could "
                         "not renew it): message ids may collide", number, *holder);
          }
          return static_cast<int64_t>(router->LocalCount());
        });
    if (!registry.ok()) {
      server.Stop();
      return FailRegistry(registry.status(), node_id, cluster_options.url);
    }
    node_registry = std::move(*registry);
    routing.Attach(node_registry.get(), cluster_redis, cluster_options);
    std::printf("imd: cluster node %s registered in %s (heartbeat %lld ms, node ttl %lld ms, "
                "session ttl %lld ms)\n", node_id.c_str(), cluster_options.url.c_str(),
                static_cast<long long>(c.cluster_heartbeat_ms),
                static_cast<long long>(c.cluster_node_ttl_ms),
                static_cast<long long>(c.session_ttl_ms));
  }
#endif
  std::printf("imd: node %s serving", server.node_id().c_str());
  if (server.http_port()) {
    std::string http = bound(c.server.http_listen, server.http_port());
    std::printf(" ws://%s/ws http://%s/", http.c_str(), http.c_str());
  }
  if (server.tcp_port()) {
    std::printf(" tcp://%s", bound(c.server.tcp_listen, server.tcp_port()).c_str());
  }
  std::printf(" (inbox %s, groups %s)\n", c.inbox.c_str(), c.groups.c_str());
  std::printf("imd: get a token with: imd token --user alice --data %s\n", c.data_dir.c_str());
  std::fflush(stdout);
  {
    std::ofstream pid_file(PidFile(c), std::ios::trunc);
    pid_file << "pid " << getpid() << "\n";
    auto key = (*keys)->KeyFor(im::kDefaultTenant);
    if (key.ok()) pid_file << "key " << im::kDefaultTenant << " " << Fingerprint(*key) << "\n";
  }

  int sig = 0;
  bool taken_over = false;
  bool drained = false;  // by command, and empty now
  for (;;) {
    // Once a second, a cluster node checks that it still holds its id: another process took it
    // over when this one's heartbeats stopped for longer than node_ttl_ms (it was presumed
    // dead), and two nodes must not serve under one id.
    const timespec second{1, 0};
    sig = sigtimedwait(&stop_signals, nullptr, &second);
#if IM_WITH_REDIS
    if (sig < 0 && node_registry && !node_registry->registered()) {
      taken_over = true;
      break;
    }
#endif
    if (sig < 0) {
      // Drain by command, or the canary moves; an emptied node exits when drain_exit is set.
      drained = routing.Tick(server) == imd::Routing::TickResult::kDrained && c.drain_exit;
      if (drained) break;
      continue;
    }
    if (sig != SIGHUP) break;
    Reload(config_path, filter, routing);
  }
  if (drained) {
    IM_LOG_INFO("drained by command: no session left; stopping");
  } else if (taken_over) {
    IM_LOG_ERROR("cluster: another node took over node id '{}'; draining (deadline {} ms)",
                 node_id, c.drain_timeout_ms);
  } else {
    IM_LOG_INFO("{}: draining (deadline {} ms)", sig == SIGTERM ? "SIGTERM" : "SIGINT",
                c.drain_timeout_ms);
    // Out of every node's route answers at once, as a drain by command: marked in the registry
    // and published to the other nodes' route caches.
    if (im::Status marked = routing.DrainHook()(node_id); !marked.ok()) {
      IM_LOG_WARN("{}: not marked draining in the registry: {}",
                  sig == SIGTERM ? "SIGTERM" : "SIGINT", marked.ToString());
    }
  }
  server.Drain(c.drain_timeout_ms);
#if IM_WITH_REDIS
  if (node_registry) {
    node_registry.reset();  // deregisters: the node leaves the registry at once
    ReleaseNodeNumber(*cluster_redis, c.server.node_number, node_id);
  }
#endif
  std::filesystem::remove(PidFile(c), ec);
  std::printf("imd: stopped\n");
  return taken_over ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (sodium_init() < 0) return Fail(im::Status::Internal("libsodium failed to initialise"));
  CLI::App app{"imd: the libim reference server"};
  app.set_version_flag("--version", std::string("imd ") + im::LinkedVersion());
  std::string config_path, http, tcp, data, static_dir;
  app.add_option("--config", config_path, "TOML config file");
  app.add_option("--http", http, "HTTP/WebSocket listen address (default 127.0.0.1:7000)");
  app.add_option("--tcp", tcp, "TCP listen address (default 127.0.0.1:7001)");
  app.add_option("--data", data, "data directory (default ./data)");
  app.add_option("--static-dir", static_dir,
                 "serve the files of this directory on the HTTP port ([http] static_dir)");
  std::string user, tenant(im::kDefaultTenant);
  int64_t ttl = 3600;
  CLI::App* token = app.add_subcommand("token", "print a signed token for a user");
  token->add_option("--user", user, "user id")->required();
  token->add_option("--tenant", tenant, "tenant id (default: default)");
  token->add_option("--ttl", ttl, "lifetime in seconds (default 3600)");
  token->add_option("--data", data, "data directory (default ./data)");
  token->add_option("--config", config_path, "TOML config file");
  CLI::App* repair = app.add_subcommand(
      "repair", "repair damaged LevelDB storage (imd stopped); every inbox gets a new epoch");
  repair->add_option("--data", data, "data directory (default ./data)");
  repair->add_option("--config", config_path, "TOML config file");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string what = e.what();
    std::replace(what.begin(), what.end(), '\n', ' ');
    std::fprintf(stderr, "imd: %s (imd --help shows the options)\n", what.c_str());
    return kUsageError;
  }

  imd::Config c;
  if (!config_path.empty()) {
    im::Status s = imd::LoadConfigFile(config_path, &c);
    if (!s.ok()) return Fail(s);
  }
  if (!http.empty()) c.server.http_listen = http;
  if (!tcp.empty()) c.server.tcp_listen = tcp;
  if (!data.empty()) c.data_dir = data;
  if (!static_dir.empty()) c.server.static_dir = static_dir;
  imd::SetRedisTuning(static_cast<int>(c.redis_connect_timeout_ms),
                      static_cast<int>(c.redis_command_timeout_ms),
                      static_cast<int>(c.redis_pool_size));
  if (*token) return RunToken(c, user, tenant, ttl);
  if (*repair) return RunRepair(std::move(c));
  return RunServer(std::move(c), config_path);
}
