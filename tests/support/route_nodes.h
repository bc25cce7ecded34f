// Test support for the routing tests: imd nodes on one signing key (on one Redis when given),
// GET /v1/route's answer as node ids, and clients that connect through route_url.
#ifndef IM_TESTS_SUPPORT_ROUTE_NODES_H_
#define IM_TESTS_SUPPORT_ROUTE_NODES_H_
#ifdef IMD_PATH

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "im/auth.h"
#include "im/client.h"
#include "support/http.h"
#include "support/imd_process.h"
#include "support/temp_dir.h"

namespace im::test::route {


constexpr char kAdminKey[] = "route-test-admin-key-0123";
constexpr char kOperatorKey[] = "route-test-operator-key-0123";

inline std::string Hex(const std::string& bin) {
  static const char* kHex = "0123456789abcdef";
  std::string hex;
  for (unsigned char c : bin) {
    hex += kHex[c >> 4];
    hex += kHex[c & 15];
  }
  return hex;
}

inline uint16_t PortOf(const std::string& listen) {
  return static_cast<uint16_t>(std::stoi(listen.substr(listen.rfind(':') + 1)));
}

// imd nodes on one signing key; on one Redis when `redis_url` is set.
struct Nodes {
  im::test::TempDir dir;
  std::shared_ptr<im::KeyStore> keys;
  std::string key_hex;
  std::vector<im::test::ImdProcess> nodes;

  Nodes() {
    auto k = im::OpenDirKeyStore(dir.path() + "/keys", true);
    REQUIRE(k.ok());
    keys = *k;
    auto key = keys->KeyFor("default");
    REQUIRE(key.ok());
    key_hex = Hex(*key);
    auto acme = keys->KeyFor("acme");
    REQUIRE(acme.ok());
    acme_hex = Hex(*acme);
  }
  std::string acme_hex;

  // Starts node `id` (number `n`) with `extra` TOML appended to its config (its own sections).
  void Start(const std::string& id, int n, const std::string& redis_url,
             const std::string& cluster_extra, const std::string& extra) {
    const std::string data = dir.path() + "/" + id;
    std::filesystem::create_directories(data);
    ids.push_back(id);
    std::string toml = "[server]\nnode_number = " + std::to_string(n) + "\nnode_id = \"" + id +
                       "\"\n";
    if (!redis_url.empty()) {
      toml += "[storage]\ninbox = \"" + redis_url + "\"\ngroups = \"" + redis_url +
              "\"\nusers = \"" + redis_url + "\"\nsessions = \"" + redis_url + "\"\n";
    } else {
      toml += "[storage]\ninbox = \"memory:\"\ngroups = \"memory:\"\nusers = \"memory:\"\n";
    }
    toml += "[cluster]\n" + cluster_extra + "\n";
    toml += "[keys]\ndefault = \"" + key_hex + "\"\nacme = \"" + acme_hex + "\"\n";
    toml += "[admin_keys]\ndefault = \"" + std::string(kAdminKey) + "\"\n";
    toml += "[web]\noperator_key = \"" + std::string(kOperatorKey) + "\"\n";
    // The route tests ask for hundreds of routes from 127.0.0.1: the per-address bucket is off
    // unless a test sets [limits] itself.
    if (extra.find("[limits]") == std::string::npos) toml += "[limits]\nroute_address_rate = 0\n";
    toml += extra;
    auto args = im::test::WriteImdConfig(data, toml);
    tomls.push_back(toml);
    nodes.push_back(
        im::test::StartImd(IMD_PATH, data, "127.0.0.1:0", "127.0.0.1:0", args));
  }

  std::vector<std::string> tomls;  // each node's config, as written

  // Rewrites node `n`'s config with `from` replaced by `to`, and sends it SIGHUP.
  void Reload(size_t n, const std::string& from, const std::string& to) {
    std::string& toml = tomls[n];
    const size_t at = toml.find(from);
    REQUIRE(at != std::string::npos);
    toml.replace(at, from.size(), to);
    im::test::WriteImdConfig(dir.path() + "/" + ids[n], toml);
    nodes[n].process->Signal(SIGHUP);
  }
  std::vector<std::string> ids;

  uint16_t HttpPort(size_t n) const { return PortOf(nodes[n].http_listen); }
  std::string RouteUrl(size_t n, const std::string& user, const std::string& tenant = "default") {
    return "http://" + nodes[n].http_listen + "/v1/route?tenant=" + tenant + "&user=" + user;
  }

  std::string Token(const std::string& user, const std::string& tenant = "default") {
    auto t = im::SignHs256Token(*keys, im::UserKey{tenant, user}, 3600,
                                im::SystemClock()->NowMs());
    REQUIRE(t.ok());
    return *t;
  }
};

// The node ids of a route answer, in order.
inline std::vector<std::string> Route(uint16_t port, const std::string& query,
                                      int* status = nullptr) {
  im::test::HttpResult r = im::test::Http(port, "GET", "/v1/route?" + query);
  if (status) *status = r.status;
  std::vector<std::string> ids;
  if (r.status != 200 || !r.body.IsObject() || !r.body.HasMember("gateways")) return ids;
  for (const auto& g : r.body["gateways"].GetArray()) ids.push_back(g["node"].GetString());
  return ids;
}

// `method path` on `port` is the operator's alone: 401 without a credential, 403 with a user's
// token, 403 operator_only with a tenant's admin key.
inline void CheckOperatorOnly(Nodes& cluster, uint16_t port, const std::string& method,
                              const std::string& path) {
  CHECK(im::test::Http(port, method, path).status == 401);
  CHECK(im::test::Http(port, method, path, "", cluster.Token("alice")).status == 403);
  im::test::HttpResult by_admin = im::test::Http(port, method, path, "", kAdminKey);
  CHECK(by_admin.status == 403);
  CHECK(by_admin.Str("error") == "operator_only");
}

#if IM_WITH_REDIS

// A client that connects through route_url (node `via` answers the route), recording the node
// it is on, its drain kicks and whether it was closed for good.
struct RoutedUser {
  std::unique_ptr<im::Client> client;
  std::mutex mu;
  std::string node;
  std::vector<uint64_t> acked;  // 1:1 sends acked
  std::vector<uint64_t> group_acked;
  std::atomic<int> drain_kicks{0};
  std::atomic<bool> closed{false};
};

inline std::unique_ptr<RoutedUser> RoutedLogin(Nodes& cluster, const std::string& user,
                                               size_t via) {
  auto u = std::make_unique<RoutedUser>();
  im::ClientOptions o;
  o.url = cluster.nodes[via].tcp_url;  // the fallback
  o.route_url = cluster.RouteUrl(via, user);
  o.reconnect_min_ms = 50;
  o.reconnect_max_ms = 500;
  o.send_timeout_ms = 60000;
  u->client = std::make_unique<im::Client>(o);
  RoutedUser* raw = u.get();
  u->client->OnReconnected([raw](const im::LoginInfo& info) {
    std::lock_guard<std::mutex> lock(raw->mu);
    raw->node = info.node;
  });
  u->client->OnKicked([raw](const std::string& reason) {
    if (reason == "drain") raw->drain_kicks++;
  });
  u->client->OnClosed([raw](int, const std::string&) { raw->closed = true; });
  REQUIRE(u->client->Connect().ok());
  auto login = u->client->Login(cluster.Token(user));
  REQUIRE_MESSAGE(login.ok(), login.status().ToString());
  u->node = login->node;
  return u;
}

// Users named prefix + index, each sending (every 20 ms) 1:1 messages to the others in turn
// and, when `group` is set, every third message to that group instead; the acked mids are
// recorded on the users.
struct Traffic {
  std::vector<std::unique_ptr<RoutedUser>>& users;
  const std::string prefix;
  const std::string group;
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::vector<std::thread> senders;

  Traffic(std::vector<std::unique_ptr<RoutedUser>>& users_in, std::string prefix_in,
          std::string group_in = "")
      : users(users_in), prefix(std::move(prefix_in)), group(std::move(group_in)) {
    const int n = static_cast<int>(users.size());
    for (int i = 0; i < n; ++i) {
      senders.emplace_back([this, i, n] {
        RoutedUser& u = *users[i];
        for (int k = 0; !stop.load(); ++k) {
          im::OutgoingMessage m;
          if (!group.empty() && k % 3 == 2) {
            m.group = group;
          } else {
            m.to = prefix + std::to_string((i + 1 + k % (n - 1)) % n);
          }
          m.body = prefix + std::to_string(i) + "-" + std::to_string(k);
          auto ack = u.client->Send(m);
          if (!ack.ok()) {
            failures++;
            continue;
          }
          {
            std::lock_guard<std::mutex> lock(u.mu);
            (m.group.empty() ? u.acked : u.group_acked).push_back(ack->mid);
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
      });
    }
  }
  ~Traffic() { Stop(); }
  void Stop() {
    stop = true;
    for (auto& t : senders) {
      if (t.joinable()) t.join();
    }
  }

  // After Stop: every acked 1:1 message is in exactly one inbox of the others, and every acked
  // group message in each other member's inbox exactly once (synced now, over any node). Returns
  // how many acked messages were checked.
  size_t CheckDeliveredOnce() {
    const int n = static_cast<int>(users.size());
    std::vector<std::multiset<uint64_t>> inbox(users.size());  // mids each user received
    for (int i = 0; i < n; ++i) {
      uint64_t after = 0;
      for (;;) {
        auto page = users[i]->client->Sync(after, 100);
        REQUIRE(page.ok());
        for (const auto& m : page->messages) {
          if (m.message.type != "system" && m.message.from != prefix + std::to_string(i)) {
            inbox[i].insert(m.message.mid);
          }
          after = m.seq;
        }
        if (!page->more || page->messages.empty()) break;
      }
    }
    size_t total = 0;
    for (int i = 0; i < n; ++i) {
      for (uint64_t mid : users[i]->group_acked) {
        for (int r = 0; r < n; ++r) {
          if (r != i) CHECK(inbox[r].count(mid) == 1);
        }
        ++total;
      }
      for (uint64_t mid : users[i]->acked) {
        size_t copies = 0;
        for (const auto& mids : inbox) copies += mids.count(mid);
        CHECK(copies == 1);
        ++total;
      }
    }
    return total;
  }
};
#endif  // IM_WITH_REDIS

}  // namespace im::test::route

#endif  // IMD_PATH
#endif  // IM_TESTS_SUPPORT_ROUTE_NODES_H_
