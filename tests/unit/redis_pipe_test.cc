// RedisClient::EvalAsync (the pipelined connection, lib/store/redis/redis_pipe.h) against a
// redis-server of the test's own: answers in call order with many calls in flight, the bound on
// pending calls, a command timeout, Redis killed mid-pipeline, SCRIPT FLUSH mid-pipeline; and
// the Redis inbox's AppendBatchAsync across a Redis restart.

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "im/offline_queue.h"
#include "im/redis.h"
#include "store/redis/redis_client.h"
#include "support/redis_server.h"
#include "support/wait_until.h"

namespace im::internal {
namespace {

using im::test::RedisServer;
using im::test::RedisServerOptions;
using im::test::WaitUntil;
using Clock = std::chrono::steady_clock;

// RPUSH ARGV[1] onto KEYS[1]; returns the list's length.
const RedisScript& PushScript() {
  static const RedisScript script("return redis.call('RPUSH', KEYS[1], ARGV[1])");
  return script;
}

std::shared_ptr<RedisClient> MustClient(const RedisServer& server, int timeout_ms = 5000) {
  RedisOptions options;
  options.url = server.url();
  options.connect_timeout_ms = 2000;
  options.command_timeout_ms = timeout_ms;
  options.reconnect_min_ms = 10;
  options.reconnect_max_ms = 100;
  Result<std::shared_ptr<RedisClient>> client = RedisClient::Create(options);
  REQUIRE_MESSAGE(client.ok(), client.status().ToString());
  return std::move(client).value();
}

// The answers of a run of pipelined calls, in the order their `done`s ran.
struct Answers {
  std::mutex mu;
  std::vector<int> order;             // call index per answer
  std::vector<Result<RedisReply>> results;  // by call index
  std::atomic<int> count{0};

  explicit Answers(int n) : results(n, Status::Internal("not answered")) {}
  RedisDone For(int i) {
    return [this, i](Result<RedisReply> r) {
      {
        std::lock_guard<std::mutex> lock(mu);
        order.push_back(i);
        results[i] = std::move(r);
      }
      ++count;
    };
  }
  bool InOrder() {
    std::lock_guard<std::mutex> lock(mu);
    for (size_t i = 0; i < order.size(); ++i) {
      if (order[i] != static_cast<int>(i)) return false;
    }
    return true;
  }
};

std::vector<std::string> List(RedisClient& client, const std::string& key) {
  Result<RedisReply> r = client.Command({"LRANGE", key, "0", "-1"});
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  std::vector<std::string> out;
  for (const RedisReply& e : r->elements) out.push_back(e.str);
  return out;
}

TEST_CASE("Redis pipe: many calls in flight are answered once each, in call order") {
  RedisServer server;
  std::shared_ptr<RedisClient> client = MustClient(server);
  constexpr int kCalls = 3000;
  Answers answers(kCalls);
  // The first call of a script loads it (a blocking round trip): before the pause.
  Answers warm(1);
  client->EvalAsync(PushScript(), {"warm"}, {"x"}, warm.For(0));
  REQUIRE(WaitUntil([&] { return warm.count.load() == 1; }));
  // Redis holds every command for a while: the calls must be written without waiting.
  CHECK(server.Command({"CLIENT", "PAUSE", "300", "ALL"}) == "+OK");
  const auto start = Clock::now();
  for (int i = 0; i < 100; ++i) {
    client->EvalAsync(PushScript(), {"list"}, {std::to_string(i)}, answers.For(i));
  }
  // 100 calls (below the bound) went out while Redis answered none.
  CHECK(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count() <
        250);
  CHECK(answers.count.load() < 100);
  for (int i = 100; i < kCalls; ++i) {
    client->EvalAsync(PushScript(), {"list"}, {std::to_string(i)}, answers.For(i));
  }
  REQUIRE(WaitUntil([&] { return answers.count.load() == kCalls; }, 60000));
  CHECK(answers.InOrder());
  for (int i = 0; i < kCalls; ++i) {
    REQUIRE_MESSAGE(answers.results[i].ok(), answers.results[i].status().ToString());
    CHECK(answers.results[i]->integer == i + 1);
  }
  std::vector<std::string> list = List(*client, "list");
  REQUIRE(list.size() == static_cast<size_t>(kCalls));
  for (int i = 0; i < kCalls; ++i) CHECK(list[i] == std::to_string(i));
  // Pipelined: far fewer writes than calls, and no pooled connection held.
  CHECK(client->metrics().round_trips.load() < kCalls / 2);
  CHECK(client->metrics().in_use.load() == 0);
  // The wrapper's fence does not touch the script's KEYS and ARGV, and an error reply is 500.
  static const RedisScript failing("return redis.error_reply('BROKEN ' .. KEYS[1] .. ARGV[1])");
  Answers one(1);
  client->EvalAsync(failing, {"k"}, {"v"}, one.For(0));
  REQUIRE(WaitUntil([&] { return one.count.load() == 1; }));
  REQUIRE_FALSE(one.results[0].ok());
  CHECK(one.results[0].status().code() == Code::kInternal);
  CHECK(one.results[0].status().message().find("BROKEN kv") != std::string_view::npos);
}

// The fence key gone (it expired while the connection was idle): the first call behind finds it
// gone and does not run, and neither do the calls written behind it (the fence is spoilt for
// them too); all run once, in order, under a new fence.
TEST_CASE("Redis pipe: a fence key gone while idle - the calls behind run once each, in order") {
  RedisServer server;
  std::shared_ptr<RedisClient> client = MustClient(server);
  Answers first(2);
  for (int i = 0; i < 2; ++i) {
    client->EvalAsync(PushScript(), {"list"}, {std::to_string(i)}, first.For(i));
  }
  REQUIRE(WaitUntil([&] { return first.count.load() == 2; }));
  Result<RedisReply> fences = client->Command({"KEYS", "im:fence:*"});
  REQUIRE(fences.ok());
  REQUIRE(fences->elements.size() == 1);
  REQUIRE(client->Command({"DEL", fences->elements[0].str}).ok());
  // Redis holds every command meanwhile: the three calls reach it together.
  CHECK(server.Command({"CLIENT", "PAUSE", "300", "ALL"}) == "+OK");
  Answers next(3);
  for (int i = 0; i < 3; ++i) {
    client->EvalAsync(PushScript(), {"list"}, {std::to_string(2 + i)}, next.For(i));
  }
  REQUIRE(WaitUntil([&] { return next.count.load() == 3; }));
  CHECK(next.InOrder());
  for (int i = 0; i < 3; ++i) {
    REQUIRE_MESSAGE(next.results[i].ok(), next.results[i].status().ToString());
    CHECK(next.results[i]->integer == 3 + i);
  }
  CHECK(List(*client, "list") == std::vector<std::string>{"0", "1", "2", "3", "4"});
  CHECK(client->metrics().resends.load() == 3);
}

// What Redis answers when it runs nothing yet (BUSY with a long script, LOADING after a restart)
// did not run: 503, as from the pool, so that a sender retries; the pipe goes on after it.
TEST_CASE("Redis pipe: a call refused BUSY is answered 503, not 500, and the pipe goes on") {
  RedisServer server(RedisServerOptions{"everysec", {"busy-reply-threshold 100"}});
  std::shared_ptr<RedisClient> client = MustClient(server);
  std::shared_ptr<RedisClient> runner = MustClient(server);
  Answers warm(1);
  client->EvalAsync(PushScript(), {"list"}, {"w"}, warm.For(0));
  REQUIRE(WaitUntil([&] { return warm.count.load() == 1; }));
  std::thread spin([&] {
    static const RedisScript kSpin(
        "local s = tonumber(redis.call('TIME')[1]) "
        "while tonumber(redis.call('TIME')[1]) < s + 3 do end return 1");
    (void)runner->Eval(kSpin, {}, {});
  });
  REQUIRE(WaitUntil([&] {
    Result<RedisReply> r = client->Command({"GET", "k"});
    return !r.ok() && r.status().message().find("BUSY") != std::string_view::npos;
  }, 5000));
  Answers busy(1);
  client->EvalAsync(PushScript(), {"list"}, {"refused"}, busy.For(0));
  REQUIRE(WaitUntil([&] { return busy.count.load() == 1; }));
  REQUIRE_FALSE(busy.results[0].ok());
  CHECK(busy.results[0].status().code() == Code::kUnavailable);
  CHECK(busy.results[0].status().message().find("BUSY") != std::string_view::npos);
  (void)server.Command({"SCRIPT", "KILL"});
  spin.join();
  Answers after(1);
  REQUIRE(WaitUntil([&] {
    after.count = 0;
    client->EvalAsync(PushScript(), {"list"}, {"after"}, after.For(0));
    return WaitUntil([&] { return after.count.load() == 1; }) && after.results[0].ok();
  }, 10000));
  CHECK(List(*client, "list") == std::vector<std::string>{"w", "after"});
}

TEST_CASE("Redis pipe: beyond the bound a call waits, then is answered 503 after the others") {
  RedisServer server;
  std::shared_ptr<RedisClient> client = MustClient(server, 800);
  constexpr int kBound = static_cast<int>(RedisClient::kMaxPipelined);
  Answers answers(kBound + 1);
  // The first answer blocks the I/O thread until released: every call stays pending.
  std::mutex gate_mu;
  std::condition_variable gate_cv;
  bool open = false;
  RedisDone first = answers.For(0);
  client->EvalAsync(PushScript(), {"list"}, {"0"}, [&](Result<RedisReply> r) {
    std::unique_lock<std::mutex> lock(gate_mu);
    gate_cv.wait(lock, [&] { return open; });
    first(std::move(r));
  });
  for (int i = 1; i < kBound; ++i) {
    client->EvalAsync(PushScript(), {"list"}, {std::to_string(i)}, answers.For(i));
  }
  const auto start = Clock::now();
  client->EvalAsync(PushScript(), {"list"}, {"over"}, answers.For(kBound));
  const auto waited =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
  CHECK(waited >= 700);  // it waited for room for about the command timeout
  CHECK(answers.count.load() == 0);  // and was not answered before the calls ahead of it
  {
    std::lock_guard<std::mutex> lock(gate_mu);
    open = true;
  }
  gate_cv.notify_all();
  REQUIRE(WaitUntil([&] { return answers.count.load() == kBound + 1; }, 30000));
  CHECK(answers.InOrder());
  for (int i = 0; i < kBound; ++i) {
    CHECK_MESSAGE(answers.results[i].ok(), answers.results[i].status().ToString());
  }
  REQUIRE_FALSE(answers.results[kBound].ok());
  CHECK(answers.results[kBound].status().code() == Code::kUnavailable);
  CHECK(answers.results[kBound].status().message().find("pending") != std::string_view::npos);
  CHECK(List(*client, "list").size() == static_cast<size_t>(kBound));  // "over" never sent
}

TEST_CASE("Redis pipe: no reply within the command timeout answers every pending call 503") {
  RedisServer server;
  std::shared_ptr<RedisClient> client = MustClient(server, 300);
  Answers warm(1);
  client->EvalAsync(PushScript(), {"list"}, {"warm"}, warm.For(0));
  REQUIRE(WaitUntil([&] { return warm.count.load() == 1; }));
  REQUIRE(warm.results[0].ok());

  CHECK(server.Command({"CLIENT", "PAUSE", "3000", "ALL"}) == "+OK");
  constexpr int kCalls = 20;
  Answers answers(kCalls);
  const auto start = Clock::now();
  for (int i = 0; i < kCalls; ++i) {
    client->EvalAsync(PushScript(), {"list"}, {std::to_string(i)}, answers.For(i));
  }
  REQUIRE(WaitUntil([&] { return answers.count.load() == kCalls; }, 10000));
  const auto waited =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
  CHECK(waited >= 250);
  CHECK(waited < 2500);  // well before Redis answers
  CHECK(answers.InOrder());
  for (int i = 0; i < kCalls; ++i) {
    REQUIRE_FALSE(answers.results[i].ok());
    CHECK(answers.results[i].status().code() == Code::kUnavailable);
    CHECK(answers.results[i].status().message().find("within 300 ms") != std::string_view::npos);
  }
  CHECK(client->metrics().timeouts.load() >= 1);

  // After the pause a new connection answers, with its own reply (not a late one).
  CHECK(server.Command({"CLIENT", "UNPAUSE"}) == "+OK");
  REQUIRE(WaitUntil(
      [&] {
        Answers again(1);
        client->EvalAsync(PushScript(), {"other"}, {"x"}, again.For(0));
        if (!WaitUntil([&] { return again.count.load() == 1; })) return false;
        return again.results[0].ok() && again.results[0]->integer >= 1;
      },
      10000));
  CHECK(List(*client, "other").front() == "x");
}

TEST_CASE("Redis pipe: Redis killed mid-pipeline answers every pending call, none lost silently") {
  RedisServerOptions always;
  always.appendfsync = "always";  // an answered push is on disk
  RedisServer server(always);
  std::shared_ptr<RedisClient> client = MustClient(server, 3000);
  constexpr int kCalls = 4000;
  Answers answers(kCalls);
  std::thread sender([&] {
    for (int i = 0; i < kCalls; ++i) {
      client->EvalAsync(PushScript(), {"list"}, {std::to_string(i)}, answers.For(i));
    }
  });
  REQUIRE(WaitUntil([&] { return answers.count.load() >= 200; }, 30000));
  server.Kill9();
  sender.join();
  REQUIRE(WaitUntil([&] { return answers.count.load() == kCalls; }, 30000));
  CHECK(answers.InOrder());
  int ok = 0;
  int unavailable = 0;
  for (int i = 0; i < kCalls; ++i) {
    if (answers.results[i].ok()) {
      ++ok;
    } else if (answers.results[i].status().code() == Code::kUnavailable) {
      ++unavailable;
    }
  }
  CHECK(ok + unavailable == kCalls);  // every call answered: stored, or 503
  CHECK(ok >= 200);
  CHECK(unavailable >= 1);

  server.Start();
  // The next call opens a new connection and works.
  REQUIRE(WaitUntil(
      [&] {
        Answers again(1);
        client->EvalAsync(PushScript(), {"after"}, {"x"}, again.For(0));
        if (!WaitUntil([&] { return again.count.load() == 1; })) return false;
        return again.results[0].ok();
      },
      15000));
  // The pool's connections met the dead server too: one 503 each at most.
  REQUIRE(WaitUntil([&] { return client->Command({"PING"}).ok(); }, 10000));
  // Every push answered OK is in Redis, in call order (a 503 one may or may not be).
  std::vector<std::string> list = List(*client, "list");
  size_t at = 0;
  for (int i = 0; i < kCalls; ++i) {
    if (!answers.results[i].ok()) continue;
    while (at < list.size() && list[at] != std::to_string(i)) ++at;
    CHECK_MESSAGE(at < list.size(), "acknowledged push " << i << " lost or out of order");
  }
}

TEST_CASE("Redis pipe: a call behind one that met NOSCRIPT waits for it, its own script loaded") {
  RedisServer server;
  // Two scripts of the same effect: after the flush only the second is loaded again (by another
  // client), so the first call finds NOSCRIPT and the second, written right behind it, would run.
  static const RedisScript other("return redis.call('RPUSH', KEYS[1], ARGV[1])  -- other");
  std::shared_ptr<RedisClient> client = MustClient(server);
  std::shared_ptr<RedisClient> loader = MustClient(server);
  Answers warm(2);
  client->EvalAsync(PushScript(), {"warm"}, {"x"}, warm.For(0));
  client->EvalAsync(other, {"warm"}, {"y"}, warm.For(1));
  REQUIRE(WaitUntil([&] { return warm.count.load() == 2; }));
  CHECK(server.Command({"SCRIPT", "FLUSH"}) == "+OK");
  Answers loaded(1);
  loader->EvalAsync(other, {"warm"}, {"z"}, loaded.For(0));  // loads `other` (wrapped) again
  REQUIRE(WaitUntil([&] { return loaded.count.load() == 1; }));
  REQUIRE(loaded.results[0].ok());

  // A call whose answer holds the I/O thread until both calls are queued: they go out together.
  std::mutex gate_mu;
  std::condition_variable gate_cv;
  bool open = false;
  std::atomic<bool> holding{false};
  client->EvalAsync(other, {"warm"}, {"w"}, [&](Result<RedisReply>) {
    holding = true;
    std::unique_lock<std::mutex> lock(gate_mu);
    gate_cv.wait(lock, [&] { return open; });
  });
  REQUIRE(WaitUntil([&] { return holding.load(); }));
  Answers answers(2);
  client->EvalAsync(PushScript(), {"list"}, {"first"}, answers.For(0));
  client->EvalAsync(other, {"list"}, {"second"}, answers.For(1));
  {
    std::lock_guard<std::mutex> lock(gate_mu);
    open = true;
  }
  gate_cv.notify_all();
  REQUIRE(WaitUntil([&] { return answers.count.load() == 2; }));
  CHECK(answers.InOrder());
  REQUIRE(answers.results[0].ok());
  REQUIRE(answers.results[1].ok());
  CHECK(answers.results[0]->integer == 1);
  CHECK(answers.results[1]->integer == 2);
  CHECK(List(*client, "list") == std::vector<std::string>{"first", "second"});
  CHECK(client->metrics().resends.load() == 2);  // both sent again, in order
}

TEST_CASE("Redis pipe: SCRIPT FLUSH mid-pipeline keeps the order, also with two clients") {
  RedisServer server;
  // Two clients load the same wrapped script: after a flush one may load it again while the
  // other's calls are in flight.
  std::shared_ptr<RedisClient> clients[2] = {MustClient(server), MustClient(server)};
  std::atomic<bool> flushed{false};
  std::atomic<int> sent[2] = {0, 0};
  std::vector<std::unique_ptr<Answers>> answers;
  constexpr int kMax = 100000;
  answers.push_back(std::make_unique<Answers>(kMax));
  answers.push_back(std::make_unique<Answers>(kMax));
  std::vector<std::thread> senders;
  for (int c = 0; c < 2; ++c) {
    senders.emplace_back([&, c] {
      const std::string key = "list-" + std::to_string(c);
      for (int i = 0; i < kMax && (i < 2000 || !flushed.load()); ++i) {
        clients[c]->EvalAsync(PushScript(), {key}, {std::to_string(i)}, answers[c]->For(i));
        sent[c] = i + 1;
      }
    });
  }
  for (int round = 1; round <= 5; ++round) {
    REQUIRE(WaitUntil([&] { return answers[0]->count.load() >= round * 300; }, 30000));
    CHECK(server.Command({"SCRIPT", "FLUSH"}) == "+OK");
  }
  flushed = true;
  for (std::thread& t : senders) t.join();
  for (int c = 0; c < 2; ++c) {
    CAPTURE(c);
    const int n = sent[c].load();
    REQUIRE(WaitUntil([&] { return answers[c]->count.load() == n; }, 60000));
    CHECK(answers[c]->InOrder());
    for (int i = 0; i < n; ++i) {
      REQUIRE_MESSAGE(answers[c]->results[i].ok(), answers[c]->results[i].status().ToString());
      CHECK(answers[c]->results[i]->integer == i + 1);
    }
    // Exactly once each, in call order.
    std::vector<std::string> list = List(*clients[c], "list-" + std::to_string(c));
    REQUIRE(list.size() == static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) CHECK(list[i] == std::to_string(i));
  }
  // The flushes did hit calls: some were sent again.
  CHECK(clients[0]->metrics().resends.load() + clients[1]->metrics().resends.load() > 0);
}

TEST_CASE("Redis pipe: the inbox's AppendBatchAsync across a restart answers 503, then a new epoch") {
  RedisServer server;  // appendfsync everysec: a restart may have lost acked appends
  RedisOptions options;
  options.url = server.url();
  options.reconnect_min_ms = 10;
  options.reconnect_max_ms = 50;
  Result<std::shared_ptr<OfflineQueue>> opened = OpenRedisOfflineQueue(options);
  REQUIRE_MESSAGE(opened.ok(), opened.status().ToString());
  OfflineQueue& q = **opened;
  const UserKey alice{"default", "alice"};
  auto append = [&](uint64_t mid) {
    auto message = std::make_shared<Message>();
    message->mid = mid;
    message->tenant = "default";
    message->from = "alice";
    message->ts = 1'700'000'000'000;
    auto batch = std::make_shared<std::vector<AppendRequest>>(1);
    (*batch)[0].message = message;
    (*batch)[0].recipients = {alice};
    (*batch)[0].sender_index = 0;
    auto answer = std::make_shared<std::promise<Result<AppendResult>>>();
    std::future<Result<AppendResult>> got = answer->get_future();
    q.AppendBatchAsync(batch, [answer](std::vector<Result<AppendResult>> results) {
      answer->set_value(results.size() == 1 ? std::move(results[0])
                                            : Status::Internal("not one result"));
    });
    REQUIRE(got.wait_for(std::chrono::seconds(30)) == std::future_status::ready);
    return got.get();
  };
  Result<AppendResult> first = append(1);
  REQUIRE_MESSAGE(first.ok(), first.status().ToString());
  CHECK(first->sender_seq == 1);
  Result<InboxInfo> before = q.Info(alice);
  REQUIRE(before.ok());

  server.Restart();
  // The pipelined connection broke (503), then the next batch meets a Redis not adopted yet:
  // the node adopts it and answers 503 (the batch did not run); the one after is stored.
  bool restarted = false;
  Result<AppendResult> stored = Status::Internal("not tried");
  for (uint64_t mid = 2; mid < 12 && !stored.ok(); ++mid) {
    stored = append(mid);
    if (stored.ok()) break;
    CHECK_MESSAGE(stored.status().code() == Code::kUnavailable, stored.status().ToString());
    restarted = restarted || stored.status().message().find("restarted") != std::string::npos;
  }
  REQUIRE_MESSAGE(stored.ok(), stored.status().ToString());
  CHECK(restarted);
  Result<InboxInfo> after = q.Info(alice);
  REQUIRE(after.ok());
  CHECK(after->epoch != before->epoch);  // everysec: the clients resync
}

}  // namespace
}  // namespace im::internal
