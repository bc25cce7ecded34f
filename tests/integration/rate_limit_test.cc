// Rate limits and the password-hashing pool, over real sockets: password and token guessers get
// 429 rate_limited with retry_after_ms (per account and per address), a chat.send flood gets
// 429 on an open connection, and a crowd of password guessers does not slow a 1:1 chat down.
#include <doctest/doctest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "im/backends.h"
#include "support/child_process.h"
#include "support/test_server.h"

namespace {

using im::ServerOptions;
using im::test::CodeOf;
using im::test::ErrorOf;
using im::test::RawClient;
using im::test::TestServer;
using Clock = std::chrono::steady_clock;

struct HttpReply {
  int status = 0;  // 0: no answer
  std::string retry_after;  // the Retry-After header, "" when absent
  rapidjson::Document body;
};

// POST `body` to `path` from the local address `from` (see HttpRoundTrip).
HttpReply Post(uint16_t port, const std::string& path, const std::string& body,
               const std::string& from = "127.0.0.1") {
  HttpReply reply;
  const std::string resp = im::test::HttpRoundTrip(
      port,
      "POST " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" +
          "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
          "\r\n\r\n" + body,
      from);
  const size_t head_end = resp.find("\r\n\r\n");
  if (resp.compare(0, 9, "HTTP/1.1 ") != 0 || head_end == std::string::npos) return reply;
  reply.status = std::stoi(resp.substr(9, 3));
  const std::string head = resp.substr(0, head_end);
  const size_t ra = head.find("\r\nRetry-After: ");
  if (ra != std::string::npos) {
    reply.retry_after = head.substr(ra + 15, head.find("\r\n", ra + 15) - (ra + 15));
  }
  im::test::ParseJson(resp.substr(head_end + 4), &reply.body);
  return reply;
}

std::string Credentials(const std::string& user, const std::string& password) {
  return R"({"user":")" + user + R"(","password":")" + password + R"("})";
}

// retry_after_ms of an error object: an integer of at least 1, or -1.
int64_t RetryAfterMs(const rapidjson::Value& error) {
  if (!error.IsObject() || !error.HasMember("retry_after_ms")) return -1;
  const rapidjson::Value& v = error["retry_after_ms"];
  return v.IsInt64() && v.GetInt64() >= 1 ? v.GetInt64() : -1;
}

// The limits off, so that a test turns on only the one it checks.
ServerOptions NoLimits() {
  ServerOptions o;
  o.login_address_rate = 0;
  o.login_account_rate = 0;
  o.register_address_rate = 0;
  o.chat_connection_rate = 0;
  o.chat_user_rate = 0;
  return o;
}

void CheckRateLimited(const HttpReply& r) {
  CHECK(r.status == 429);
  CHECK(ErrorOf(r.body) == "rate_limited");
  const int64_t ms = RetryAfterMs(r.body);
  CHECK(ms >= 1);
  // Retry-After is the same wait in whole seconds, rounded up.
  CHECK(r.retry_after == std::to_string((ms + 999) / 1000));
}

void SleepMs(int64_t ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

double Metric(TestServer& ts, const std::string& name) {
  std::map<std::string, double> m;
  REQUIRE(im::test::ScrapeMetrics(ts.server().http_port(), &m));
  auto it = m.find(name);
  return it == m.end() ? -1 : it->second;
}

}  // namespace

TEST_CASE("rate limit: a password guesser is locked out per account, the right password too") {
  ServerOptions o = NoLimits();
  o.login_account_rate = 0.5;  // a token every 2 s
  o.login_account_burst = 3;
  TestServer ts(o);
  const uint16_t port = ts.server().http_port();
  REQUIRE(Post(port, "/v1/users", Credentials("alice", "correct horse")).status == 201);

  // Three wrong guesses are checked and refused as usual, from different addresses.
  CHECK(Post(port, "/v1/tokens", Credentials("alice", "guess-1"), "127.0.0.2").status == 401);
  CHECK(Post(port, "/v1/tokens", Credentials("alice", "guess-2"), "127.0.0.3").status == 401);
  CHECK(Post(port, "/v1/tokens", Credentials("alice", "guess-3"), "127.0.0.4").status == 401);
  // The fourth: 429, whatever the address, and the right password is refused too.
  HttpReply r = Post(port, "/v1/tokens", Credentials("alice", "guess-4"), "127.0.0.5");
  CheckRateLimited(r);
  r = Post(port, "/v1/tokens", Credentials("alice", "correct horse"));
  CheckRateLimited(r);
  const int64_t wait = RetryAfterMs(r.body);
  CHECK(wait <= 2000);
  // Another account is not locked.
  REQUIRE(Post(port, "/v1/users", Credentials("bob", "battery staple")).status == 201);
  CHECK(Post(port, "/v1/tokens", Credentials("bob", "battery staple")).status == 201);

  // After retry_after_ms the right password works.
  SleepMs(wait);
  r = Post(port, "/v1/tokens", Credentials("alice", "correct horse"));
  CHECK(r.status == 201);
  CHECK(Metric(ts, R"(im_rate_limited_total{limit="login_account"})") == 2);
}

TEST_CASE("rate limit: a guesser is limited per address, across accounts") {
  ServerOptions o = NoLimits();
  o.login_address_rate = 0.5;
  o.login_address_burst = 4;
  TestServer ts(o);
  const uint16_t port = ts.server().http_port();
  REQUIRE(Post(port, "/v1/users", Credentials("alice", "correct horse")).status == 201);
  for (int i = 0; i < 4; ++i) {
    CHECK(Post(port, "/v1/tokens", Credentials("user" + std::to_string(i), "guess"), "127.0.0.9")
              .status == 401);
  }
  HttpReply r = Post(port, "/v1/tokens", Credentials("someone", "guess"), "127.0.0.9");
  CheckRateLimited(r);
  // The address is refused for every account, the right password included...
  r = Post(port, "/v1/tokens", Credentials("alice", "correct horse"), "127.0.0.9");
  CheckRateLimited(r);
  const int64_t wait = RetryAfterMs(r.body);
  // ...while another address logs in.
  CHECK(Post(port, "/v1/tokens", Credentials("alice", "correct horse"), "127.0.0.10").status ==
        201);
  // Successful logins cost nothing: many in a row from one address.
  for (int i = 0; i < 10; ++i) {
    CHECK(Post(port, "/v1/tokens", Credentials("alice", "correct horse"), "127.0.0.11").status ==
          201);
  }
  SleepMs(wait);
  CHECK(Post(port, "/v1/tokens", Credentials("alice", "correct horse"), "127.0.0.9").status ==
        201);
  CHECK(Metric(ts, R"(im_rate_limited_total{limit="login_address"})") == 2);
}

TEST_CASE("rate limit: account creation per address") {
  ServerOptions o = NoLimits();
  o.register_address_rate = 0.5;
  o.register_address_burst = 2;
  TestServer ts(o);
  const uint16_t port = ts.server().http_port();
  CHECK(Post(port, "/v1/users", Credentials("u1", "password1"), "127.0.0.2").status == 201);
  CHECK(Post(port, "/v1/users", Credentials("u2", "password2"), "127.0.0.2").status == 201);
  CheckRateLimited(Post(port, "/v1/users", Credentials("u3", "password3"), "127.0.0.2"));
  CHECK(Post(port, "/v1/users", Credentials("u3", "password3"), "127.0.0.3").status == 201);
  CHECK(Metric(ts, R"(im_rate_limited_total{limit="register_address"})") == 1);
}

TEST_CASE("rate limit: socket logins with bad tokens are limited per address") {
  for (const char* transport : {"tcp", "ws"}) {
    CAPTURE(transport);
    ServerOptions o = NoLimits();
    o.login_address_rate = 0.5;
    o.login_address_burst = 3;
    TestServer ts(o);
    const std::string url = std::string(transport) == "tcp" ? ts.TcpUrl() : ts.WsUrl();
    RawClient c(url);
    rapidjson::Document d;
    // Valid logins cost nothing (a good token gives its token back).
    for (int i = 0; i < 5; ++i) {
      RawClient ok(url);
      REQUIRE(ok.Login(ts.Token("carol")) == 0);
    }
    for (uint32_t i = 1; i <= 3; ++i) {
      REQUIRE(c.Call(i, "login", R"({"token":"forged.token.)" + std::to_string(i) + R"("})", &d));
      CHECK(CodeOf(d) == 401);
    }
    REQUIRE(c.Call(4, "login", R"({"token":"forged.token.4"})", &d));
    CHECK(CodeOf(d) == 429);
    CHECK(ErrorOf(d) == "rate_limited");
    CHECK(RetryAfterMs(d) >= 1);
    // A valid token from the same address is refused while the bucket is empty.
    REQUIRE(c.Call(5, "login", R"({"token":")" + ts.Token("alice") + R"("})", &d));
    CHECK(CodeOf(d) == 429);
    const int64_t wait = RetryAfterMs(d);
    REQUIRE(wait >= 1);
    CHECK(wait <= 2000);
    // The connection stays open, and after the wait the login goes through.
    CHECK_FALSE(c.closed());
    SleepMs(wait);
    REQUIRE(c.Call(6, "login", R"({"token":")" + ts.Token("alice") + R"("})", &d));
    CHECK(CodeOf(d) == 0);
    CHECK(Metric(ts, R"(im_rate_limited_total{limit="login_address"})") == 2);
  }
}

namespace {

std::string SendBody(const std::string& to, const std::string& cid) {
  return R"({"to":")" + to + R"(","cid":")" + cid + R"(","body":"hi"})";
}

}  // namespace

TEST_CASE("rate limit: a chat.send flood gets 429 on an open connection, then sends again") {
  ServerOptions o = NoLimits();
  o.chat_connection_rate = 2;
  o.chat_connection_burst = 5;
  TestServer ts(o);
  RawClient alice(ts.TcpUrl()), bob(ts.WsUrl());
  REQUIRE(alice.Login(ts.Token("alice")) == 0);
  REQUIRE(bob.Login(ts.Token("bob")) == 0);
  rapidjson::Document d;
  // The flood: 20 sends without waiting for the answers.
  for (int i = 0; i < 20; ++i) {
    alice.Send(R"({"id":)" + std::to_string(i) + R"(,"cmd":"chat.send","body":)" +
               SendBody("bob", "f" + std::to_string(i)) + "}");
  }
  int ok = 0, limited = 0;
  int64_t wait = 0;
  for (int i = 0; i < 20; ++i) {
    REQUIRE(alice.WaitResponse(static_cast<uint32_t>(i), &d));
    if (CodeOf(d) == 0) {
      ++ok;
    } else {
      REQUIRE(CodeOf(d) == 429);
      CHECK(ErrorOf(d) == "rate_limited");
      CHECK(RetryAfterMs(d) >= 1);
      wait = std::max(wait, RetryAfterMs(d));
      ++limited;
    }
  }
  CHECK(ok >= 5);
  CHECK(ok <= 7);  // the burst, and what refilled while the flood was read (2 a second)
  CHECK(limited == 20 - ok);
  CHECK_FALSE(alice.closed());
  // Another user's sends are not limited by alice's flood.
  REQUIRE(bob.Call(100, "chat.send", SendBody("alice", "b1"), &d));
  CHECK(CodeOf(d) == 0);
  // After retry_after_ms alice sends again.
  SleepMs(wait);
  REQUIRE(alice.Call(101, "chat.send", SendBody("bob", "after"), &d));
  CHECK(CodeOf(d) == 0);
  CHECK(RetryAfterMs(d) == -1);
  CHECK(Metric(ts, R"(im_rate_limited_total{limit="chat_connection"})") == limited);
}

TEST_CASE("rate limit: chat.send per user counts every connection of the user") {
  ServerOptions o = NoLimits();
  o.chat_user_rate = 0.5;
  o.chat_user_burst = 4;
  TestServer ts(o);
  RawClient phone(ts.TcpUrl()), pc(ts.WsUrl()), carol(ts.TcpUrl());
  REQUIRE(phone.Login(ts.Token("alice"), "phone") == 0);
  REQUIRE(pc.Login(ts.Token("alice"), "pc") == 0);
  REQUIRE(carol.Login(ts.Token("carol")) == 0);
  rapidjson::Document d;
  for (uint32_t i = 0; i < 2; ++i) {
    REQUIRE(phone.Call(i, "chat.send", SendBody("bob", "p" + std::to_string(i)), &d));
    CHECK(CodeOf(d) == 0);
    REQUIRE(pc.Call(i, "chat.send", SendBody("bob", "c" + std::to_string(i)), &d));
    CHECK(CodeOf(d) == 0);
  }
  REQUIRE(phone.Call(9, "chat.send", SendBody("bob", "p9"), &d));
  CHECK(CodeOf(d) == 429);
  CHECK(RetryAfterMs(d) >= 1);
  REQUIRE(pc.Call(9, "chat.send", SendBody("bob", "c9"), &d));
  CHECK(CodeOf(d) == 429);
  REQUIRE(carol.Call(9, "chat.send", SendBody("bob", "k9"), &d));
  CHECK(CodeOf(d) == 0);
  CHECK(Metric(ts, R"(im_rate_limited_total{limit="chat_user"})") == 2);
}

namespace {

// A logged-in 1:1 pair sending every 50 ms while `load` runs; returns the slowest send-to-ack
// time in ms and the number of sends.
struct ChatTimes {
  double max_ms = 0;
  double p50_ms = 0;
  int sends = 0;
};

ChatTimes TimeChatDuring(TestServer& ts, const std::function<void()>& load) {
  RawClient alice(ts.TcpUrl()), bob(ts.TcpUrl());
  REQUIRE(alice.Login(ts.Token("canary-a")) == 0);
  REQUIRE(bob.Login(ts.Token("canary-b")) == 0);
  std::atomic<bool> done{false};
  std::vector<double> times;
  bool all_ok = true;
  std::thread canary([&] {
    rapidjson::Document d;
    for (uint32_t i = 0; !done.load(); ++i) {
      const auto t0 = Clock::now();
      const bool answered =
          alice.Call(i, "chat.send", SendBody("canary-b", "c" + std::to_string(i)), &d, 20000);
      all_ok = all_ok && answered && CodeOf(d) == 0;
      times.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  load();
  done = true;
  canary.join();
  CHECK(all_ok);
  ChatTimes t;
  t.sends = static_cast<int>(times.size());
  if (!times.empty()) {
    std::sort(times.begin(), times.end());
    t.max_ms = times.back();
    t.p50_ms = times[times.size() / 2];
  }
  return t;
}

// Runs `threads` guessers, each posting wrong passwords for `seconds`; counts the answers by
// status (0: no answer).
std::map<int, int> Guess(uint16_t port, int threads, double seconds) {
  std::mutex mu;
  std::map<int, int> statuses;
  std::vector<std::thread> guessers;
  const auto end = Clock::now() + std::chrono::duration<double>(seconds);
  for (int t = 0; t < threads; ++t) {
    guessers.emplace_back([&, t] {
      for (int i = 0; Clock::now() < end; ++i) {
        HttpReply r = Post(port, "/v1/tokens",
                           Credentials("victim", "guess-" + std::to_string(t) + "-" +
                                                     std::to_string(i)));
        std::lock_guard<std::mutex> lock(mu);
        ++statuses[r.status];
      }
    });
  }
  for (auto& g : guessers) g.join();
  return statuses;
}

// Argon2id at a moderate cost (16 MiB, 2 passes: tens of milliseconds a hash here).
std::function<void(im::ServerDeps&)> ModerateHashing() {
  return [](im::ServerDeps& deps) {
    im::PasswordHashOptions moderate;
    moderate.ops_limit = 2;
    moderate.mem_limit = 16 << 20;
    deps.users = im::NewMemoryUserStore(moderate);
  };
}

}  // namespace

TEST_CASE("rate limit: 32 password guessers do not slow a 1:1 chat (hashing pool, no limits)") {
  // The limits off: every guess reaches the hashing pool, the worst case for the pool.
  ServerOptions o = NoLimits();
  o.hash_queue = 8;
  TestServer ts(o, ModerateHashing());
  const uint16_t port = ts.server().http_port();
  REQUIRE(Post(port, "/v1/users", Credentials("victim", "correct horse")).status == 201);
  std::map<int, int> statuses;
  ChatTimes t = TimeChatDuring(ts, [&] { statuses = Guess(port, 32, 6); });
  MESSAGE("chat under 32 guessers (pool only): " << t.sends << " sends, p50 " << t.p50_ms
                                                  << " ms, max " << t.max_ms << " ms; 401: "
                                                  << statuses[401] << ", 503: " << statuses[503]);
  CHECK(t.sends >= 20);
  CHECK(t.max_ms < 1500);
  // Every guess was answered: checked (401) or turned away by the full queue (503).
  CHECK(statuses[0] == 0);
  CHECK(statuses[401] > 0);
  CHECK(statuses[503] > 0);
  CHECK(statuses[401] + statuses[503] == [&] {
    int n = 0;
    for (const auto& [status, count] : statuses) n += count;
    return n;
  }());
  CHECK(Metric(ts, "im_password_hash_rejected_total") == statuses[503]);
  CHECK(Metric(ts, "im_password_hash_queue_depth") == 0);
}

TEST_CASE("rate limit: 32 password guessers with the default limits get 429 quickly") {
  TestServer ts(ServerOptions{}, ModerateHashing());
  const uint16_t port = ts.server().http_port();
  REQUIRE(Post(port, "/v1/users", Credentials("victim", "correct horse")).status == 201);
  std::map<int, int> statuses;
  ChatTimes t = TimeChatDuring(ts, [&] { statuses = Guess(port, 32, 4); });
  MESSAGE("chat under 32 guessers (default limits): " << t.sends << " sends, p50 " << t.p50_ms
                                                       << " ms, max " << t.max_ms << " ms; 401: "
                                                       << statuses[401] << ", 429: "
                                                       << statuses[429] << ", 503: "
                                                       << statuses[503]);
  CHECK(t.max_ms < 1500);
  CHECK(statuses[0] == 0);
  // The account's burst of wrong guesses is checked; the rest are refused, most without a hash.
  CHECK(statuses[401] >= 1);
  CHECK(statuses[401] <= static_cast<int>(ServerOptions{}.login_account_burst));
  CHECK(statuses[429] > 100);
}

#ifdef IMD_PATH
TEST_CASE("rate limit: imd reads [limits] strictly and applies it") {
  using im::test::ChildProcess;
  const std::string dir = im::test::MakeTempDir();
  for (const char* bad :
       {"[limits]\nno_such_key = 1\n", "[limits]\nchat_user_burst = 0\n",
        "[limits]\nlogin_account_rate = -1.0\n", "[limits]\nlogin_address_rate = \"fast\"\n",
        "[limits]\nchat_connection_rate = nan\n", "[limits]\nchat_connection_burst = 2.5\n",
        "[limits]\nmax_keys = 10\n", "[limits]\nhash_threads = 0\n",
        "[limits]\ngroup_user_burst = 0\n"}) {
    std::ofstream(dir + "/bad.toml") << bad;
    ChildProcess imd({IMD_PATH, "--config", dir + "/bad.toml", "--data", dir, "--http",
                      "127.0.0.1:0", "--tcp", "127.0.0.1:0"});
    CHECK_MESSAGE(imd.Wait(10000) == 1, bad);
  }
  // A rate may be an integer or a decimal; 2 sends at once, then one every 2 s.
  std::ofstream(dir + "/imd.toml") << "[limits]\nchat_connection_burst = 2\n"
                                      "chat_connection_rate = 0.5\nchat_user_rate = 0\n"
                                      "login_account_rate = 1\nhash_threads = 2\n"
                                      "group_user_rate = 1\ngroup_user_burst = 3\n";
  ChildProcess imd({IMD_PATH, "--config", dir + "/imd.toml", "--data", dir, "--http",
                    "127.0.0.1:0", "--tcp", "127.0.0.1:0"});
  const std::string serving = imd.WaitForLine("serving", 10000);
  std::smatch m;
  REQUIRE(std::regex_search(serving, m, std::regex(R"(tcp://(127\.0\.0\.1:\d+))")));
  int rc = 0;
  const std::string token =
      im::test::RunAndCapture({IMD_PATH, "token", "--user", "alice", "--data", dir}, &rc);
  REQUIRE(rc == 0);
  RawClient alice("tcp://" + m[1].str());
  REQUIRE(alice.Login(token) == 0);
  rapidjson::Document d;
  for (uint32_t i = 1; i <= 2; ++i) {
    REQUIRE(alice.Call(i, "chat.send", SendBody("bob", "c" + std::to_string(i)), &d));
    CHECK(CodeOf(d) == 0);
  }
  REQUIRE(alice.Call(3, "chat.send", SendBody("bob", "c3"), &d));
  CHECK(CodeOf(d) == 429);
  CHECK(RetryAfterMs(d) > 1000);
  // group_user_burst = 3: a group of alice and two others, and not another of three.
  REQUIRE(alice.Call(4, "group.create", R"({"gid":"g1","name":"g","members":["b","c"]})", &d));
  CHECK(CodeOf(d) == 0);
  REQUIRE(alice.Call(5, "group.create", R"({"gid":"g2","name":"g","members":["b","c"]})", &d));
  CHECK(CodeOf(d) == 429);
  imd.Signal(SIGTERM);
  CHECK(imd.Wait(10000) == 0);
  std::filesystem::remove_all(dir);
}
#endif

// group_user_*: a user's group changes are weighted by the inbox entries they store (a create
// by its members, a join or quit by the group's members). Over it: 429 rate_limited with
// retry_after_ms and nothing changed, over the socket and over REST; other users go on.
TEST_CASE("rate limit: group changes per user, weighted by the members they reach") {
  ServerOptions o = NoLimits();
  o.group_user_rate = 1;
  o.group_user_burst = 10;
  TestServer ts(o);
  RawClient alice(ts.TcpUrl()), bob(ts.WsUrl()), dave(ts.TcpUrl());
  REQUIRE(alice.Login(ts.Token("alice")) == 0);
  REQUIRE(bob.Login(ts.Token("bob")) == 0);
  REQUIRE(dave.Login(ts.Token("dave")) == 0);
  rapidjson::Document d;
  const std::string five = R"("members":["m1","m2","m3","m4","m5"])";
  // alice: six entries (five members and herself), then six more with four left.
  REQUIRE(alice.Call(1, "group.create", R"({"gid":"a1","name":"a",)" + five + "}", &d));
  CHECK(CodeOf(d) == 0);
  REQUIRE(alice.Call(2, "group.create", R"({"gid":"a2","name":"a",)" + five + "}", &d));
  CHECK(CodeOf(d) == 429);
  CHECK(ErrorOf(d) == "rate_limited");
  CHECK(RetryAfterMs(d) >= 1);
  CHECK(ts.deps().groups->Get({"default", "a2"}).status().code() == im::Code::kNotFound);
  // Over REST too (the same code path), with Retry-After.
  const std::string body = R"({"gid":"a3","name":"a",)" + five + "}";
  const std::string resp = im::test::HttpRoundTrip(
      ts.server().http_port(),
      "POST /v1/groups HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer " +
          ts.Token("alice") + "\r\nContent-Type: application/json\r\nContent-Length: " +
          std::to_string(body.size()) + "\r\n\r\n" + body);
  CHECK(resp.rfind("HTTP/1.1 429", 0) == 0);
  CHECK(resp.find("\r\nRetry-After: ") != std::string::npos);
  CHECK(ts.deps().groups->Get({"default", "a3"}).status().code() == im::Code::kNotFound);
  // bob's bucket is his own: a group of eight (nine entries) is created.
  REQUIRE(bob.Call(3, "group.create",
                   R"({"gid":"big","name":"b","members":["m1","m2","m3","m4","m5","m6","m7","m8"]})",
                   &d));
  CHECK(CodeOf(d) == 0);
  // dave joins it: the event reaches ten members, his whole burst; his quit then waits.
  REQUIRE(dave.Call(4, "group.join", R"({"gid":"big"})", &d));
  CHECK(CodeOf(d) == 0);
  REQUIRE(dave.Call(5, "group.quit", R"({"gid":"big"})", &d));
  CHECK(CodeOf(d) == 429);
  CHECK(ErrorOf(d) == "rate_limited");
  CHECK(ts.deps().groups->Get({"default", "big"})->member_count == 10);
  // A small change fits where a big one did not: alice has four entries left.
  REQUIRE(alice.Call(6, "group.create", R"({"gid":"a4","name":"a","members":["m1","m2"]})", &d));
  CHECK(CodeOf(d) == 0);
  CHECK(Metric(ts, R"(im_rate_limited_total{limit="group_user"})") == 3);
}
