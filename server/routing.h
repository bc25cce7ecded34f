// imd's routing: GET /v1/route from the [routing] rules and the node registry (or this node
// alone without a cluster), drain by command (POST /v1/admin/nodes/<id>/drain), the routing
// rules by command (GET/PUT /v1/admin/routing), and the canary moves (a node kicks, a few a
// second, the sessions the rules now send to other nodes).
//
//   imd::Routing routing(config, self);     // before the server is built
//   deps.route = routing.RouteHook();  deps.drain_node = routing.DrainHook();
//   deps.routing_rules = routing.RulesHook();
//   routing.Attach(registry, redis, opts);  // cluster mode, once registered
//   routing.Tick(server);                   // once a second from the main loop
//
// Route answers read the registry through a cache of [routing] cache_ms, so a flood of them
// costs no Redis round trip each. A drain by command and a rules change are published on the
// cluster channel "im:routing"; every node drops its cache (a drain) or reads the rules again
// (a change) when the message arrives, so a drained node leaves every node's answers at once,
// not after cache_ms. A node that knows it is draining never answers itself. Pub/sub can lose
// a message (a node reconnecting to Redis): the cache then expires within cache_ms, and every
// node reads the stored rules again every kRulesPollMs.
//
// Thread-safety: the hooks run on worker threads, Tick and SetRules on the main thread, the
// channel's messages on the listener's thread; the shared state is under a mutex.
#ifndef IMD_ROUTING_H_
#define IMD_ROUTING_H_

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config.h"
#include "im/server.h"
#include "route/route_rules.h"
#if IM_WITH_REDIS
#include "route/redis_channel.h"
#include "store/redis/node_registry.h"
#endif

namespace imd {

class Routing {
 public:
  // How often a cluster node reads the stored rules again, in case a change's message was lost.
  static constexpr int64_t kRulesPollMs = 5000;

  explicit Routing(const Config& config);
  ~Routing();
  // This node as the registry lists it (id, advertised addresses, tag, pool, ...), once its
  // listeners are bound. Until then GET /v1/route answers 503.
  void SetSelf(im::internal::RouteNode self);

  std::function<im::Result<std::string>(const im::RouteRequest&)> RouteHook();
  std::function<im::Status(const std::string&)> DrainHook();
  std::function<im::Result<std::string>(const std::string*)> RulesHook();

#if IM_WITH_REDIS
  // Cluster mode: answers come from the registry, drains are marked there, rules set by command
  // are stored there (and read from there now, when some are).
  void Attach(im::internal::RedisNodeRegistry* registry,
              std::shared_ptr<im::internal::RedisClient> redis, const im::RedisOptions& options);
#endif
  // The config's rules after a SIGHUP (users now on the wrong side move at the next
  // rebalance). Rules set by command, when there are some, still win.
  void SetRules(const im::internal::RouteRules& rules);

  enum class TickResult { kServing, kDraining, kDrained };
  // Once a second: whether this node was told to drain (then kicks its next batches for up to
  // a second); otherwise, every rebalance_interval_ms, the canary moves.
  TickResult Tick(im::Server& server);

 private:
  // The live nodes; from the cache (at most cache_ms old) unless `fresh`.
  im::Result<std::vector<im::internal::RouteNode>> Live(bool fresh);
  bool MarkedDraining();
  // The rules in force: the stored ones (with the config's regions) when set, else the config's.
  void ApplyLocked();
  // Takes the rules stored in the registry, if any (a rules change or the poll).
  void LoadStoredRules();
  void OnChannelMessage(std::string_view payload);
  std::shared_ptr<const im::internal::RouteRules> Rules();

  const int64_t rebalance_interval_ms_;
  const int64_t kicks_per_second_;
  const int64_t cache_ms_;
  std::mutex mu_;
  im::internal::RouteRules config_rules_;                  // guarded by mu_
  std::optional<im::internal::RouteRules> stored_rules_;   // guarded by mu_
  std::shared_ptr<const im::internal::RouteRules> rules_;  // guarded by mu_
  im::internal::RouteNode self_;                           // guarded by mu_
  // The registry's last list and when it was read; generation_ moves on every invalidation,
  // so a list read before one is not kept after it.
  std::vector<im::internal::RouteNode> cached_;            // guarded by mu_
  std::chrono::steady_clock::time_point cached_at_;        // guarded by mu_
  bool cache_valid_ = false;                               // guarded by mu_
  uint64_t generation_ = 0;                                // guarded by mu_
  std::atomic<bool> local_draining_{false};  // marked by command, without a cluster
  std::atomic<bool> self_draining_{false};   // this node knows it drains: never answered
  bool draining_ = false;                    // main thread only
  std::chrono::steady_clock::time_point next_rebalance_;
  std::chrono::steady_clock::time_point next_rules_poll_;
#if IM_WITH_REDIS
  std::atomic<im::internal::RedisNodeRegistry*> registry_{nullptr};
  std::shared_ptr<im::internal::RedisClient> redis_;  // set before registry_
  std::unique_ptr<im::internal::RedisChannelListener> listener_;
#endif
};

}  // namespace imd

#endif  // IMD_ROUTING_H_
