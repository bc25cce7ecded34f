// RouteRules (lib/route/route_rules.h): pools, sides, regions, load, weights, stability.
#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

#include "route/route_rules.h"

namespace im::internal {
namespace {

RouteNode Node(const std::string& id, const std::string& tag = "stable",
               const std::string& pool = "", const std::string& region = "",
               int64_t weight = 100) {
  RouteNode n;
  n.id = id;
  n.tcp_address = "127.0.0.1:1";
  n.tag = tag;
  n.pool = pool;
  n.region = region;
  n.weight = weight;
  return n;
}

std::string First(const RouteRules& rules, const std::vector<RouteNode>& live,
                  const std::string& user, const std::string& tenant = "t",
                  const std::string& region = "", const std::string& remote = "") {
  auto r = ChooseRoute(rules, live, RouteQuery{tenant, user, region, remote});
  REQUIRE(r.ok());
  REQUIRE(!r->empty());
  return (*r)[0].id;
}

TEST_CASE("route rules: a lost node moves only its own users - weights share users") {
  RouteRules rules;
  std::vector<RouteNode> live = {Node("a"), Node("b"), Node("c", "stable", "", "", 200)};
  std::map<std::string, int> share;
  std::map<std::string, std::string> before;
  for (int i = 0; i < 4000; ++i) {
    const std::string u = "u" + std::to_string(i);
    before[u] = First(rules, live, u);
    share[before[u]]++;
  }
  // c has twice the weight: about half of the users (generous band).
  CHECK(share["c"] > 1700);
  CHECK(share["c"] < 2300);
  CHECK(share["a"] > 700);
  CHECK(share["b"] > 700);
  live.erase(live.begin());  // a is gone
  for (const auto& [u, node] : before) {
    const std::string now = First(rules, live, u);
    if (node != "a") CHECK(now == node);
  }
  // A draining node is never answered.
  live[0].draining = true;
  for (int i = 0; i < 200; ++i) CHECK(First(rules, live, "u" + std::to_string(i)) == "c");
}

TEST_CASE("route rules: pools, canary sides and their fallbacks") {
  RouteRules rules;
  rules.tenant_pools["big"] = "dedicated";
  rules.canary_percent = 50;
  std::vector<RouteNode> live = {Node("s"), Node("c", "canary"), Node("d", "stable", "dedicated")};
  for (int i = 0; i < 100; ++i) {
    const std::string u = "u" + std::to_string(i);
    CHECK(First(rules, live, u, "big") == "d");
    CHECK(First(rules, live, u) == (WantsCanary(rules, "t", u) ? "c" : "s"));
  }
  // The dedicated pool gone: its tenant falls back to the shared pool.
  live.pop_back();
  CHECK(EligibleNodes(rules, live, "big", "u1").size() == 1);
  // The canary side gone: its users fall back to the stable side.
  live.erase(live.begin() + 1);
  for (int i = 0; i < 50; ++i) CHECK(First(rules, live, "u" + std::to_string(i)) == "s");
  live.clear();
  CHECK(ChooseRoute(rules, live, RouteQuery{"t", "u", "", ""}).status().code() ==
        Code::kUnavailable);
}

TEST_CASE("route rules: region by parameter or CIDR first, overloaded nodes last") {
  RouteRules rules;
  rules.region_cidrs.push_back({"eu", {*ParseCidr("10.1.0.0/16")}});
  rules.region_cidrs.push_back({"us", {*ParseCidr("2001:db8::/32")}});
  rules.max_load = 1000;
  std::vector<RouteNode> live = {Node("e", "stable", "", "eu"), Node("w", "stable", "", "us")};
  for (int i = 0; i < 50; ++i) {
    const std::string u = "u" + std::to_string(i);
    CHECK(First(rules, live, u, "t", "eu") == "e");
    CHECK(First(rules, live, u, "t", "", "10.1.2.3:5555") == "e");
    CHECK(First(rules, live, u, "t", "", "[2001:db8::1]:5555") == "w");
  }
  live[0].load = 1000;  // e overloaded: last, even for its own region
  CHECK(First(rules, live, "u1", "t", "eu") == "w");
  CHECK(!ParseCidr("10.1.0.0").ok());
  CHECK(!ParseCidr("10.1.0.0/33").ok());
  CHECK(!ParseCidr("nonsense/8").ok());
  CHECK(!CidrContains(*ParseCidr("10.2.0.0/15"), "10.1.255.1"));
  CHECK(CidrContains(*ParseCidr("10.2.0.0/15"), "10.3.255.1:80"));
  CHECK(!CidrContains(*ParseCidr("10.2.0.0/15"), "[::ffff:10.3.0.1]:80"));
  for (const char* bad : {"", "a b", "x/y"}) {
    CHECK(ChooseRoute(rules, live, RouteQuery{"t", "u", bad, ""}).status().code() ==
          (std::string(bad).empty() ? Code::kOk : Code::kBadRequest));
  }
}

TEST_CASE("route rules: the canary bucket is fixed forever and spread evenly") {
  // Fixed values: a changed hash would move users between sides on an upgrade.
  CHECK(CanaryBucket("default", "alice") == 3589);
  CHECK(CanaryBucket("acme", "u1") == 479);
  CHECK(CanaryBucket("ab", "c") != CanaryBucket("a", "bc"));
  int under = 0;
  for (int i = 0; i < 10000; ++i) under += CanaryBucket("t", "u" + std::to_string(i)) < 1000;
  CHECK(under > 850);
  CHECK(under < 1150);
}

TEST_CASE("route rules: the JSON of the admin API round-trips and is checked field by field") {
  RouteRules rules;
  rules.canary_tag = "next";
  rules.canary_percent = 12.5;
  rules.canary_tenants = {"acme", "qa"};
  rules.canary_users = {"default/alice"};
  rules.tenant_pools = {{"big", "p1"}};
  rules.max_load = 900;
  rules.max_answers = 2;
  rules.region_cidrs.emplace_back("eu", std::vector<Cidr>{*ParseCidr("10.1.0.0/16")});
  auto back = ParseRulesJson(RulesJson(rules));
  REQUIRE(back.ok());
  CHECK(back->canary_tag == "next");
  CHECK(back->canary_percent == 12.5);
  CHECK(back->canary_tenants == rules.canary_tenants);
  CHECK(back->canary_users == rules.canary_users);
  CHECK(back->tenant_pools == rules.tenant_pools);
  CHECK(back->max_load == 900);
  CHECK(back->max_answers == 2);
  CHECK(back->region_cidrs.empty());  // regions stay the config's
  CHECK(RulesJson(*back) == RulesJson(rules));
  // Left out: the defaults.
  auto empty = ParseRulesJson("{}");
  REQUIRE(empty.ok());
  CHECK(RulesJson(*empty) == RulesJson(RouteRules{}));
  const std::pair<const char*, const char*> bad[] = {
      {"", "bad_json"},
      {"[]", "bad_json"},
      {R"({"canary_percent":-0.5})", "canary_percent"},
      {R"({"canary_percent":1e400})", "bad_json"},
      {R"({"canary_tag":"a\u0000b"})", "canary_tag"},
      {R"({"canary_users":["a/b","c"]})", "canary_users"},
      {R"({"tenant_pools":{"t":""}})", "tenant_pools"},
      {R"({"max_answers":65})", "max_answers"},
      {R"({"max_answers":2.5})", "max_answers"},
      {R"({"extra":1})", "unknown field 'extra'"},
  };
  for (const auto& [text, named] : bad) {
    auto r = ParseRulesJson(text);
    REQUIRE_MESSAGE(!r.ok(), text);
    CHECK_MESSAGE(r.status().code() == Code::kBadRequest, text);
    const std::string said =
        std::string(r.status().error()) + " " + std::string(r.status().message());
    CHECK_MESSAGE(said.find(named) != std::string::npos, text << " -> " << said);
  }
}

}  // namespace
}  // namespace im::internal
