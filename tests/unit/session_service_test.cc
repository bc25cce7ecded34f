// SessionService without sockets: logins under each kick policy, token refresh, the per-device
// limit, logout's compare-and-delete, admin kicks, and the hooks and events they run.
#include <doctest/doctest.h>

#include "unit/service_world.h"

namespace im {
namespace {

using internal::SessionService;
using test::CountEvents;
using test::FakeConnection;
using test::ServiceWorld;


size_t Online(ServiceWorld& w, const std::string& user) {
  auto found = w.sessions_store->Find(UserKey{"default", user});
  REQUIRE(found.ok());
  return found->size();
}

bool KickedElsewhere(const FakeConnection& c) {
  auto log = c.log();
  return c.closed() && !log.empty() && log.front().find("login_elsewhere") != std::string::npos &&
         log.back().rfind("close 4001", 0) == 0;
}

TEST_CASE("SessionService: per-device policy kicks the older session of the same device only") {
  ServiceWorld w([](ServerOptions& o) { o.kick_policy = KickPolicy::kPerDevice; });
  std::shared_ptr<FakeConnection> phone1, laptop, phone2;
  auto first = w.Login("alice", "phone", &phone1);
  w.Login("alice", "laptop", &laptop);
  auto second = w.Login("alice", "phone", &phone2);
  CHECK(first.session.session_id != second.session.session_id);
  CHECK(KickedElsewhere(*phone1));
  CHECK_FALSE(laptop->closed());
  CHECK_FALSE(phone2->closed());
  CHECK(Online(w, "alice") == 2);
  CHECK(w.router->LocalCount() == 2);
  CHECK(CountEvents(w.Events(), {R"("event":"kick")", first.session.session_id,
                                 "login_elsewhere"}) == 1);
}

TEST_CASE("SessionService: per-account policy kicks every other session of the user") {
  ServiceWorld w([](ServerOptions& o) { o.kick_policy = KickPolicy::kPerAccount; });
  std::shared_ptr<FakeConnection> phone, laptop, tablet, bob;
  w.Login("alice", "phone", &phone);
  w.Login("alice", "laptop", &laptop);
  CHECK(KickedElsewhere(*phone));
  w.Login("bob", "phone", &bob);
  w.Login("alice", "tablet", &tablet);
  CHECK(KickedElsewhere(*laptop));
  CHECK_FALSE(tablet->closed());
  CHECK_FALSE(bob->closed());
  CHECK(Online(w, "alice") == 1);
  CHECK(Online(w, "bob") == 1);
}

TEST_CASE("SessionService: the per-device limit refuses a new device, not a known one") {
  ServiceWorld w([](ServerOptions& o) { o.max_devices_per_user = 2; });
  w.Login("alice", "a");
  w.Login("alice", "b");
  SessionService::LoginRequest req;
  req.token = w.Token("alice");
  req.device = "c";
  req.connection = std::make_shared<FakeConnection>(100);
  auto r = w.sessions->Login(req);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Code::kRateLimited);
  CHECK(r.status().error() == "too_many_devices");
  req.device = "a";  // replaces the session of device a
  CHECK(w.sessions->Login(req).ok());
}

TEST_CASE("SessionService: a token refresh keeps the session and cannot switch user or device") {
  ServiceWorld w;
  auto first = w.Login("alice", "phone");
  SessionService::LoginRequest req;
  req.device = "phone";
  req.connection = std::make_shared<FakeConnection>(100);
  req.current = &first.session;
  req.token = w.Token("bob");
  auto other_user = w.sessions->Login(req);
  REQUIRE_FALSE(other_user.ok());
  CHECK(other_user.status().code() == Code::kConflict);
  CHECK(other_user.status().error() == "already_logged_in");
  CHECK(Online(w, "bob") == 0);

  req.token = w.Token("alice");
  req.device = "laptop";
  auto other_device = w.sessions->Login(req);
  REQUIRE_FALSE(other_device.ok());
  CHECK(other_device.status().error() == "already_logged_in");

  req.device = "phone";
  req.token = w.Token("alice", 7200);
  auto refreshed = w.sessions->Login(req);
  REQUIRE(refreshed.ok());
  CHECK(refreshed->refreshed);
  CHECK(refreshed->session.session_id == first.session.session_id);
  CHECK(refreshed->token_expires_ms > first.token_expires_ms);
  CHECK(Online(w, "alice") == 1);
}

TEST_CASE("SessionService: a bad token or device is refused and logged, never the token") {
  ServiceWorld w;
  SessionService::LoginRequest req;
  req.device = "phone";
  req.token = "not-a-token";
  req.connection = std::make_shared<FakeConnection>(1);
  auto r = w.sessions->Login(req);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Code::kUnauthenticated);
  CHECK(CountEvents(w.Events(), {R"("event":"login_failed")"}) == 1);
  CHECK(CountEvents(w.Events(), {"not-a-token"}) == 0);
  req.token = w.Token("alice");
  req.device = std::string(65, 'd');
  auto bad_device = w.sessions->Login(req);
  REQUIRE_FALSE(bad_device.ok());
  CHECK(bad_device.status().code() == Code::kBadRequest);
}

TEST_CASE("SessionService: End removes only its own session and runs the logout hook") {
  ServiceWorld w;
  std::vector<std::string> logged_out;
  w.hooks.on_logout = [&](const SessionInfo& s) { logged_out.push_back(s.session_id); };
  auto old = w.Login("alice", "phone");
  auto fresh = w.Login("alice", "phone");  // displaces `old`
  // The kicked connection's close comes later: it must not remove the session that replaced it.
  w.sessions->End(old.session, "127.0.0.1:1", "closed");
  CHECK(Online(w, "alice") == 1);
  CHECK(w.router->LocalCount() == 1);
  w.sessions->End(fresh.session, "127.0.0.1:1", "logout");
  CHECK(Online(w, "alice") == 0);
  CHECK(w.router->LocalCount() == 0);
  CHECK(logged_out == std::vector<std::string>{old.session.session_id, fresh.session.session_id});
  CHECK(CountEvents(w.Events(), {R"("event":"logout")", R"("reason":"closed")"}) == 1);
  CHECK(CountEvents(w.Events(), {R"("event":"logout")", R"("reason":"logout")"}) == 1);
}

TEST_CASE("SessionService: Welcome runs the login hook - Kick closes every session with admin") {
  ServiceWorld w;
  std::vector<std::string> logged_in;
  w.hooks.on_login = [&](const SessionInfo& s) { logged_in.push_back(s.user.user); };
  std::shared_ptr<FakeConnection> phone, laptop, bob;
  auto a = w.Login("alice", "phone", &phone);
  w.Login("alice", "laptop", &laptop);
  w.Login("bob", "phone", &bob);
  w.sessions->Welcome(a.session, "127.0.0.1:1");
  CHECK(logged_in == std::vector<std::string>{"alice"});
  REQUIRE(w.sessions->Kick(UserKey{"default", "alice"}).ok());
  for (const auto& c : {phone, laptop}) {
    REQUIRE(c->closed());
    auto log = c->log();
    CHECK(log.front().find(R"("reason":"admin")") != std::string::npos);
    CHECK(log.back() == "close 4001 kicked by admin");
  }
  CHECK_FALSE(bob->closed());
  CHECK(CountEvents(w.Events(), {R"("event":"kick")", R"("reason":"admin")"}) == 2);
}

}  // namespace
}  // namespace im
