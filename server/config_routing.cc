// [routing]: the rules of GET /v1/route and of the canary moves.
#include <set>
#include <string>
#include <vector>

#include "config_sections.h"
#include "config_toml.h"
#include "route/route_rules.h"

namespace imd::internal {

im::Status ApplyRouting(const toml::table& t, Config* c) {
  im::internal::RouteRules& rules = c->routing;
  Reader r(t, "routing.");
  r.Get<std::string>("canary_tag", &rules.canary_tag);
  r.Get<double>("canary_percent", &rules.canary_percent);
  r.Get<int64_t>("max_load", &rules.max_load);
  r.Get<int64_t>("max_answers", &rules.max_answers);
  r.Get<int64_t>("rebalance_interval_ms", &c->rebalance_interval_ms);
  r.Get<int64_t>("cache_ms", &c->route_cache_ms);
  r.Skip("canary_tenants");
  r.Skip("canary_users");
  r.Skip("tenant_pools");
  r.Skip("regions");
  if (im::Status s = r.Finish(); !s.ok()) return s;
  if (rules.canary_percent > 100) {
    return AtLine(t, "routing.", "canary_percent", "must be in 0..100");
  }
  if (rules.max_answers < 1 || rules.max_answers > 64) {
    return AtLine(t, "routing.", "max_answers", "must be in 1..64");
  }
  if (c->rebalance_interval_ms < 100) {
    return AtLine(t, "routing.", "rebalance_interval_ms", "must be at least 100");
  }
  if (c->route_cache_ms < 0 || c->route_cache_ms > 60000) {
    return AtLine(t, "routing.", "cache_ms", "must be in 0..60000");
  }
  auto id = [](const std::string& v) {
    return im::IsValidId(v) ? std::string() : std::string("not a valid tenant id");
  };
  std::vector<std::string> list;
  if (im::Status s = StringArray(t, "routing.", "canary_tenants", id, &list); !s.ok()) return s;
  rules.canary_tenants = std::set<std::string>(list.begin(), list.end());
  list.clear();
  auto user = [](const std::string& v) {
    const size_t slash = v.find('/');
    return slash != std::string::npos && im::IsValidId(v.substr(0, slash)) &&
                   im::IsValidId(v.substr(slash + 1))
               ? std::string()
               : std::string("expected \"tenant/user\"");
  };
  if (im::Status s = StringArray(t, "routing.", "canary_users", user, &list); !s.ok()) return s;
  rules.canary_users = std::set<std::string>(list.begin(), list.end());
  if (const toml::node* n = t.get("tenant_pools")) {
    if (!n->is_table()) return AtLine(t, "routing.", "tenant_pools", "expected a table");
    for (auto& [k, v] : *n->as_table()) {
      if (!v.is_string() || v.value<std::string>()->empty()) {
        return im::Status::BadRequest("routing.tenant_pools." + std::string(k.str()) +
                                      ": expected a pool name (a string)");
      }
      rules.tenant_pools[std::string(k.str())] = *v.value<std::string>();
    }
  }
  if (const toml::node* n = t.get("regions")) {
    if (!n->is_table()) return AtLine(t, "routing.", "regions", "expected a table");
    const toml::table& regions = *n->as_table();
    for (auto& [k, v] : regions) {
      const std::string name(k.str());
      std::vector<std::string> cidrs;
      auto cidr = [](const std::string& text) {
        auto parsed = im::internal::ParseCidr(text);
        return parsed.ok() ? std::string() : std::string(parsed.status().message());
      };
      if (im::Status s = StringArray(regions, "routing.regions.", name.c_str(), cidr, &cidrs);
          !s.ok()) {
        return s;
      }
      std::vector<im::internal::Cidr> nets;
      for (const std::string& text : cidrs) nets.push_back(*im::internal::ParseCidr(text));
      rules.region_cidrs.emplace_back(name, std::move(nets));
    }
  }
  return im::Status::OK();
}

}  // namespace imd::internal
