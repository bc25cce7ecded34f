// Cluster mode: imd nodes sharing one Redis (sessions, inboxes, groups, accounts) and routing
// pushes to each other through pub/sub. Every test starts its own redis-server (appendonly yes,
// appendfsync always) and its own imd processes on free loopback ports.
#if IM_WITH_REDIS

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <csignal>
#include <map>
#include <set>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "im/auth.h"
#include "im/client.h"
#include "route/redis_channel.h"
#include "route/redis_router.h"
#include "support/child_process.h"
#include "support/fake_connection.h"
#include "support/group_senders.h"
#include "support/http.h"
#include "support/imd_cluster.h"
#include "support/imd_process.h"
#include "support/redis_server.h"
#include "support/temp_dir.h"
#include "support/wait_until.h"

namespace {

using im::test::Cluster;
using im::test::InboxMids;
using im::test::WaitUntil;

im::SessionInfo SessionOn(const std::string& node, const std::string& user, int n) {
  im::SessionInfo s;
  s.user = im::UserKey{"default", user};
  s.device = "default";
  s.session_id = node + ".s" + std::to_string(n);
  s.node = node;
  s.connection_id = static_cast<uint64_t>(n);
  return s;
}

TEST_CASE("cluster: the Redis router sends one publish per node per delivery step") {
  im::test::RedisServer redis;
  im::RedisOptions options;
  options.url = redis.url();
  auto client = im::internal::RedisClient::Create(options);
  REQUIRE(client.ok());
  auto a = im::internal::RedisRouter::Start(*client, options, "node-a");
  auto x = im::internal::RedisRouter::Start(*client, options, "node-x");
  auto y = im::internal::RedisRouter::Start(*client, options, "node-y");
  REQUIRE(a.ok());
  REQUIRE(x.ok());
  REQUIRE(y.ok());
  REQUIRE(WaitUntil([&] { return (*x)->subscribed() && (*y)->subscribed(); }, 20000));

  // Three sessions on x, two on y, one on a itself.
  std::vector<std::shared_ptr<im::test::FakeConnection>> conns;
  std::vector<im::SessionInfo> sessions;
  for (int i = 0; i < 6; ++i) {
    const std::string node = i < 3 ? "node-x" : i < 5 ? "node-y" : "node-a";
    sessions.push_back(SessionOn(node, "u" + std::to_string(i), i));
    conns.push_back(std::make_shared<im::test::FakeConnection>(i));
    auto& router = node == "node-x" ? *x : node == "node-y" ? *y : *a;
    router->Attach(sessions.back(), conns.back());
  }
  // One delivery step: ten frames to every session, sharing one tail.
  auto tail = std::make_shared<const std::string>(R"(,"body":"hi"})");
  for (int k = 0; k < 10; ++k) {
    for (const im::SessionInfo& s : sessions) {
      const im::Frame frame{R"({"seq":)" + std::to_string(k), tail};
      const im::SendResult r = (*a)->Deliver(s, frame);
      CHECK(r == (s.node == "node-a" ? im::SendResult::kOk : im::SendResult::kQueued));
    }
  }
  CHECK(conns[5]->log().size() == 10);  // local: at once
  CHECK(conns[0]->log().empty());       // remote: not before Flush
  (*a)->Flush();
  REQUIRE(WaitUntil([&] {
    for (auto& c : conns) {
      if (c->log().size() != 10) return false;
    }
    return true;
  }, 20000));
  CHECK((*a)->publishes() == 2);  // one per remote node, not one per push
  CHECK((*x)->received() == 1);
  CHECK((*y)->received() == 1);
  // Every frame arrived whole and in order.
  for (auto& c : conns) {
    for (int k = 0; k < 10; ++k) {
      CHECK(c->log()[k] == "send {\"seq\":" + std::to_string(k) + ",\"body\":\"hi\"}");
    }
  }

  // A kick to a session on another node: the notice, then the close with its code.
  (*a)->Close(sessions[3], im::Frame::FromString(R"({"cmd":"session.kicked"})"), 4001,
              "logged in elsewhere");
  REQUIRE(WaitUntil([&] { return conns[3]->closed(); }, 20000));
  auto log = conns[3]->log();
  REQUIRE(log.size() == 12);
  CHECK(log[10] == R"(send {"cmd":"session.kicked"})");
  CHECK(log[11] == "close 4001 logged in elsewhere");
  CHECK((*y)->LocalCount() == 1);

  // A payload that does not decode is dropped whole, and the subscriber goes on.
  CHECK(redis.Command({"PUBLISH", "im:node:node-x", "garbage"}) == ":1");
  std::vector<im::internal::RedisRouter::Item> items;
  CHECK(!im::internal::RedisRouter::Decode("garbage", &items));
  (*a)->Deliver(sessions[0], im::Frame::FromString("after"));
  (*a)->Flush();
  CHECK(WaitUntil([&] { return conns[0]->log().size() == 11; }, 20000));
}

#ifdef IMD_PATH

TEST_CASE("cluster: three imd nodes on one Redis - chat across nodes, a group of 200, kicks") {
  Cluster cluster;

  SUBCASE("1:1 across nodes") {
    auto ann = cluster.Login("ann", 0);
    auto bob = cluster.Login("bob", 1);
    auto cat = cluster.Login("cat", 2);
    CHECK(ann->login.node == "n0");
    CHECK(bob->login.node == "n1");
    CHECK(cat->login.node == "n2");
    REQUIRE(ann->client->SendText("bob", "ann to bob").ok());
    REQUIRE(bob->client->SendText("cat", "bob to cat").ok());
    REQUIRE(cat->client->SendText("ann", "cat to ann").ok());
    REQUIRE(WaitUntil([&] {
      return ann->PushedCount() == 1 && bob->PushedCount() == 1 && cat->PushedCount() == 1;
    }, 20000));
    CHECK(bob->pushed[0].body == "ann to bob");
    CHECK(cat->pushed[0].body == "bob to cat");
    CHECK(ann->pushed[0].body == "cat to ann");
  }

  SUBCASE("a group of 200, five senders on different nodes: one order, every push") {
    constexpr int kMembers = 200, kSenders = 5, kPerSender = 20;
    std::vector<std::unique_ptr<Cluster::User>> users;
    std::string members;
    for (int i = 0; i < kMembers; ++i) {
      char name[8];
      std::snprintf(name, sizeof(name), "m%03d", i);
      users.push_back(cluster.Login(name, i % Cluster::kNodes));
      if (i > 0) members += std::string(members.empty() ? "" : ",") + "\"" + name + "\"";
    }
    auto created = users[0]->client->Request(
        "group.create", R"({"gid":"big","name":"big","members":[)" + members + "]}");
    REQUIRE_MESSAGE(created.ok(), created.status().ToString());
    const int acked = im::test::SendToGroupAtOnce(users, kSenders, kPerSender, "big");
    REQUIRE(acked == kSenders * kPerSender);
    // Every online member got every push of the others: through pub/sub, or through the
    // client's sync when a later push showed a seq hole.
    const bool all = WaitUntil([&] {
      for (int i = 0; i < kMembers; ++i) {
        const size_t want = kSenders * kPerSender - (i < kSenders ? kPerSender : 0);
        if (users[i]->PushedCount() != want) return false;
      }
      return true;
    }, 60000);
    if (!all) {
      // A push across nodes may be lost (docs/protocol.md, Cluster mode): a subscription that
      // dropped, or a publish that failed (Redis slower than command_timeout_ms on a loaded
      // machine) and was still failing after its retries, and the node says so in its log;
      // the messages are in the inboxes all the same (below). A push lost without either is a
      // bug.
      int short_members = 0;
      std::string first;
      for (int i = 0; i < kMembers; ++i) {
        const size_t want = kSenders * kPerSender - (i < kSenders ? kPerSender : 0);
        if (users[i]->PushedCount() == want) continue;
        if (++short_members <= 5) {
          first += " m" + std::to_string(i) + ":" + std::to_string(users[i]->PushedCount());
        }
      }
      std::set<std::string> got;
      {
        std::lock_guard<std::mutex> lock(users[199]->mu);
        for (auto& m : users[199]->pushed) got.insert(m.body);
      }
      std::string missing;
      for (int s = 0; s < kSenders; ++s) {
        for (int k = 0; k < kPerSender; ++k) {
          std::string b = "s" + std::to_string(s) + "-" + std::to_string(k);
          if (!got.count(b)) missing += b + " ";
        }
      }
      const std::string problems = cluster.Problems();
      MESSAGE(short_members << " members short of pushes (" << first << " ); member 199 missed: "
                            << missing << "; the nodes' warnings: " << problems);
      REQUIRE((problems.find("cluster: publish to") != std::string::npos ||
               problems.find("cluster: subscription to") != std::string::npos));
    }
    // Every inbox holds the group's messages in one order.
    const std::vector<uint64_t> order = InboxMids(*users[0]->client, "big");
    REQUIRE(order.size() == static_cast<size_t>(kSenders * kPerSender));
    for (int i = 1; i < kMembers; ++i) {
      CHECK_MESSAGE(InboxMids(*users[i]->client, "big") == order, "member " << i);
    }
  }

  SUBCASE("a node refuses a live node's id or node number, and a bad Redis URL") {
    std::string out;
    CHECK(cluster.Refused("dup-id", cluster.Config("dup-id", "n1", 7), &out) == 1);
    CHECK_MESSAGE(out.find("node id 'n1' is held by a live node") != std::string::npos, out);
    CHECK(cluster.Refused("dup-number", cluster.Config("dup-number", "n7", 2), &out) == 1);
    CHECK_MESSAGE(out.find("node_number 2 is held by live node 'n2'") != std::string::npos, out);
    std::filesystem::create_directories(cluster.dir.path() + "/bad-url");
    auto args = im::test::WriteImdConfig(cluster.dir.path() + "/bad-url",
                                         "[storage]\nsessions = \"redis://127.0.0.1:99999/0\"\n");
    CHECK(cluster.Refused("bad-url", args, &out) == 1);
    CHECK_MESSAGE(out.find("imd.toml:2: storage.sessions: ") != std::string::npos, out);
    CHECK_MESSAGE(out.find("port must be a number in 1..65535") != std::string::npos, out);
  }

  SUBCASE("Redis down: /readyz and sends answer 503; back by itself when Redis returns") {
    auto ann = cluster.Login("ann", 0);
    auto bob = cluster.Login("bob", 1);
    for (int n = 0; n < Cluster::kNodes; ++n) {
      CHECK(im::test::Http(cluster.HttpPort(n), "GET", "/readyz").status == 200);
    }
    cluster.redis.Stop();
    for (int n = 0; n < Cluster::kNodes; ++n) {
      CHECK(im::test::Http(cluster.HttpPort(n), "GET", "/readyz").status == 503);
    }
    auto refused = ann->client->SendText("bob", "while down");
    REQUIRE(!refused.ok());
    CHECK(refused.status().code() == im::Code::kUnavailable);
    cluster.redis.Start();
    CHECK(WaitUntil([&] {
      for (int n = 0; n < Cluster::kNodes; ++n) {
        if (im::test::Http(cluster.HttpPort(n), "GET", "/readyz").status != 200) return false;
      }
      return true;
    }, 20000));
    // The subscribers are back too: a push crosses nodes again.
    REQUIRE(WaitUntil([&] {
      (void)ann->client->SendText("bob", "after");
      return bob->PushedCount() > 0;
    }, 20000));
  }

  SUBCASE("SIGTERM drains a node and takes it out of the registry at once") {
    CHECK(cluster.redis.Command({"EXISTS", "im:node:n2"}) == ":1");
    CHECK(cluster.redis.Command({"EXISTS", "im:node-number:2"}) == ":1");
    cluster.nodes[2].process->Signal(SIGTERM);
    CHECK(cluster.nodes[2].process->Wait(30000) == 0);
    CHECK(cluster.redis.Command({"EXISTS", "im:node:n2"}) == ":0");
    CHECK(cluster.redis.Command({"EXISTS", "im:node-number:2"}) == ":0");
    CHECK(cluster.redis.Command({"EXISTS", "im:node:n1"}) == ":1");
  }

  SUBCASE("a node whose id another process took over stops serving") {
    // What a process started after this one was presumed dead writes: its own instance token.
    CHECK(cluster.redis.Command({"HSET", "im:node:n1", "instance", "someone-else"}) == ":0");
    CHECK(cluster.nodes[1].process->Wait(30000) == 1);  // its next heartbeat notices, it drains
    CHECK(im::test::Http(cluster.HttpPort(0), "GET", "/readyz").status == 200);
  }

  SUBCASE("a login on node B kicks the same account's session on node A") {
    auto first = cluster.Login("kim", 0);
    auto second = cluster.Login("kim", 1);
    REQUIRE(WaitUntil([&] { return first->close_code.load() == 4001; }, 20000));
    CHECK(first->kicked == 1);
    CHECK(second->kicked == 0);
    CHECK(second->close_code == -1);
    // The new session works: a message from another node reaches it.
    auto lee = cluster.Login("lee", 2);
    REQUIRE(lee->client->SendText("kim", "still there?").ok());
    REQUIRE(WaitUntil([&] { return second->PushedCount() == 1; }, 20000));
    CHECK(first->PushedCount() == 0);
  }
}

// The calls of `command` in INFO commandstats (0 when it has none).
uint64_t CommandCalls(im::internal::RedisClient& client, const std::string& command) {
  auto info = client.Command({"INFO", "commandstats"});
  REQUIRE(info.ok());
  const std::string key = "cmdstat_" + command + ":calls=";
  const size_t at = info->str.find(key);
  return at == std::string::npos ? 0 : std::stoull(info->str.substr(at + key.size()));
}

// The fan-out reaches the members on other nodes through the fan-out channel: each node
// delivers to the connections it holds, so no node looks a session up in Redis (no HGETALL),
// and a message costs one publish however many nodes and members it reaches.
TEST_CASE("cluster: a group message reaches members on three nodes without session lookups") {
  Cluster cluster;
  constexpr int kMembers = 30, kMessages = 10;
  std::vector<std::unique_ptr<Cluster::User>> users;
  std::string members;
  for (int i = 0; i < kMembers; ++i) {
    const std::string name = "g" + std::to_string(i);
    users.push_back(cluster.Login(name, i % Cluster::kNodes));
    if (i > 0) members += std::string(members.empty() ? "" : ",") + "\"" + name + "\"";
  }
  // A second device of member g1 (on node 1) on node 2: both get every push.
  users.push_back(cluster.Login("g1", 2, nullptr, "desk"));
  auto created = users[0]->client->Request(
      "group.create", R"({"gid":"fan","name":"fan","members":[)" + members + "]}");
  REQUIRE_MESSAGE(created.ok(), created.status().ToString());
  im::RedisOptions options;
  options.url = cluster.redis.url();
  auto stats = im::internal::RedisClient::Create(options);
  REQUIRE(stats.ok());
  // What is published, counted per channel by a subscriber of its own. It counts from the
  // marker on: Redis delivers one connection's messages in publish order, so whatever a login
  // or the group's creation published before the marker is not counted.
  const std::string fanout = im::internal::RedisFanoutChannel(0);
  const std::string marker = "im:test:marker";
  std::vector<std::string> channels = {fanout, marker};
  for (int n = 0; n < Cluster::kNodes; ++n) {
    channels.push_back(im::internal::RedisNodeChannel("n" + std::to_string(n)));
  }
  std::mutex seen_mu;
  bool counting = false;
  std::map<std::string, int> seen;
  auto listener = im::internal::RedisChannelListener::Start(
      *stats, options, channels, [&](std::string_view channel, std::string_view) {
        std::lock_guard<std::mutex> lock(seen_mu);
        if (channel == marker) counting = true;
        if (counting) ++seen[std::string(channel)];
      });
  REQUIRE(WaitUntil([&] { return listener->subscribed(); }, 10000));
  REQUIRE((*stats)->Command({"PUBLISH", marker, "start"}).ok());
  REQUIRE(WaitUntil([&] {
    std::lock_guard<std::mutex> lock(seen_mu);
    return counting;
  }, 10000));
  // Logins and the group's creation are done: count from here.
  REQUIRE((*stats)->Command({"CONFIG", "RESETSTAT"}).ok());
  for (int k = 0; k < kMessages; ++k) {
    im::OutgoingMessage m;
    m.group = "fan";
    m.body = "f" + std::to_string(k);
    REQUIRE(users[0]->client->Send(m).ok());
  }
  const bool all = WaitUntil([&] {
    for (size_t i = 1; i < users.size(); ++i) {
      if (users[i]->PushedCount() != kMessages) return false;
    }
    return true;
  }, 30000);
  for (size_t i = 1; i < users.size() && !all; ++i) {
    CHECK_MESSAGE(users[i]->PushedCount() == kMessages, "member " << i);
  }
  REQUIRE_MESSAGE(all, cluster.Problems());
  CHECK(users[0]->PushedCount() == 0);  // not to the sender's own session
  for (size_t i = 1; i < users.size(); ++i) {
    std::lock_guard<std::mutex> lock(users[i]->mu);
    for (int k = 0; k < kMessages; ++k) CHECK(users[i]->pushed[k].body == "f" + std::to_string(k));
  }
  // A lookup per recipient would be an HGETALL per member and message (300 here). A session
  // write (the login script reads its user's hash) may still land in the window on a slow run
  // (seen under AddressSanitizer): at most one per session.
  CHECK(CommandCalls(**stats, "hgetall") <= users.size());
  // The marker goes out after the last publish of the messages: everything before it is in.
  REQUIRE((*stats)->Command({"PUBLISH", marker, "end"}).ok());
  REQUIRE(WaitUntil([&] {
    std::lock_guard<std::mutex> lock(seen_mu);
    return seen[marker] == 2;
  }, 10000));
  std::lock_guard<std::mutex> lock(seen_mu);
  std::string by_channel;
  for (const auto& [channel, count] : seen) by_channel += channel + "=" + std::to_string(count) + " ";
  INFO("published: ", by_channel);
  // One publish on the fan-out channel per delivery step at most (not one per node or member),
  // and none on the nodes' own channels (those carry 1:1 pushes and kicks).
  CHECK(seen[fanout] >= 1);
  CHECK(seen[fanout] <= kMessages);
  for (int n = 0; n < Cluster::kNodes; ++n) {
    CHECK(seen[im::internal::RedisNodeChannel("n" + std::to_string(n))] == 0);
  }
}

TEST_CASE("cluster: kill -9 a node mid-stream - its clients move to another node, every acked "
          "message delivered once") {
  Cluster cluster;
  // Two streams cross the victim (node 2): rx receives there, tx sends from there.
  auto rx = cluster.Login("rx", 2);
  auto to_rx = cluster.Login("to-rx", 0);
  auto tx = cluster.Login("tx", 2);
  auto from_tx = cluster.Login("from-tx", 1);
  constexpr int kMessages = 120;
  std::mutex mu;
  std::vector<uint64_t> acked_to_rx, acked_from_tx;
  std::atomic<int> sent_to_rx{0};
  std::atomic<bool> feeder_failed{false};
  std::thread feeder([&] {
    for (int k = 0; k < kMessages; ++k) {
      im::OutgoingMessage m;
      m.to = "rx";
      m.cid = "to-rx-" + std::to_string(k);
      m.body = m.cid;
      auto ack = to_rx->client->Send(m);
      if (!ack.ok()) {  // no REQUIRE off the test's thread
        feeder_failed = true;
        return;
      }
      std::lock_guard<std::mutex> lock(mu);
      acked_to_rx.push_back(ack->mid);
      sent_to_rx++;
    }
  });
  // tx sends; when its node dies it logs in on node 1 and sends again under the same cid.
  int k = 0;
  for (; k < kMessages / 2; ++k) {
    auto ack = tx->client->SendText("from-tx", "from-tx-" + std::to_string(k));
    REQUIRE(ack.ok());
    acked_from_tx.push_back(ack->mid);
  }
  REQUIRE(WaitUntil([&] { return sent_to_rx.load() >= kMessages / 3; }, 30000));
  cluster.nodes[2].process->Signal(SIGKILL);
  CHECK(cluster.nodes[2].process->Wait(20000) == 128 + SIGKILL);
  // Both clients notice, and move to other nodes, resuming where they were.
  REQUIRE(WaitUntil([&] { return rx->close_code.load() != -1 && tx->close_code.load() != -1; },
                    20000));
  const std::string rx_epoch = rx->login.epoch;
  const uint64_t rx_seq = rx->client->synced_seq();
  auto rx2 = cluster.Login("rx", 1, [&](im::Client& c) { c.ResumeFrom(rx_epoch, rx_seq); });
  auto tx2 = cluster.Login("tx", 0);
  for (; k < kMessages; ++k) {
    im::OutgoingMessage m;
    m.to = "from-tx";
    m.cid = "tx-" + std::to_string(k);
    m.body = "from-tx-" + std::to_string(k);
    auto ack = tx2->client->Send(m);
    REQUIRE(ack.ok());
    // The same cid again (a retry after a lost answer): stored once, the same mid.
    auto again = tx2->client->Send(m);
    REQUIRE(again.ok());
    CHECK(again->mid == ack->mid);
    acked_from_tx.push_back(ack->mid);
  }
  feeder.join();
  REQUIRE(!feeder_failed);
  // Every acked message reached its receiver once: before the kill or after the move.
  auto received = [](std::vector<Cluster::User*> users) {
    std::vector<uint64_t> mids;
    for (Cluster::User* u : users) {
      std::lock_guard<std::mutex> lock(u->mu);
      for (const im::Message& m : u->pushed) mids.push_back(m.mid);
    }
    return mids;
  };
  const bool rx_done = WaitUntil([&] {
    return received({rx.get(), rx2.get()}).size() >= acked_to_rx.size();
  }, 30000);
  const bool tx_done = WaitUntil([&] {
    return received({from_tx.get()}).size() >= acked_from_tx.size();
  }, 30000);
  CHECK(rx_done);
  CHECK(tx_done);
  // Once each. Pushes may arrive out of order (a push lost with the victim is fetched by the
  // client's resync, after later ones); the inboxes hold every sender's messages in send order.
  auto sorted = [](std::vector<uint64_t> v) {
    std::sort(v.begin(), v.end());
    return v;
  };
  CHECK(sorted(received({rx.get(), rx2.get()})) == sorted(acked_to_rx));
  CHECK(sorted(received({from_tx.get()})) == sorted(acked_from_tx));
  CHECK(InboxMids(*rx2->client, "", "to-rx") == acked_to_rx);
  CHECK(InboxMids(*from_tx->client, "", "tx") == acked_from_tx);
}

#endif  // IMD_PATH

}  // namespace

#endif  // IM_WITH_REDIS
