// Redis-only cases, beside the conformance suites every backend runs: what a caller of a Redis
// backend sees while Redis is down, and that it recovers by itself; sessions shared by several
// nodes (compare-and-delete across nodes, expiry of a node that stops refreshing, one round trip
// for FindMany).

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "conformance/redis_backends.h"
#include "conformance/redis_test_options.h"
#include "conformance/suites/suite.h"
#include "im/redis.h"
#include "store/redis/redis_client.h"
#include "store/redis/redis_session_store.h"
#include "support/redis_commandstats.h"
#include "support/redis_server.h"
#include "support/wait_until.h"

namespace im {
namespace {

using conformance::internal::CheckError;
using conformance::internal::FastHash;
using conformance::internal::Must;

constexpr TimestampMs kT0 = 1'700'000'000'000;

TEST_CASE("UserStore: redis answers 503 while Redis is down and recovers by itself") {
  test::RedisServer server;
  server.Stop();
  // Opening does not need Redis: a node may start before it.
  std::shared_ptr<UserStore> s =
      Must(OpenRedisUserStore(test::FastFailingRedisOptions(server), FastHash()));
  const UserKey alice{"default", "alice"};
  CheckError(s->Create(alice, "password-1", "", kT0), Code::kUnavailable, "unavailable");
  CheckError(s->Get(alice), Code::kUnavailable, "unavailable");
  // Not 401: a login must not tell a user their password is wrong when the store is down.
  CheckError(s->VerifyPassword(alice, "password-1"), Code::kUnavailable, "unavailable");

  server.Start();
  REQUIRE(test::WaitUntil([&] { return s->Get(alice).status().code() == Code::kNotFound; }));
  Must(s->Create(alice, "password-1", "Alice", kT0));

  // Stopped again (SIGTERM writes the AOF): the account survives the restart.
  server.Restart();
  REQUIRE(test::WaitUntil([&] { return s->VerifyPassword(alice, "password-1").ok(); }));
  CHECK(Must(s->Get(alice)).display_name == "Alice");
}

TEST_CASE("UserStore: redis keeps an account under the user's escaped hash tag") {
  test::SharedRedisServer().FlushAll();
  std::shared_ptr<UserStore> s = Must(
      OpenRedisUserStore(test::FastFailingRedisOptions(test::SharedRedisServer()), FastHash()));
  Must(s->Create(UserKey{"t{1}", "a/b%"}, "password-1", "", kT0));
  const std::string key = "im:{u:t%7B1%7D/a%2Fb%25}:account";
  CHECK(test::SharedRedisServer().Command({"EXISTS", key}) == ":1");
  CHECK(test::SharedRedisServer().Command({"HGET", key, "v"}) == "$1");  // the version, "1"
  CHECK(test::SharedRedisServer().Command({"DBSIZE"}) == ":1");          // nothing else was written
  CHECK(Must(s->Get(UserKey{"t{1}", "a/b%"})).display_name == "a/b%");
}

SessionInfo Session(const std::string& user, const std::string& device, const std::string& id,
                    const std::string& node) {
  SessionInfo s;
  s.user = UserKey{"default", user};
  s.device = device;
  s.session_id = id;
  s.node = node;
  s.connection_id = 18'446'744'073'709'551'000ull;  // above 2^53: no double on the way
  s.login_ms = kT0;
  return s;
}

std::vector<SessionInfo> MustFind(SessionStore& store, const std::string& user) {
  return Must(store.Find(UserKey{"default", user}));
}

TEST_CASE("SessionStore: redis answers 503 while Redis is down and recovers by itself") {
  test::RedisServer server;
  std::shared_ptr<SessionStore> s =
      Must(OpenRedisSessionStore(test::FastFailingRedisOptions(server)));
  const SessionInfo alice = Session("alice", "phone", "s1", "node-a");
  Must(s->Put(alice, KickPolicy::kPerDevice));
  server.Stop();
  CheckError(s->Put(Session("bob", "phone", "s2", "node-a"), KickPolicy::kPerDevice),
             Code::kUnavailable, "unavailable");
  CheckError(s->Find(alice.user), Code::kUnavailable, "unavailable");
  CheckError(s->FindMany({alice.user}), Code::kUnavailable, "unavailable");
  CheckError(s->Remove(alice), Code::kUnavailable, "unavailable");
  CheckError(s->Count(""), Code::kUnavailable, "unavailable");
  server.Start();
  REQUIRE(test::WaitUntil([&] { return s->Find(alice.user).ok(); }));
  CHECK(MustFind(*s, "alice").size() == 1);  // the AOF kept it, and its TTL had not passed
  CHECK(Must(s->Remove(alice)));
}

TEST_CASE("SessionStore: redis remove across nodes never deletes the newer session") {
  test::SharedRedisServer().FlushAll();
  RedisOptions redis = test::FastFailingRedisOptions(test::SharedRedisServer());
  std::mutex mu;
  std::vector<SessionInfo> lost;
  RedisSessionOptions a_options;
  a_options.session_ttl_ms = 5000;
  a_options.refresh_interval_ms = 50;
  a_options.on_lost = [&](const SessionInfo& s) {
    std::lock_guard<std::mutex> lock(mu);
    lost.push_back(s);
  };
  std::shared_ptr<SessionStore> node_a = Must(OpenRedisSessionStore(redis, a_options));
  std::shared_ptr<SessionStore> node_b = Must(OpenRedisSessionStore(redis));

  const SessionInfo old_session = Session("alice", "phone", "old", "node-a");
  const SessionInfo new_session = Session("alice", "phone", "new", "node-b");
  CHECK(Must(node_a->Put(old_session, KickPolicy::kPerDevice)).empty());
  std::vector<SessionInfo> displaced = Must(node_b->Put(new_session, KickPolicy::kPerDevice));
  REQUIRE(displaced.size() == 1);
  CHECK(displaced[0].session_id == "old");
  CHECK(displaced[0].node == "node-a");  // B's caller knows where to send the kick
  CHECK(displaced[0].connection_id == old_session.connection_id);

  // Node A learns by its refresh that its session is gone, and reports it once.
  REQUIRE(test::WaitUntil([&] {
    std::lock_guard<std::mutex> lock(mu);
    return !lost.empty();
  }));
  // A's close path runs late: the compare fails, B's session stays.
  CHECK_FALSE(Must(node_a->Remove(old_session)));
  std::vector<SessionInfo> found = MustFind(*node_a, "alice");
  REQUIRE(found.size() == 1);
  CHECK(found[0].session_id == "new");
  CHECK(found[0].node == "node-b");
  CHECK(Must(node_a->Count("default")) == 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // more refreshes: still one report
  std::lock_guard<std::mutex> lock(mu);
  REQUIRE(lost.size() == 1);
  CHECK(lost[0].session_id == "old");
}

TEST_CASE("SessionStore: redis sessions of a node that stops refreshing expire within the TTL") {
  test::SharedRedisServer().FlushAll();
  RedisOptions redis = test::FastFailingRedisOptions(test::SharedRedisServer());
  RedisSessionOptions short_ttl;
  short_ttl.session_ttl_ms = 2000;
  short_ttl.refresh_interval_ms = 200;
  std::shared_ptr<SessionStore> dying = Must(OpenRedisSessionStore(redis, short_ttl));
  std::shared_ptr<SessionStore> other = Must(OpenRedisSessionStore(redis));
  Must(dying->Put(Session("alice", "phone", "a1", "node-a"), KickPolicy::kPerDevice));
  Must(dying->Put(Session("alice", "web", "a2", "node-a"), KickPolicy::kPerDevice));

  // Alive and refreshing: well past the TTL the sessions are still there.
  const auto alive_until = std::chrono::steady_clock::now() + std::chrono::milliseconds(4000);
  while (std::chrono::steady_clock::now() < alive_until) {
    REQUIRE(MustFind(*other, "alice").size() == 2);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK(Must(other->Count("")) == 2);

  dying.reset();  // the node dies: nobody refreshes, nobody removes
  const auto died = std::chrono::steady_clock::now();
  REQUIRE(test::WaitUntil([&] { return MustFind(*other, "alice").empty(); }, 10000));
  const auto gone_after =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - died)
          .count();
  CHECK(gone_after <= 2000 + 2000);  // the TTL, and slack for a loaded machine
  REQUIRE(test::WaitUntil([&] { return Must(other->Count("default")) == 0; }, 10000));
  CHECK(Must(other->Count("")) == 0);
  // The user's key itself expired too: nothing is left behind in Redis.
  CHECK(test::WaitUntil([] {
    return test::SharedRedisServer().Command({"EXISTS", "im:{u:default/alice}:sessions"}) == ":0";
  }));
}

TEST_CASE("SessionStore: redis FindMany reads every user in one round trip") {
  test::SharedRedisServer().FlushAll();
  std::shared_ptr<internal::RedisClient> client =
      Must(internal::RedisClient::Create(test::FastFailingRedisOptions(test::SharedRedisServer())));
  std::shared_ptr<SessionStore> store = Must(internal::NewRedisSessionStore(client, {}));
  std::vector<UserKey> users;
  for (int i = 0; i < 100; ++i) {
    const std::string user = "u" + std::to_string(i);
    users.push_back(UserKey{"default", user});
    if (i % 2 == 0) {
      Must(store->Put(Session(user, "phone", "s" + user, "n"), KickPolicy::kPerDevice));
    }
  }
  CHECK(Must(store->FindMany(users)).size() == 50);  // loads the script
  const uint64_t before = client->metrics().round_trips.load();
  std::vector<SessionInfo> found = Must(store->FindMany(users));
  CHECK(client->metrics().round_trips.load() == before + 1);
  CHECK(found.size() == 50);

  // After SCRIPT FLUSH the pipelined calls meet NOSCRIPT: loaded again, answered all the same.
  CHECK(test::SharedRedisServer().Command({"SCRIPT", "FLUSH"}) == "+OK");
  CHECK(Must(store->FindMany(users)).size() == 50);
}

TEST_CASE("SessionStore: redis FindMany of 500 users costs one command per user and one TIME") {
  test::RedisServer server;
  std::shared_ptr<internal::RedisClient> client =
      Must(internal::RedisClient::Create(test::FastFailingRedisOptions(server)));
  RedisSessionOptions quiet;  // no refresh between the readings
  quiet.session_ttl_ms = 3'600'000;
  quiet.refresh_interval_ms = 3'000'000;
  std::shared_ptr<SessionStore> store = Must(internal::NewRedisSessionStore(client, quiet));
  std::vector<UserKey> users;
  for (int i = 0; i < 500; ++i) {
    const std::string user = "u" + std::to_string(i);
    users.push_back(UserKey{"default", user});
    if (i % 2 == 0) {
      Must(store->Put(Session(user, "phone", "s" + user, "n"), KickPolicy::kPerDevice));
    }
  }
  CHECK(Must(store->FindMany(users)).size() == 250);
  const std::map<std::string, uint64_t> before = test::RedisCommandCalls(*client);
  const uint64_t round_trips = client->metrics().round_trips.load();
  CHECK(Must(store->FindMany(users)).size() == 250);
  CHECK(client->metrics().round_trips.load() == round_trips + 1);
  const std::map<std::string, uint64_t> after = test::RedisCommandCalls(*client);
  CHECK(test::RedisCallsOf(before, after, "time") <= 1);
  CHECK(test::RedisCallsBetween(before, after) <= 500 + 1);
  // Find of one user: one round trip, one TIME.
  const std::map<std::string, uint64_t> before_one = test::RedisCommandCalls(*client);
  CHECK(Must(store->Find(users[0])).size() == 1);
  CHECK(test::RedisCallsBetween(before_one, test::RedisCommandCalls(*client)) <= 2);
}

}  // namespace
}  // namespace im
