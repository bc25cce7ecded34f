// The commit queue's bound: with a slow append under way and the queue full, sends
// get 503 unavailable; afterwards a retry under the same cid stores the message exactly once,
// and a retry of a send that was accepted but not yet acked gets the first send's answer.
#include <doctest/doctest.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "support/gated_inbox.h"
#include "support/test_server.h"

using im::test::CodeOf;
using im::test::ErrorOf;
using im::test::RawClient;

namespace {

std::string Send(uint32_t id, const std::string& cid, const std::string& body) {
  return R"({"id":)" + std::to_string(id) + R"(,"cmd":"chat.send","body":{"to":"bob","cid":")" +
         cid + R"(","body":")" + body + R"("}})";
}

std::string Mid(const rapidjson::Document& d) {
  return d.HasMember("body") && d["body"].HasMember("mid") ? d["body"]["mid"].GetString() : "";
}

}  // namespace

TEST_CASE("commit queue: full - 503 unavailable - retries under the same cid store once") {
  im::test::ForEachStorage([](const std::function<void(im::ServerDeps&)>& storage) {
    std::shared_ptr<im::test::GatedInbox> appends;
    im::ServerOptions options;
    options.commit_queue_limit = 3;
    im::test::TestServer ts(options, [&](im::ServerDeps& deps) {
      if (storage) storage(deps);
      appends = std::make_shared<im::test::GatedInbox>(deps.inbox);
      deps.inbox = appends;
    });
    RawClient alice(ts.TcpUrl()), alice_web(ts.WsUrl()), bob(ts.TcpUrl()), carol(ts.TcpUrl());
    REQUIRE(alice.Login(ts.Token("alice"), "phone") == 0);
    REQUIRE(alice_web.Login(ts.Token("alice"), "web") == 0);
    REQUIRE(bob.Login(ts.Token("bob")) == 0);
    REQUIRE(carol.Login(ts.Token("carol")) == 0);

    // carol's send sticks in its append (on the committer thread, or on a worker storing it in
    // the committer's place: either way the committer takes nothing else meanwhile). The queue
    // then takes three: c1, a retry of c1 (accepted, not yet acked) and c2. c3 finds it full,
    // and so does the other device: the bound is the server's.
    appends->Close(im::test::GatedInbox::Op::kAppend);
    carol.Send(Send(1, "k1", "blocker"));
    REQUIRE(appends->WaitHeld(im::test::GatedInbox::Op::kAppend));
    alice.Send(Send(1, "c1", "first"));
    alice.Send(Send(2, "c1", "first, again"));
    alice.Send(Send(3, "c2", "second"));
    alice.Send(Send(4, "c3", "third"));
    rapidjson::Document d;
    REQUIRE(alice.WaitResponse(4, &d, 10000));
    CHECK(CodeOf(d) == 503);
    CHECK(ErrorOf(d) == "unavailable");
    REQUIRE(
        alice_web.Call(1, "chat.send", R"({"to":"bob","cid":"c4","body":"fourth"})", &d, 10000));
    CHECK(CodeOf(d) == 503);
    CHECK(ErrorOf(d) == "unavailable");

    appends->Open(im::test::GatedInbox::Op::kAppend);
    rapidjson::Document first, again, second;
    REQUIRE(alice.WaitResponse(1, &first, 10000));
    REQUIRE(alice.WaitResponse(2, &again, 10000));
    REQUIRE(alice.WaitResponse(3, &second, 10000));
    REQUIRE(CodeOf(first) == 0);
    REQUIRE(CodeOf(again) == 0);
    REQUIRE(CodeOf(second) == 0);
    CHECK(Mid(again) == Mid(first));  // the first send's answer, nothing stored twice
    CHECK(again["body"]["seq"].GetUint64() == first["body"]["seq"].GetUint64());
    CHECK(Mid(second) != Mid(first));

    // The 503'd c3, retried under its cid: stored now, and once.
    alice.Send(Send(5, "c3", "third"));
    REQUIRE(alice.WaitResponse(5, &d, 10000));
    REQUIRE(CodeOf(d) == 0);
    const std::string third = Mid(d);
    alice.Send(Send(6, "c3", "third"));
    REQUIRE(alice.WaitResponse(6, &d, 10000));
    REQUIRE(CodeOf(d) == 0);
    CHECK(Mid(d) == third);

    // bob's inbox: c1, c2, c3 once each, in that order; c4 was refused and never retried.
    REQUIRE(bob.Call(1, "chat.sync", R"({"after":0})", &d));
    REQUIRE(CodeOf(d) == 0);
    std::vector<std::string> bodies, mids;
    for (const auto& m : d["body"]["messages"].GetArray()) {
      bodies.push_back(m["body"].GetString());
      mids.push_back(m["mid"].GetString());
    }
    CHECK(bodies == std::vector<std::string>{"blocker", "first", "second", "third"});
    REQUIRE(mids.size() == 4);
    CHECK(std::vector<std::string>(mids.begin() + 1, mids.end()) ==
          std::vector<std::string>{Mid(first), Mid(second), third});
    CHECK(d["body"]["last_seq"].GetUint64() == 4);
  });
}

// ServerOptions::commit_on_worker. A lone 1:1 send is stored on its worker when the committer
// is idle; with one worker and a storage write that takes long, that worker is then busy for the
// whole write, and another user's login waits for it. With the option off the write happens
// on the committer thread and the worker stays free.
TEST_CASE("commit queue: commit_on_worker false - a slow store does not hold the only worker") {
  for (const bool on_worker : {true, false}) {
    CAPTURE(on_worker);
    std::shared_ptr<im::test::GatedInbox> gate;
    im::ServerOptions options;
    options.worker_threads = 1;
    options.commit_on_worker = on_worker;
    im::test::TestServer ts(options, [&](im::ServerDeps& deps) {
      gate = std::make_shared<im::test::GatedInbox>(deps.inbox);
      deps.inbox = gate;
    });
    im::test::OpenGatesOnExit open_on_exit(*gate);
    RawClient alice(ts.TcpUrl()), bob(ts.TcpUrl());
    REQUIRE(alice.Login(ts.Token("alice")) == 0);
    gate->Close(im::test::GatedInbox::Op::kAppend);
    alice.Send(Send(7, "slow-1", "held"));
    REQUIRE(gate->WaitHeld(im::test::GatedInbox::Op::kAppend));
    // The login needs the one worker.
    bob.Send(R"({"id":1,"cmd":"login","body":{"token":")" + ts.Token("bob") + R"("}})");
    rapidjson::Document login;
    const bool answered = bob.WaitResponse(1, &login, 1000);
    CHECK(answered == !on_worker);
    gate->Open(im::test::GatedInbox::Op::kAppend);
    if (!answered) REQUIRE(bob.WaitResponse(1, &login, 5000));
    CHECK(CodeOf(login) == 0);
    rapidjson::Document ack;
    REQUIRE(alice.WaitResponse(7, &ack, 5000));
    CHECK(CodeOf(ack) == 0);
    CHECK(Mid(ack) != "");
  }
}
