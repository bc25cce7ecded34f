// The host's side of a running server over real sockets: the before-send hook, the session
// hooks, Server::Kick, and the per-connection bound on commands waiting for a worker.
#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "im/backends.h"
#include "support/gated_inbox.h"
#include "support/test_server.h"

using im::test::CodeOf;
using im::test::ErrorOf;
using im::test::GatedInbox;
using im::test::RawClient;
using im::test::Str;
using im::test::TestServer;

namespace {

std::string SendBody(const std::string& to, const std::string& cid, const std::string& body) {
  return R"({"to":")" + to + R"(","cid":")" + cid + R"(","body":")" + body + R"("})";
}

// The sessions a hook was called with, in call order.
class SessionLog {
 public:
  void Add(const im::SessionInfo& s) {
    std::lock_guard<std::mutex> lock(mu_);
    sessions_.push_back(s);
  }
  std::vector<im::SessionInfo> sessions() const {
    std::lock_guard<std::mutex> lock(mu_);
    return sessions_;
  }
  // Waits until `n` calls were recorded (10 s at most).
  bool WaitFor(size_t n) const {
    for (int i = 0; i < 1000; ++i) {
      if (sessions().size() >= n) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

 private:
  mutable std::mutex mu_;
  std::vector<im::SessionInfo> sessions_;
};

// The close code and cmds of everything `c` received until it closed.
std::vector<std::string> CmdsUntilClosed(RawClient& c, int* code) {
  *code = c.WaitClosed();
  std::vector<std::string> cmds;
  rapidjson::Document d;
  while (auto t = c.NextText(0)) {
    if (!im::test::ParseJson(*t, &d)) {
      cmds.push_back("?");
      continue;
    }
    std::string cmd = Str(d, "cmd");
    if (cmd == "session.kicked") cmd += ":" + Str(d["body"], "reason");
    if (cmd == "session.closed") {
      cmd += ":" + std::to_string(d["body"]["code"].GetInt()) + ":" + Str(d["body"], "reason");
    }
    cmds.push_back(cmd);
  }
  return cmds;
}

}  // namespace

TEST_CASE("hooks: before_send vetoes with its own status - nothing is stored or pushed") {
  TestServer ts({}, nullptr, [](im::Server& server) {
    server.SetBeforeSend([](im::Message& m) -> im::Status {
      if (m.body.find("spam") != std::string::npos) {
        return im::Status::Error(im::Code::kForbidden, "blocked", "bob does not accept this");
      }
      return im::Status::OK();
    });
  });
  RawClient alice(ts.TcpUrl()), bob(ts.WsUrl());
  REQUIRE(alice.Login(ts.Token("alice")) == 0);
  REQUIRE(bob.Login(ts.Token("bob")) == 0);
  rapidjson::Document d;
  REQUIRE(alice.Call(1, "chat.send", SendBody("bob", "v1", "buy spam now"), &d));
  CHECK(CodeOf(d) == 403);
  CHECK(ErrorOf(d) == "blocked");
  CHECK(Str(d, "message") == "bob does not accept this");
  REQUIRE(alice.Call(2, "chat.send", SendBody("bob", "v2", "hello"), &d));
  REQUIRE(CodeOf(d) == 0);
  CHECK(d["body"]["seq"].GetUint64() == 1);  // the vetoed message took no seq
  REQUIRE(bob.WaitPush("chat.message", &d));
  CHECK(Str(d["body"], "body") == "hello");  // the first push is the accepted message
  auto bob_inbox = ts.deps().inbox->Fetch({"default", "bob"}, 0, 10);
  REQUIRE(bob_inbox.ok());
  REQUIRE(bob_inbox->entries.size() == 1);
  CHECK(bob_inbox->entries[0].message->body == "hello");
  // A veto is not remembered under the cid: the same cid may be sent again once acceptable.
  REQUIRE(alice.Call(3, "chat.send", SendBody("bob", "v1", "no more of that"), &d));
  CHECK(CodeOf(d) == 0);
}

TEST_CASE("hooks: before_send rewrites the content - the stored and pushed copies are rewritten") {
  TestServer ts({}, nullptr, [](im::Server& server) {
    server.SetBeforeSend([](im::Message& m) -> im::Status {
      if (m.body.rfind("/shout ", 0) == 0) {
        m.body = m.body.substr(7) + "!";
        m.type = "shout";
        m.extra = R"({"shouted":true})";
        // The addressing is not the hook's to change: these are undone.
        m.to = "mallory";
        m.from = "nobody";
        m.tenant = "acme";
      }
      if (m.body == "bad type") m.type = std::string(100, 't');
      return im::Status::OK();
    });
  });
  RawClient alice(ts.TcpUrl()), alice_tab(ts.WsUrl()), bob(ts.WsUrl()), mallory(ts.TcpUrl());
  REQUIRE(alice.Login(ts.Token("alice"), "phone") == 0);
  REQUIRE(alice_tab.Login(ts.Token("alice"), "tab") == 0);
  REQUIRE(bob.Login(ts.Token("bob")) == 0);
  REQUIRE(mallory.Login(ts.Token("mallory")) == 0);
  rapidjson::Document d;
  REQUIRE(alice.Call(1, "chat.send", SendBody("bob", "s1", "/shout hi"), &d));
  REQUIRE(CodeOf(d) == 0);
  const std::string mid = Str(d["body"], "mid");
  for (RawClient* c : {&bob, &alice_tab}) {
    REQUIRE(c->WaitPush("chat.message", &d));
    CHECK(Str(d["body"], "mid") == mid);
    CHECK(Str(d["body"], "body") == "hi!");
    CHECK(Str(d["body"], "type") == "shout");
    CHECK(d["body"]["extra"]["shouted"].GetBool());
    CHECK(Str(d["body"], "from") == "alice");
    CHECK(Str(d["body"], "to") == "bob");
  }
  for (const char* user : {"alice", "bob"}) {
    CAPTURE(user);
    auto page = ts.deps().inbox->Fetch({"default", user}, 0, 10);
    REQUIRE(page.ok());
    REQUIRE(page->entries.size() == 1);
    const im::Message& m = *page->entries[0].message;
    CHECK(m.body == "hi!");
    CHECK(m.type == "shout");
    CHECK(m.extra == R"({"shouted":true})");
    CHECK(m.from == "alice");
    CHECK(m.to == "bob");
    CHECK(m.tenant == "default");
  }
  // Nobody else got it: not the address the hook wrote, not that tenant.
  CHECK(ts.deps().inbox->Fetch({"default", "mallory"}, 0, 10)->entries.empty());
  CHECK(ts.deps().inbox->Fetch({"acme", "mallory"}, 0, 10)->entries.empty());
  CHECK_FALSE(mallory.WaitPush("chat.message", &d, 200));
  // What the hook wrote is checked like what a client sends.
  REQUIRE(alice.Call(2, "chat.send", SendBody("bob", "s2", "bad type"), &d));
  CHECK(CodeOf(d) == 400);
  CHECK(ErrorOf(d) == "bad_request");
  CHECK(ts.deps().inbox->Fetch({"default", "bob"}, 0, 10)->entries.size() == 1);
}

TEST_CASE("hooks: on_login and on_logout run once per session with that session") {
  auto logins = std::make_shared<SessionLog>();
  auto logouts = std::make_shared<SessionLog>();
  TestServer ts({}, nullptr, [&](im::Server& server) {
    server.SetOnLogin([logins](const im::SessionInfo& s) { logins->Add(s); });
    server.SetOnLogout([logouts](const im::SessionInfo& s) { logouts->Add(s); });
  });
  rapidjson::Document d;
  RawClient first(ts.TcpUrl());
  REQUIRE(
      first.Call(1, "login", R"({"token":")" + ts.Token("alice") + R"(","device":"phone"})", &d));
  REQUIRE(CodeOf(d) == 0);
  const std::string first_session = Str(d["body"], "session");
  // A refused login and a token refresh are not new sessions.
  RawClient refused(ts.WsUrl());
  REQUIRE(refused.Login("not.a.token") == 401);
  REQUIRE(
      first.Call(2, "login", R"({"token":")" + ts.Token("alice") + R"(","device":"phone"})", &d));
  REQUIRE(CodeOf(d) == 0);
  // Commands of one connection run in order, so once this ping is answered the login's hook
  // has run.
  REQUIRE(first.Call(3, "ping", "", &d));
  REQUIRE(logins->sessions().size() == 1);
  const im::SessionInfo in = logins->sessions()[0];
  CHECK(in.session_id == first_session);
  CHECK(in.user.tenant == "default");
  CHECK(in.user.user == "alice");
  CHECK(in.device == "phone");
  CHECK(in.node == ts.server().node_id());
  CHECK(in.login_ms > 0);

  // The same device logs in elsewhere: the displaced session ends once, the new one begins.
  RawClient second(ts.WsUrl());
  REQUIRE(
      second.Call(1, "login", R"({"token":")" + ts.Token("alice") + R"(","device":"phone"})", &d));
  REQUIRE(CodeOf(d) == 0);
  const std::string second_session = Str(d["body"], "session");
  CHECK(second_session != first_session);
  CHECK(first.WaitClosed() == 4001);
  REQUIRE(logouts->WaitFor(1));
  REQUIRE(second.Call(2, "logout", "", &d));
  CHECK(CodeOf(d) == 0);
  CHECK(second.WaitClosed() == 1000);
  REQUIRE(logouts->WaitFor(2));
  ts.server().Stop();  // the hooks run on the server's threads: none runs after this

  auto in_all = logins->sessions();
  auto out_all = logouts->sessions();
  REQUIRE(in_all.size() == 2);
  REQUIRE(out_all.size() == 2);
  CHECK(in_all[1].session_id == second_session);
  CHECK(out_all[0].session_id == first_session);
  CHECK(out_all[0].connection_id == in_all[0].connection_id);
  CHECK(out_all[1].session_id == second_session);
  CHECK(out_all[1].connection_id == in_all[1].connection_id);
  CHECK(in_all[0].connection_id != in_all[1].connection_id);
}

TEST_CASE("kick: Server::Kick sends session.kicked admin then closes 4001 on every device") {
  TestServer ts;
  RawClient phone(ts.TcpUrl()), laptop(ts.WsUrl()), bob(ts.TcpUrl());
  REQUIRE(phone.Login(ts.Token("alice"), "phone") == 0);
  REQUIRE(laptop.Login(ts.Token("alice"), "laptop") == 0);
  REQUIRE(bob.Login(ts.Token("bob")) == 0);
  REQUIRE(ts.server().Kick({"default", "alice"}).ok());
  int code = 0;
  CHECK(CmdsUntilClosed(phone, &code) ==
        std::vector<std::string>{"session.kicked:admin", "session.closed:4001:kicked by admin"});
  CHECK(code == 4001);
  CHECK(CmdsUntilClosed(laptop, &code) == std::vector<std::string>{"session.kicked:admin"});
  CHECK(code == 4001);
  // Another user stays; the kicked one is forgotten and may log in again at once.
  rapidjson::Document d;
  REQUIRE(bob.Call(1, "ping", "", &d));
  CHECK(CodeOf(d) == 0);
  CHECK_FALSE(bob.closed());
  bool forgotten = false;
  for (int i = 0; i < 500 && !forgotten; ++i) {
    forgotten = ts.deps().sessions->Find({"default", "alice"})->empty();
    if (!forgotten) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  CHECK(forgotten);
  RawClient again(ts.WsUrl());
  CHECK(again.Login(ts.Token("alice"), "phone") == 0);
  // Kicking a user with no session, or of another tenant, is OK and touches nobody.
  CHECK(ts.server().Kick({"default", "nobody"}).ok());
  CHECK(ts.server().Kick({"acme", "alice"}).ok());
  REQUIRE(again.Call(2, "ping", "", &d));
  CHECK(CodeOf(d) == 0);
  CHECK(ts.server().OnlineCount() == 2);
}

TEST_CASE("limits: commands past max_pending_commands get 429 rate_limited - the rest run") {
  im::ServerOptions o;
  o.max_pending_commands = 4;
  std::shared_ptr<GatedInbox> inbox;
  TestServer ts(o, [&](im::ServerDeps& d) {
    inbox = std::make_shared<GatedInbox>(d.inbox);
    d.inbox = inbox;
  });
  im::test::OpenGatesOnExit open_gates(*inbox);
  for (const std::string& url : {ts.TcpUrl(), ts.WsUrl()}) {
    CAPTURE(url);
    RawClient c(url), other(ts.TcpUrl());
    REQUIRE(c.Login(ts.Token("alice")) == 0);
    REQUIRE(other.Login(ts.Token("bob")) == 0);
    // A sync held in storage keeps this connection's worker busy; what follows waits.
    inbox->Close(GatedInbox::Op::kFetch);
    c.Send(R"({"id":1,"cmd":"chat.sync"})");
    REQUIRE(inbox->WaitHeld(GatedInbox::Op::kFetch));
    for (uint32_t id = 10; id < 20; ++id)
      c.Send(R"({"id":)" + std::to_string(id) + R"(,"cmd":"ping"})");
    rapidjson::Document d;
    // The first four wait; the other six are refused at once, while the sync is still held.
    for (uint32_t id = 14; id < 20; ++id) {
      CAPTURE(id);
      REQUIRE(c.WaitResponse(id, &d));
      CHECK(CodeOf(d) == 429);
      CHECK(ErrorOf(d) == "rate_limited");
      CHECK(Str(d, "cmd") == "ping");
    }
    CHECK(c.queued() == 0);
    // Other connections are served meanwhile.
    REQUIRE(other.Call(1, "ping", "", &d));
    CHECK(CodeOf(d) == 0);
    inbox->Open(GatedInbox::Op::kFetch);
    REQUIRE(c.WaitResponse(1, &d));
    CHECK(CodeOf(d) == 0);
    for (uint32_t id = 10; id < 14; ++id) {
      CAPTURE(id);
      REQUIRE(c.WaitResponse(id, &d));
      CHECK(CodeOf(d) == 0);
    }
    // The connection stayed open and serves again.
    REQUIRE(c.Call(30, "ping", "", &d));
    CHECK(CodeOf(d) == 0);
  }
}

// A connection's commands run in arrival order, chat.send included (it is the command a faster
// path would be tempted to take out of line): a send behind a held sync is answered after it,
// and a send pipelined behind its login sees the login.
TEST_CASE("commands: a chat.send keeps its place behind the connection's earlier commands") {
  std::shared_ptr<GatedInbox> inbox;
  TestServer ts({}, [&](im::ServerDeps& d) {
    inbox = std::make_shared<GatedInbox>(d.inbox);
    d.inbox = inbox;
  });
  im::test::OpenGatesOnExit open_gates(*inbox);
  for (const std::string& url : {ts.TcpUrl(), ts.WsUrl()}) {
    CAPTURE(url);
    RawClient c(url);
    // Pipelined: the send goes out before the login's answer came back.
    c.Send(R"({"id":1,"cmd":"login","body":{"token":")" + ts.Token("alice") + R"("}})");
    c.Send(R"({"id":2,"cmd":"chat.send","body":{"to":"bob","cid":"c1","body":"hi"}})");
    rapidjson::Document d;
    REQUIRE(c.WaitResponse(1, &d));
    CHECK(CodeOf(d) == 0);
    REQUIRE(c.WaitResponse(2, &d));
    CHECK(CodeOf(d) == 0);

    inbox->Close(GatedInbox::Op::kFetch);
    c.Send(R"({"id":3,"cmd":"chat.sync"})");
    REQUIRE(inbox->WaitHeld(GatedInbox::Op::kFetch));
    c.Send(R"({"id":4,"cmd":"chat.send","body":{"to":"bob","cid":"c2","body":"after"}})");
    // Not answered while the sync ahead of it is held.
    CHECK_FALSE(c.WaitResponse(4, &d, 300));
    inbox->Open(GatedInbox::Op::kFetch);
    std::optional<std::string> next = c.NextText();  // the sync's answer, then the send's
    REQUIRE(next);
    CHECK(next->find(R"("id":3)") != std::string::npos);
    REQUIRE(c.WaitResponse(4, &d));
    CHECK(CodeOf(d) == 0);
  }
}
