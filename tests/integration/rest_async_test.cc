// The REST endpoints that store (POST /v1/messages, POST /v1/groups) answer from the committer:
// no worker waits for the store, so a held store does not stop the other requests.
#include <doctest/doctest.h>

#include <future>
#include <thread>

#include "support/gated_inbox.h"
#include "support/http.h"
#include "support/test_server.h"

using im::test::GatedInbox;
using im::test::Http;
using im::test::HttpResult;
using im::test::TestServer;

TEST_CASE("rest async: with one worker, a request answers while two stores are held") {
  std::shared_ptr<GatedInbox> gate;
  im::ServerOptions options;
  options.worker_threads = 1;
  TestServer ts(options, [&](im::ServerDeps& deps) {
    gate = std::make_shared<GatedInbox>(deps.inbox);
    deps.inbox = gate;
  });
  im::test::OpenGatesOnExit open_on_exit(*gate);
  const uint16_t port = ts.server().http_port();
  const std::string alice = ts.Token("alice");
  gate->Close(GatedInbox::Op::kAppend);

  auto send = std::async(std::launch::async, [&] {
    return Http(port, "POST", "/v1/messages", R"({"to":"bob","body":"held","cid":"h1"})",
                TestServer::kAdminKey);
  });
  REQUIRE(gate->WaitHeld(GatedInbox::Op::kAppend));
  auto create = std::async(std::launch::async, [&] {
    return Http(port, "POST", "/v1/groups", R"({"name":"team","gid":"g1"})", alice);
  });
  // A safety net for the unfixed code (a worker parked until the store ends): the gate opens
  // by itself after a while, and the checks below then fail instead of hanging.
  std::promise<void> done;
  std::thread opener([&gate, finished = done.get_future()] {
    finished.wait_for(std::chrono::seconds(8));
    gate->Open(GatedInbox::Op::kAppend);
  });
  // Both stores are waiting at the committer; the one worker must still be free.
  HttpResult r = Http(port, "GET", "/v1/groups/nope", "", alice);
  const size_t held_when_answered = gate->held_appends();
  CHECK(r.status == 404);
  CHECK(held_when_answered > 0);
  CHECK(send.wait_for(std::chrono::seconds(0)) != std::future_status::ready);

  done.set_value();
  opener.join();
  HttpResult sent = send.get();
  CHECK(sent.status == 200);
  CHECK(sent.Str("mid") != "");
  HttpResult created = create.get();
  CHECK(created.status == 201);
  CHECK(created.Str("gid") == "g1");
}
