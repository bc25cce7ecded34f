// Faults of a cluster (docs/operations.md, Running a cluster, failure behaviour): the im_redis_*
// metrics, /readyz while Redis is unreachable, nodes killed with SIGKILL mid-stream, Redis
// killed and restarted mid-stream under appendfsync always and everysec, and a Redis that
// stalls. Every test starts its own redis-server and imd processes on free loopback ports.
#if IM_WITH_REDIS && defined(IMD_PATH)

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "im/client.h"
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
using Samples = std::vector<std::pair<std::string, double>>;

// The im_redis_* samples of a node's GET /metrics, in the order served: "name{labels}", value.
Samples RedisSamples(uint16_t http_port) {
  const im::test::HttpResult r = im::test::Http(http_port, "GET", "/metrics");
  REQUIRE(r.status == 200);
  Samples out;
  std::istringstream in(r.text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("im_redis_", 0) != 0) continue;
    const size_t space = line.rfind(' ');
    REQUIRE(space != std::string::npos);
    out.emplace_back(line.substr(0, space), std::stod(line.substr(space + 1)));
  }
  return out;
}

// The value of `series`, -1 when absent.
double At(const Samples& samples, const std::string& series) {
  for (const auto& [name, value] : samples) {
    if (name == series) return value;
  }
  return -1;
}

// Checks the im_redis_round_trip_seconds histogram of `backend`: bucket bounds rising, counts
// cumulative, +Inf last and equal to _count. Returns _count.
double CheckHistogram(const Samples& samples, const std::string& backend) {
  const std::string bucket = "im_redis_round_trip_seconds_bucket{backend=\"" + backend + "\",le=\"";
  double last_le = -1, last_count = 0;
  bool inf = false;
  int buckets = 0;
  for (const auto& [name, value] : samples) {
    if (name.rfind(bucket, 0) != 0) continue;
    CHECK_MESSAGE(!inf, "a bucket after +Inf: " << name);
    const std::string le = name.substr(bucket.size(), name.size() - bucket.size() - 2);
    if (le == "+Inf") {
      inf = true;
    } else {
      CHECK_MESSAGE(std::stod(le) > last_le, name);
      last_le = std::stod(le);
    }
    CHECK_MESSAGE(value >= last_count, name);
    last_count = value;
    ++buckets;
  }
  CHECK(inf);
  CHECK(buckets == 13);
  const double count =
      At(samples, "im_redis_round_trip_seconds_count{backend=\"" + backend + "\"}");
  CHECK(count == last_count);
  CHECK(At(samples, "im_redis_round_trip_seconds_sum{backend=\"" + backend + "\"}") >= 0);
  return count;
}

TEST_CASE("cluster faults: the im_redis metrics on /metrics follow the traffic and the faults") {
  Cluster cluster;
  auto ann = cluster.Login("ann", 0);
  auto bob = cluster.Login("bob", 1);
  const Samples before = RedisSamples(cluster.HttpPort(0));
  for (int k = 0; k < 5; ++k) REQUIRE(ann->client->SendText("bob", "m" + std::to_string(k)).ok());
  REQUIRE(WaitUntil([&] { return bob->PushedCount() == 5; }, 20000));
  const Samples after = RedisSamples(cluster.HttpPort(0));

  // One series per pool of imd and family: nothing labelled by key, user or command.
  // The tenant registry follows the users store onto Redis.
  const std::set<std::string> labels = {"inbox", "groups", "users", "sessions", "tenants",
                                        "cluster"};
  std::set<std::string> seen;
  for (const auto& [name, value] : after) {
    const size_t at = name.find("{backend=\"");
    REQUIRE_MESSAGE(at != std::string::npos, name);
    const std::string label = name.substr(at + 10, name.find('"', at + 10) - at - 10);
    CHECK_MESSAGE(labels.count(label) == 1, name);
    seen.insert(label);
  }
  CHECK(seen == labels);
  CHECK(after.size() == labels.size() * (8 + 13 + 2));
  // The sends went through the inbox pool, the pushes to node 1 through the cluster pool (the
  // router's publishes); the logins before went through the sessions pool, and the sends did
  // not (the fan-out looks no session up: before, three commands a send). Only the refresh of
  // ann's session (two commands and round trips, every session_ttl_ms / 3) may have run.
  for (const std::string backend : {"inbox", "sessions", "cluster"}) {
    for (const std::string family : {"im_redis_commands_total", "im_redis_round_trips_total"}) {
      const std::string series = family + "{backend=\"" + backend + "\"}";
      if (backend == "sessions") {
        CHECK_MESSAGE(At(after, series) - At(before, series) <= 2, series);
        CHECK_MESSAGE(At(before, series) > 0, series);
      } else {
        CHECK_MESSAGE(At(after, series) > At(before, series), series);
      }
    }
    CHECK(At(after, "im_redis_connects_total{backend=\"" + backend + "\"}") >= 1);
  }
  CHECK(At(after, "im_redis_commands_total{backend=\"inbox\"}") >=
        At(after, "im_redis_round_trips_total{backend=\"inbox\"}"));
  CHECK(At(after, "im_redis_errors_total{backend=\"inbox\"}") == 0);
  CHECK(At(after, "im_redis_timeouts_total{backend=\"inbox\"}") == 0);
  CHECK(At(after, "im_redis_pool_in_use{backend=\"inbox\"}") >= 0);
  for (const std::string& backend : labels) {
    const double count = CheckHistogram(after, backend);
    if (backend == "inbox") {
      CHECK(count >= 5);
      CHECK(count > CheckHistogram(before, backend));
    }
  }

  // Redis goes away: the failures show in the errors and connect failures of the pools.
  cluster.redis.Stop();
  auto refused = ann->client->Request("chat.send", R"({"to":"bob","body":"down","cid":"d1"})");
  CHECK(refused.status().code() == im::Code::kUnavailable);
  CHECK(WaitUntil([&] {
    (void)im::test::Http(cluster.HttpPort(0), "GET", "/readyz");  // a read on every pool
    const Samples down = RedisSamples(cluster.HttpPort(0));
    return At(down, "im_redis_errors_total{backend=\"inbox\"}") > 0 &&
           At(down, "im_redis_connect_failures_total{backend=\"inbox\"}") > 0;
  }, 20000));
  cluster.redis.Start();
}

TEST_CASE("cluster faults: /readyz answers 503 while Redis is unreachable, whichever store is on "
          "it") {
  im::test::RedisServer redis;
  im::test::TempDir dir;
  int n = 0;
  for (const std::string store : {"sessions", "users", "groups", "inbox"}) {
    CAPTURE(store);
    const std::string data = dir.path() + "/" + store;
    std::filesystem::create_directories(data);
    // Only `store` on Redis; the others on LevelDB (sessions: in memory).
    std::string toml = "[server]\nnode_number = " + std::to_string(n++) + "\n[storage]\n" +
                       store + " = \"" + redis.url() + "\"\n";
    if (store == "sessions") toml += "[cluster]\nnode_id = \"solo\"\n";
    auto args = im::test::WriteImdConfig(data, toml);
    im::test::ImdProcess node =
        im::test::StartImd(IMD_PATH, data, "127.0.0.1:0", "127.0.0.1:0", args);
    const auto port = static_cast<uint16_t>(
        std::stoi(node.http_listen.substr(node.http_listen.rfind(':') + 1)));
    CHECK(im::test::Http(port, "GET", "/readyz").status == 200);
    redis.Stop();
    const im::test::HttpResult down = im::test::Http(port, "GET", "/readyz");
    CHECK(down.status == 503);
    CHECK_MESSAGE(down.text.find("storage: " + store + ": ") != std::string::npos, down.text);
    redis.Start();
    CHECK(WaitUntil([&] { return im::test::Http(port, "GET", "/readyz").status == 200; },
                    20000));
    node.process->Signal(SIGTERM);
    CHECK(node.process->Wait(30000) == 0);
  }
}

// A member of the streams below: a client that reconnects by itself (to its node's address, where
// a restarted node comes back) and records what OnMessage delivers.
struct Member {
  std::string name;
  std::unique_ptr<im::Client> client;
  std::string epoch;  // at the first login
  std::mutex mu;
  std::vector<im::Message> got;  // guarded by mu
  std::vector<std::string> gaps;  // OnGap reasons; guarded by mu
  std::atomic<int> reconnects{0};
  // The client goes first: its threads call back into the members below until it is gone.
  ~Member() { client.reset(); }

  size_t GapCount(const std::string& reason) {
    std::lock_guard<std::mutex> lock(mu);
    return static_cast<size_t>(std::count(gaps.begin(), gaps.end(), reason));
  }
};

std::unique_ptr<Member> Join(Cluster& cluster, const std::string& name, int node) {
  auto m = std::make_unique<Member>();
  m->name = name;
  im::ClientOptions o;
  o.url = cluster.nodes[node].tcp_url;
  o.reconnect_min_ms = 50;
  o.reconnect_max_ms = 500;
  o.request_timeout_ms = 5000;
  o.send_timeout_ms = 60000;
  m->client = std::make_unique<im::Client>(o);
  Member* raw = m.get();
  m->client->OnMessage([raw](const im::ReceivedMessage& r) {
    if (r.message.type == "system") return;  // a group event
    std::lock_guard<std::mutex> lock(raw->mu);
    raw->got.push_back(r.message);
  });
  m->client->OnGap([raw](const std::string& reason, uint64_t) {
    std::lock_guard<std::mutex> lock(raw->mu);
    raw->gaps.push_back(reason);
  });
  m->client->OnReconnected([raw](const im::LoginInfo&) { raw->reconnects++; });
  REQUIRE(m->client->Connect().ok());
  auto info = m->client->Login(cluster.Token(name));
  REQUIRE_MESSAGE(info.ok(), info.status().ToString());
  m->epoch = info->epoch;
  return m;
}

// Six members over the three nodes, in one group "g", each sending in turn a 1:1 message to
// the next member and a message to the group, until stopped. Every send is retried by the client
// (same cid) across 503s and reconnects; what was acked is recorded per sender, in send order.
class Streams {
 public:
  static constexpr int kMembers = 6;

  explicit Streams(Cluster& cluster) {
    for (int i = 0; i < kMembers; ++i) {
      members_.push_back(Join(cluster, "m" + std::to_string(i), i % Cluster::kNodes));
    }
    std::string others;
    for (int i = 1; i < kMembers; ++i) others += std::string(i > 1 ? "," : "") + "\"m" +
                                                 std::to_string(i) + "\"";
    auto created =
        members_[0]->client->Request("group.create", R"({"gid":"g","name":"g","members":[)" + others + "]}");
    REQUIRE_MESSAGE(created.ok(), created.status().ToString());
    direct_.resize(kMembers);
    group_.resize(kMembers);
    failures_.resize(kMembers);
  }
  ~Streams() { JoinSenders(); }

  void Start() {
    for (int s = 0; s < kMembers; ++s) {
      senders_.emplace_back([this, s] {
        for (int k = 0; !stop_; ++k) {
          im::OutgoingMessage m;
          if (k % 2 == 0) {
            m.to = "m" + std::to_string((s + 1) % kMembers);
          } else {
            m.group = "g";
          }
          m.cid = "m" + std::to_string(s) + "-" + std::to_string(k);
          m.body = m.cid;
          auto ack = members_[s]->client->Send(m);
          std::lock_guard<std::mutex> lock(mu_);
          if (!ack.ok()) {  // no REQUIRE off the test's thread
            failures_[s] = m.cid + ": " + ack.status().ToString();
            return;
          }
          (k % 2 == 0 ? direct_ : group_)[s].push_back(ack->mid);
          ++acked_;
          std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
      });
    }
  }

  // Waits until `more` sends were acked after this call.
  bool Progress(int more, int timeout_ms = 30000) {
    const int from = Acked();
    return WaitUntil([&] { return Acked() >= from + more; }, timeout_ms);
  }

  int Acked() {
    std::lock_guard<std::mutex> lock(mu_);
    return acked_;
  }

  // Stops the senders; every send was acked (none gave up).
  void Stop() {
    JoinSenders();
    for (int s = 0; s < kMembers; ++s) CHECK_MESSAGE(failures_[s].empty(), failures_[s]);
  }

  // What member `r` must receive: the 1:1 messages of the member before it and the group
  // messages of the others.
  std::vector<uint64_t> Expected(int r) {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<uint64_t> want = direct_[(r + kMembers - 1) % kMembers];
    for (int s = 0; s < kMembers; ++s) {
      if (s != r) want.insert(want.end(), group_[s].begin(), group_[s].end());
    }
    std::sort(want.begin(), want.end());
    return want;
  }

  // The mids member `r` received from the others through OnMessage, sorted.
  std::vector<uint64_t> Received(int r) {
    Member& m = *members_[r];
    std::vector<uint64_t> mids;
    std::lock_guard<std::mutex> lock(m.mu);
    for (const im::Message& msg : m.got) {
      if (msg.from != m.name) mids.push_back(msg.mid);
    }
    std::sort(mids.begin(), mids.end());
    return mids;
  }

  // Every acked message delivered to each receiver exactly once, and every inbox holding each
  // sender's messages in send order, once (read with chat.sync).
  void CheckDelivery(const std::string& problems) {
    const bool all = WaitUntil([&] {
      for (int r = 0; r < kMembers; ++r) {
        if (!members_[r]->client->connected() || Received(r).size() < Expected(r).size()) {
          return false;
        }
      }
      return true;
    }, 60000);
    CHECK_MESSAGE(all, problems);
    for (int r = 0; r < kMembers; ++r) {
      CAPTURE(r);
      CHECK(Received(r) == Expected(r));
      const int before = (r + kMembers - 1) % kMembers;
      CHECK(InboxMids(*members_[r]->client, "", "m" + std::to_string(before)) == direct_[before]);
      for (int s = 0; s < kMembers; ++s) {
        CHECK(InboxMids(*members_[r]->client, "g", "m" + std::to_string(s)) == group_[s]);
      }
    }
  }

  // Every member's inbox kept the epoch of its first login, and no client saw another one.
  void CheckEpochsKept() {
    for (int r = 0; r < kMembers; ++r) {
      CAPTURE(r);
      CHECK(members_[r]->GapCount("epoch") == 0);
      CHECK(Epoch(r) == members_[r]->epoch);
    }
  }

  // Kills Redis (SIGKILL) and starts it again on its port and directory `rounds` times, each
  // after `per_round` more acked sends, then waits for as many more, and stops the senders.
  void RunThroughRedisKills(Cluster& cluster, int rounds, int per_round) {
    for (int round = 0; round < rounds; ++round) {
      REQUIRE(Progress(per_round));
      cluster.redis.Kill9();
      cluster.redis.Start();
    }
    REQUIRE_MESSAGE(Progress(per_round), cluster.Problems());
    Stop();
  }

  // The inbox epoch member `r` sees now.
  std::string Epoch(int r) {
    auto page = im::test::SyncRetrying(*members_[r]->client, 0, 1);
    REQUIRE_MESSAGE(page.ok(), page.status().ToString());
    return page->epoch;
  }

  Member& member(int r) { return *members_[r]; }

  // What was acked so far: every sender's mids, 1:1 and group.
  std::vector<uint64_t> AllAcked() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<uint64_t> all;
    for (int s = 0; s < kMembers; ++s) {
      all.insert(all.end(), direct_[s].begin(), direct_[s].end());
      all.insert(all.end(), group_[s].begin(), group_[s].end());
    }
    return all;
  }
  // Sender `s`'s acked 1:1 messages (to the next member) and group messages, in send order.
  std::vector<uint64_t> Direct(int s) {
    std::lock_guard<std::mutex> lock(mu_);
    return direct_[s];
  }
  std::vector<uint64_t> Group(int s) {
    std::lock_guard<std::mutex> lock(mu_);
    return group_[s];
  }

 private:
  void JoinSenders() {
    stop_ = true;
    for (auto& t : senders_) t.join();
    senders_.clear();
  }

  std::vector<std::unique_ptr<Member>> members_;
  std::vector<std::thread> senders_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<std::vector<uint64_t>> direct_;  // by sender, to the next member; guarded by mu_
  std::vector<std::vector<uint64_t>> group_;   // by sender; guarded by mu_
  std::vector<std::string> failures_;          // by sender; guarded by mu_
  int acked_ = 0;                              // guarded by mu_
};

// Short registry and session TTLs, so a killed node's id is free again within about a second.
constexpr const char* kShortTtls = "heartbeat_ms = 300\nnode_ttl_ms = 1200\nsession_ttl_ms = 3000\n";

TEST_CASE("cluster faults: kill -9 a node mid-stream ten times - every acked message delivered "
          "once, in order per sender") {
  Cluster cluster(kShortTtls);
  Streams streams(cluster);
  streams.Start();
  for (int round = 0; round < 10; ++round) {
    CAPTURE(round);
    REQUIRE_MESSAGE(streams.Progress(12), cluster.Problems());
    const int victim = round % Cluster::kNodes;
    const std::string n = std::to_string(victim);
    cluster.nodes[victim].process->Signal(SIGKILL);
    REQUIRE(cluster.nodes[victim].process->Wait(20000) == 128 + SIGKILL);
    // Its id and node number are free once their TTL ran out; then it comes back under them.
    REQUIRE(WaitUntil([&] {
      return cluster.redis.Command({"EXISTS", "im:node:n" + n}) == ":0" &&
             cluster.redis.Command({"EXISTS", "im:node-number:" + n}) == ":0";
    }, 20000));
    cluster.StartNode(victim);
  }
  REQUIRE(streams.Progress(12));
  streams.Stop();
  streams.CheckDelivery(cluster.Problems());
  for (int r = 0; r < Streams::kMembers; ++r) {
    CHECK(streams.member(r).reconnects >= 3);  // each node died at least three times
  }
  streams.CheckEpochsKept();
}

TEST_CASE("cluster faults: Redis killed and restarted mid-stream with appendfsync always - nothing "
          "acked lost, no duplicate, the epochs kept") {
  Cluster cluster("", im::test::RedisServerOptions{"always", {}});
  Streams streams(cluster);
  streams.Start();
  streams.RunThroughRedisKills(cluster, 2, 30);
  streams.CheckDelivery(cluster.Problems());
  streams.CheckEpochsKept();
}

TEST_CASE("cluster faults: Redis killed and restarted mid-stream with appendfsync everysec - a new "
          "epoch, nothing acked lost, no duplicate") {
  Cluster cluster("", im::test::RedisServerOptions{"everysec", {}});
  Streams streams(cluster);
  streams.Start();
  streams.RunThroughRedisKills(cluster, 1, 30);
  // A process kill loses nothing under everysec (the AOF was written before each reply; only a
  // machine crash loses the last second: the next test), so every acked message is still
  // there, once, and delivered once; but the node cannot know that, so the epoch changes.
  streams.CheckDelivery(cluster.Problems());
  for (int r = 0; r < Streams::kMembers; ++r) {
    CAPTURE(r);
    CHECK(streams.Epoch(r) != streams.member(r).epoch);
  }
}

// The AOF file Redis appends to now (Redis 7: appendonlydir/<name>.<n>.incr.aof).
std::string IncrAof(const im::test::RedisServer& redis) {
  std::string found;
  for (const auto& e : std::filesystem::directory_iterator(redis.dir() + "/appendonlydir")) {
    const std::string name = e.path().filename().string();
    if (name.size() > 9 && name.compare(name.size() - 9, 9, ".incr.aof") == 0 &&
        (found.empty() || name > std::filesystem::path(found).filename().string())) {
      found = e.path().string();
    }
  }
  REQUIRE(!found.empty());
  return found;
}

TEST_CASE("cluster faults: Redis restarted after losing acked writes under appendfsync everysec - "
          "a new epoch, clients resync from 0, nothing acked missing silently") {
  Cluster cluster("", im::test::RedisServerOptions{"everysec", {}});
  Streams streams(cluster);
  streams.Start();
  REQUIRE(streams.Progress(30));
  const std::string aof = IncrAof(cluster.redis);
  const auto mark = std::filesystem::file_size(aof);
  REQUIRE(streams.Progress(40));
  // What a machine crash does under everysec: the AOF's last writes never reached the disk.
  // The sends acked since `mark` are lost (their seqs will be handed out again).
  cluster.redis.Kill9();
  // Acks of writes the dead Redis answered may still be on their way to the senders (the last
  // CI run under ASan read the set a few milliseconds too early). Redis is down, so nothing
  // else can be acked: the set is read once it stopped growing for a second.
  std::vector<uint64_t> acked_before = streams.AllAcked();
  for (auto quiet_since = std::chrono::steady_clock::now();
       std::chrono::steady_clock::now() - quiet_since < std::chrono::seconds(1);) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::vector<uint64_t> now_acked = streams.AllAcked();
    if (now_acked.size() != acked_before.size()) {
      acked_before = std::move(now_acked);
      quiet_since = std::chrono::steady_clock::now();
    }
  }
  std::filesystem::resize_file(aof, mark);
  cluster.redis.Start();
  REQUIRE_MESSAGE(streams.Progress(40), cluster.Problems());
  streams.Stop();
  const std::set<uint64_t> may_be_lost(acked_before.begin(), acked_before.end());
  for (int r = 0; r < Streams::kMembers; ++r) {
    CAPTURE(r);
    // The client saw the new epoch (it synced again from seq 0) and delivered every message
    // acked after the loss through OnMessage, once. (Checked before the chat.sync reads below:
    // what the application syncs itself counts as delivered.)
    CHECK(WaitUntil([&] { return streams.member(r).GapCount("epoch") >= 1; }, 20000));
    std::vector<uint64_t> must;
    for (uint64_t mid : streams.Expected(r)) {
      if (may_be_lost.count(mid) == 0) must.push_back(mid);
    }
    const bool delivered = WaitUntil([&] {
      const std::vector<uint64_t> got = streams.Received(r);
      return std::includes(got.begin(), got.end(), must.begin(), must.end());
    }, 20000);
    CHECK_MESSAGE(delivered, cluster.Problems());
    const std::vector<uint64_t> got = streams.Received(r);
    CHECK(std::adjacent_find(got.begin(), got.end()) == got.end());
    // The inbox has the new epoch. Every acked message is in it, in send order per sender,
    // once; only those acked before the loss may be missing (the epoch changed).
    CHECK(streams.Epoch(r) != streams.member(r).epoch);
    for (int s = 0; s < Streams::kMembers; ++s) {
      const auto check = [&](const std::vector<uint64_t>& acked, const std::vector<uint64_t>& in) {
        std::vector<uint64_t> kept;
        for (uint64_t mid : acked) {
          if (std::find(in.begin(), in.end(), mid) != in.end()) {
            kept.push_back(mid);
          } else {
            CHECK_MESSAGE(may_be_lost.count(mid) == 1, "acked after the loss, missing: " << mid);
          }
        }
        CHECK(in == kept);
        // What survived was delivered too (before the loss, or again after it).
        for (uint64_t mid : in) CHECK(std::binary_search(got.begin(), got.end(), mid));
      };
      const std::string from = "m" + std::to_string(s);
      if (s == (r + Streams::kMembers - 1) % Streams::kMembers) {
        check(streams.Direct(s), InboxMids(*streams.member(r).client, "", from));
      }
      if (s != r) check(streams.Group(s), InboxMids(*streams.member(r).client, "g", from));
    }
  }
}

TEST_CASE("cluster faults: a stalled Redis - sends answer 503 within the bound, nothing queues "
          "up, the node recovers by itself") {
  Cluster cluster;
  std::vector<std::unique_ptr<Cluster::User>> senders;
  for (int n = 0; n < Cluster::kNodes; ++n) senders.push_back(cluster.Login("s" + std::to_string(n), n));
  auto rx = cluster.Login("rx", 0);
  REQUIRE(senders[0]->client->SendText("rx", "before").ok());
  const Samples before = RedisSamples(cluster.HttpPort(0));
  // Redis takes every connection's commands and answers none of them for 8 s (what a stalled or
  // swapping Redis does). The bound on a send's answer: a free pooled connection within
  // command_timeout_ms (1 s), a connect within connect_timeout_ms (1 s), a reply within
  // command_timeout_ms (1 s); and queued sends fail with the batch in front of them.
  constexpr int kPauseMs = 8000, kPerSender = 10;
  REQUIRE(cluster.redis.Command({"CLIENT", "PAUSE", std::to_string(kPauseMs), "ALL"}) == "+OK");
  const auto paused = std::chrono::steady_clock::now();
  std::mutex mu;
  std::vector<int64_t> latencies_ms;
  std::vector<std::string> answers;
  std::vector<std::thread> threads;
  for (int n = 0; n < Cluster::kNodes; ++n) {
    for (int k = 0; k < kPerSender; ++k) {
      threads.emplace_back([&, n, k] {
        const auto start = std::chrono::steady_clock::now();
        auto r = senders[n]->client->Request(
            "chat.send", R"({"to":"rx","body":"stalled","cid":"c)" + std::to_string(k) + "\"}");
        const int64_t ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::steady_clock::now() - start).count();
        std::lock_guard<std::mutex> lock(mu);
        latencies_ms.push_back(ms);
        answers.push_back(r.ok() ? "ok" : r.status().ToString());
      });
    }
  }
  for (auto& t : threads) t.join();
  const int64_t answered_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                  std::chrono::steady_clock::now() - paused).count();
  // Every send was answered 503 while Redis was still stalled: none waited for Redis.
  CHECK_MESSAGE(answered_ms < kPauseMs - 1000, answered_ms);
  for (const std::string& a : answers) CHECK_MESSAGE(a.rfind("503 unavailable", 0) == 0, a);
  CHECK(*std::max_element(latencies_ms.begin(), latencies_ms.end()) < kPauseMs - 1000);
  const Samples stalled = RedisSamples(cluster.HttpPort(0));
  CHECK(At(stalled, "im_redis_timeouts_total{backend=\"inbox\"}") >
        At(before, "im_redis_timeouts_total{backend=\"inbox\"}"));
  CHECK(At(stalled, "im_redis_errors_total{backend=\"inbox\"}") >
        At(before, "im_redis_errors_total{backend=\"inbox\"}"));
  // Nothing stays queued in the node.
  const auto depth = [&](int n) {
    const im::test::HttpResult r = im::test::Http(cluster.HttpPort(n), "GET", "/metrics");
    const size_t at = r.text.find("\nim_commit_queue_depth ");
    return at == std::string::npos ? -1.0 : std::stod(r.text.substr(at + 23));
  };
  for (int n = 0; n < Cluster::kNodes; ++n) CHECK(depth(n) == 0);
  // Redis answers again: the nodes recover by themselves, and the sends refused meanwhile go
  // through when sent again (the same cids: stored once).
  CHECK(WaitUntil([&] {
    for (int n = 0; n < Cluster::kNodes; ++n) {
      if (im::test::Http(cluster.HttpPort(n), "GET", "/readyz").status != 200) return false;
    }
    return true;
  }, 30000));
  std::set<uint64_t> mids;
  for (int n = 0; n < Cluster::kNodes; ++n) {
    for (int k = 0; k < kPerSender; ++k) {
      im::OutgoingMessage m;
      m.to = "rx";
      m.cid = "c" + std::to_string(k);
      m.body = "stalled";
      auto ack = senders[n]->client->Send(m);
      REQUIRE_MESSAGE(ack.ok(), ack.status().ToString());
      mids.insert(ack->mid);
    }
  }
  CHECK(mids.size() == static_cast<size_t>(Cluster::kNodes * kPerSender));
  CHECK(WaitUntil([&] { return rx->PushedCount() == 1 + mids.size(); }, 20000));
  CHECK(InboxMids(*rx->client, "").size() == 1 + mids.size());
}

TEST_CASE("cluster faults: a push whose publish failed is published again once Redis takes it") {
  Cluster cluster;
  auto sender = cluster.Login("pub-a", 0);
  auto rx = cluster.Login("pub-b", 1);
  REQUIRE(sender->client->SendText("pub-b", "warm").ok());
  REQUIRE(WaitUntil([&] { return rx->PushedCount() == 1; }, 10000));
  // Redis refuses PUBLISH (an error reply), and takes every other command: the message is
  // stored and acked, and its push across the cluster fails. It is the last message, so the
  // receiver sees no seq gap that would make it sync.
  REQUIRE(cluster.redis.Command({"ACL", "SETUSER", "default", "-publish"}) == "+OK");
  REQUIRE(sender->client->SendText("pub-b", "while refused").ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  CHECK(rx->PushedCount() == 1);
  REQUIRE(cluster.redis.Command({"ACL", "SETUSER", "default", "+publish"}) == "+OK");
  // The node publishes it again by itself: no other message, no reconnect.
  REQUIRE_MESSAGE(WaitUntil([&] { return rx->PushedCount() == 2; }, 10000), cluster.Problems());
  std::lock_guard<std::mutex> lock(rx->mu);
  CHECK(rx->pushed.back().body == "while refused");
  const std::string log = cluster.Problems();
  CHECK_MESSAGE(log.find("publish to 1 node(s) failed, retrying") != std::string::npos, log);
  const std::string metrics = im::test::Http(cluster.HttpPort(0), "GET", "/metrics").text;
  CHECK_MESSAGE(metrics.find("\nim_cluster_publish_retried_total 0\n") == std::string::npos,
                metrics);
  CHECK(metrics.find("\nim_cluster_publish_retried_total ") != std::string::npos);
  CHECK(metrics.find("\nim_cluster_publish_dropped_total 0\n") != std::string::npos);
}

TEST_CASE("cluster faults: the last push missed while a node was not subscribed reaches its "
          "client once the node subscribes again") {
  Cluster cluster;
  auto sender = cluster.Login("sub-a", 0);
  auto rx = cluster.Login("sub-b", 1);
  auto own = cluster.Login("sub-c", 1);  // its newest message is its own send
  REQUIRE(sender->client->SendText("sub-b", "warm").ok());
  REQUIRE(sender->client->SendText("sub-c", "to c").ok());
  REQUIRE(WaitUntil([&] { return rx->PushedCount() == 1 && own->PushedCount() == 1; }, 10000));
  // The nodes lose their subscriptions, and Redis refuses SUBSCRIBE for now (it takes every
  // other command): a message published meanwhile reaches no node.
  REQUIRE(cluster.redis.Command({"ACL", "SETUSER", "default", "-subscribe"}) == "+OK");
  const std::string killed = cluster.redis.Command({"CLIENT", "KILL", "TYPE", "pubsub"});
  REQUIRE_MESSAGE(killed.rfind(":", 0) == 0, killed);
  const auto unsubscribed = [&](int n) {
    std::istringstream log(cluster.Problems());
    for (std::string line; std::getline(log, line);) {
      if (line.rfind("n" + std::to_string(n) + ": ", 0) == 0 &&
          line.find("cluster: subscription to im:node:") != std::string::npos) {
        return true;
      }
    }
    return false;
  };
  REQUIRE_MESSAGE(WaitUntil([&] { return unsubscribed(1); }, 10000), cluster.Problems());
  // The last message of the conversation: the receiver sees no seq gap that would make it sync.
  REQUIRE(sender->client->SendText("sub-b", "while unsubscribed").ok());
  REQUIRE(own->client->SendText("sub-a", "c's own").ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  CHECK(rx->PushedCount() == 1);
  REQUIRE(cluster.redis.Command({"ACL", "SETUSER", "default", "+subscribe"}) == "+OK");
  // Node 1 subscribes again and pushes each of its users the newest message it did not send.
  REQUIRE_MESSAGE(WaitUntil([&] { return rx->PushedCount() == 2; }, 15000), cluster.Problems());
  {
    std::lock_guard<std::mutex> lock(rx->mu);
    CHECK(rx->pushed.back().body == "while unsubscribed");
  }
  // sub-c gets "to c" again (its newest message not its own), which its client ignores: it has
  // that seq.
  const auto metric = [&](int n) {
    const std::string text = im::test::Http(cluster.HttpPort(n), "GET", "/metrics").text;
    const size_t at = text.find("\nim_cluster_catchup_pushes_total ");
    return at == std::string::npos ? -1.0 : std::stod(text.substr(at + 33));
  };
  CHECK(WaitUntil([&] { return metric(1) >= 2; }, 10000));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK(own->PushedCount() == 1);
  CHECK(rx->PushedCount() == 2);
  // The same message once in the inbox, and nothing more.
  CHECK(InboxMids(*rx->client, "").size() == 2);
}

TEST_CASE("cluster faults: a client whose pushes of a new epoch were lost and whose next push "
          "lands on its position + 1 is moved by the catch-up, reconnects and gets them") {
  // The ACL lives in a file, so that a SUBSCRIBE refused before the restart stays refused
  // after it: no node subscribes again before the test allows it.
  im::test::TempDir acl_dir;
  const std::string acl = acl_dir.path() + "/users.acl";
  std::ofstream(acl) << "user default on nopass ~* &* +@all\n";
  Cluster cluster("", im::test::RedisServerOptions{"everysec", {"aclfile " + acl}});
  auto rx = Join(cluster, "ep-rx", 0);
  auto far = Join(cluster, "ep-far", 1);    // its pushes to ep-rx cross Redis
  auto near = Join(cluster, "ep-near", 0);  // its pushes to ep-rx stay on node 0
  const auto send = [](Member& from, const std::string& to, const std::string& cid) {
    im::OutgoingMessage m;
    m.to = to;
    m.cid = cid;
    m.body = cid;
    auto ack = from.client->Send(m);
    REQUIRE_MESSAGE(ack.ok(), ack.status().ToString());
    return ack->mid;
  };
  const auto received = [&] {
    std::lock_guard<std::mutex> lock(rx->mu);
    std::vector<uint64_t> mids;
    for (const im::Message& m : rx->got) mids.push_back(m.mid);
    return mids;
  };
  const auto has = [&](uint64_t mid) {
    const std::vector<uint64_t> got = received();
    return std::find(got.begin(), got.end(), mid) != got.end();
  };
  for (int k = 0; k < 3; ++k) send(*far, "ep-rx", "kept-" + std::to_string(k));
  REQUIRE(WaitUntil([&] { return received().size() == 3; }, 20000));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the AOF has them
  const std::string aof = IncrAof(cluster.redis);
  const auto mark = std::filesystem::file_size(aof);
  // Two more, delivered (the client's position is 5), then lost with the AOF's tail: the inbox
  // is back at seq 3 under a new epoch, and seqs 4 and 5 are handed out again.
  const uint64_t lost = send(*far, "ep-rx", "lost-0");
  REQUIRE(WaitUntil([&] { return has(lost); }, 20000));
  const uint64_t lost_last = send(*far, "ep-rx", "lost-1");
  REQUIRE(WaitUntil([&] { return has(lost_last); }, 20000));
  // No node can subscribe, before the restart and after it: what node 1 publishes meanwhile
  // reaches no one.
  REQUIRE(cluster.redis.Command({"ACL", "SETUSER", "default", "-subscribe"}) == "+OK");
  REQUIRE(cluster.redis.Command({"ACL", "SAVE"}) == "+OK");
  cluster.redis.Kill9();
  std::filesystem::resize_file(aof, mark);
  cluster.redis.Start();
  // Node 1's first publishes after the restart may meet a connection Redis closed: they are
  // retried (redis_router.h) and could reach node 0 once it subscribes again. Some sends to
  // ep-near (node 0: pushes lost too) first, and time for their retries.
  for (int k = 0; k < 4; ++k) send(*far, "ep-near", "warm-" + std::to_string(k));
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  // Seqs 4 and 5 again, their pushes lost; then seq 6 from node 0 itself: the client's
  // position + 1, which shows it nothing wrong.
  const uint64_t again_0 = send(*far, "ep-rx", "again-0");
  const uint64_t again_1 = send(*far, "ep-rx", "again-1");
  const uint64_t next = send(*near, "ep-rx", "next");
  REQUIRE_MESSAGE(WaitUntil([&] { return has(next); }, 20000), cluster.Problems());
  // Node 0 subscribes again; its catch-up finds the session told the old epoch and moves it
  // (session.kicked drain, close 1001); the client logs in again, sees the new epoch and
  // syncs from 0.
  REQUIRE(cluster.redis.Command({"ACL", "SETUSER", "default", "+subscribe"}) == "+OK");
  CHECK_MESSAGE(WaitUntil([&] { return has(again_0) && has(again_1); }, 30000),
                cluster.Problems());
  CHECK(rx->GapCount("epoch") >= 1);
  CHECK(rx->reconnects.load() >= 1);
  std::vector<uint64_t> got = received();
  std::sort(got.begin(), got.end());
  CHECK(std::adjacent_find(got.begin(), got.end()) == got.end());  // none delivered twice
  const std::string metrics = im::test::Http(cluster.HttpPort(0), "GET", "/metrics").text;
  CHECK_MESSAGE(metrics.find("im_kicks_total{reason=\"epoch_changed\"}") != std::string::npos,
                metrics);
}

}  // namespace

#endif  // IM_WITH_REDIS && defined(IMD_PATH)
