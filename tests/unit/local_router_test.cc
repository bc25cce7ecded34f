#include <doctest/doctest.h>

#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "im/backends.h"
#include "im/connection.h"
#include "im/router.h"
#include "route/local_router.h"
#include "support/fake_connection.h"

namespace im {
namespace {

using test::FakeConnection;

SessionInfo Session(const std::string& session_id, uint64_t connection_id) {
  SessionInfo s;
  s.user = UserKey{"default", "alice"};
  s.device = "phone";
  s.session_id = session_id;
  s.node = "node-1";
  s.connection_id = connection_id;
  return s;
}

using Log = std::vector<std::string>;

TEST_CASE("LocalRouter: attach - deliver - detach") {
  auto router = NewLocalRouter();
  auto conn = std::make_shared<FakeConnection>(1);
  const SessionInfo s = Session("s1", 1);
  CHECK(router->LocalCount() == 0);
  CHECK(router->Deliver(s, Frame::FromString("early")) == SendResult::kDropped);

  router->Attach(s, conn);
  CHECK(router->LocalCount() == 1);
  CHECK(router->Deliver(s, Frame{"{\"seq\":1,", std::make_shared<const std::string>("\"x\":1}")}) ==
        SendResult::kOk);
  CHECK(conn->log() == Log{"send {\"seq\":1,\"x\":1}"});

  router->Detach(s);
  CHECK(router->LocalCount() == 0);
  CHECK(router->Deliver(s, Frame::FromString("late")) == SendResult::kDropped);
  CHECK(conn->log().size() == 1);
  router->Detach(s);  // unknown: a no-op
  CHECK(router->LocalCount() == 0);
}

TEST_CASE("LocalRouter: attach with the same session id replaces the connection") {
  auto router = NewLocalRouter();
  auto old_conn = std::make_shared<FakeConnection>(1);
  auto new_conn = std::make_shared<FakeConnection>(2);
  router->Attach(Session("s1", 1), old_conn);
  router->Attach(Session("s1", 2), new_conn);
  CHECK(router->LocalCount() == 1);
  CHECK(router->Deliver(Session("s1", 2), Frame::FromString("m")) == SendResult::kOk);
  CHECK(old_conn->log().empty());
  CHECK(new_conn->log() == Log{"send m"});

  // The old connection's close path runs late: its detach must not remove the new attachment.
  router->Detach(Session("s1", 1));
  CHECK(router->LocalCount() == 1);
  CHECK(router->Deliver(Session("s1", 2), Frame::FromString("n")) == SendResult::kOk);
  CHECK(new_conn->log() == Log{"send m", "send n"});

  router->Detach(Session("s1", 2));
  CHECK(router->LocalCount() == 0);
}

TEST_CASE("LocalRouter: sessions are independent") {
  auto router = NewLocalRouter();
  auto a = std::make_shared<FakeConnection>(1);
  auto b = std::make_shared<FakeConnection>(2);
  router->Attach(Session("sa", 1), a);
  router->Attach(Session("sb", 2), b);
  CHECK(router->LocalCount() == 2);
  CHECK(router->Deliver(Session("sb", 2), Frame::FromString("to b")) == SendResult::kOk);
  CHECK(a->log().empty());
  CHECK(b->log() == Log{"send to b"});
}

TEST_CASE("LocalRouter: close sends the notice - then closes - then forgets") {
  auto router = NewLocalRouter();
  auto conn = std::make_shared<FakeConnection>(1);
  const SessionInfo s = Session("s1", 1);
  router->Attach(s, conn);
  router->Close(s, Frame::FromString("kicked"), close_code::kKicked, "login_elsewhere");
  CHECK(conn->log() == Log{"send kicked", "close 4001 login_elsewhere"});
  CHECK(router->LocalCount() == 0);
  CHECK(router->Deliver(s, Frame::FromString("after")) == SendResult::kDropped);

  // An empty notice closes without sending; an unknown target is a no-op, which leaves the
  // session still attached alone.
  auto other = std::make_shared<FakeConnection>(2);
  auto bystander = std::make_shared<FakeConnection>(3);
  router->Attach(Session("s2", 2), other);
  router->Attach(Session("s3", 3), bystander);
  router->Close(Session("s2", 2), Frame{}, close_code::kGoingAway, "drain");
  CHECK(other->log() == Log{"close 1001 drain"});
  router->Close(Session("nobody", 4), Frame::FromString("x"), close_code::kKicked, "admin");
  CHECK(router->LocalCount() == 1);
  CHECK(bystander->log().empty());
  CHECK(router->Deliver(Session("s3", 3), Frame::FromString("still")) == SendResult::kOk);
  CHECK(bystander->log() == Log{"send still"});
}

TEST_CASE("LocalRouter: a connection that is gone delivers kDropped") {
  auto router = NewLocalRouter();
  const SessionInfo s = Session("s1", 1);
  {
    auto conn = std::make_shared<FakeConnection>(1);
    router->Attach(s, conn);
  }  // the transport dropped its last reference without a Detach
  CHECK(router->Deliver(s, Frame::FromString("m")) == SendResult::kDropped);
  CHECK(router->LocalCount() == 0);  // the dead entry was forgotten

  // Closing a forgotten session is a no-op: a session attached since, under another id, stays.
  auto live = std::make_shared<FakeConnection>(2);
  const SessionInfo other = Session("s2", 2);
  router->Attach(other, live);
  router->Close(s, Frame::FromString("x"), close_code::kKicked, "admin");
  CHECK(router->LocalCount() == 1);
  CHECK(live->log().empty());
  // Attaching no connection is ignored: it neither adds an entry nor replaces a live one.
  router->Attach(s, nullptr);
  CHECK(router->LocalCount() == 1);
  CHECK(router->Deliver(s, Frame::FromString("none")) == SendResult::kDropped);
  router->Attach(other, nullptr);
  CHECK(router->LocalCount() == 1);
  CHECK(router->Deliver(other, Frame::FromString("kept")) == SendResult::kOk);
  CHECK(live->log() == Log{"send kept"});
}

SessionInfo SessionOf(const std::string& user, const std::string& session_id,
                      uint64_t connection_id) {
  SessionInfo s = Session(session_id, connection_id);
  s.user = UserKey{"default", user};
  return s;
}

// What the fan-out stage asks: every live connection of a list of users, the sender's own
// session skipped, in the order of the list.
TEST_CASE("LocalRouter: CollectUsers finds every device of each user in order") {
  internal::LocalRouter router;
  auto alice_phone = std::make_shared<FakeConnection>(1);
  auto alice_laptop = std::make_shared<FakeConnection>(2);
  auto bob = std::make_shared<FakeConnection>(3);
  router.Attach(SessionOf("alice", "a1", 1), alice_phone);
  router.Attach(SessionOf("alice", "a2", 2), alice_laptop);
  router.Attach(SessionOf("bob", "b1", 3), bob);
  const UserKey u_bob{"default", "bob"}, u_alice{"default", "alice"}, u_carol{"default", "carol"},
      u_other_tenant{"acme", "bob"};
  const UserKey* users[] = {&u_bob, &u_carol, &u_alice, &u_other_tenant};
  std::vector<internal::LocalRouter::Target> out;
  router.CollectUsers(users, 4, "a2", &out);
  REQUIRE(out.size() == 2);
  CHECK(out[0].index == 0);
  CHECK(out[0].connection.get() == static_cast<Connection*>(bob.get()));
  CHECK(out[1].index == 2);
  CHECK(out[1].connection.get() == static_cast<Connection*>(alice_phone.get()));  // a2 is the sender's session: skipped

  out.clear();
  router.CollectUsers(users, 4, "", &out);
  CHECK(out.size() == 3);

  // A detached session and a dead connection are not found; the dead one is forgotten.
  router.Detach(SessionOf("alice", "a1", 1));
  bob.reset();
  out.clear();
  router.CollectUsers(users, 4, "", &out);
  REQUIRE(out.size() == 1);
  CHECK(out[0].connection.get() == static_cast<Connection*>(alice_laptop.get()));
  CHECK(router.LocalCount() == 1);
  // The user's entry went with its last session: attaching again works from scratch.
  auto bob2 = std::make_shared<FakeConnection>(4);
  router.Attach(SessionOf("bob", "b2", 4), bob2);
  out.clear();
  router.CollectUsers(users, 1, "", &out);
  REQUIRE(out.size() == 1);
  CHECK(out[0].connection.get() == static_cast<Connection*>(bob2.get()));
  CHECK(router.LocalCount() == 2);
}

}  // namespace
}  // namespace im
