// SessionStore conformance: every backend added (im::conformance::AddBackend or
// RunSessionStoreSuite) runs the same cases. `open` must return an empty store, and a backend
// with shared state (a server) clears it there.

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "im/backends.h"
#include "im/session_store.h"
#include "suites/suite.h"

namespace im {
namespace conformance::internal {
void LinkSessionStoreSuite() {}
}  // namespace conformance::internal

namespace {

using conformance::SessionStoreBackend;
using conformance::internal::CheckError;
using conformance::internal::Must;
using conformance::internal::MustOk;

SessionInfo MakeSession(const std::string& tenant, const std::string& user,
                        const std::string& device, const std::string& session_id) {
  SessionInfo s;
  s.user = UserKey{tenant, user};
  s.device = device;
  s.session_id = session_id;
  s.node = "node-1";
  s.connection_id = std::hash<std::string>()(session_id);
  s.login_ms = 1000;
  return s;
}

std::set<std::string> Ids(const std::vector<SessionInfo>& sessions) {
  std::set<std::string> ids;
  for (const SessionInfo& s : sessions) ids.insert(s.session_id);
  return ids;
}

std::vector<SessionInfo> MustFind(SessionStore& store, const UserKey& user) {
  Result<std::vector<SessionInfo>> found = store.Find(user);
  REQUIRE(found.ok());
  return std::move(found).value();
}

std::vector<SessionInfo> MustPut(SessionStore& store, const SessionInfo& s, KickPolicy policy) {
  Result<std::vector<SessionInfo>> displaced = store.Put(s, policy);
  REQUIRE(displaced.ok());
  return std::move(displaced).value();
}

size_t MustCount(SessionStore& store, std::string_view tenant) {
  Result<size_t> count = store.Count(tenant);
  REQUIRE(count.ok());
  return *count;
}

// Runs `body` on a fresh store of every backend, each in its own SUBCASE.
template <typename Body>
void ForEachBackend(Body body) {
  conformance::internal::ForEachBackend<SessionStoreBackend>(
      [&body](const SessionStoreBackend& backend) {
    std::shared_ptr<SessionStore> store = backend.open();
    REQUIRE(store.get() != nullptr);
    body(*store);
  });
}

TEST_CASE("SessionStore: put then find") {
  ForEachBackend([](SessionStore& store) {
    const SessionInfo s = MakeSession("default", "alice", "phone", "s1");
    CHECK(MustPut(store, s, KickPolicy::kPerDevice).empty());
    std::vector<SessionInfo> found = MustFind(store, s.user);
    REQUIRE(found.size() == 1);
    CHECK(found[0].session_id == "s1");
    CHECK(found[0].device == "phone");
    CHECK(found[0].node == "node-1");
    CHECK(found[0].connection_id == s.connection_id);
    CHECK(found[0].login_ms == 1000);
    CHECK(MustFind(store, UserKey{"default", "bob"}).empty());
  });
}

TEST_CASE("SessionStore: per-device kick displaces the same device only") {
  ForEachBackend([](SessionStore& store) {
    const SessionInfo phone1 = MakeSession("default", "alice", "phone", "p1");
    const SessionInfo web = MakeSession("default", "alice", "web", "w1");
    const SessionInfo phone2 = MakeSession("default", "alice", "phone", "p2");
    CHECK(MustPut(store, phone1, KickPolicy::kPerDevice).empty());
    CHECK(MustPut(store, web, KickPolicy::kPerDevice).empty());
    std::vector<SessionInfo> displaced = MustPut(store, phone2, KickPolicy::kPerDevice);
    CHECK(Ids(displaced) == std::set<std::string>{"p1"});
    CHECK(Ids(MustFind(store, phone1.user)) == std::set<std::string>{"p2", "w1"});
  });
}

TEST_CASE("SessionStore: per-account kick displaces every other session") {
  ForEachBackend([](SessionStore& store) {
    CHECK(MustPut(store, MakeSession("default", "alice", "phone", "p1"), KickPolicy::kPerDevice)
              .empty());
    CHECK(MustPut(store, MakeSession("default", "alice", "web", "w1"), KickPolicy::kPerDevice)
              .empty());
    std::vector<SessionInfo> displaced =
        MustPut(store, MakeSession("default", "alice", "pad", "d1"), KickPolicy::kPerAccount);
    CHECK(Ids(displaced) == std::set<std::string>{"p1", "w1"});
    CHECK(Ids(MustFind(store, UserKey{"default", "alice"})) == std::set<std::string>{"d1"});
    CHECK(MustCount(store, "default") == 1);
  });
}

TEST_CASE("SessionStore: re-putting the same session replaces it silently") {
  ForEachBackend([](SessionStore& store) {
    SessionInfo s = MakeSession("default", "alice", "phone", "p1");
    CHECK(MustPut(store, s, KickPolicy::kPerDevice).empty());
    s.login_ms = 2000;
    CHECK(MustPut(store, s, KickPolicy::kPerAccount).empty());
    std::vector<SessionInfo> found = MustFind(store, s.user);
    REQUIRE(found.size() == 1);
    CHECK(found[0].login_ms == 2000);
    CHECK(MustCount(store, "") == 1);
  });
}

TEST_CASE("SessionStore: remove is compare-and-delete") {
  ForEachBackend([](SessionStore& store) {
    const SessionInfo old_session = MakeSession("default", "alice", "phone", "old");
    const SessionInfo new_session = MakeSession("default", "alice", "phone", "new");
    CHECK(MustPut(store, old_session, KickPolicy::kPerDevice).empty());
    CHECK(Ids(MustPut(store, new_session, KickPolicy::kPerDevice)) == std::set<std::string>{"old"});

    // The kicked connection's close path runs after the new login: it must not remove "new".
    Result<bool> removed = store.Remove(old_session);
    REQUIRE(removed.ok());
    CHECK_FALSE(*removed);
    CHECK(Ids(MustFind(store, new_session.user)) == std::set<std::string>{"new"});

    removed = store.Remove(new_session);
    REQUIRE(removed.ok());
    CHECK(*removed);
    CHECK(MustFind(store, new_session.user).empty());
    CHECK(MustCount(store, "default") == 0);

    removed = store.Remove(new_session);  // a second remove finds nothing
    REQUIRE(removed.ok());
    CHECK_FALSE(*removed);
  });
}

TEST_CASE("SessionStore: FindMany concatenates the sessions of every user") {
  ForEachBackend([](SessionStore& store) {
    CHECK(
        MustPut(store, MakeSession("default", "a", "phone", "a1"), KickPolicy::kPerDevice).empty());
    CHECK(MustPut(store, MakeSession("default", "a", "web", "a2"), KickPolicy::kPerDevice).empty());
    CHECK(
        MustPut(store, MakeSession("default", "b", "phone", "b1"), KickPolicy::kPerDevice).empty());
    CHECK(
        MustPut(store, MakeSession("default", "c", "phone", "c1"), KickPolicy::kPerDevice).empty());
    Result<std::vector<SessionInfo>> found = store.FindMany(
        {UserKey{"default", "a"}, UserKey{"default", "b"}, UserKey{"default", "nobody"}});
    REQUIRE(found.ok());
    CHECK(found->size() == 3);
    CHECK(Ids(*found) == std::set<std::string>{"a1", "a2", "b1"});

    Result<std::vector<SessionInfo>> none = store.FindMany({});
    REQUIRE(none.ok());
    CHECK(none->empty());
  });
}

TEST_CASE("SessionStore: count by tenant") {
  ForEachBackend([](SessionStore& store) {
    CHECK(MustCount(store, "") == 0);
    CHECK(MustPut(store, MakeSession("t1", "a", "phone", "1"), KickPolicy::kPerDevice).empty());
    CHECK(MustPut(store, MakeSession("t1", "a", "web", "2"), KickPolicy::kPerDevice).empty());
    CHECK(MustPut(store, MakeSession("t1", "b", "phone", "3"), KickPolicy::kPerDevice).empty());
    CHECK(MustPut(store, MakeSession("t2", "a", "phone", "4"), KickPolicy::kPerDevice).empty());
    CHECK(MustCount(store, "t1") == 3);
    CHECK(MustCount(store, "t2") == 1);
    CHECK(MustCount(store, "t3") == 0);
    CHECK(MustCount(store, "") == 4);

    // A kick replaces, so the count stays; a remove lowers it.
    CHECK(MustPut(store, MakeSession("t1", "a", "phone", "5"), KickPolicy::kPerDevice).size() == 1);
    CHECK(MustCount(store, "t1") == 3);
    Result<bool> removed = store.Remove(MakeSession("t1", "b", "phone", "3"));
    REQUIRE(removed.ok());
    CHECK(*removed);
    CHECK(MustCount(store, "t1") == 2);
    CHECK(MustCount(store, "") == 3);
  });
}

TEST_CASE("SessionStore: tenants are isolated") {
  ForEachBackend([](SessionStore& store) {
    const SessionInfo a1 = MakeSession("t1", "alice", "phone", "a1");
    const SessionInfo a2 = MakeSession("t2", "alice", "phone", "a2");
    CHECK(MustPut(store, a1, KickPolicy::kPerAccount).empty());
    // Same user id and device in another tenant: a different user, nobody is kicked.
    CHECK(MustPut(store, a2, KickPolicy::kPerAccount).empty());
    CHECK(Ids(MustFind(store, a1.user)) == std::set<std::string>{"a1"});
    CHECK(Ids(MustFind(store, a2.user)) == std::set<std::string>{"a2"});

    // Removing with the other tenant's key must not touch this one.
    SessionInfo wrong_tenant = a1;
    wrong_tenant.user.tenant = "t2";
    Result<bool> removed = store.Remove(wrong_tenant);
    REQUIRE(removed.ok());
    CHECK_FALSE(*removed);
    CHECK(Ids(MustFind(store, a1.user)) == std::set<std::string>{"a1"});
  });
}

TEST_CASE("SessionStore: concurrent puts of one user leave one session per device") {
  ForEachBackend([](SessionStore& store) {
    constexpr int kThreads = 8;
    constexpr int kPutsPerThread = 200;
    const std::vector<std::string> devices = {"phone", "web", "pad"};
    std::mutex mu;
    std::vector<std::string> displaced_ids;
    bool all_ok = true;
    std::atomic<int> ready{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        std::vector<std::string> local;
        bool ok = true;
        ++ready;  // start together so the puts really race
        while (ready.load() < kThreads) std::this_thread::yield();
        for (int i = 0; i < kPutsPerThread; ++i) {
          const std::string id = std::to_string(t) + "-" + std::to_string(i);
          Result<std::vector<SessionInfo>> displaced =
              store.Put(MakeSession("default", "alice", devices[(t + i) % devices.size()], id),
                        KickPolicy::kPerDevice);
          if (!displaced.ok()) {
            ok = false;
            continue;
          }
          for (const SessionInfo& s : *displaced) local.push_back(s.session_id);
        }
        std::lock_guard<std::mutex> lock(mu);
        all_ok = all_ok && ok;
        displaced_ids.insert(displaced_ids.end(), local.begin(), local.end());
      });
    }
    for (std::thread& thread : threads) thread.join();
    REQUIRE(all_ok);

    std::vector<SessionInfo> online = MustFind(store, UserKey{"default", "alice"});
    REQUIRE(online.size() == devices.size());
    std::set<std::string> online_devices;
    for (const SessionInfo& s : online) online_devices.insert(s.device);
    CHECK(online_devices.size() == devices.size());
    CHECK(MustCount(store, "default") == devices.size());

    // Every session put is either still online or was displaced exactly once: none was lost
    // (never kicked) and none was kicked twice.
    std::multiset<std::string> seen(displaced_ids.begin(), displaced_ids.end());
    for (const SessionInfo& s : online) seen.insert(s.session_id);
    CHECK(seen.size() == static_cast<size_t>(kThreads * kPutsPerThread));
    CHECK(std::set<std::string>(seen.begin(), seen.end()).size() == seen.size());
  });
}

}  // namespace
}  // namespace im
