// PushCatchUp (core/push_catch_up.h) without sockets: a memory inbox, the LocalRouter and
// connections that record what they are sent.
#include <doctest/doctest.h>

#include <asio/thread_pool.hpp>

#include <algorithm>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/push_catch_up.h"
#include "im/backends.h"
#include "route/local_router.h"
#include "support/fake_connection.h"

namespace im {
namespace {

using test::FakeConnection;

UserKey User(const std::string& name) { return UserKey{"default", name}; }

SessionInfo Session(const std::string& user, const std::string& id, uint64_t connection_id) {
  SessionInfo s;
  s.user = User(user);
  s.device = id;
  s.session_id = id;
  s.connection_id = connection_id;
  return s;
}

// Stores a 1:1 message from `from` to `to` (both inboxes); answers the receiver's seq.
uint64_t Store(OfflineQueue& inbox, const std::string& from, const std::string& to,
               const std::string& body) {
  static uint64_t mid = 1000;
  auto m = std::make_shared<Message>();
  m->mid = ++mid;
  m->tenant = "default";
  m->from = from;
  m->to = to;
  m->body = body;
  m->ts = 1700000000000 + static_cast<int64_t>(mid);
  AppendRequest r;
  r.message = m;
  r.recipients = {User(from), User(to)};
  r.sender_index = 0;
  Result<AppendResult> a = inbox.Append(r);
  REQUIRE(a.ok());
  return a->seqs[1];
}

// Runs one catch-up to its end.
void RunCatchUp(internal::PushCatchUp& catch_up) {
  catch_up.Start();
  for (int i = 0; i < 1000 && catch_up.running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  REQUIRE_FALSE(catch_up.running());
}

bool HasPush(const FakeConnection& c, uint64_t seq, const std::string& body) {
  for (const std::string& line : c.log()) {
    if (line.find("\"cmd\":\"chat.message\"") != std::string::npos &&
        line.find("\"seq\":" + std::to_string(seq) + ",") != std::string::npos &&
        line.find("\"body\":\"" + body + "\"") != std::string::npos) {
      return true;
    }
  }
  return false;
}

TEST_CASE("push catch-up: each connected user gets the newest message it did not send") {
  auto inbox = NewMemoryOfflineQueue();
  internal::LocalRouter local;
  asio::thread_pool pool(1);
  internal::PushCatchUp catch_up({inbox.get(), &local, &pool, nullptr});

  // alice: two messages from bob, on two devices.
  Store(*inbox, "bob", "alice", "first");
  const uint64_t alice_newest = Store(*inbox, "bob", "alice", "second");
  auto alice_phone = std::make_shared<FakeConnection>(1);
  auto alice_desk = std::make_shared<FakeConnection>(2);
  local.Attach(Session("alice", "a1", 1), alice_phone);
  local.Attach(Session("alice", "a2", 2), alice_desk);
  // carol: a message from dave, then carol's own reply: the one from dave is pushed.
  const uint64_t carol_newest = Store(*inbox, "dave", "carol", "from dave");
  Store(*inbox, "carol", "dave", "carol's reply");
  auto carol_conn = std::make_shared<FakeConnection>(3);
  local.Attach(Session("carol", "c1", 3), carol_conn);
  // erin: an empty inbox.
  auto erin_conn = std::make_shared<FakeConnection>(4);
  local.Attach(Session("erin", "e1", 4), erin_conn);
  // frank: only own sends in the newest 16 (one older message from bob is beyond them).
  Store(*inbox, "bob", "frank", "old");
  for (size_t i = 0; i < internal::PushCatchUp::kLookBack; ++i) {
    Store(*inbox, "frank", "bob", "own " + std::to_string(i));
  }
  auto frank_conn = std::make_shared<FakeConnection>(5);
  local.Attach(Session("frank", "f1", 5), frank_conn);

  RunCatchUp(catch_up);
  CHECK(alice_phone->log().size() == 1);
  CHECK(HasPush(*alice_phone, alice_newest, "second"));
  CHECK(alice_desk->log().size() == 1);
  CHECK(HasPush(*alice_desk, alice_newest, "second"));
  CHECK(carol_conn->log().size() == 1);
  CHECK(HasPush(*carol_conn, carol_newest, "from dave"));
  CHECK(erin_conn->log().empty());
  CHECK(frank_conn->log().empty());
  CHECK(catch_up.pushed() == 3);
  CHECK(catch_up.users_read() == 4);  // bob and dave have inboxes but no connection here

  // A second catch-up reads the users connected then, and pushes the same again (a client
  // ignores a seq it has).
  local.Detach(Session("alice", "a1", 1));
  RunCatchUp(catch_up);
  CHECK(alice_phone->log().size() == 1);
  CHECK(alice_desk->log().size() == 2);
  CHECK(catch_up.users_read() == 8);
  CHECK(catch_up.pushed() == 5);
}

TEST_CASE("push catch-up: many users are read in slices, and Stop ends it") {
  auto inbox = NewMemoryOfflineQueue();
  internal::LocalRouter local;
  asio::thread_pool pool(1);
  internal::PushCatchUp catch_up({inbox.get(), &local, &pool, nullptr});
  const size_t n = internal::PushCatchUp::kSlice * 3 + 5;
  std::vector<std::shared_ptr<FakeConnection>> conns;
  for (size_t i = 0; i < n; ++i) {
    const std::string name = "u" + std::to_string(i);
    Store(*inbox, "sender", name, "hello " + name);
    conns.push_back(std::make_shared<FakeConnection>(i + 1));
    local.Attach(Session(name, "s" + std::to_string(i), i + 1), conns.back());
  }
  RunCatchUp(catch_up);
  CHECK(catch_up.pushed() == n);
  for (size_t i = 0; i < n; ++i) CHECK(HasPush(*conns[i], 1, "hello u" + std::to_string(i)));

  catch_up.Stop();
  catch_up.Start();  // after Stop: nothing runs
  CHECK_FALSE(catch_up.running());
  CHECK(catch_up.pushed() == n);
}

TEST_CASE("push catch-up: a connection told another epoch is moved instead of pushed to") {
  auto inbox = NewMemoryOfflineQueue();
  internal::LocalRouter local;
  asio::thread_pool pool(1);
  // Connections 1 and 3 were told an epoch the inbox no longer has (as after a storage loss).
  std::mutex mu;
  std::vector<std::pair<uint64_t, std::string>> asked;
  internal::PushCatchUp catch_up(
      {inbox.get(), &local, &pool, [&](const Connection& c, const std::string& epoch) {
         std::lock_guard<std::mutex> lock(mu);
         asked.emplace_back(c.id(), epoch);
         return c.id() == 1 || c.id() == 3;
       }});
  const uint64_t newest = Store(*inbox, "bob", "alice", "hello");
  auto stale = std::make_shared<FakeConnection>(1);
  auto current = std::make_shared<FakeConnection>(2);
  local.Attach(Session("alice", "a1", 1), stale);
  local.Attach(Session("alice", "a2", 2), current);
  auto empty = std::make_shared<FakeConnection>(3);  // erin: an empty inbox, still checked
  local.Attach(Session("erin", "e1", 3), empty);

  RunCatchUp(catch_up);
  CHECK(stale->log().empty());
  CHECK(HasPush(*current, newest, "hello"));
  CHECK(current->log().size() == 1);
  CHECK(empty->log().empty());
  CHECK(catch_up.pushed() == 1);
  // Each connection was asked about once, with its inbox's epoch now.
  std::lock_guard<std::mutex> lock(mu);
  std::sort(asked.begin(), asked.end());
  REQUIRE(asked.size() == 3);
  const std::string alice_epoch = inbox->Info(User("alice"))->epoch;
  const std::string erin_epoch = inbox->Info(User("erin"))->epoch;
  CHECK(asked[0] == std::make_pair(uint64_t{1}, alice_epoch));
  CHECK(asked[1] == std::make_pair(uint64_t{2}, alice_epoch));
  CHECK(asked[2] == std::make_pair(uint64_t{3}, erin_epoch));
}

}  // namespace
}  // namespace im
