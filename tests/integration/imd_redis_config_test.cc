// imd's [storage] redis_* keys: out-of-range values stop imd at start with the file, line and key,
// and a value set there reaches imd's Redis pools (a command waits the configured timeout).
#include <doctest/doctest.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <string>

#include "im/client.h"
#include "support/child_process.h"
#include "support/imd_process.h"
#if IM_WITH_REDIS
#include "support/redis_server.h"
#endif

namespace {

std::string RunImd(const std::string& args, int* rc) {
  return im::test::RunAndCapture({"/bin/sh", "-c", std::string(IMD_PATH) + " " + args + " 2>&1"},
                                 rc);
}

TEST_CASE("imd config: storage.redis_* values out of range stop imd with the line and key") {
  const std::string dir = im::test::MakeTempDir();
  const struct {
    std::string line;
    std::string error;
  } cases[] = {
      {"redis_pool_size = 0", "storage.redis_pool_size: must be in 1..1024"},
      {"redis_pool_size = 1025", "storage.redis_pool_size: must be in 1..1024"},
      {"redis_command_timeout_ms = 0", "storage.redis_command_timeout_ms: must be in 1..600000"},
      {"redis_command_timeout_ms = -5", "storage.redis_command_timeout_ms: must not be negative"},
      {"redis_connect_timeout_ms = 600001",
       "storage.redis_connect_timeout_ms: must be in 1..600000"},
      {"redis_pool_size = \"8\"", "storage.redis_pool_size: expected an integer, not a string"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.line);
    std::ofstream(dir + "/bad.toml") << "[storage]\ninbox = \"memory:\"\n" << c.line << "\n";
    int rc = 0;
    const std::string out = RunImd("--config " + dir + "/bad.toml --data " + dir +
                                       " --tcp 127.0.0.1:0 --http 127.0.0.1:0",
                                   &rc);
    CHECK(rc == 1);
    CHECK_MESSAGE(out == "imd: " + dir + "/bad.toml:3: " + c.error, out);
  }
  // In range: accepted (imd serves; memory storage opens no pool).
  std::ofstream(dir + "/ok.toml") << "[storage]\ninbox = \"memory:\"\nredis_pool_size = 1024\n"
                                  << "redis_command_timeout_ms = 1\n"
                                  << "redis_connect_timeout_ms = 600000\n";
  im::test::ChildProcess imd({IMD_PATH, "--config", dir + "/ok.toml", "--data", dir, "--http",
                              "127.0.0.1:0", "--tcp", "127.0.0.1:0"});
  CHECK(imd.WaitForLine(" serving ", 30000) != "");
  imd.Signal(SIGTERM);
  CHECK(imd.Wait(30000) == 0);
  std::filesystem::remove_all(dir);
}

#if IM_WITH_REDIS
TEST_CASE("imd config: storage.redis_command_timeout_ms bounds a Redis call of imd") {
  im::test::RedisServer redis;
  const std::string data = im::test::MakeTempDir();
  // 4 s against the default 1 s: a send to a stalled Redis answers 503 only after it.
  constexpr int64_t kTimeoutMs = 4000;
  auto args = im::test::WriteImdConfig(
      data, "[storage]\ninbox = \"" + redis.url() + "\"\nredis_command_timeout_ms = " +
                std::to_string(kTimeoutMs) + "\n");
  im::test::ImdProcess imd = im::test::StartImd(IMD_PATH, data, "127.0.0.1:0", "127.0.0.1:0", args);
  im::ClientOptions options;
  options.url = imd.tcp_url;
  im::Client client(options);
  REQUIRE(client.Connect().ok());
  REQUIRE(client.Login(im::test::ImdToken(IMD_PATH, data, "alice")).ok());
  // The pool holds open connections after this (Request: one try, the server's answer as is).
  auto warm = client.Request("chat.send", R"({"to":"bob","body":"warm","cid":"w1"})");
  REQUIRE_MESSAGE(warm.ok(), warm.status().ToString());
  // Redis takes the commands and answers none for 20 s.
  REQUIRE(redis.Command({"CLIENT", "PAUSE", "20000", "ALL"}) == "+OK");
  const auto start = std::chrono::steady_clock::now();
  auto r = client.Request("chat.send", R"({"to":"bob","body":"stalled","cid":"s1"})");
  const int64_t ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::steady_clock::now() - start)
                         .count();
  REQUIRE_FALSE(r.ok());
  CHECK_MESSAGE(r.status().ToString().rfind("503 unavailable", 0) == 0, r.status().ToString());
  // Not before the configured timeout (the default would answer after about 1 s).
  CHECK_MESSAGE(ms >= kTimeoutMs - 200, ms);
  REQUIRE(redis.Command({"CLIENT", "UNPAUSE"}) == "+OK");
  imd.process->Signal(SIGTERM);
  CHECK(imd.process->Wait(30000) == 0);
  std::filesystem::remove_all(data);
}
#endif

}  // namespace
