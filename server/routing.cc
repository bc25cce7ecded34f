#include "routing.h"

#include <algorithm>
#include <utility>

#include "ops/log.h"

namespace imd {

using im::internal::RouteNode;

Routing::Routing(const Config& config)
    : rebalance_interval_ms_(config.rebalance_interval_ms),
      kicks_per_second_(config.server.drain_kicks_per_second),
      rules_(std::make_shared<const im::internal::RouteRules>(config.routing)),
      next_rebalance_(std::chrono::steady_clock::now() +
                      std::chrono::milliseconds(config.rebalance_interval_ms)) {}

#if IM_WITH_REDIS
void Routing::Attach(im::internal::RedisNodeRegistry* registry,
                     std::shared_ptr<im::internal::RedisClient> redis) {
  redis_ = std::move(redis);
  registry_ = registry;
}
#endif

void Routing::SetSelf(RouteNode self) {
  std::lock_guard<std::mutex> lock(mu_);
  self_ = std::move(self);
}

void Routing::SetRules(const im::internal::RouteRules& rules) {
  std::lock_guard<std::mutex> lock(mu_);
  rules_ = std::make_shared<const im::internal::RouteRules>(rules);
}

im::Result<std::vector<RouteNode>> Routing::Live() {
#if IM_WITH_REDIS
  if (im::internal::RedisNodeRegistry* registry = registry_.load()) {
    auto nodes = registry->List();
    if (!nodes.ok()) return nodes.status();
    std::vector<RouteNode> out;
    for (const im::internal::NodeInfo& n : *nodes) {
      out.push_back(RouteNode{n.id, n.tcp_address, n.ws_address, n.tag, n.region, n.pool,
                              n.weight, n.load, n.draining});
    }
    return out;
  }
#endif
  RouteNode self;
  {
    std::lock_guard<std::mutex> lock(mu_);
    self = self_;
  }
  if (self.id.empty()) return im::Status::Unavailable("starting");
  self.draining = local_draining_.load();
  return std::vector<RouteNode>{self};
}

std::function<im::Result<std::string>(const im::RouteRequest&)> Routing::RouteHook() {
  return [this](const im::RouteRequest& r) -> im::Result<std::string> {
    std::shared_ptr<const im::internal::RouteRules> rules;
    {
      std::lock_guard<std::mutex> lock(mu_);
      rules = rules_;
    }
    im::internal::RouteQuery q{r.tenant, r.user, r.region, r.remote_address};
    auto live = Live();
    if (!live.ok()) return live.status();
    auto chosen = im::internal::ChooseRoute(*rules, *live, q);
    if (!chosen.ok()) return chosen.status();
    return im::internal::RouteJson(q, im::internal::WantsCanary(*rules, q.tenant, q.user),
                                   *chosen);
  };
}

std::function<im::Status(const std::string&)> Routing::DrainHook() {
  return [this](const std::string& id) -> im::Status {
#if IM_WITH_REDIS
    if (registry_.load() != nullptr) {
      return im::internal::RedisNodeRegistry::MarkDraining(*redis_, id);
    }
#endif
    std::string self_id;
    {
      std::lock_guard<std::mutex> lock(mu_);
      self_id = self_.id;
    }
    if (id != self_id) return im::Status::NotFound("no live node has id '" + id + "'");
    local_draining_ = true;
    return im::Status::OK();
  };
}

bool Routing::MarkedDraining() {
  if (local_draining_.load()) return true;
#if IM_WITH_REDIS
  if (im::internal::RedisNodeRegistry* registry = registry_.load()) {
    auto marked = registry->Draining();
    return marked.ok() && *marked;
  }
#endif
  return false;
}

Routing::TickResult Routing::Tick(im::Server& server) {
  if (!draining_ && MarkedDraining()) {
    draining_ = true;
    IM_LOG_WARN("drain by command: kicking {} session(s), at most {} a second",
                server.DrainableCount(), kicks_per_second_);
  }
  if (draining_) {
    return server.DrainSessions(1000) ? TickResult::kDrained : TickResult::kDraining;
  }
  const auto now = std::chrono::steady_clock::now();
  if (now < next_rebalance_) return TickResult::kServing;
  next_rebalance_ = now + std::chrono::milliseconds(rebalance_interval_ms_);
  // Canary moves: users whose rules now name other nodes (a changed percentage, list or pool)
  // get a drain kick, at most a second's worth of kicks per round, and reconnect through
  // /v1/route. Never when this node is not listed (the view is then too uncertain).
  std::shared_ptr<const im::internal::RouteRules> rules;
  std::string self_id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    rules = rules_;
    self_id = self_.id;
  }
  auto live = Live();
  if (!live.ok()) return TickResult::kServing;
  auto is_self = [&self_id](const RouteNode& n) { return n.id == self_id; };
  if (std::none_of(live->begin(), live->end(), is_self)) return TickResult::kServing;
  const size_t budget = kicks_per_second_ <= 0 ? SIZE_MAX
                                               : static_cast<size_t>(kicks_per_second_);
  const size_t moved = server.KickForDrain(budget, [&](const im::UserKey& u) {
    std::vector<RouteNode> eligible = im::internal::EligibleNodes(*rules, *live, u.tenant, u.user);
    return !eligible.empty() && std::none_of(eligible.begin(), eligible.end(), is_self);
  });
  if (moved > 0) IM_LOG_INFO("routing: moved {} session(s) to the nodes their rules name", moved);
  return TickResult::kServing;
}

}  // namespace imd
