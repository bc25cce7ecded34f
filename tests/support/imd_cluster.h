// Test support: a Redis and three imd nodes on it (every store on Redis, one signing key for
// all), the clients that log in to them, and a reader of inboxes. For the cluster tests; each
// test makes its own (its own redis-server and imd processes on free loopback ports).
#ifndef IM_TESTS_SUPPORT_IMD_CLUSTER_H_
#define IM_TESTS_SUPPORT_IMD_CLUSTER_H_
#if IM_WITH_REDIS && defined(IMD_PATH)

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "im/auth.h"
#include "im/client.h"
#include "support/child_process.h"
#include "support/imd_process.h"
#include "support/redis_server.h"
#include "support/temp_dir.h"

namespace im::test {

// A Redis and three imd nodes on it, every store on Redis, one signing key for all.
// `cluster_toml`: more [cluster] keys for every node (heartbeat_ms, node_ttl_ms, ...).
struct Cluster {
  static constexpr int kNodes = 3;
  im::test::RedisServer redis;
  im::test::TempDir dir;
  std::shared_ptr<im::KeyStore> keys;
  std::vector<im::test::ImdProcess> nodes;
  const std::string cluster_toml;

  explicit Cluster(std::string cluster_toml_in = "",
                   im::test::RedisServerOptions redis_options = {"always", {}})
      : redis(std::move(redis_options)), cluster_toml(std::move(cluster_toml_in)) {
    auto k = im::OpenDirKeyStore(dir.path() + "/keys", true);
    REQUIRE(k.ok());
    keys = *k;
    auto key = keys->KeyFor("default");
    REQUIRE(key.ok());
    std::string hex(key->size() * 2, '0');
    static const char* kHex = "0123456789abcdef";
    for (size_t i = 0; i < key->size(); ++i) {
      hex[2 * i] = kHex[static_cast<unsigned char>((*key)[i]) >> 4];
      hex[2 * i + 1] = kHex[static_cast<unsigned char>((*key)[i]) & 15];
    }
    key_hex = hex;
    for (int n = 0; n < kNodes; ++n) {
      auto args = Config("node" + std::to_string(n), "n" + std::to_string(n), n);
      nodes.push_back(im::test::StartImd(IMD_PATH, dir.path() + "/node" + std::to_string(n),
                                         "127.0.0.1:0", "127.0.0.1:0", args));
    }
  }
  std::string key_hex;

  // Writes the config of a node on data dir `name`; the arguments that make imd read it.
  std::vector<std::string> Config(const std::string& name, const std::string& node_id,
                                  int node_number) {
    const std::string data = dir.path() + "/" + name;
    std::filesystem::create_directories(data);
    const std::string url = redis.url();
    return im::test::WriteImdConfig(
        data, "[server]\nnode_number = " + std::to_string(node_number) +
                  "\n[storage]\ninbox = \"" + url + "\"\ngroups = \"" + url +
                  "\"\nusers = \"" + url + "\"\nsessions = \"" + url +
                  "\"\n[cluster]\nnode_id = \"" + node_id + "\"\n" + cluster_toml +
                  "[log]\nconsole = false\n"  // imd.log only: a failure's output stays short
                  "[keys]\ndefault = \"" +
                  key_hex + "\"\n");
  }

  // Starts node `n` again on its data dir, config and ports (after it stopped or was killed;
  // its id must be free by then: node_ttl_ms after a kill). REQUIREs that it serves.
  void StartNode(int n) {
    const std::string name = "node" + std::to_string(n);
    nodes[n] = StartImd(IMD_PATH, dir.path() + "/" + name, nodes[n].tcp_listen,
                        nodes[n].http_listen, Config(name, "n" + std::to_string(n), n));
  }

  // Runs one more imd that must refuse to start: its exit status and output.
  int Refused(const std::string& name, const std::vector<std::string>& args, std::string* out) {
    std::string command = std::string(IMD_PATH) + " --data " + dir.path() + "/" + name +
                          " --tcp 127.0.0.1:0 --http 127.0.0.1:0";
    for (const std::string& a : args) command += " " + a;
    im::test::ChildProcess p({"/bin/sh", "-c", command + " 2>&1"});
    *out = p.WaitForLine("imd:", 20000);
    return p.Wait(20000);
  }

  uint16_t HttpPort(int n) const {
    return static_cast<uint16_t>(
        std::stoi(nodes[n].http_listen.substr(nodes[n].http_listen.rfind(':') + 1)));
  }

  // The warnings and errors in the nodes' logs, for a failure message.
  std::string Problems() const {
    std::string out;
    for (int n = 0; n < kNodes; ++n) {
      std::ifstream in(dir.path() + "/node" + std::to_string(n) + "/imd.log");
      for (std::string line; std::getline(in, line);) {
        // spdlog spells the levels "warning" and "error" in the log.
        if (line.find(" warning ") != std::string::npos ||
            line.find(" error ") != std::string::npos) {
          out += "n" + std::to_string(n) + ": " + line + "\n";
        }
      }
    }
    return out;
  }

  std::string Token(const std::string& user) {
    auto t = im::SignHs256Token(*keys, im::UserKey{"default", user}, 3600,
                                im::SystemClock()->NowMs());
    REQUIRE(t.ok());
    return *t;
  }

  // A client of `user` logged in on node `n`, recording the messages pushed to it.
  struct User {
    std::unique_ptr<im::Client> client;
    std::mutex mu;
    std::vector<im::Message> pushed;
    std::atomic<int> kicked{0};
    std::atomic<int> close_code{-1};
    im::LoginInfo login;
    // The client goes first: its threads call back into the members below until it is gone.
    ~User() { client.reset(); }
    size_t PushedCount() {
      std::lock_guard<std::mutex> lock(mu);
      return pushed.size();
    }
  };
  std::unique_ptr<User> Login(const std::string& user, int n,
                              const std::function<void(im::Client&)>& before_login = nullptr,
                              const std::string& device = "default") {
    auto u = std::make_unique<User>();
    im::ClientOptions o;
    o.url = nodes[n].tcp_url;
    o.auto_reconnect = false;
    u->client = std::make_unique<im::Client>(o);
    User* raw = u.get();
    u->client->OnMessage([raw](const im::ReceivedMessage& m) {
      if (m.message.type == "system") return;  // a group event
      std::lock_guard<std::mutex> lock(raw->mu);
      raw->pushed.push_back(m.message);
    });
    u->client->OnKicked([raw](const std::string&) { raw->kicked++; });
    u->client->OnClosed([raw](int code, const std::string&) { raw->close_code = code; });
    REQUIRE(u->client->Connect().ok());
    if (before_login) before_login(*u->client);
    auto info = u->client->Login(Token(user), device);
    REQUIRE_MESSAGE(info.ok(), info.status().ToString());
    u->login = *info;
    return u;
  }
};

// One chat.sync page, retried as docs/protocol.md asks of a client while the answer is 503
// `unavailable` (a storage backend that just restarted answers a request on each of its pooled
// connections so once; a client between two connections says so too), for at most 20 s.
inline im::Result<im::SyncPage> SyncRetrying(im::Client& c, uint64_t after, size_t limit) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  int backoff_ms = 10;
  for (;;) {
    auto page = c.Sync(after, limit);
    if (page.ok() || page.status().code() != im::Code::kUnavailable ||
        std::chrono::steady_clock::now() > deadline) {
      return page;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(backoff_ms));
    backoff_ms = std::min(backoff_ms * 2, 500);
  }
}

// The mids of the messages in `c`'s inbox of group `gid` ("": 1:1) and, when given, from
// `from`, in seq order. Group events (type system) are left out.
inline std::vector<uint64_t> InboxMids(im::Client& c, const std::string& gid,
                                const std::string& from = "") {
  std::vector<uint64_t> mids;
  uint64_t after = 0;
  for (;;) {
    auto page = SyncRetrying(c, after, 100);
    REQUIRE_MESSAGE(page.ok(), page.status().ToString());
    for (const im::ReceivedMessage& m : page->messages) {
      if (m.message.group == gid && m.message.type != "system" &&
          (from.empty() || m.message.from == from)) {
        mids.push_back(m.message.mid);
      }
      after = m.seq;
    }
    if (!page->more || page->messages.empty()) break;
  }
  return mids;
}

}  // namespace im::test

#endif  // IM_WITH_REDIS && defined(IMD_PATH)
#endif  // IM_TESTS_SUPPORT_IMD_CLUSTER_H_
