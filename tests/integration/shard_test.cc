// Inboxes, groups, accounts and sessions sharded over two redis-servers (a comma list of URLs
// in [storage]), with three imd nodes: a group whose members are on both shards, concurrent
// senders on different nodes, and a send retried after one shard was down. Every test starts
// its own redis-servers (appendonly yes, appendfsync always) and imd processes on free
// loopback ports.
#if IM_WITH_REDIS && defined(IMD_PATH)

#include <doctest/doctest.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "im/auth.h"
#include "im/client.h"
#include "store/redis/redis_shards.h"
#include "support/child_process.h"
#include "support/group_senders.h"
#include "support/imd_process.h"
#include "support/redis_server.h"
#include "support/temp_dir.h"
#include "support/wait_until.h"

namespace {

using im::test::WaitUntil;

struct ShardedCluster {
  static constexpr int kNodes = 3;
  im::test::RedisServer shard0{im::test::RedisServerOptions{"always", {}}};
  im::test::RedisServer shard1{im::test::RedisServerOptions{"always", {}}};
  im::test::TempDir dir;
  std::shared_ptr<im::KeyStore> keys;
  std::vector<im::test::ImdProcess> nodes;

  ShardedCluster() {
    auto k = im::OpenDirKeyStore(dir.path() + "/keys", true);
    REQUIRE(k.ok());
    keys = *k;
    auto key = keys->KeyFor("default");
    REQUIRE(key.ok());
    std::string hex;
    static const char* kHex = "0123456789abcdef";
    for (unsigned char c : *key) {
      hex += kHex[c >> 4];
      hex += kHex[c & 15];
    }
    const std::string urls = shard0.url() + "," + shard1.url();
    for (int n = 0; n < kNodes; ++n) {
      const std::string data = dir.path() + "/node" + std::to_string(n);
      std::filesystem::create_directories(data);
      auto args = im::test::WriteImdConfig(
          data, "[server]\nnode_number = " + std::to_string(n) + "\n[storage]\ninbox = \"" +
                    urls + "\"\ngroups = \"" + urls + "\"\nusers = \"" + urls +
                    "\"\nsessions = \"" + urls + "\"\n[cluster]\nnode_id = \"n" +
                    std::to_string(n) + "\"\n[keys]\ndefault = \"" + hex + "\"\n");
      nodes.push_back(im::test::StartImd(IMD_PATH, data, "127.0.0.1:0", "127.0.0.1:0", args));
    }
  }

  // A client logged in on node `n`, recording what OnMessage presents, in order.
  struct User {
    std::unique_ptr<im::Client> client;
    std::mutex mu;
    std::vector<im::Message> presented;
    // The client goes first: its threads call back into the members below until it is gone.
    ~User() { client.reset(); }
    size_t Count(const std::string& type) {
      std::lock_guard<std::mutex> lock(mu);
      size_t n = 0;
      for (const auto& m : presented) n += m.type == type ? 1 : 0;
      return n;
    }
  };
  std::unique_ptr<User> Login(const std::string& user, int n) {
    auto u = std::make_unique<User>();
    im::ClientOptions o;
    o.url = nodes[n].tcp_url;
    o.gseq_hold_ms = 20000;  // generous: a loaded box may delay a push across nodes
    o.send_timeout_ms = 60000;
    u->client = std::make_unique<im::Client>(o);
    User* raw = u.get();
    u->client->OnMessage([raw](const im::ReceivedMessage& m) {
      std::lock_guard<std::mutex> lock(raw->mu);
      raw->presented.push_back(m.message);
    });
    REQUIRE(u->client->Connect().ok());
    auto t = im::SignHs256Token(*keys, im::UserKey{"default", user}, 3600,
                                im::SystemClock()->NowMs());
    REQUIRE(t.ok());
    auto info = u->client->Login(*t);
    REQUIRE_MESSAGE(info.ok(), info.status().ToString());
    return u;
  }
};

// Members m0, m1, ... until each shard has `per_shard` of them.
std::vector<std::string> SpreadMembers(size_t per_shard) {
  const im::internal::ShardRing ring(2);
  std::vector<std::string> names;
  size_t on[2] = {0, 0};
  for (int i = 0; on[0] < per_shard || on[1] < per_shard; ++i) {
    const std::string name = "m" + std::to_string(i);
    size_t& count = on[ring.ShardOf(im::UserKey{"default", name})];
    if (count == per_shard) continue;
    ++count;
    names.push_back(name);
  }
  return names;
}

// Creates group `gid` of `users` (names[0] the owner) and waits until every client presented
// the `created` event.
void CreateGroup(const std::string& gid, const std::vector<std::string>& names,
                 std::vector<std::unique_ptr<ShardedCluster::User>>& users) {
  std::string members;
  for (size_t i = 1; i < names.size(); ++i) {
    members += std::string(i > 1 ? "," : "") + "\"" + names[i] + "\"";
  }
  auto created = users[0]->client->Request(
      "group.create", R"({"gid":")" + gid + R"(","name":"g","members":[)" + members + "]}");
  REQUIRE_MESSAGE(created.ok(), created.status().ToString());
  REQUIRE(WaitUntil([&] {
    for (auto& u : users) {
      if (u->Count("system") < 1) return false;
    }
    return true;
  }, 60000));
}

TEST_CASE("shard: two Redis, three nodes - five senders into one group, one gseq order") {
  ShardedCluster cluster;
  constexpr int kSenders = 5, kPerSender = 10;
  const std::vector<std::string> names = SpreadMembers(5);
  std::vector<std::unique_ptr<ShardedCluster::User>> users;
  for (size_t i = 0; i < names.size(); ++i) {
    users.push_back(cluster.Login(names[i], static_cast<int>(i) % ShardedCluster::kNodes));
  }
  CreateGroup("g", names, users);
  // Senders 0..4 are on nodes 0, 1, 2, 0, 1.
  std::map<uint64_t, uint64_t> own_gseq;  // mid -> gseq from the sender's ack
  std::mutex own_mu;
  const int acked =
      im::test::SendToGroupAtOnce(users, kSenders, kPerSender, "g", [&](const im::SendAck& ack) {
        std::lock_guard<std::mutex> lock(own_mu);
        own_gseq[ack.mid] = ack.gseq;
      });
  REQUIRE(acked == kSenders * kPerSender);
  const auto want = [&](size_t i) {
    return static_cast<size_t>(kSenders * kPerSender - (i < kSenders ? kPerSender : 0));
  };
  REQUIRE(WaitUntil([&] {
    for (size_t i = 0; i < users.size(); ++i) {
      if (users[i]->Count("text") != want(i)) return false;
    }
    return true;
  }, 60000));
  // Every gseq names one message everywhere; each client presented ascending gseqs, once each.
  std::map<uint64_t, uint64_t> mid_of_gseq;
  for (const auto& [mid, gseq] : own_gseq) {
    CHECK(gseq > 0);
    CHECK(mid_of_gseq.emplace(gseq, mid).second);
  }
  for (size_t i = 0; i < users.size(); ++i) {
    std::lock_guard<std::mutex> lock(users[i]->mu);
    uint64_t last = 0;
    std::set<uint64_t> mids;
    for (const im::Message& m : users[i]->presented) {
      CAPTURE(i);
      CHECK(m.gseq > last);  // in gseq order
      last = m.gseq;
      CHECK(mids.insert(m.mid).second);  // no duplicates
      if (m.type != "text") continue;
      auto [it, inserted] = mid_of_gseq.emplace(m.gseq, m.mid);
      CHECK(it->second == m.mid);
      (void)inserted;
    }
  }
  CHECK(mid_of_gseq.size() == static_cast<size_t>(kSenders * kPerSender));
  // Both shards hold data: the group really spans them.
  CHECK(cluster.shard0.Command({"DBSIZE"}) != ":0");
  CHECK(cluster.shard1.Command({"DBSIZE"}) != ":0");
}

// A send whose first attempts fail on one shard (its Redis is down) is retried by the client
// under the same cid; once the shard is back the retry completes it: every member's inbox holds
// it exactly once, under one mid.
TEST_CASE("shard: a send retried after one shard was down is stored once in every inbox") {
  ShardedCluster cluster;
  const std::vector<std::string> names = SpreadMembers(2);
  std::vector<std::unique_ptr<ShardedCluster::User>> users;
  for (size_t i = 0; i < names.size(); ++i) {
    users.push_back(cluster.Login(names[i], static_cast<int>(i) % ShardedCluster::kNodes));
  }
  CreateGroup("r", names, users);
  // Stop the shard that does not hold the group (its claim and gseq), so that each attempt
  // stores the message on the group's shard and fails on the other.
  const im::internal::ShardRing ring(2);
  im::test::RedisServer& down =
      ring.ShardOf(im::GroupKey{"default", "r"}) == 0 ? cluster.shard1 : cluster.shard0;
  // The sender must be on the shard that stays up, or its own inbox fails the login refresh.
  size_t sender = 0;
  while (ring.ShardOf(im::UserKey{"default", names[sender]}) ==
         (&down == &cluster.shard0 ? 0u : 1u)) {
    ++sender;
  }
  down.Stop();
  im::Result<im::SendAck> ack = im::Status::Internal("not sent");
  std::thread send([&] {
    im::OutgoingMessage m;
    m.group = "r";
    m.cid = "retried-1";
    m.body = "through the outage";
    ack = users[sender]->client->Send(m);
  });
  // Let a few attempts fail, then bring the shard back.
  std::this_thread::sleep_for(std::chrono::seconds(2));
  down.Start();
  send.join();
  REQUIRE_MESSAGE(ack.ok(), ack.status().ToString());
  for (size_t i = 0; i < users.size(); ++i) {
    CAPTURE(i);
    std::vector<uint64_t> mids;
    REQUIRE(WaitUntil([&] {
      mids.clear();
      uint64_t after = 0;
      for (;;) {
        auto page = users[i]->client->Sync(after, 100);
        if (!page.ok()) return false;
        for (const auto& m : page->messages) {
          if (m.message.body == "through the outage") mids.push_back(m.message.mid);
          after = m.seq;
        }
        if (!page->more || page->messages.empty()) break;
      }
      return !mids.empty();
    }, 60000));
    CHECK(mids == std::vector<uint64_t>{ack->mid});
  }
}

// 1:1 between users on different shards and nodes, both directions at once: each inbox holds
// each sender's messages in send order (the two directions may interleave differently).
TEST_CASE("shard: 1:1 across shards - each sender's messages in send order in both inboxes") {
  ShardedCluster cluster;
  const std::vector<std::string> names = SpreadMembers(1);  // one user on each shard
  REQUIRE(names.size() == 2);
  std::vector<std::unique_ptr<ShardedCluster::User>> users;
  users.push_back(cluster.Login(names[0], 0));
  users.push_back(cluster.Login(names[1], 1));
  constexpr int kPerSender = 30;
  std::vector<std::thread> senders;
  std::atomic<int> acked{0};
  for (int s = 0; s < 2; ++s) {
    senders.emplace_back([&, s] {
      for (int k = 0; k < kPerSender; ++k) {
        if (users[s]->client->SendText(names[1 - s], std::to_string(k)).ok()) acked++;
      }
    });
  }
  for (auto& t : senders) t.join();
  REQUIRE(acked == 2 * kPerSender);
  for (int u = 0; u < 2; ++u) {
    CAPTURE(u);
    std::map<std::string, std::vector<int>> by_sender;
    uint64_t after = 0;
    for (;;) {
      auto page = users[u]->client->Sync(after, 100);
      REQUIRE(page.ok());
      for (const auto& m : page->messages) {
        by_sender[m.message.from].push_back(std::stoi(m.message.body));
        CHECK(m.message.gseq == 0);  // 1:1 messages carry none
        after = m.seq;
      }
      if (!page->more || page->messages.empty()) break;
    }
    REQUIRE(by_sender.size() == 2);
    for (const auto& [from, bodies] : by_sender) {
      std::vector<int> want(kPerSender);
      for (int k = 0; k < kPerSender; ++k) want[k] = k;
      CHECK_MESSAGE(bodies == want, "from " << from);
    }
  }
}

// imd's output when it refuses to start with `toml` as its config, and its exit status.
int Refused(const std::string& toml, std::string* out) {
  im::test::TempDir dir;
  auto args = im::test::WriteImdConfig(dir.path(), toml);
  std::string command = std::string(IMD_PATH) + " --data " + dir.path() +
                        " --tcp 127.0.0.1:0 --http 127.0.0.1:0";
  for (const std::string& a : args) command += " " + a;
  im::test::ChildProcess p({"/bin/sh", "-c", command + " 2>&1"});
  *out = p.WaitForLine("imd:", 20000);
  return p.Wait(20000);
}

TEST_CASE("shard: imd refuses a bad list of Redis URLs at start, naming the line") {
  std::string out;
  CHECK(Refused("[storage]\ninbox = \"redis://127.0.0.1:1/0,,redis://127.0.0.1:2/0\"\n", &out) ==
        1);
  CHECK_MESSAGE(out.find("imd.toml:2: storage.inbox: URL 2 of the list is empty") !=
                    std::string::npos,
                out);
  CHECK(Refused("[storage]\nusers = \"redis://127.0.0.1:1/0,redis://127.0.0.1:1/0\"\n", &out) ==
        1);
  CHECK_MESSAGE(out.find("imd.toml:2: storage.users: URL 2 of the list") != std::string::npos,
                out);
  CHECK_MESSAGE(out.find("is listed twice") != std::string::npos, out);
  CHECK(Refused("[storage]\ngroups = \"redis://127.0.0.1:1/0,redis://127.0.0.1:99999/0\"\n",
                &out) == 1);
  CHECK_MESSAGE(out.find("imd.toml:2: storage.groups: URL 2 of the list: ") != std::string::npos,
                out);
  CHECK(Refused("[cluster]\nredis = \"redis://127.0.0.1:1/0,redis://127.0.0.1:2/0\"\n", &out) ==
        1);
  CHECK_MESSAGE(out.find("imd.toml:2: cluster.redis: must be one redis:// URL, not a list") !=
                    std::string::npos,
                out);
}

}  // namespace

#endif  // IM_WITH_REDIS && IMD_PATH
