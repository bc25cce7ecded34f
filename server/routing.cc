#include "routing.h"

#include <algorithm>
#include <utility>

#include "ops/log.h"

namespace imd {

using im::internal::RouteNode;

namespace {

#if IM_WITH_REDIS
constexpr char kChannel[] = "im:routing";       // "drain:<id>" and "rules" messages
constexpr char kRulesKey[] = "im:routing:rules";  // the rules set by command, as JSON
#endif

}  // namespace

Routing::Routing(const Config& config)
    : rebalance_interval_ms_(config.rebalance_interval_ms),
      kicks_per_second_(config.server.drain_kicks_per_second),
      cache_ms_(config.route_cache_ms),
      config_rules_(config.routing),
      rules_(std::make_shared<const im::internal::RouteRules>(config.routing)),
      next_rebalance_(std::chrono::steady_clock::now() +
                      std::chrono::milliseconds(config.rebalance_interval_ms)),
      next_rules_poll_(std::chrono::steady_clock::now() +
                       std::chrono::milliseconds(kRulesPollMs)) {}

Routing::~Routing() {
#if IM_WITH_REDIS
  listener_.reset();  // its thread calls into this object
#endif
}

#if IM_WITH_REDIS
void Routing::Attach(im::internal::RedisNodeRegistry* registry,
                     std::shared_ptr<im::internal::RedisClient> redis,
                     const im::RedisOptions& options) {
  redis_ = std::move(redis);
  registry_ = registry;
  listener_ = im::internal::RedisChannelListener::Start(
      redis_, options, {std::string(kChannel)},
      [this](std::string_view, std::string_view m) { OnChannelMessage(m); });
  LoadStoredRules();
}

void Routing::OnChannelMessage(std::string_view payload) {
  if (payload == "rules") {
    LoadStoredRules();
    return;
  }
  if (payload.rfind("drain:", 0) != 0) return;
  const std::string_view id = payload.substr(6);
  std::lock_guard<std::mutex> lock(mu_);
  if (id == self_.id) self_draining_ = true;
  cache_valid_ = false;
  ++generation_;
}

void Routing::LoadStoredRules() {
  auto stored = redis_->Command({"GET", kRulesKey});
  if (!stored.ok() || stored->is_nil()) return;  // unreachable: the rules in force stay
  auto rules = im::internal::ParseRulesJson(stored->str);
  if (!rules.ok()) {
    IM_LOG_ERROR("routing: the stored rules do not parse ({}); the rules in force stay",
                 rules.status().ToString());
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (stored_rules_ && im::internal::RulesJson(*stored_rules_) == stored->str) return;
  stored_rules_ = std::move(*rules);
  ApplyLocked();
  IM_LOG_WARN("routing: rules set by command now in force: {}", stored->str);
}
#else
void Routing::OnChannelMessage(std::string_view) {}
void Routing::LoadStoredRules() {}
#endif

void Routing::SetSelf(RouteNode self) {
  std::lock_guard<std::mutex> lock(mu_);
  self_ = std::move(self);
}

void Routing::ApplyLocked() {
  if (!stored_rules_) {
    rules_ = std::make_shared<const im::internal::RouteRules>(config_rules_);
    return;
  }
  auto rules = std::make_shared<im::internal::RouteRules>(*stored_rules_);
  rules->region_cidrs = config_rules_.region_cidrs;
  rules_ = std::move(rules);
}

void Routing::SetRules(const im::internal::RouteRules& rules) {
  std::lock_guard<std::mutex> lock(mu_);
  config_rules_ = rules;
  ApplyLocked();
}

std::shared_ptr<const im::internal::RouteRules> Routing::Rules() {
  std::lock_guard<std::mutex> lock(mu_);
  return rules_;
}

im::Result<std::vector<RouteNode>> Routing::Live(bool fresh) {
  std::vector<RouteNode> out;
#if IM_WITH_REDIS
  if (im::internal::RedisNodeRegistry* registry = registry_.load()) {
    const auto now = std::chrono::steady_clock::now();
    uint64_t generation = 0;
    bool hit = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      generation = generation_;
      hit = !fresh && cache_valid_ && now - cached_at_ < std::chrono::milliseconds(cache_ms_);
      if (hit) out = cached_;
    }
    if (!hit) {
      auto nodes = registry->List();
      if (!nodes.ok()) return nodes.status();
      for (const im::internal::NodeInfo& n : *nodes) {
        out.push_back(RouteNode{n.id, n.tcp_address, n.ws_address, n.tag, n.region, n.pool,
                                n.weight, n.load, n.draining});
      }
      std::lock_guard<std::mutex> lock(mu_);
      if (generation == generation_ && cache_ms_ > 0) {  // no invalidation since the read
        cached_ = out;
        cached_at_ = now;
        cache_valid_ = true;
      }
    }
  }
#endif
  RouteNode self;
  {
    std::lock_guard<std::mutex> lock(mu_);
    self = self_;
  }
  if (out.empty()) {
#if IM_WITH_REDIS
    if (registry_.load() != nullptr) return out;
#endif
    if (self.id.empty()) return im::Status::Unavailable("starting");
    self.draining = local_draining_.load();
    out.push_back(self);
  }
  // A node that knows it drains never answers itself, whatever its cache or Redis says.
  if (self_draining_.load()) {
    for (RouteNode& n : out) n.draining = n.draining || n.id == self.id;
  }
  return out;
}

std::function<im::Result<std::string>(const im::RouteRequest&)> Routing::RouteHook() {
  return [this](const im::RouteRequest& r) -> im::Result<std::string> {
    std::shared_ptr<const im::internal::RouteRules> rules = Rules();
    im::internal::RouteQuery q{r.tenant, r.user, r.region, r.remote_address};
    auto live = Live(/*fresh=*/false);
    if (!live.ok()) return live.status();
    auto chosen = im::internal::ChooseRoute(*rules, *live, q);
    if (!chosen.ok()) return chosen.status();
    return im::internal::RouteJson(q, im::internal::WantsCanary(*rules, q.tenant, q.user),
                                   *chosen);
  };
}

std::function<im::Status(const std::string&)> Routing::DrainHook() {
  return [this](const std::string& id) -> im::Status {
    std::string self_id;
    {
      std::lock_guard<std::mutex> lock(mu_);
      self_id = self_.id;
    }
#if IM_WITH_REDIS
    if (registry_.load() != nullptr) {
      im::Status s = im::internal::RedisNodeRegistry::MarkDraining(*redis_, id);
      if (!s.ok()) return s;
      {
        std::lock_guard<std::mutex> lock(mu_);
        cache_valid_ = false;
        ++generation_;
      }
      if (id == self_id) self_draining_ = true;
      // The mark is stored first, so a node that drops its cache reads it. A lost message
      // leaves that node's cache to expire (cache_ms).
      auto published = redis_->Command({"PUBLISH", kChannel, "drain:" + id});
      if (!published.ok()) {
        IM_LOG_WARN("routing: drain of '{}' not published ({}); other nodes see it within "
                    "their route cache time", id, published.status().ToString());
      }
      return im::Status::OK();
    }
#endif
    if (id != self_id) return im::Status::NotFound("no live node has id '" + id + "'");
    local_draining_ = true;
    self_draining_ = true;
    return im::Status::OK();
  };
}

std::function<im::Result<std::string>(const std::string*)> Routing::RulesHook() {
  return [this](const std::string* body) -> im::Result<std::string> {
    if (body != nullptr) {
      auto rules = im::internal::ParseRulesJson(*body);
      if (!rules.ok()) return rules.status();
      const std::string json = im::internal::RulesJson(*rules);
#if IM_WITH_REDIS
      if (registry_.load() != nullptr) {
        auto stored = redis_->Command({"SET", kRulesKey, json});
        if (!stored.ok()) return stored.status();
        auto published = redis_->Command({"PUBLISH", kChannel, "rules"});
        if (!published.ok()) {
          IM_LOG_WARN("routing: rules change not published ({}); other nodes read it within "
                      "{} ms", published.status().ToString(), kRulesPollMs);
        }
      }
#endif
      std::lock_guard<std::mutex> lock(mu_);
      stored_rules_ = std::move(*rules);
      ApplyLocked();
      IM_LOG_WARN("routing: rules set by the operator: {}", json);
    }
    std::shared_ptr<const im::internal::RouteRules> rules = Rules();
    return im::internal::RulesJson(*rules);
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
    self_draining_ = true;
    IM_LOG_WARN("drain by command: kicking {} session(s), at most {} a second",
                server.DrainableCount(), kicks_per_second_);
  }
  if (draining_) {
    return server.DrainSessions(1000) ? TickResult::kDrained : TickResult::kDraining;
  }
  const auto now = std::chrono::steady_clock::now();
#if IM_WITH_REDIS
  if (registry_.load() != nullptr && now >= next_rules_poll_) {
    next_rules_poll_ = now + std::chrono::milliseconds(kRulesPollMs);
    LoadStoredRules();
  }
#endif
  if (now < next_rebalance_) return TickResult::kServing;
  next_rebalance_ = now + std::chrono::milliseconds(rebalance_interval_ms_);
  // Canary moves: users whose rules now name other nodes (a changed percentage, list or pool)
  // get a drain kick, at most a second's worth of kicks per round, and reconnect through
  // /v1/route. Never when this node is not listed (the view is then too uncertain).
  std::shared_ptr<const im::internal::RouteRules> rules = Rules();
  std::string self_id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    self_id = self_.id;
  }
  auto live = Live(/*fresh=*/true);
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
