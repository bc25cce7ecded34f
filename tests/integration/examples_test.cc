// The example programs of examples/ run as a new user would run them (as child processes on
// free ports) and do what their comments say. The SessionStore example's conformance run is its
// own ctest test (examples/custom_store_conformance).
#ifdef IM_EXAMPLES_DIR

#include <doctest/doctest.h>
#include <signal.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "im/client.h"
#include "support/child_process.h"
#include "support/http.h"
#include "support/wait_until.h"

namespace im {
namespace {

using test::ChildProcess;

// An example started on free ports, with the tokens it printed and its TCP port.
struct RunningExample {
  std::unique_ptr<ChildProcess> process;
  std::string alice_token, bob_token;
  std::string tcp_url;

  explicit RunningExample(std::vector<std::string> argv) {
    argv[0] = std::string(IM_EXAMPLES_DIR) + "/" + argv[0];
    process = std::make_unique<ChildProcess>(argv);
    alice_token = After(process->WaitForLine("token for alice: ", 30000), "token for alice: ");
    bob_token = After(process->WaitForLine("token for bob: ", 30000), "token for bob: ");
    std::string serving = process->WaitForLine("serving tcp ", 30000);
    REQUIRE_MESSAGE(!serving.empty(), ("no serving line from " + argv[0]));
    tcp_url = "tcp://127.0.0.1:" + std::to_string(std::stoi(After(serving, "serving tcp ")));
  }
  // SIGTERM stops it cleanly.
  void Stop() {
    process->Signal(SIGTERM);
    CHECK(process->Wait(30000) == 0);
  }
  static std::string After(const std::string& line, const std::string& prefix) {
    REQUIRE_MESSAGE(line.find(prefix) != std::string::npos, ("missing: " + prefix));
    return line.substr(line.find(prefix) + prefix.size());
  }
};

// A logged-in client that keeps what it receives.
struct Receiver {
  std::unique_ptr<Client> client;
  std::mutex mu;
  std::vector<Message> got;

  Receiver(const std::string& url, const std::string& token) {
    ClientOptions options;
    options.url = url;
    client = std::make_unique<Client>(options);
    client->OnMessage([this](const ReceivedMessage& m) {
      std::lock_guard<std::mutex> lock(mu);
      got.push_back(m.message);
    });
    REQUIRE(client->Connect().ok());
    REQUIRE(client->Login(token).ok());
  }
  // The client goes first: its threads call back into the members below until it is gone.
  ~Receiver() { client.reset(); }
  // The first message received, waiting for it up to 20 s (an empty Message when none came).
  Message First() {
    test::WaitUntil([this] {
      std::lock_guard<std::mutex> lock(mu);
      return !got.empty();
    }, 20000);
    std::lock_guard<std::mutex> lock(mu);
    return got.empty() ? Message{} : got.front();
  }
};

TEST_CASE("Examples: embed_minimal serves a chat between alice and bob") {
  RunningExample host({"embed_minimal", "127.0.0.1:0", "127.0.0.1:0"});
  Receiver bob(host.tcp_url, host.bob_token);
  Receiver alice(host.tcp_url, host.alice_token);
  REQUIRE(alice.client->SendText("bob", "hi bob").ok());
  Message m = bob.First();
  CHECK(m.from == "alice");
  CHECK(m.body == "hi bob");
  // im_chat, as the README runs it, confirms what it sent; end of input logs it out.
  int rc = -1;
  std::string out = test::RunAndCapture(
      {"/bin/sh", "-c", "echo 'hi from im_chat' | " + std::string(IM_EXAMPLES_DIR) +
                            "/im_chat --url " + host.tcp_url + " --token " + host.alice_token +
                            " --to bob"},
      &rc);
  CHECK(rc == 0);
  CHECK_MESSAGE(out.find("* sent to bob (your seq 2)") != std::string::npos, out);
  host.Stop();
}

TEST_CASE("Examples: moderation_hook refuses a blocked word and turns /shout into a shout") {
  RunningExample host({"moderation_hook", "127.0.0.1:0", "127.0.0.1:0"});
  Receiver bob(host.tcp_url, host.bob_token);
  Receiver alice(host.tcp_url, host.alice_token);
  Result<SendAck> refused = alice.client->SendText("bob", "cheap spam here");
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().code() == Code::kForbidden);
  CHECK(refused.status().error() == "blocked");
  CHECK_FALSE(host.process->WaitForLine("moderation: refused alice -> bob", 10000).empty());
  REQUIRE(alice.client->SendText("bob", "/shout hello").ok());
  Message m = bob.First();  // the refused message never arrived: this is the shout
  CHECK(m.type == "shout");
  CHECK(m.body == "HELLO");
  host.Stop();
}

TEST_CASE("Examples: system_push stores and pushes what its own HTTP endpoint receives") {
  RunningExample host({"system_push", "127.0.0.1:0", "0"});
  std::string endpoint = host.process->WaitForLine("notify endpoint http://127.0.0.1:", 30000);
  REQUIRE_FALSE(endpoint.empty());
  auto port = static_cast<uint16_t>(
      std::stoi(RunningExample::After(endpoint, "notify endpoint http://127.0.0.1:")));
  Receiver bob(host.tcp_url, host.bob_token);
  test::HttpResult r = test::Http(port, "POST", "/notify?user=bob", "Your order has shipped");
  CHECK(r.status == 200);
  Message m = bob.First();
  CHECK(m.from.empty());
  CHECK(m.type == "system");
  CHECK(m.body == "Your order has shipped");
  // A refusal is the library's Status, as an HTTP status.
  CHECK(test::Http(port, "POST", "/notify?user=", "x").status == 400);
  CHECK(test::Http(port, "GET", "/", "").status == 404);
  host.Stop();
}

}  // namespace
}  // namespace im

#endif  // IM_EXAMPLES_DIR
