// imd's routing: GET /v1/route from the [routing] rules and the node registry (or this node
// alone without a cluster), drain by command (POST /v1/admin/nodes/<id>/drain), and the canary
// moves (a node kicks, a few a second, the sessions the rules now send to other nodes).
//
//   imd::Routing routing(config, self);     // before the server is built
//   deps.route = routing.RouteHook();  deps.drain_node = routing.DrainHook();
//   routing.Attach(registry, redis);        // cluster mode, once registered
//   routing.Tick(server);                   // once a second from the main loop
//
// Thread-safety: the hooks run on worker threads, Tick and SetRules on the main thread; the
// shared state is under a mutex.
#ifndef IMD_ROUTING_H_
#define IMD_ROUTING_H_

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "config.h"
#include "im/server.h"
#include "route/route_rules.h"
#if IM_WITH_REDIS
#include "store/redis/node_registry.h"
#endif

namespace imd {

class Routing {
 public:
  explicit Routing(const Config& config);
  // This node as the registry lists it (id, advertised addresses, tag, pool, ...), once its
  // listeners are bound. Until then GET /v1/route answers 503.
  void SetSelf(im::internal::RouteNode self);

  std::function<im::Result<std::string>(const im::RouteRequest&)> RouteHook();
  std::function<im::Status(const std::string&)> DrainHook();

#if IM_WITH_REDIS
  // Cluster mode: answers come from the registry, drains are marked there.
  void Attach(im::internal::RedisNodeRegistry* registry,
              std::shared_ptr<im::internal::RedisClient> redis);
#endif
  // The rules after a SIGHUP (users now on the wrong side move at the next rebalance).
  void SetRules(const im::internal::RouteRules& rules);

  enum class TickResult { kServing, kDraining, kDrained };
  // Once a second: whether this node was told to drain (then kicks its next batches for up to
  // a second); otherwise, every rebalance_interval_ms, the canary moves.
  TickResult Tick(im::Server& server);

 private:
  im::Result<std::vector<im::internal::RouteNode>> Live();
  bool MarkedDraining();

  const int64_t rebalance_interval_ms_;
  const int64_t kicks_per_second_;
  std::mutex mu_;
  std::shared_ptr<const im::internal::RouteRules> rules_;  // guarded by mu_
  im::internal::RouteNode self_;                           // guarded by mu_
  std::atomic<bool> local_draining_{false};  // marked by command, without a cluster
  bool draining_ = false;                    // main thread only
  std::chrono::steady_clock::time_point next_rebalance_;
#if IM_WITH_REDIS
  std::atomic<im::internal::RedisNodeRegistry*> registry_{nullptr};
  std::shared_ptr<im::internal::RedisClient> redis_;  // set before registry_
#endif
};

}  // namespace imd

#endif  // IMD_ROUTING_H_
