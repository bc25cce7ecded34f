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
#include <map>
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

// One message as the client handed it to the application (OnMessage).
struct Received {
  uint64_t seq = 0;  // in this user's inbox
  uint64_t mid = 0;
  std::string from;
  std::string type;
};

// A client that connects through route_url (node `via` answers the route), recording the node
// it is on, its drain kicks, whether it was closed for good, and every message it received
// live: pushes and what its own resyncs returned after each reconnect, as OnMessage got them.
struct RoutedUser {
  std::unique_ptr<im::Client> client;
  std::mutex mu;
  std::string node;
  std::vector<std::pair<uint64_t, std::string>> acked;  // 1:1 sends acked: mid, receiver
  std::vector<uint64_t> group_acked;
  std::vector<Received> received;  // in the order OnMessage got them
  std::atomic<int> drain_kicks{0};
  std::atomic<bool> closed{false};
  // The client goes first: its threads call back into the members below until it is gone.
  ~RoutedUser() { client.reset(); }
};

inline std::unique_ptr<RoutedUser> RoutedLogin(Nodes& cluster, const std::string& user,
                                               size_t via,
                                               const std::string& tenant = "default") {
  auto u = std::make_unique<RoutedUser>();
  im::ClientOptions o;
  o.url = cluster.nodes[via].tcp_url;  // the fallback
  o.route_url = cluster.RouteUrl(via, user, tenant);
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
  u->client->OnMessage([raw](const im::ReceivedMessage& m) {
    std::lock_guard<std::mutex> lock(raw->mu);
    raw->received.push_back({m.seq, m.message.mid, m.message.from, m.message.type});
  });
  REQUIRE(u->client->Connect().ok());
  auto login = u->client->Login(cluster.Token(user, tenant));
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
            if (m.group.empty()) {
              u.acked.emplace_back(ack->mid, m.to);
            } else {
              u.group_acked.push_back(ack->mid);
            }
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
      for (const auto& [mid, to] : users[i]->acked) {
        size_t copies = 0;
        for (const auto& mids : inbox) copies += mids.count(mid);
        CHECK(copies == 1);
        ++total;
      }
    }
    return total;
  }

  // After Stop: what each user received live (RoutedUser::received), deduplicated by the
  // protocol's rule (an entry whose seq was delivered already is a repeat: docs/protocol.md,
  // What a client keeps and does), holds every acked message addressed to it (1:1, and each
  // group message of the others) exactly once, and each sender's 1:1 and group messages each
  // in the order they were acked (by inbox seq: a push that came above a hole is presented
  // before the resync fills the hole). The senders are stopped: their records no longer move.
  // Waits up to `timeout_ms` for the last pushes and hole-filling resyncs, polling
  // every 100 ms. Also checks the client's own promise that OnMessage never repeats a seq.
  void CheckReceivedLiveOnce(int timeout_ms = 60000) {
    const int n = static_cast<int>(users.size());
    // expected[r][s]: the 1:1 mids user s sent user r, in ack order (each group message of s
    // is expected by every other user: group_acked, in ack order).
    std::vector<std::vector<std::vector<uint64_t>>> expected(
        users.size(), std::vector<std::vector<uint64_t>>(users.size()));
    for (int s = 0; s < n; ++s) {
      std::lock_guard<std::mutex> lock(users[s]->mu);
      for (const auto& [mid, to] : users[s]->acked) {
        for (int r = 0; r < n; ++r) {
          if (to == prefix + std::to_string(r)) expected[r][s].push_back(mid);
        }
      }
    }
    // got[r][s]: what r received from s, deduplicated by seq, in seq order; with `repeats`,
    // counts the seqs delivered again and checks that each carried the same mid.
    auto collect = [&](int r, size_t* repeats) {
      std::map<uint64_t, const Received*> by_seq;
      std::lock_guard<std::mutex> lock(users[r]->mu);
      for (const Received& m : users[r]->received) {
        auto [it, fresh] = by_seq.emplace(m.seq, &m);
        if (!fresh && repeats != nullptr) {
          ++*repeats;
          CHECK_MESSAGE(it->second->mid == m.mid, "seq " << m.seq << " carried two mids");
        }
      }
      std::vector<std::vector<uint64_t>> got(users.size());
      for (const auto& [seq, m] : by_seq) {
        if (m->type == "system" || m->from == prefix + std::to_string(r)) continue;
        for (int s = 0; s < n; ++s) {
          if (m->from == prefix + std::to_string(s)) got[s].push_back(m->mid);
        }
      }
      return got;
    };
    std::vector<std::set<uint64_t>> group_sent(users.size());
    for (int s = 0; s < n; ++s) {
      std::lock_guard<std::mutex> lock(users[s]->mu);
      group_sent[s].insert(users[s]->group_acked.begin(), users[s]->group_acked.end());
    }
    // Splits what r got from s into 1:1 and group mids, each in seq order.
    auto split = [&](int s, const std::vector<uint64_t>& mids, std::vector<uint64_t>* direct,
                     std::vector<uint64_t>* grouped) {
      for (uint64_t mid : mids) (group_sent[s].count(mid) ? grouped : direct)->push_back(mid);
    };
    auto complete = [&] {
      for (int r = 0; r < n; ++r) {
        auto got = collect(r, nullptr);
        for (int s = 0; s < n; ++s) {
          if (s == r) continue;
          std::vector<uint64_t> direct, grouped;
          split(s, got[s], &direct, &grouped);
          if (direct.size() < expected[r][s].size() ||
              grouped.size() < users[s]->group_acked.size()) {
            return false;
          }
        }
      }
      return true;
    };
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (!complete() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    for (int r = 0; r < n; ++r) {
      size_t repeats = 0;
      auto got = collect(r, &repeats);
      CHECK_MESSAGE(repeats == 0, prefix << r << ": OnMessage repeated " << repeats << " seqs");
      for (int s = 0; s < n; ++s) {
        if (s == r) continue;
        std::vector<uint64_t> direct, grouped;
        split(s, got[s], &direct, &grouped);
        CHECK_MESSAGE(direct == expected[r][s], prefix << r << " from " << prefix << s
                                                       << ": 1:1 received " << direct.size()
                                                       << ", acked " << expected[r][s].size());
        CHECK_MESSAGE(grouped == users[s]->group_acked,
                      prefix << r << " from " << prefix << s << ": group received "
                             << grouped.size() << ", acked " << users[s]->group_acked.size());
      }
    }
  }
};
#endif  // IM_WITH_REDIS

}  // namespace im::test::route

#endif  // IMD_PATH
#endif  // IM_TESTS_SUPPORT_ROUTE_NODES_H_
