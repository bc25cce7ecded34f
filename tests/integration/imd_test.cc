// The imd binary as a new user runs it: token command, first start, chat, SIGTERM.
#include <doctest/doctest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <regex>

#include "im/client.h"
#include "support/child_process.h"

#ifdef IMD_PATH
using im::test::ChildProcess;

TEST_CASE("imd: creates a key on first start - imd token signs with it - chat works - SIGTERM exits 0") {
  std::string data = im::test::MakeTempDir();
  ChildProcess imd({IMD_PATH, "--data", data, "--http", "127.0.0.1:0", "--tcp", "127.0.0.1:0"});
  CHECK_FALSE(imd.WaitForLine("created a signing key", 10000).empty());
  std::string serving = imd.WaitForLine("serving", 10000);
  REQUIRE_FALSE(serving.empty());
  std::smatch m;
  REQUIRE(std::regex_search(serving, m, std::regex(R"(ws://(127\.0\.0\.1:\d+)/ws)")));
  std::string ws = "ws://" + m[1].str() + "/ws";
  REQUIRE(std::regex_search(serving, m, std::regex(R"(tcp://(127\.0\.0\.1:\d+))")));
  std::string tcp = "tcp://" + m[1].str();
  CHECK(std::filesystem::exists(data + "/keys/default.key"));

  int rc = 0;
  std::string alice = im::test::RunAndCapture({IMD_PATH, "token", "--user", "alice", "--data", data}, &rc);
  REQUIRE(rc == 0);
  std::string bob = im::test::RunAndCapture(
      {IMD_PATH, "token", "--user", "bob", "--ttl", "60", "--data", data}, &rc);
  REQUIRE(rc == 0);
  // A new tenant gets its own key, which the running server picks up.
  std::string acme = im::test::RunAndCapture(
      {IMD_PATH, "token", "--user", "bob", "--tenant", "acme", "--data", data}, &rc);
  REQUIRE(rc == 0);

  im::ClientOptions o;
  o.url = tcp;
  im::Client a(o);
  o.url = ws;
  im::Client b(o), c(o);
  REQUIRE(a.Connect().ok());
  REQUIRE(b.Connect().ok());
  REQUIRE(c.Connect().ok());
  REQUIRE(a.Login(alice).ok());
  REQUIRE(b.Login(bob).ok());
  auto login_acme = c.Login(acme);
  REQUIRE(login_acme.ok());
  CHECK(login_acme->tenant == "acme");
  REQUIRE(a.SendText("bob", "hi from imd").ok());
  auto page = b.Sync(0);
  REQUIRE(page.ok());
  REQUIRE(page->messages.size() == 1);
  CHECK(page->messages[0].message.body == "hi from imd");
  auto acme_page = c.Sync(0);
  REQUIRE(acme_page.ok());
  CHECK(acme_page->messages.empty());  // tenant acme's bob is someone else

  // A token from another data dir's key is refused.
  std::string other = im::test::MakeTempDir();
  std::string forged = im::test::RunAndCapture(
      {IMD_PATH, "token", "--user", "alice", "--data", other}, &rc);
  im::Client d(o);
  REQUIRE(d.Connect().ok());
  CHECK(d.Login(forged).status().code() == im::Code::kUnauthenticated);

  imd.Signal(SIGTERM);
  CHECK(imd.Wait(10000) == 0);
  std::filesystem::remove_all(data);
  std::filesystem::remove_all(other);
}

TEST_CASE("imd: a bad config file is refused with the key named") {
  std::string dir = im::test::MakeTempDir();
  std::ofstream(dir + "/imd.toml") << "[server]\nheartbeat_s = 10\nno_such_key = 1\n";
  int rc = 0;
  ChildProcess imd({IMD_PATH, "--config", dir + "/imd.toml", "--data", dir});
  CHECK(imd.Wait(10000) == 1);
  std::ofstream(dir + "/bad.toml") << "[server]\nheartbeat_s = -5\n";
  ChildProcess imd2({IMD_PATH, "--config", dir + "/bad.toml", "--data", dir});
  CHECK(imd2.Wait(10000) == 1);
  (void)rc;
  std::filesystem::remove_all(dir);
}
#endif
