// The node registry (lib/store/redis/node_registry.h) against a redis-server of the test's own:
// registration, heartbeat, expiry of a node that stops, one id per live node, deregistration.

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <memory>
#include <string>
#include <vector>

#include "store/redis/node_registry.h"
#include "store/redis/redis_client.h"
#include "support/redis_server.h"
#include "support/wait_until.h"

namespace im::internal {
namespace {

using im::test::RedisServer;
using im::test::WaitUntil;

std::shared_ptr<RedisClient> ClientFor(const RedisServer& server) {
  RedisOptions options;
  options.url = server.url();
  options.connect_timeout_ms = 2000;
  options.command_timeout_ms = 2000;
  Result<std::shared_ptr<RedisClient>> client = RedisClient::Create(options);
  REQUIRE(client.ok());
  return std::move(client).value();
}

NodeInfo Node(const std::string& id) {
  NodeInfo node;
  node.id = id;
  node.tcp_address = "10.0.0.1:7001";
  node.ws_address = "ws://10.0.0.1:7000/ws";
  node.version = "0.2.0";
  return node;
}

NodeRegistryOptions Fast() {
  NodeRegistryOptions options;
  options.ttl_ms = 2000;
  options.heartbeat_ms = 200;
  return options;
}

std::unique_ptr<RedisNodeRegistry> MustStart(std::shared_ptr<RedisClient> client, NodeInfo node,
                                             std::function<int64_t()> load = nullptr) {
  auto registry = RedisNodeRegistry::Start(std::move(client), std::move(node), Fast(), load);
  REQUIRE_MESSAGE(registry.ok(), registry.status().ToString());
  return std::move(registry).value();
}

std::vector<std::string> Ids(RedisNodeRegistry& registry) {
  Result<std::vector<NodeInfo>> nodes = registry.List();
  REQUIRE_MESSAGE(nodes.ok(), nodes.status().ToString());
  std::vector<std::string> ids;
  for (const NodeInfo& node : *nodes) ids.push_back(node.id);
  return ids;
}

TEST_CASE("Redis node registry: nodes are listed with their addresses and load") {
  RedisServer server;
  std::atomic<int64_t> load{7};
  auto a = MustStart(ClientFor(server), Node("node-a"), [&] { return load.load(); });
  auto b = MustStart(ClientFor(server), Node("node-b"));
  Result<std::vector<NodeInfo>> nodes = a->List();
  REQUIRE(nodes.ok());
  REQUIRE(nodes->size() == 2);
  const NodeInfo& first = (*nodes)[0];
  CHECK(first.id == "node-a");
  CHECK(first.tcp_address == "10.0.0.1:7001");
  CHECK(first.ws_address == "ws://10.0.0.1:7000/ws");
  CHECK(first.version == "0.2.0");
  CHECK(first.load == 7);
  CHECK(first.started_ms > 0);
  CHECK(first.heartbeat_ms >= first.started_ms);
  CHECK((*nodes)[1].id == "node-b");

  // Heartbeats carry the load of the moment, and keep the node listed past its TTL.
  load = 42;
  REQUIRE(WaitUntil([&] {
    Result<std::vector<NodeInfo>> now = b->List();
    return now.ok() && !now->empty() && (*now)[0].load == 42;
  }));
  CHECK(Ids(*b) == std::vector<std::string>{"node-a", "node-b"});

  CHECK(RedisNodeRegistry::Start(ClientFor(server), Node(""), Fast(), nullptr).status().code() ==
        Code::kBadRequest);
  NodeRegistryOptions slow = Fast();
  slow.heartbeat_ms = slow.ttl_ms;
  CHECK(RedisNodeRegistry::Start(ClientFor(server), Node("node-c"), slow, nullptr)
            .status()
            .code() == Code::kBadRequest);
}

TEST_CASE("Redis node registry: a node that stops heartbeating leaves within the TTL") {
  RedisServer server;
  auto a = MustStart(ClientFor(server), Node("node-a"));
  auto b = MustStart(ClientFor(server), Node("node-b"));
  a->StopHeartbeat();  // as if it died
  REQUIRE(WaitUntil([&] { return Ids(*b) == std::vector<std::string>{"node-b"}; }, 10000));
  // Its id is free again.
  auto again = MustStart(ClientFor(server), Node("node-a"));
  CHECK(Ids(*b) == std::vector<std::string>{"node-a", "node-b"});

  // A clean stop leaves at once.
  again.reset();
  CHECK(Ids(*b) == std::vector<std::string>{"node-b"});
}

TEST_CASE("Redis node registry: one live node per id") {
  RedisServer server;
  auto a = MustStart(ClientFor(server), Node("node-a"));
  auto taken = RedisNodeRegistry::Start(ClientFor(server), Node("node-a"), Fast(), nullptr);
  REQUIRE_FALSE(taken.ok());
  CHECK(taken.status().code() == Code::kConflict);
  CHECK(a->registered());

  // Another instance takes the id over once the entry is gone (here: deleted): the old one's
  // next heartbeat is refused, and it knows it is no longer registered.
  CHECK(server.Command({"DEL", "im:node:node-a"}) == ":1");
  auto successor = MustStart(ClientFor(server), Node("node-a"));
  REQUIRE(WaitUntil([&] { return !a->registered(); }, 5000));
  a.reset();  // must not deregister the successor
  CHECK(Ids(*successor) == std::vector<std::string>{"node-a"});
  CHECK(server.Command({"EXISTS", "im:node:node-a"}) == ":1");
}

TEST_CASE("Redis node registry: 503 while Redis is unreachable") {
  RedisServer server;
  std::shared_ptr<RedisClient> client = ClientFor(server);
  auto a = MustStart(client, Node("node-a"));
  server.Stop();
  Result<std::vector<NodeInfo>> down = a->List();
  REQUIRE_FALSE(down.ok());
  CHECK(down.status().code() == Code::kUnavailable);
  CHECK(RedisNodeRegistry::Start(client, Node("node-b"), Fast(), nullptr).status().code() ==
        Code::kUnavailable);
  server.Start();
  // The heartbeat registers it again by itself (the AOF may or may not have kept the entry).
  REQUIRE(WaitUntil([&] {
    Result<std::vector<NodeInfo>> nodes = a->List();
    return nodes.ok() && nodes->size() == 1;
  }));
}

TEST_CASE("node registry: routing attributes, and a draining mark any node sets and heartbeats keep") {
  RedisServer server;
  auto client = ClientFor(server);
  NodeInfo a = Node("a");
  a.tag = "canary";
  a.region = "eu";
  a.pool = "big";
  a.weight = 250;
  auto registry = MustStart(client, a);
  auto other = MustStart(client, Node("b"));
  CHECK(RedisNodeRegistry::MarkDraining(*client, "nobody").code() == Code::kNotFound);
  CHECK(RedisNodeRegistry::MarkDraining(*client, "").code() == Code::kBadRequest);
  CHECK(!*registry->Draining());
  // Node b marks node a: a sees it, every List shows it, and a's heartbeats do not clear it.
  REQUIRE(RedisNodeRegistry::MarkDraining(*client, "a").ok());
  CHECK(*registry->Draining());
  CHECK(!*other->Draining());
  auto started = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - started < std::chrono::milliseconds(600)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // a few heartbeats pass
  }
  auto nodes = other->List();
  REQUIRE(nodes.ok());
  REQUIRE(nodes->size() == 2);
  const NodeInfo& got = (*nodes)[0];
  CHECK(got.id == "a");
  CHECK(got.draining);
  CHECK(got.tag == "canary");
  CHECK(got.region == "eu");
  CHECK(got.pool == "big");
  CHECK(got.weight == 250);
  CHECK(!(*nodes)[1].draining);
  CHECK((*nodes)[1].tag == "stable");
  CHECK((*nodes)[1].weight == 100);
}

}  // namespace
}  // namespace im::internal
