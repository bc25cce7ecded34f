// The imd binary as a new user runs it: token command, first start, chat, SIGTERM.
#include <doctest/doctest.h>
#include <signal.h>

#include <asio.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "im/client.h"
#include "support/child_process.h"
#include "support/http.h"
#include "support/imd_process.h"

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

  // A token from another data dir's key is refused for its signature: the server of that dir
  // accepts it, so it is a well-formed, unexpired token of the same user and tenant.
  std::string other = im::test::MakeTempDir();
  std::string forged = im::test::RunAndCapture(
      {IMD_PATH, "token", "--user", "alice", "--data", other}, &rc);
  REQUIRE(rc == 0);
  im::Client d(o);
  REQUIRE(d.Connect().ok());
  auto refused = d.Login(forged);
  CHECK(refused.status().code() == im::Code::kUnauthenticated);
  {
    ChildProcess other_imd(
        {IMD_PATH, "--data", other, "--http", "127.0.0.1:0", "--tcp", "127.0.0.1:0"});
    std::string other_serving = other_imd.WaitForLine("serving", 10000);
    REQUIRE_FALSE(other_serving.empty());
    REQUIRE(std::regex_search(other_serving, m, std::regex(R"(tcp://(127\.0\.0\.1:\d+))")));
    im::ClientOptions other_options;
    other_options.url = "tcp://" + m[1].str();
    im::Client e(other_options);
    REQUIRE(e.Connect().ok());
    auto accepted = e.Login(forged);
    REQUIRE(accepted.ok());
    CHECK(accepted->user == "alice");
    other_imd.Signal(SIGTERM);
    CHECK(other_imd.Wait(10000) == 0);
  }

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
  for (const char* bad : {"[server]\nmax_connections = 0\n", "[log]\nlevel = \"loud\"\n",
                          "[log]\nmax_file_bytes = 10\n", "[storage]\ncompression = 1\n",
                          "[server]\nheartbeat_s = 2.5\n"}) {
    std::ofstream(dir + "/bad2.toml") << bad;
    ChildProcess imd3({IMD_PATH, "--config", dir + "/bad2.toml", "--data", dir});
    CHECK_MESSAGE(imd3.Wait(10000) == 1, bad);
  }
  (void)rc;
  std::filesystem::remove_all(dir);
}
namespace {
std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
// Polls `path` until it contains `needle` (true) or 5 s pass.
bool WaitInFile(const std::string& path, const std::string& needle) {
  for (int i = 0; i < 500; ++i) {
    if (ReadFile(path).find(needle) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}
void ConnectAndClose(uint16_t port) {
  asio::io_context io;
  asio::ip::tcp::socket s(io);
  s.connect({asio::ip::make_address("127.0.0.1"), port});
  s.close();
}
}  // namespace

TEST_CASE("imd: program log file from [log] - SIGHUP applies a new level - drain is logged") {
  std::string dir = im::test::MakeTempDir();
  const std::string log = dir + "/program.log";
  auto write_config = [&](const char* level) {
    std::ofstream(dir + "/imd.toml") << "[log]\nlevel = \"" << level
                                     << "\"\nconsole = false\nfile = \"" << log
                                     << "\"\nmax_file_bytes = 1048576\nmax_files = 2\n";
  };
  write_config("info");
  ChildProcess imd({IMD_PATH, "--config", dir + "/imd.toml", "--data", dir, "--http",
                    "127.0.0.1:0", "--tcp", "127.0.0.1:0"});
  std::string serving = imd.WaitForLine("serving", 10000);
  REQUIRE_FALSE(serving.empty());
  std::smatch m;
  REQUIRE(std::regex_search(serving, m, std::regex(R"(tcp://127\.0\.0\.1:(\d+))")));
  const uint16_t port = static_cast<uint16_t>(std::stoi(m[1].str()));
  REQUIRE(WaitInFile(log, "tcp: listening on port " + m[1].str()));

  // At info, connections are not logged.
  ConnectAndClose(port);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  CHECK(ReadFile(log).find("opened from 127.0.0.1") == std::string::npos);

  // SIGHUP re-reads the level; now they are.
  write_config("debug");
  imd.Signal(SIGHUP);
  REQUIRE(WaitInFile(log, "SIGHUP: log level is debug"));
  ConnectAndClose(port);
  CHECK(WaitInFile(log, "opened from 127.0.0.1"));

  // A broken config on SIGHUP is reported and the server carries on.
  std::ofstream(dir + "/imd.toml") << "[log]\nlevel = \"loud\"\n";
  imd.Signal(SIGHUP);
  CHECK(WaitInFile(log, "SIGHUP: config not reloaded"));

  imd.Signal(SIGTERM);
  CHECK(imd.Wait(10000) == 0);
  std::string text = ReadFile(log);
  CHECK(text.find("SIGTERM: draining") != std::string::npos);
  CHECK(text.find("drained in") != std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST_CASE("imd: storage.sync_writes stores every send on im-commit unless "
          "server.commit_on_worker says otherwise") {
  struct Case {
    const char* toml;
    const char* expected;
  };
  const Case cases[] = {
      {"", "a lone 1:1 send stored on its worker"},
      {"[storage]\nsync_writes = true\n", "every send stored on im-commit"},
      {"[server]\ncommit_on_worker = true\n[storage]\nsync_writes = true\n",
       "a lone 1:1 send stored on its worker"},
      {"[server]\ncommit_on_worker = false\n", "every send stored on im-commit"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.toml);
    std::string dir = im::test::MakeTempDir();
    const std::string log = dir + "/program.log";
    std::ofstream(dir + "/imd.toml") << c.toml << "[log]\nconsole = false\nfile = \"" << log
                                     << "\"\n";
    ChildProcess imd({IMD_PATH, "--config", dir + "/imd.toml", "--data", dir, "--http",
                      "127.0.0.1:0", "--tcp", "127.0.0.1:0"});
    REQUIRE_FALSE(imd.WaitForLine("serving", 10000).empty());
    CHECK_MESSAGE(WaitInFile(log, std::string("worker thread(s), ") + c.expected), ReadFile(log));
    imd.Signal(SIGTERM);
    CHECK(imd.Wait(10000) == 0);
    std::filesystem::remove_all(dir);
  }
}

TEST_CASE("imd: --static-dir serves a directory on the HTTP port, next to the Web API") {
  const std::string data = im::test::MakeTempDir();
  const std::string site = im::test::MakeTempDir();
  std::ofstream(site + "/index.html") << "<title>demo</title>";
  im::test::ImdProcess imd = im::test::StartImd(IMD_PATH, data, "127.0.0.1:0", "127.0.0.1:0",
                                                {"--static-dir", site});
  const auto port = static_cast<uint16_t>(
      std::stoi(imd.http_listen.substr(imd.http_listen.rfind(':') + 1)));
  const std::string page = im::test::HttpRoundTrip(
      port, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  CHECK(page.rfind("HTTP/1.1 200", 0) == 0);
  CHECK(page.find("<title>demo</title>") != std::string::npos);
  CHECK(im::test::Http(port, "GET", "/healthz").status == 200);
  CHECK(im::test::Http(port, "GET", "/nothing.html").status == 404);
  imd.process.reset();
  std::filesystem::remove_all(data);
  std::filesystem::remove_all(site);
}
#endif
