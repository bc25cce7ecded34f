// The ordering promises of the protocol (section 10) that a client can observe: within one
// storage batch the chat.send responses go before the batch's pushes, and session.kicked for a
// displaced session is queued before the new login's response.
#include <doctest/doctest.h>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "im/backends.h"
#include "support/gated_inbox.h"
#include "support/test_server.h"

using im::test::CodeOf;
using im::test::GatedInbox;
using im::test::RawClient;
using im::test::Str;
using im::test::TestServer;

namespace {

// Forwards to the local router and records every Close (the session id), once it returned:
// by then the notice is queued on the connection.
class RecordingRouter final : public im::Router {
 public:
  explicit RecordingRouter(std::shared_ptr<im::Router> inner) : inner_(std::move(inner)) {}
  void Attach(const im::SessionInfo& s, std::shared_ptr<im::Connection> c) override {
    inner_->Attach(s, std::move(c));
  }
  void Detach(const im::SessionInfo& s) override { inner_->Detach(s); }
  im::SendResult Deliver(const im::SessionInfo& s, const im::Frame& f) override {
    return inner_->Deliver(s, f);
  }
  void Close(const im::SessionInfo& s, const im::Frame& notice, int code,
             std::string_view reason) override {
    inner_->Close(s, notice, code, reason);
    std::lock_guard<std::mutex> lock(mu_);
    closed_.push_back(s.session_id);
  }
  size_t LocalCount() const override { return inner_->LocalCount(); }
  std::vector<std::string> closed() const {
    std::lock_guard<std::mutex> lock(mu_);
    return closed_;
  }

 private:
  std::shared_ptr<im::Router> inner_;
  mutable std::mutex mu_;
  std::vector<std::string> closed_;
};

// "response:<id>" or "push:<body>" for each frame `c` receives until both `n` frames arrived.
std::vector<std::string> NextFrames(RawClient& c, size_t n) {
  std::vector<std::string> out;
  rapidjson::Document d;
  while (out.size() < n) {
    auto text = c.NextText();
    REQUIRE(text.has_value());
    REQUIRE(im::test::ParseJson(*text, &d));
    if (d.HasMember("id")) {
      out.push_back("response:" + std::to_string(d["id"].GetUint()));
    } else {
      out.push_back("push:" + Str(d["body"], "body"));
    }
  }
  return out;
}

// Scrapes im_commit_queue_depth until it reads `depth` (10 s at most).
bool WaitCommitQueue(TestServer& ts, double depth) {
  for (int i = 0; i < 1000; ++i) {
    std::map<std::string, double> m;
    if (im::test::ScrapeMetrics(ts.server().http_port(), &m) &&
        m.count("im_commit_queue_depth") == 1 && m.at("im_commit_queue_depth") == depth) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

}  // namespace

TEST_CASE("ordering: within one storage batch every response goes before the batch's pushes") {
  std::shared_ptr<GatedInbox> inbox;
  TestServer ts({}, [&](im::ServerDeps& d) {
    inbox = std::make_shared<GatedInbox>(d.inbox);
    d.inbox = inbox;
  });
  im::test::OpenGatesOnExit open_gates(*inbox);
  RawClient alice(ts.TcpUrl()), bob(ts.WsUrl()), carol(ts.TcpUrl());
  REQUIRE(alice.Login(ts.Token("alice")) == 0);
  REQUIRE(bob.Login(ts.Token("bob")) == 0);
  REQUIRE(carol.Login(ts.Token("carol")) == 0);
  // Hold the committer inside a storage batch of one message, so that the next two sends
  // queue behind it and are stored together.
  inbox->Close(GatedInbox::Op::kAppend);
  carol.Send(R"({"id":1,"cmd":"chat.send","body":{"to":"dave","cid":"plug","body":"plug"}})");
  REQUIRE(inbox->WaitHeld(GatedInbox::Op::kAppend));
  alice.Send(R"({"id":1,"cmd":"chat.send","body":{"to":"bob","cid":"a","body":"from alice"}})");
  REQUIRE(WaitCommitQueue(ts, 1));
  bob.Send(R"({"id":2,"cmd":"chat.send","body":{"to":"alice","cid":"b","body":"from bob"}})");
  REQUIRE(WaitCommitQueue(ts, 2));
  inbox->Open(GatedInbox::Op::kAppend);

  // alice's message has the lower seq in both inboxes, yet bob gets the response to his own
  // send before the push of alice's; and alice likewise.
  CHECK(NextFrames(bob, 2) == std::vector<std::string>{"response:2", "push:from alice"});
  CHECK(NextFrames(alice, 2) == std::vector<std::string>{"response:1", "push:from bob"});
  rapidjson::Document d;
  REQUIRE(carol.WaitResponse(1, &d));
  CHECK(CodeOf(d) == 0);
  // The two were indeed one batch, after the plug's.
  CHECK(inbox->batch_sizes() == std::vector<size_t>{1, 2});
  auto page = ts.deps().inbox->Fetch({"default", "bob"}, 0, 10);
  REQUIRE(page.ok());
  REQUIRE(page->entries.size() == 2);
  CHECK(page->entries[0].message->body == "from alice");
  CHECK(page->entries[1].message->body == "from bob");
}

TEST_CASE("ordering: session.kicked is queued to the displaced session before the login answer") {
  std::shared_ptr<RecordingRouter> router;
  TestServer ts({}, [&](im::ServerDeps& d) {
    router = std::make_shared<RecordingRouter>(d.router);
    d.router = router;
  });
  for (int round = 0; round < 20; ++round) {
    CAPTURE(round);
    RawClient old_conn(round % 2 ? ts.WsUrl() : ts.TcpUrl());
    rapidjson::Document d;
    REQUIRE(old_conn.Call(1, "login", R"({"token":")" + ts.Token("alice") + R"("})", &d));
    REQUIRE(CodeOf(d) == 0);
    const std::string old_session = Str(d["body"], "session");
    RawClient new_conn(round % 2 ? ts.TcpUrl() : ts.WsUrl());
    REQUIRE(new_conn.Login(ts.Token("alice")) == 0);
    // Checked as soon as the answer is here, without waiting: the kick was queued before it.
    const std::vector<std::string> closed = router->closed();
    REQUIRE_FALSE(closed.empty());
    CHECK(closed.back() == old_session);
    REQUIRE(old_conn.WaitPush("session.kicked", &d));
    CHECK(Str(d["body"], "reason") == "login_elsewhere");
    CHECK(old_conn.WaitClosed() == 4001);
  }
}
