// GET /v1/route's hardening (the per-address bucket, the registry cache and its invalidation by
// drains) and the routing rules set by command (GET/PUT /v1/admin/routing), against real imd
// processes on a real Redis on loopback.
#if defined(IMD_PATH) && IM_WITH_REDIS

#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "route/route_rules.h"
#include "store/redis/redis_client.h"
#include "support/http.h"
#include "support/redis_commandstats.h"
#include "support/redis_server.h"
#include "support/route_nodes.h"
#include "support/wait_until.h"

namespace {

using im::test::WaitUntil;
using namespace im::test::route;  // NOLINT: the helpers of these tests

// One GET /v1/route from local address `from`: the status, and the whole response text.
std::string RouteFrom(uint16_t port, const std::string& from, const std::string& user) {
  return im::test::HttpRoundTrip(port,
                                 "GET /v1/route?user=" + user + " HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                 "Connection: close\r\n\r\n",
                                 from);
}

int StatusOf(const std::string& response) {
  return response.size() > 12 ? std::stoi(response.substr(9, 3)) : 0;
}

double Metric(uint16_t port, const std::string& name) {
  std::map<std::string, double> m;
  REQUIRE(im::test::ScrapeMetrics(port, &m));
  auto it = m.find(name);
  return it == m.end() ? -1 : it->second;
}

bool Names(const std::vector<std::string>& ids, const std::string& id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

TEST_CASE("route hardening: a flood from one address gets 429, another address is served") {
  im::test::RedisServer redis;
  Nodes cluster;
  cluster.Start("n0", 0, redis.url(), "",
                "[limits]\nroute_address_rate = 1\nroute_address_burst = 5\n");
  const uint16_t port = cluster.HttpPort(0);
  int ok = 0, limited = 0;
  std::string refusal;
  for (int i = 0; i < 30; ++i) {
    const std::string r = RouteFrom(port, "127.0.0.3", "u" + std::to_string(i));
    const int status = StatusOf(r);
    if (status == 200) ++ok;
    if (status == 429) {
      ++limited;
      refusal = r;
    }
  }
  // The burst passes (a token or two more may refill during the flood), the rest is refused.
  CHECK(ok >= 5);
  CHECK(ok <= 8);
  CHECK(limited == 30 - ok);
  REQUIRE(!refusal.empty());
  CHECK(refusal.find("\"error\":\"rate_limited\"") != std::string::npos);
  CHECK(refusal.find("\"retry_after_ms\":") != std::string::npos);
  CHECK(refusal.find("Retry-After: ") != std::string::npos);
  // Another address has a bucket of its own.
  const std::string other = RouteFrom(port, "127.0.0.4", "someone");
  CHECK_MESSAGE(StatusOf(other) == 200, other);
  CHECK(Metric(port, "im_route_requests_total") == 31);
  CHECK(Metric(port, "im_rate_limited_total{limit=\"route_address\"}") == limited);
}

TEST_CASE("route hardening: answers come from a cache - a drain empties every node's at once") {
  im::test::RedisServer redis;
  Nodes cluster;
  // A cache far longer than the test's waits: a node that answers without the drained node
  // did so because the drain reached its cache, not because the cache ran out.
  const std::string rules = "[routing]\ncache_ms = 30000\nrebalance_interval_ms = 60000\n";
  for (int n = 0; n < 3; ++n) {
    cluster.Start("n" + std::to_string(n), n, redis.url(), "drain_exit = false", rules);
  }
  std::map<std::string, std::vector<std::string>> before;
  for (int i = 0; i < 30; ++i) {
    const std::string q = "user=s" + std::to_string(i);
    before[q] = Route(cluster.HttpPort(0), q);
    REQUIRE(before[q].size() == 3);  // every node started before the first answer
    for (size_t n = 1; n < 3; ++n) CHECK(Route(cluster.HttpPort(n), q) == before[q]);
  }

  // 300 answers from three nodes cost no registry read in Redis (heartbeats run meanwhile).
  im::RedisOptions ro;
  ro.url = redis.url();
  auto client = im::internal::RedisClient::Create(ro);
  REQUIRE(client.ok());
  auto calls0 = im::test::RedisCommandCalls(**client);
  for (int i = 0; i < 300; ++i) {
    CHECK(Route(cluster.HttpPort(i % 3), "user=f" + std::to_string(i)).size() == 3);
  }
  auto calls1 = im::test::RedisCommandCalls(**client);
  CHECK(calls1["zrange"] == calls0["zrange"]);
  CHECK(calls1["hmget"] == calls0["hmget"]);

  // Drain n1 through n0: n0 answers without it at once; n1 and n2 as soon as the drain's
  // message reaches them (well before their caches run out).
  im::test::HttpResult drained =
      im::test::Http(cluster.HttpPort(0), "POST", "/v1/admin/nodes/n1/drain", "", kOperatorKey);
  REQUIRE_MESSAGE(drained.status == 200, drained.text);
  for (const auto& [q, old] : before) CHECK(!Names(Route(cluster.HttpPort(0), q), "n1"));
  for (size_t n = 1; n < 3; ++n) {
    CHECK(WaitUntil([&] {
      for (const auto& [q, old] : before) {
        if (Names(Route(cluster.HttpPort(n), q), "n1")) return false;
      }
      return true;
    }, 5000));
  }
  // Users of the other nodes keep their first node.
  for (const auto& [q, old] : before) {
    for (size_t n = 0; n < 3; ++n) {
      const auto now = Route(cluster.HttpPort(n), q);
      REQUIRE(now.size() == 2);
      if (old[0] != "n1") CHECK(now[0] == old[0]);
    }
  }
}

TEST_CASE("route hardening: a node stopped by SIGTERM leaves the other nodes' cached answers") {
  im::test::RedisServer redis;
  Nodes cluster;
  const std::string rules = "[routing]\ncache_ms = 30000\nrebalance_interval_ms = 60000\n";
  for (int n = 0; n < 3; ++n) cluster.Start("n" + std::to_string(n), n, redis.url(), "", rules);
  for (size_t n = 0; n < 3; ++n) REQUIRE(Route(cluster.HttpPort(n), "user=a").size() == 3);
  cluster.nodes[1].process->Signal(SIGTERM);
  CHECK(cluster.nodes[1].process->Wait(60000) == 0);
  for (size_t n : {0, 2}) {
    CHECK(WaitUntil([&] {
      for (int i = 0; i < 20; ++i) {
        const auto ids = Route(cluster.HttpPort(n), "user=b" + std::to_string(i));
        if (ids.size() != 2 || Names(ids, "n1")) return false;
      }
      return true;
    }, 5000));
  }
}

TEST_CASE("route admin: GET/PUT /v1/admin/routing - operator only, checked, bad input named") {
  im::test::RedisServer redis;
  Nodes cluster;
  cluster.Start("n0", 0, redis.url(), "", "[routing]\ncanary_percent = 5\n");
  const uint16_t port = cluster.HttpPort(0);
  const std::string path = "/v1/admin/routing";
  CheckOperatorOnly(cluster, port, "GET", path);
  CheckOperatorOnly(cluster, port, "PUT", path);
  CHECK(im::test::Http(port, "DELETE", path, "", kOperatorKey).status == 405);
  im::test::HttpResult got = im::test::Http(port, "GET", path, "", kOperatorKey);
  REQUIRE_MESSAGE(got.status == 200, got.text);
  CHECK(got.body["canary_percent"].GetDouble() == 5);
  CHECK(got.Str("canary_tag") == "canary");

  const std::pair<const char*, const char*> bad[] = {
      {"", "bad_json"},
      {"[1]", "bad_json"},
      {"{\"canary_percent\":", "bad_json"},
      {R"({"canary_percent":101})", "bad_request"},
      {R"({"canary_percent":"10"})", "bad_request"},
      {R"({"canary_tenants":"acme"})", "bad_request"},
      {R"({"canary_tenants":[""]})", "bad_request"},
      {R"({"canary_users":["nobody"]})", "bad_request"},
      {R"({"tenant_pools":{"big":3}})", "bad_request"},
      {R"({"max_answers":0})", "bad_request"},
      {R"({"max_load":-1})", "bad_request"},
      {R"({"canary_percnt":10})", "bad_request"},
  };
  for (const auto& [body, error] : bad) {
    im::test::HttpResult r = im::test::Http(port, "PUT", path, body, kOperatorKey);
    CHECK_MESSAGE(r.status == 400, body << " -> " << r.text);
    CHECK_MESSAGE(r.Str("error") == error, body << " -> " << r.text);
  }
  // Nothing bad was applied.
  CHECK(im::test::Http(port, "GET", path, "", kOperatorKey).text == got.text);

  im::test::HttpResult put = im::test::Http(
      port, "PUT", path,
      R"({"canary_percent":12.5,"canary_tenants":["acme"],"canary_users":["default/bob"],)"
      R"("tenant_pools":{"big":"p1"},"max_answers":2})",
      kOperatorKey);
  REQUIRE_MESSAGE(put.status == 200, put.text);
  CHECK(put.body["canary_percent"].GetDouble() == 12.5);
  CHECK(put.body["canary_tenants"][0].GetString() == std::string("acme"));
  CHECK(put.body["canary_users"][0].GetString() == std::string("default/bob"));
  CHECK(put.body["tenant_pools"]["big"].GetString() == std::string("p1"));
  CHECK(put.body["max_answers"].GetInt() == 2);
  CHECK(im::test::Http(port, "GET", path, "", kOperatorKey).text == put.text);
}

// Two stable nodes and a canary: PUT a percent rule on one node; every node's answers follow
// it, the users it moves get a drain kick and reconnect on the canary, the rest stay, and every
// message acked meanwhile is received live once, in order, and stored once.
TEST_CASE("route admin: a canary percent PUT on one node moves users on every node by drains") {
  im::test::RedisServer redis{im::test::RedisServerOptions{"always", {}}};
  Nodes cluster;
  const std::string fast = "drain_kicks_per_second = 20";
  const std::string rules = "[routing]\nrebalance_interval_ms = 300\n";
  cluster.Start("s0", 0, redis.url(), fast, rules);
  cluster.Start("s1", 1, redis.url(), fast, rules);
  cluster.Start("c0", 2, redis.url(), fast + "\nversion_tag = \"canary\"", rules);
  constexpr int kUsers = 12;
  std::vector<std::unique_ptr<RoutedUser>> users;
  for (int i = 0; i < kUsers; ++i) {
    users.push_back(RoutedLogin(cluster, "m" + std::to_string(i), i % 3));
    CHECK(users.back()->node != "c0");  // canary_percent 0
  }
  auto side = [](const std::string& user) {
    return im::internal::CanaryBucket("default", user) < 5000;  // true: the canary
  };
  int movers = 0;
  for (int i = 0; i < kUsers; ++i) movers += side("m" + std::to_string(i)) ? 1 : 0;
  REQUIRE(movers > 0);
  REQUIRE(movers < kUsers);
  Traffic traffic(users, "m");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));

  im::test::HttpResult put = im::test::Http(cluster.HttpPort(1), "PUT", "/v1/admin/routing",
                                            R"({"canary_percent":50})", kOperatorKey);
  REQUIRE_MESSAGE(put.status == 200, put.text);
  // Every node answers by the new rule, the same for each user.
  CHECK(WaitUntil([&] {
    for (size_t n = 0; n < 3; ++n) {
      for (int i = 0; i < 40; ++i) {
        const std::string u = "r" + std::to_string(i);
        const auto ids = Route(cluster.HttpPort(n), "user=" + u);
        if (ids.empty() || (ids == std::vector<std::string>{"c0"}) != side(u)) return false;
      }
    }
    return true;
  }, 10000));
  for (size_t n = 0; n < 3; ++n) {
    im::test::HttpResult got =
        im::test::Http(cluster.HttpPort(n), "GET", "/v1/admin/routing", "", kOperatorKey);
    CHECK(got.text == put.text);
  }
  // The movers reconnect on the canary, the others stay on a stable node.
  CHECK(WaitUntil([&] {
    for (int i = 0; i < kUsers; ++i) {
      std::lock_guard<std::mutex> lock(users[i]->mu);
      if ((users[i]->node == "c0") != side("m" + std::to_string(i))) return false;
    }
    return true;
  }, 60000));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  traffic.Stop();
  CHECK(traffic.failures.load() == 0);
  for (int i = 0; i < kUsers; ++i) {
    CHECK(users[i]->drain_kicks.load() == (side("m" + std::to_string(i)) ? 1 : 0));
    CHECK(!users[i]->closed.load());
    CHECK(users[i]->client->Ping().ok());
  }
  traffic.CheckReceivedLiveOnce();
  CHECK(traffic.CheckDeliveredOnce() > 50);
}

}  // namespace

#endif  // IMD_PATH && IM_WITH_REDIS
