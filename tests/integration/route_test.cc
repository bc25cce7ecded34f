// GET /v1/route, canary rules and drain by command, against real imd processes (and a real
// Redis for the cluster cases) on loopback.
#ifdef IMD_PATH

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "im/auth.h"
#include "im/client.h"
#include "route/route_rules.h"
#include "support/child_process.h"
#include "support/http.h"
#include "support/imd_process.h"
#include "support/temp_dir.h"
#include "support/wait_until.h"
#if IM_WITH_REDIS
#include "support/redis_server.h"
#endif

#include "support/route_nodes.h"

namespace {

using im::test::WaitUntil;
using namespace im::test::route;  // NOLINT: the helpers of these tests

#if IM_WITH_REDIS

TEST_CASE("route: two stable nodes and a canary - percentage, tenant whitelist, user list") {
  im::test::RedisServer redis;
  Nodes cluster;
  // A user outside the 10% by hash, to be listed by name.
  std::string listed;
  for (int i = 0; listed.empty(); ++i) {
    const std::string u = "listed" + std::to_string(i);
    if (im::internal::CanaryBucket("default", u) >= 1000) listed = u;
  }
  const std::string rules = "[routing]\ncanary_percent = 10\ncanary_tenants = [\"acme\"]\n"
                            "canary_users = [\"default/" + listed + "\"]\n";
  cluster.Start("s0", 0, redis.url(), "", rules);
  cluster.Start("s1", 1, redis.url(), "", rules);
  cluster.Start("c0", 2, redis.url(), "version_tag = \"canary\"", rules);

  // Every node lists all three before the counts start.
  REQUIRE(WaitUntil([&] {
    for (size_t n = 0; n < 3; ++n) {
      std::set<std::string> seen;
      for (int i = 0; i < 40; ++i) {
        for (auto& id : Route(cluster.HttpPort(n), "user=w" + std::to_string(i))) seen.insert(id);
      }
      if (seen.size() != 3) return false;
    }
    return true;
  }, 20000));

  std::map<std::string, std::string> first;  // user -> first node
  int canary = 0;
  std::set<std::string> stable_nodes;
  for (int i = 0; i < 1000; ++i) {
    const std::string user = "u" + std::to_string(i);
    std::vector<std::string> ids = Route(cluster.HttpPort(i % 3), "tenant=default&user=" + user);
    REQUIRE(!ids.empty());
    const bool wants = im::internal::CanaryBucket("default", user) < 1000;
    if (ids[0] == "c0") ++canary;
    // Each side is answered alone: a canary user gets only the canary, a stable one never.
    CHECK((ids == std::vector<std::string>{"c0"}) == wants);
    if (!wants) {
      CHECK(std::find(ids.begin(), ids.end(), "c0") == ids.end());
      stable_nodes.insert(ids[0]);
    }
    first[user] = ids[0];
  }
  CHECK(canary >= 60);
  CHECK(canary <= 140);
  CHECK(stable_nodes == std::set<std::string>{"s0", "s1"});  // both stable nodes take users
  // The same users come back to the same first node, whichever node answers: all 1,000.
  for (int i = 0; i < 1000; ++i) {
    const std::string user = "u" + std::to_string(i);
    auto ids = Route(cluster.HttpPort((i + 1) % 3), "user=" + user);
    REQUIRE(!ids.empty());
    CHECK(ids[0] == first[user]);
  }
  // A whitelisted tenant goes to the canary entirely; a listed user too.
  for (int i = 0; i < 50; ++i) {
    CHECK(Route(cluster.HttpPort(i % 3), "tenant=acme&user=a" + std::to_string(i)) ==
          std::vector<std::string>{"c0"});
  }
  CHECK(Route(cluster.HttpPort(0), "user=" + listed) == std::vector<std::string>{"c0"});

  // A client with route_url lands where the route says.
  im::ClientOptions o;
  o.url = cluster.nodes[0].tcp_url;
  o.route_url = cluster.RouteUrl(1, "a1", "acme");
  im::Client client(o);
  REQUIRE(client.Connect().ok());
  auto login = client.Login(cluster.Token("a1", "acme"));
  REQUIRE_MESSAGE(login.ok(), login.status().ToString());
  CHECK(login->node == "c0");
}

TEST_CASE("route: bad input, a drain leaves the answers of every node, stable choice") {
  im::test::RedisServer redis;
  Nodes cluster;
  for (int n = 0; n < 3; ++n) {
    // drain_exit false: a drained node stays up, so the test can look at it. A route cache of
    // 10 s: the drain below must reach the other nodes by its publication, not by expiry.
    cluster.Start("n" + std::to_string(n), n, redis.url(), "drain_exit = false",
                  "[routing]\ncache_ms = 10000\n");
  }
  const uint16_t port = cluster.HttpPort(0);
  REQUIRE(WaitUntil([&] {
    std::set<std::string> seen;
    for (int i = 0; i < 40; ++i) {
      for (auto& id : Route(port, "user=w" + std::to_string(i))) seen.insert(id);
    }
    return seen.size() == 3;
  }, 20000));

  // Bad parameters: 400 with the protocol's names; a wrong method 405.
  for (const char* q : {"", "tenant=default", "user=", "user=a%01b", "user=ok&region=a%20b",
                        "user=%zz",
                        "user=ok&tenant=0123456789012345678901234567890123456789012345678901234"
                        "5678901234567890"}) {
    im::test::HttpResult r = im::test::Http(port, "GET", std::string("/v1/route?") + q);
    CHECK_MESSAGE(r.status == 400, q);
    CHECK_MESSAGE(r.Str("error") == "bad_request", q << " " << r.text);
  }
  CHECK(im::test::Http(port, "POST", "/v1/route?user=a", "{}").status == 405);
  // The answer names public gateway addresses only.
  im::test::HttpResult ok = im::test::Http(port, "GET", "/v1/route?user=alice");
  REQUIRE(ok.status == 200);
  const auto& g0 = ok.body["gateways"][0];
  CHECK(std::string(g0["tcp"].GetString()).rfind("tcp://127.0.0.1:", 0) == 0);
  CHECK(std::string(g0["ws"].GetString()).rfind("ws://127.0.0.1:", 0) == 0);
  CHECK(g0.MemberCount() == 3);  // node, tcp, ws
  CHECK(ok.body["gateways"].Size() == 3);

  // Stable: the same user, the same order, from every node, every time.
  std::map<std::string, std::vector<std::string>> before;
  for (int i = 0; i < 60; ++i) {
    const std::string u = "user=s" + std::to_string(i);
    before[u] = Route(port, u);
    for (size_t n = 1; n < 3; ++n) CHECK(Route(cluster.HttpPort(n), u) == before[u]);
  }

  // The drain command: the operator's alone (not a tenant's admin), any node accepts it for
  // any node.
  const std::string drain = "/v1/admin/nodes/n1/drain";
  CheckOperatorOnly(cluster, port, "POST", drain);
  im::test::HttpResult unknown =
      im::test::Http(port, "POST", "/v1/admin/nodes/nope/drain", "", kOperatorKey);
  CHECK(unknown.status == 404);
  CHECK(unknown.Str("error") == "not_found");
  im::test::HttpResult drained = im::test::Http(port, "POST", drain, "", kOperatorKey);
  REQUIRE_MESSAGE(drained.status == 200, drained.text);
  // No answer names n1: at once from the node that took the command (it dropped its own
  // cache), and from the others as soon as the published drain reaches them, well before the
  // lists they cached during the loop above (10 s) run out.
  auto leaves_n1 = [&](size_t n) {
    for (const auto& [q, old] : before) {
      const auto now = Route(cluster.HttpPort(n), q);
      if (now.empty() || std::find(now.begin(), now.end(), "n1") != now.end()) return false;
    }
    return true;
  };
  CHECK(leaves_n1(0));
  for (size_t n = 1; n < 3; ++n) CHECK(WaitUntil([&] { return leaves_n1(n); }, 4000));
  // Users of n0 and n2 keep their first node.
  for (const auto& [q, old] : before) {
    for (size_t n = 0; n < 3; ++n) {
      const auto now = Route(cluster.HttpPort(n), q);
      CHECK(std::find(now.begin(), now.end(), "n1") == now.end());
      REQUIRE(!now.empty());
      if (old[0] != "n1") CHECK(now[0] == old[0]);
    }
  }
  // The drained node refuses readiness (and stays up: drain_exit = false).
  CHECK(WaitUntil([&] {
    return im::test::Http(cluster.HttpPort(1), "GET", "/readyz").status == 503;
  }, 20000));
}

// Under 1:1 and group traffic, the two stable nodes are drained by command one after the other;
// clients that connect through route_url end on the canary node; every acked message was
// received live (pushes and the clients' own resyncs across the drains and reconnects) by each
// of its receivers exactly once and in order per sender, and is in their inboxes exactly once.
TEST_CASE("route: drain the stable nodes one after the other under traffic, nothing lost") {
  im::test::RedisServer redis{im::test::RedisServerOptions{"always", {}}};
  Nodes cluster;
  const std::string fast = "drain_kicks_per_second = 20\nheartbeat_ms = 500\nnode_ttl_ms = 3000";
  cluster.Start("s0", 0, redis.url(), fast, "");
  cluster.Start("s1", 1, redis.url(), fast, "");
  cluster.Start("c0", 2, redis.url(), fast + "\nversion_tag = \"canary\"", "");
  constexpr int kUsers = 12;
  std::vector<std::unique_ptr<RoutedUser>> users;
  for (int i = 0; i < kUsers; ++i) users.push_back(RoutedLogin(cluster, "p" + std::to_string(i), 2));
  // Canary percent 0: everyone starts on a stable node.
  for (auto& u : users) CHECK(u->node != "c0");
  std::string members;
  for (int i = 1; i < kUsers; ++i) members += (i > 1 ? ",\"p" : "\"p") + std::to_string(i) + "\"";
  REQUIRE(users[0]->client->Request("group.create",
                                    R"({"gid":"g","name":"g","members":[)" + members + "]}")
              .ok());

  Traffic traffic(users, "p", "g");
  auto on = [&](const std::string& node) {
    int n = 0;
    for (auto& u : users) {
      std::lock_guard<std::mutex> lock(u->mu);
      n += u->node == node ? 1 : 0;
    }
    return n;
  };
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  for (int drained = 0; drained < 2; ++drained) {
    const std::string id = "s" + std::to_string(drained);
    // Sent to the canary node: any node accepts the command for any node.
    REQUIRE(im::test::Http(cluster.HttpPort(2), "POST", "/v1/admin/nodes/" + id + "/drain", "",
                           kOperatorKey)
                .status == 200);
    // The node kicks its sessions, empties, and exits 0 (drain_exit defaults to true).
    CHECK(cluster.nodes[drained].process->Wait(60000) == 0);
    CHECK(WaitUntil([&] { return on(id) == 0; }, 60000));
  }
  CHECK(WaitUntil([&] { return on("c0") == kUsers; }, 60000));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  traffic.Stop();
  CHECK(traffic.failures.load() == 0);
  // Every client ends on a live node: connected (a ping answers) on the canary node.
  for (auto& u : users) {
    CHECK(!u->closed.load());
    CHECK(u->client->Ping().ok());
  }
  // Every acked message reached its receivers live exactly once, in order per sender...
  traffic.CheckReceivedLiveOnce();
  // ...and is in their inboxes exactly once.
  const size_t total = traffic.CheckDeliveredOnce();
  CHECK(total > 100);
}

// A stable node s0 and a canary node c0 on `redis_url`, canary_percent 0 (a SIGHUP may change
// that line), rebalancing every 300 ms and kicking 20 a second.
void StartStableAndCanary(Nodes& cluster, const std::string& redis_url) {
  const std::string rules = "[routing]\ncanary_percent = 0\nrebalance_interval_ms = 300\n";
  cluster.Start("s0", 0, redis_url, "drain_kicks_per_second = 20", rules);
  cluster.Start("c0", 1, redis_url, "drain_kicks_per_second = 20\nversion_tag = \"canary\"",
                rules);
}

// A changed canary rule moves users by drain kicks: they reconnect through route_url and land
// on their new side; the others stay where they are, and nobody is closed for good.
TEST_CASE("route: raising canary_percent moves those users to the canary by drain kicks") {
  im::test::RedisServer redis;
  Nodes cluster;
  StartStableAndCanary(cluster, redis.url());
  constexpr int kUsers = 16;
  std::vector<std::unique_ptr<RoutedUser>> users;
  for (int i = 0; i < kUsers; ++i) {
    users.push_back(RoutedLogin(cluster, "m" + std::to_string(i), 0));
    CHECK(users.back()->node == "s0");
  }
  cluster.Reload(0, "canary_percent = 0", "canary_percent = 50");
  cluster.Reload(1, "canary_percent = 0", "canary_percent = 50");
  auto side = [](const std::string& user) {
    return im::internal::CanaryBucket("default", user) < 5000 ? "c0" : "s0";
  };
  int movers = 0;
  for (int i = 0; i < kUsers; ++i) movers += side("m" + std::to_string(i)) == std::string("c0");
  REQUIRE(movers > 0);
  REQUIRE(movers < kUsers);
  CHECK(WaitUntil([&] {
    for (int i = 0; i < kUsers; ++i) {
      std::lock_guard<std::mutex> lock(users[i]->mu);
      if (users[i]->node != side("m" + std::to_string(i))) return false;
    }
    return true;
  }, 60000));
  for (int i = 0; i < kUsers; ++i) {
    const bool mover = side("m" + std::to_string(i)) == std::string("c0");
    CHECK(users[i]->drain_kicks.load() == (mover ? 1 : 0));
    CHECK(!users[i]->closed.load());
    CHECK(users[i]->client->Ping().ok());
  }
}

// A whitelist rule (not a percentage) changed by SIGHUP: the tenant put on canary_tenants moves
// to the canary by drain kicks, users of another tenant stay, and nobody is closed for good.
TEST_CASE("route: adding a tenant to canary_tenants moves its users to the canary by drains") {
  im::test::RedisServer redis;
  Nodes cluster;
  StartStableAndCanary(cluster, redis.url());
  constexpr int kPerTenant = 6;
  std::vector<std::unique_ptr<RoutedUser>> acme, others;
  for (int i = 0; i < kPerTenant; ++i) {
    acme.push_back(RoutedLogin(cluster, "w" + std::to_string(i), 0, "acme"));
    others.push_back(RoutedLogin(cluster, "w" + std::to_string(i), 0, "default"));
    CHECK(acme.back()->node == "s0");
    CHECK(others.back()->node == "s0");
  }
  const std::string whitelisted = "canary_percent = 0\ncanary_tenants = [\"acme\"]";
  cluster.Reload(0, "canary_percent = 0", whitelisted);
  cluster.Reload(1, "canary_percent = 0", whitelisted);
  CHECK(WaitUntil([&] {
    for (int i = 0; i < kPerTenant; ++i) {
      std::lock_guard<std::mutex> lock(acme[i]->mu);
      if (acme[i]->node != "c0") return false;
    }
    return true;
  }, 60000));
  // A rebalance or two more: nobody of the other tenant is moved.
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  for (int i = 0; i < kPerTenant; ++i) {
    CHECK(acme[i]->drain_kicks.load() == 1);
    CHECK(others[i]->drain_kicks.load() == 0);
    {
      std::lock_guard<std::mutex> lock(others[i]->mu);
      CHECK(others[i]->node == "s0");
    }
    for (RoutedUser* u : {acme[i].get(), others[i].get()}) {
      CHECK(!u->closed.load());
      CHECK(u->client->Ping().ok());
    }
  }
  // The route answers follow the whitelist for new users too.
  CHECK(Route(cluster.HttpPort(0), "tenant=acme&user=new") == std::vector<std::string>{"c0"});
  CHECK(Route(cluster.HttpPort(1), "tenant=default&user=new") == std::vector<std::string>{"s0"});
}

// A node killed with SIGKILL does not remove its registry entry: it leaves the route answers
// once the entry expires (node_ttl_ms) and the answer cache (cache_ms) has run out.
TEST_CASE("route: a node killed with SIGKILL leaves the answers when its registry entry expires") {
  im::test::RedisServer redis;
  Nodes cluster;
  const std::string ttl = "heartbeat_ms = 300\nnode_ttl_ms = 1500";
  const std::string rules = "[routing]\ncache_ms = 200\n";
  for (int n = 0; n < 3; ++n) cluster.Start("n" + std::to_string(n), n, redis.url(), ttl, rules);
  std::map<std::string, std::vector<std::string>> before;
  REQUIRE(WaitUntil([&] {
    for (int i = 0; i < 30; ++i) {
      const std::string q = "user=k" + std::to_string(i);
      before[q] = Route(cluster.HttpPort(0), q);
      if (before[q].size() != 3) return false;
    }
    return true;
  }, 20000));
  cluster.nodes[1].process->Signal(SIGKILL);
  REQUIRE(cluster.nodes[1].process->Wait(20000) == 128 + SIGKILL);
  // Gone from every live node's answers within the TTL and the cache (and scheduling slack).
  for (size_t n : {0, 2}) {
    CHECK(WaitUntil([&] {
      for (const auto& [q, old] : before) {
        const auto now = Route(cluster.HttpPort(n), q);
        if (now.size() != 2 || std::find(now.begin(), now.end(), "n1") != now.end()) {
          return false;
        }
      }
      return true;
    }, 30000));
  }
  // Users whose first node lives keep it; n1's users go to a live node, the same from each.
  for (const auto& [q, old] : before) {
    const auto a = Route(cluster.HttpPort(0), q), b = Route(cluster.HttpPort(2), q);
    CHECK(a == b);
    REQUIRE(!a.empty());
    if (old[0] != "n1") CHECK(a[0] == old[0]);
  }
}

TEST_CASE("route: imd refuses bad routing and cluster routing keys, naming the key") {
  im::test::TempDir dir;
  const std::pair<const char*, const char*> cases[] = {
      {"[routing]\ncanary_percent = 101\n", "routing.canary_percent"},
      {"[routing]\ncanary_percent = -1\n", "routing.canary_percent"},
      {"[routing]\nmax_answers = 0\n", "routing.max_answers"},
      {"[routing]\ncanary_users = [\"nobody\"]\n", "routing.canary_users"},
      {"[routing]\ncanary_tenants = [1]\n", "routing.canary_tenants"},
      {"[routing.regions]\neu = [\"10.0.0.0/33\"]\n", "routing.regions.eu"},
      {"[routing.tenant_pools]\nbig = 3\n", "routing.tenant_pools.big"},
      {"[routing]\ncanary_percnt = 3\n", "did you mean routing.canary_percent"},
      {"[cluster]\nweight = 0\n", "cluster.weight"},
  };
  for (const auto& [toml, named] : cases) {
    auto args = im::test::WriteImdConfig(dir.path(), toml);
    im::test::ChildProcess p({"/bin/sh", "-c", std::string(IMD_PATH) + " --data " + dir.path() +
                                                   " --config " + args[1] +
                                                   " --tcp 127.0.0.1:0 --http 127.0.0.1:0 2>&1"});
    const std::string line = p.WaitForLine("imd:", 20000);
    const int code = p.Wait(20000);
    CHECK_MESSAGE(code == 1, toml);
    CHECK_MESSAGE(line.find(named) != std::string::npos, toml << " -> " << line);
  }
}

#endif  // IM_WITH_REDIS

// Logged-in clients of one node (no reconnect) and when each got its drain kick.
struct KickClock {
  std::mutex mu;
  std::vector<std::chrono::steady_clock::time_point> kicks;
  std::vector<std::unique_ptr<im::Client>> clients;

  void Login(Nodes& nodes, int count) {
    for (int i = 0; i < count; ++i) {
      im::ClientOptions o;
      o.url = nodes.nodes[0].tcp_url;
      o.auto_reconnect = false;
      auto c = std::make_unique<im::Client>(o);
      c->OnKicked([this](const std::string& reason) {
        std::lock_guard<std::mutex> lock(mu);
        if (reason == "drain") kicks.push_back(std::chrono::steady_clock::now());
      });
      REQUIRE(c->Connect().ok());
      auto login = c->Login(nodes.Token("k" + std::to_string(i)));
      REQUIRE_MESSAGE(login.ok(), login.status().ToString());
      clients.push_back(std::move(c));
    }
  }

  // Every client kicked, the first to the last at least `min_spread_ms` apart, and in any one
  // second at most `rate` plus a batch or two of scheduling slack.
  void CheckRate(size_t rate, int64_t min_spread_ms) {
    REQUIRE(WaitUntil([&] {
      std::lock_guard<std::mutex> lock(mu);
      return kicks.size() == clients.size();
    }, 60000));
    std::lock_guard<std::mutex> lock(mu);
    std::sort(kicks.begin(), kicks.end());
    CHECK(std::chrono::duration_cast<std::chrono::milliseconds>(kicks.back() - kicks.front())
              .count() >= min_spread_ms);
    for (size_t i = 0; i < kicks.size(); ++i) {
      size_t j = i;
      while (j < kicks.size() && kicks[j] - kicks[i] < std::chrono::seconds(1)) ++j;
      CHECK_MESSAGE(j - i <= rate + rate * 3 / 10, "kicks in one second from #" << i << ": "
                                                                                 << (j - i));
    }
  }
};

// Single node: the drain command marks this node; the kicks go out in batches at the
// configured rate, logins are refused meanwhile, and the node idles when empty.
TEST_CASE("route: drain kicks are batched at drain_kicks_per_second") {
  Nodes one;
  one.Start("solo", 0, "", "drain_kicks_per_second = 50\ndrain_exit = false", "");
  const uint16_t port = one.HttpPort(0);
  // Single-node mode: the route answers this node.
  CHECK(Route(port, "user=x") == std::vector<std::string>{"solo"});
  KickClock clock;
  clock.Login(one, 200);
  REQUIRE(im::test::Http(port, "POST", "/v1/admin/nodes/solo/drain", "", kOperatorKey).status ==
          200);
  // 200 kicks at 50 a second (batches of 5 every 100 ms) take at least about 4 s.
  clock.CheckRate(50, 3000);
  // Draining: readiness 503, a new login 503 draining, the route answers nobody; the node idles.
  CHECK(im::test::Http(port, "GET", "/readyz").status == 503);
  im::ClientOptions o;
  o.url = one.nodes[0].tcp_url;
  o.auto_reconnect = false;
  im::Client late(o);
  REQUIRE(late.Connect().ok());
  auto refused = late.Login(one.Token("late"));
  REQUIRE(!refused.ok());
  CHECK(refused.status().error() == "draining");
  int status = 0;
  CHECK(Route(port, "user=x", &status).empty());
  CHECK(status == 503);
  CHECK(one.nodes[0].process->Wait(500) == -1);  // still running
}

// SIGTERM drains with the same batched kicks (after the queued sends are stored), then exits 0.
TEST_CASE("route: SIGTERM kicks in batches at drain_kicks_per_second too") {
  Nodes one;
  one.Start("solo", 0, "", "drain_kicks_per_second = 40", "");
  KickClock clock;
  clock.Login(one, 100);
  one.nodes[0].process->Signal(SIGTERM);
  // 100 kicks at 40 a second (batches of 4 every 100 ms) take at least about 2.5 s.
  clock.CheckRate(40, 1800);
  CHECK(one.nodes[0].process->Wait(60000) == 0);
}

}  // namespace

#endif  // IMD_PATH
