// The Redis client (lib/store/redis/redis_client.h) against a redis-server of the test's own:
// URL parsing, pipelining, EVALSHA with the NOSCRIPT fallback, command timeouts, the pool bound,
// 503 while Redis is down and reconnection when it is back.

#include <doctest/doctest.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "im/redis.h"
#include "store/redis/no_sigpipe.h"
#include "store/redis/redis_client.h"
#include "store/redis/redis_keys.h"
#include "support/redis_server.h"
#include "support/wait_until.h"

namespace im::internal {
namespace {

using im::test::RedisServer;
using im::test::WaitUntil;
using Clock = std::chrono::steady_clock;

int64_t MsSince(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

std::shared_ptr<RedisClient> MustClient(RedisOptions options) {
  Result<std::shared_ptr<RedisClient>> client = RedisClient::Create(options);
  REQUIRE_MESSAGE(client.ok(), client.status().ToString());
  return std::move(client).value();
}

RedisOptions OptionsFor(const RedisServer& server, int db = 0) {
  RedisOptions options;
  options.url = server.url(db);
  options.connect_timeout_ms = 2000;
  options.command_timeout_ms = 2000;
  options.reconnect_min_ms = 10;
  options.reconnect_max_ms = 100;
  return options;
}

RedisReply MustCommand(RedisClient& client, const RedisArgs& args) {
  Result<RedisReply> reply = client.Command(args);
  REQUIRE_MESSAGE(reply.ok(), reply.status().ToString());
  return std::move(reply).value();
}

void CheckUnavailable(const Status& s) {
  CHECK_MESSAGE(s.code() == Code::kUnavailable, s.ToString());
  CHECK(s.error() == "unavailable");
}

// A write to a connection whose peer has gone raises SIGPIPE, whose default action ends the
// process; the Redis client's writes run under NoSigpipe, so a host that left SIGPIPE at its
// default survives them. Here with SIGPIPE's default action: without the guard the test binary
// would be killed.
TEST_CASE("Redis client: a write to a closed connection is EPIPE, not a SIGPIPE that ends the host") {
  struct sigaction previous {};
  struct sigaction deflt {};
  deflt.sa_handler = SIG_DFL;
  sigemptyset(&deflt.sa_mask);
  REQUIRE(sigaction(SIGPIPE, &deflt, &previous) == 0);
  int fds[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
  close(fds[1]);
  {
    internal::NoSigpipe guard;
    for (int i = 0; i < 3; ++i) {
      errno = 0;
      CHECK(write(fds[0], "PING\r\n", 6) == -1);
      CHECK(errno == EPIPE);
    }
  }
  // Nothing left pending, and the thread's mask is as before (SIGPIPE not blocked).
  sigset_t pending;
  REQUIRE(sigpending(&pending) == 0);
  CHECK(sigismember(&pending, SIGPIPE) == 0);
  sigset_t mask;
  REQUIRE(pthread_sigmask(SIG_BLOCK, nullptr, &mask) == 0);
  CHECK(sigismember(&mask, SIGPIPE) == 0);
  close(fds[0]);
  REQUIRE(sigaction(SIGPIPE, &previous, nullptr) == 0);
}

TEST_CASE("Redis client: URLs parse, and a bad one is 400 naming the problem") {
  Result<RedisUrl> full = ParseRedisUrl("redis://user:s3cret@redis.example:6380/3");
  REQUIRE(full.ok());
  CHECK(full->host == "redis.example");
  CHECK(full->port == 6380);
  CHECK(full->db == 3);
  CHECK(full->user == "user");
  CHECK(full->password == "s3cret");
  Result<RedisUrl> bare = ParseRedisUrl("redis://10.0.0.1");
  REQUIRE(bare.ok());
  CHECK(bare->host == "10.0.0.1");
  CHECK(bare->port == 6379);
  CHECK(bare->db == 0);
  CHECK(bare->password.empty());

  const std::pair<const char*, const char*> bad[] = {
      {"http://127.0.0.1:6379", "redis://"},       {"redis://", "no host"},
      {"redis://:6379/0", "no host"},              {"redis://host:0", "port"},
      {"redis://host:65536", "port"},              {"redis://host:63x9", "port"},
      {"redis://host:6379/db", "database"},        {"redis://host:6379/-1", "database"},
      {"redis://[::1]:6379", "IPv6"},              {"redis://nopassword@host", "credentials"},
  };
  for (const auto& [url, what] : bad) {
    CAPTURE(url);
    Result<RedisUrl> parsed = ParseRedisUrl(url);
    REQUIRE_FALSE(parsed.ok());
    CHECK(parsed.status().code() == Code::kBadRequest);
    CHECK(parsed.status().message().find(what) != std::string_view::npos);
    RedisOptions options;
    options.url = url;
    CHECK(RedisClient::Create(options).status().code() == Code::kBadRequest);
    CHECK(OpenRedisUserStore(options).status().code() == Code::kBadRequest);
    CHECK(OpenRedisSessionStore(options).status().code() == Code::kBadRequest);
  }
  RedisSessionOptions slow_refresh;
  slow_refresh.session_ttl_ms = 1000;
  slow_refresh.refresh_interval_ms = 1000;  // would let sessions lapse between refreshes
  CHECK(OpenRedisSessionStore(RedisOptions(), slow_refresh).status().code() ==
        Code::kBadRequest);
  RedisOptions no_pool;
  no_pool.pool_size = 0;
  CHECK(RedisClient::Create(no_pool).status().code() == Code::kBadRequest);
}

TEST_CASE("Redis client: keys escape ids so tags never end early and pairs stay apart") {
  CHECK(UserKeyPrefix(UserKey{"default", "alice"}) == "im:{u:default/alice}:");
  CHECK(UserKeyPrefix(UserKey{"a/b", "c"}) != UserKeyPrefix(UserKey{"a", "b/c"}));
  CHECK(UserKeyPrefix(UserKey{"t", "x}y{%"}) == "im:{u:t/x%7Dy%7B%25}:");
  CHECK(GroupKeyPrefix(GroupKey{"default", "g1"}) == "im:{g:default/g1}:");
}

TEST_CASE("Redis client: a pipeline is one round trip with a reply per command") {
  RedisServer server;
  std::shared_ptr<RedisClient> client = MustClient(OptionsFor(server, 2));
  const uint64_t trips = client->metrics().round_trips.load();
  Result<std::vector<RedisReply>> replies = client->Pipeline({{"SET", "k", std::string("a\0b", 3)},
                                                              {"GET", "k"},
                                                              {"INCR", "k"},  // not a number
                                                              {"INCR", "n"},
                                                              {"GET", "missing"},
                                                              {"LRANGE", "missing", "0", "-1"}});
  REQUIRE_MESSAGE(replies.ok(), replies.status().ToString());
  REQUIRE(replies->size() == 6);
  CHECK((*replies)[0].type == RedisReply::Type::kStatus);
  CHECK((*replies)[0].str == "OK");
  CHECK((*replies)[1].str == std::string("a\0b", 3));  // binary-safe both ways
  CHECK((*replies)[2].is_error());  // in its place; the others are unaffected
  CHECK((*replies)[2].str.find("not an integer") != std::string::npos);
  CHECK((*replies)[3].is_integer());
  CHECK((*replies)[3].integer == 1);
  CHECK((*replies)[4].is_nil());
  CHECK((*replies)[5].is_array());
  CHECK((*replies)[5].elements.empty());
  CHECK(client->metrics().round_trips.load() == trips + 1);
  CHECK(client->metrics().commands.load() >= 6);
  CHECK(client->metrics().in_use.load() == 0);

  // The URL's db was selected: db 0 does not hold the key.
  CHECK(server.Command({"EXISTS", "k"}) == ":0");
  // A single command's error reply is 500 internal with Redis's text.
  Result<RedisReply> error = client->Command({"INCR", "k"});
  REQUIRE_FALSE(error.ok());
  CHECK(error.status().code() == Code::kInternal);
  CHECK(error.status().message().find("not an integer") != std::string_view::npos);
}

TEST_CASE("Redis client: EVALSHA loads the script again after SCRIPT FLUSH") {
  RedisServer server;
  std::shared_ptr<RedisClient> client = MustClient(OptionsFor(server));
  static const RedisScript script("return redis.call('INCRBY', KEYS[1], ARGV[1])");
  Result<RedisReply> first = client->Eval(script, {"counter"}, {"5"});
  REQUIRE_MESSAGE(first.ok(), first.status().ToString());
  CHECK(first->integer == 5);
  const std::string sha1 = script.sha1();
  CHECK(sha1.size() == 40);
  CHECK(server.Command({"SCRIPT", "EXISTS", sha1}) == "*1");

  CHECK(server.Command({"SCRIPT", "FLUSH"}) == "+OK");
  const uint64_t errors = client->metrics().errors.load();
  Result<RedisReply> second = client->Eval(script, {"counter"}, {"2"});
  REQUIRE_MESSAGE(second.ok(), second.status().ToString());
  CHECK(second->integer == 7);  // ran exactly once
  CHECK(client->metrics().errors.load() == errors);  // the handled NOSCRIPT is no error

  // A script's own error is 500 with Redis's text, and is not retried.
  static const RedisScript failing("return redis.error_reply('BROKEN on purpose')");
  Result<RedisReply> broken = client->Eval(failing, {}, {});
  REQUIRE_FALSE(broken.ok());
  CHECK(broken.status().code() == Code::kInternal);
  CHECK(broken.status().message().find("BROKEN on purpose") != std::string_view::npos);
}

TEST_CASE("Redis client: many threads share a small pool without losing a command") {
  RedisServer server;
  RedisOptions options = OptionsFor(server);
  options.pool_size = 3;
  options.command_timeout_ms = 10000;  // waits for a connection are long on a loaded machine
  std::shared_ptr<RedisClient> client = MustClient(options);
  constexpr int kThreads = 12;
  constexpr int kRounds = 100;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string mine = "list-" + std::to_string(t);
      for (int i = 0; i < kRounds; ++i) {
        // One plain command and one pipeline per round; each thread's list shows its own order.
        if (!client->Command({"INCR", "total"}).ok()) ++failures;
        Result<std::vector<RedisReply>> r =
            client->Pipeline({{"RPUSH", mine, std::to_string(i)}, {"INCR", "total"}});
        if (!r.ok() || (*r)[0].integer != i + 1) ++failures;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  CHECK(failures.load() == 0);
  CHECK(MustCommand(*client, {"GET", "total"}).str == std::to_string(2 * kThreads * kRounds));
  CHECK(client->metrics().connects.load() <= 3);
  CHECK(client->metrics().in_use.load() == 0);
  RedisReply list = MustCommand(*client, {"LRANGE", "list-5", "0", "-1"});
  REQUIRE(list.elements.size() == static_cast<size_t>(kRounds));
  for (int i = 0; i < kRounds; ++i) CHECK(list.elements[i].str == std::to_string(i));
}

TEST_CASE("Redis client: a command that gets no reply in time is 503, then the client recovers") {
  RedisServer server;
  RedisOptions options = OptionsFor(server);
  options.command_timeout_ms = 300;
  std::shared_ptr<RedisClient> client = MustClient(options);
  MustCommand(*client, {"SET", "k", "v"});
  MustCommand(*client, {"SET", "slow", "late"});

  // Redis holds every client's commands for 3 s: ours must give up after about 300 ms.
  CHECK(server.Command({"CLIENT", "PAUSE", "3000", "ALL"}) == "+OK");
  const auto start = Clock::now();
  Result<RedisReply> paused = client->Command({"GET", "slow"});
  const int64_t waited = MsSince(start);
  REQUIRE_FALSE(paused.ok());
  CheckUnavailable(paused.status());
  CHECK(paused.status().message().find("within 300 ms") != std::string_view::npos);
  CHECK(waited >= 250);
  CHECK(waited < 2500);
  CHECK(client->metrics().timeouts.load() == 1);

  // After the pause the (reconnected) client answers again, with the right values: the late
  // reply of the timed-out GET ("late") is not handed to anyone.
  CHECK(server.Command({"CLIENT", "UNPAUSE"}) == "+OK");
  REQUIRE(WaitUntil([&] { return client->Command({"SET", "k2", "v2"}).ok(); }, 10000));
  CHECK(MustCommand(*client, {"GET", "k"}).str == "v");
  CHECK(MustCommand(*client, {"GET", "k2"}).str == "v2");
}

TEST_CASE("Redis client: a Redis that runs nothing yet (BUSY with a long script) is 503, not 500") {
  RedisServer server(im::test::RedisServerOptions{"everysec", {"busy-reply-threshold 100"}});
  RedisOptions options = OptionsFor(server);
  options.command_timeout_ms = 5000;
  std::shared_ptr<RedisClient> client = MustClient(options);
  std::shared_ptr<RedisClient> runner = MustClient(options);
  MustCommand(*client, {"SET", "k", "v"});
  // A read-only script that spins for 3 s: past busy-reply-threshold, Redis answers every other
  // command with -BUSY (it did not run), as it answers -LOADING while it reads its AOF.
  std::thread spin([&] {
    static const im::internal::RedisScript kSpin(
        "local s = tonumber(redis.call('TIME')[1]) "
        "while tonumber(redis.call('TIME')[1]) < s + 3 do end return 1");
    (void)runner->Eval(kSpin, {}, {});
  });
  Status busy;
  CHECK(WaitUntil([&] {
    Result<RedisReply> r = client->Command({"GET", "k"});
    busy = r.status();
    return !r.ok() && busy.message().find("BUSY") != std::string_view::npos;
  }, 5000));
  CheckUnavailable(busy);
  (void)server.Command({"SCRIPT", "KILL"});
  spin.join();
  REQUIRE(WaitUntil([&] { return client->Command({"GET", "k"}).ok(); }, 10000));
}

TEST_CASE("Redis client: callers beyond the pool wait at most the command timeout, then 503") {
  RedisServer server;
  RedisOptions options = OptionsFor(server);
  options.pool_size = 1;
  options.command_timeout_ms = 1000;
  std::shared_ptr<RedisClient> client = MustClient(options);
  MustCommand(*client, {"PING"});

  // Sixteen BLPOPs of 250 ms each hold the only connection for about 4 s, each reply well
  // within the timeout (it bounds each reply, not the pipeline): a loaded machine has 3 s to
  // start the starved call below while the connection is still held.
  std::thread holder([&] {
    std::vector<RedisArgs> slow(16, RedisArgs{"BLPOP", "empty", "0.25"});
    Result<std::vector<RedisReply>> r = client->Pipeline(slow);
    CHECK_MESSAGE(r.ok(), r.status().ToString());
  });
  REQUIRE(WaitUntil([&] { return client->metrics().in_use.load() == 1; }, 5000));
  const auto start = Clock::now();
  Result<RedisReply> starved = client->Command({"PING"});
  const int64_t waited = MsSince(start);
  holder.join();
  REQUIRE_FALSE(starved.ok());
  CheckUnavailable(starved.status());
  CHECK(starved.status().message().find("busy") != std::string_view::npos);
  CHECK(waited >= 950);
  CHECK(client->metrics().pool_waits.load() >= 1);
  CHECK(client->metrics().in_use.load() == 0);
  MustCommand(*client, {"PING"});  // the connection came back to the pool
}

TEST_CASE("Redis client: 503 while Redis is down, back by itself when it returns") {
  RedisServer server;
  std::shared_ptr<RedisClient> client = MustClient(OptionsFor(server));
  MustCommand(*client, {"SET", "k", "before"});

  server.Stop();
  for (int i = 0; i < 3; ++i) {
    const auto start = Clock::now();
    Result<RedisReply> down = client->Command({"GET", "k"});
    REQUIRE_FALSE(down.ok());
    CheckUnavailable(down.status());
    CHECK(MsSince(start) < 2000);  // refused at once, or during the backoff without a try
  }
  CHECK(client->metrics().errors.load() >= 3);

  server.Start();
  REQUIRE(WaitUntil([&] { return client->Command({"PING"}).ok(); }, 10000));
  CHECK(MustCommand(*client, {"GET", "k"}).str == "before");  // the AOF kept it
}

TEST_CASE("Redis client: a restart costs at most one 503 per connection in use") {
  RedisServer server;
  RedisOptions options = OptionsFor(server);
  options.pool_size = 4;
  std::shared_ptr<RedisClient> client = MustClient(options);
  // Open all four connections at once.
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] { CHECK(client->Command({"BLPOP", "empty", "0.2"}).ok()); });
  }
  for (std::thread& t : threads) t.join();
  CHECK(client->metrics().connects.load() == 4);

  server.Restart();
  // The first call meets a closed connection; the other idle ones are then known stale and
  // reopened before use, so four calls at once (one per connection) all succeed.
  Result<RedisReply> first = client->Command({"PING"});
  if (!first.ok()) CheckUnavailable(first.status());
  std::atomic<int> failures{0};
  threads.clear();
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      if (!client->Command({"BLPOP", "empty", "0.2"}).ok()) ++failures;
    });
  }
  for (std::thread& t : threads) t.join();
  CHECK(failures.load() == 0);
  CHECK(MustCommand(*client, {"PING"}).str == "PONG");
}

}  // namespace
}  // namespace im::internal
