// Metric labels come from fixed sets: command names a client makes up count under one label.
#include <doctest/doctest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ops/metrics.h"
#include "support/test_server.h"

using im::test::RawClient;
using im::test::TestServer;

namespace {

// The series of one metric family in a scrape, by their "name{labels}" keys.
size_t SeriesOf(const std::map<std::string, double>& m, const std::string& name) {
  size_t n = 0;
  for (const auto& [key, value] : m) n += key.rfind(name + "{", 0) == 0 ? 1 : 0;
  return n;
}

}  // namespace

TEST_CASE("metrics: unknown command names count under cmd=\"unknown\", logged in or not") {
  TestServer ts;
  const uint16_t port = ts.server().http_port();
  std::map<std::string, double> before;
  REQUIRE(im::test::ScrapeMetrics(port, &before));

  // 2,000 made-up names on a logged-in connection: each is 501, the connection stays open.
  RawClient c(ts.TcpUrl());
  REQUIRE(c.Login(ts.Token("alice")) == 0);
  constexpr int kLoggedIn = 2000;
  rapidjson::Document d;
  for (int batch = 0; batch < kLoggedIn / 100; ++batch) {
    for (int i = 0; i < 100; ++i) {
      const int n = batch * 100 + i;
      c.Send(R"({"id":)" + std::to_string(n + 10) + R"(,"cmd":"made.up.)" + std::to_string(n) +
             R"("})");
    }
    // The batch's last answer (answers come back in order on one connection).
    REQUIRE(c.WaitResponse(static_cast<uint32_t>(batch * 100 + 99 + 10), &d, 30000));
    CHECK(im::test::ErrorOf(d) == "unknown_command");
  }
  // Before login, every command is 401 and the connection closes: one name per connection.
  constexpr int kBeforeLogin = 200;
  for (int n = 0; n < kBeforeLogin; ++n) {
    RawClient anon(n % 2 ? ts.TcpUrl() : ts.WsUrl());
    REQUIRE(anon.Call(1, "anon." + std::to_string(n), "{}", &d, 30000));
    CHECK(im::test::CodeOf(d) == 401);
  }
  REQUIRE(c.Call(1, "ping", "{}", &d));

  std::map<std::string, double> after;
  REQUIRE(im::test::ScrapeMetrics(port, &after));
  const std::string unknown = "im_command_duration_seconds_count{cmd=\"unknown\"}";
  CHECK(after[unknown] == kLoggedIn + kBeforeLogin);
  // login and ping (each also has _sum and buckets) plus one "unknown": three commands' series.
  const size_t per_command = SeriesOf(after, "im_command_duration_seconds_bucket") / 3;
  CHECK(per_command == 16);  // 15 bounds and +Inf
  CHECK(SeriesOf(after, "im_command_duration_seconds_count") == 3);
  CHECK(after.count("im_command_duration_seconds_count{cmd=\"login\"}") == 1);
  CHECK(after.count("im_command_duration_seconds_count{cmd=\"ping\"}") == 1);
  CHECK(after.size() < before.size() + 100);
}

TEST_CASE("metrics: past 100 tenants, sessions count under tenant=\"other\"") {
  std::map<std::string, std::string> keys;
  constexpr int kTenants = 110;
  for (int t = 0; t < kTenants; ++t) keys["t" + std::to_string(t)] = std::string(32, 'x');
  auto store = im::NewStaticKeyStore(keys);
  TestServer ts({}, [store](im::ServerDeps& deps) { deps.tokens = im::NewHs256Verifier(store); });
  std::vector<std::unique_ptr<RawClient>> clients;
  for (int t = 0; t < kTenants; ++t) {
    auto token = im::SignHs256Token(*store, {"t" + std::to_string(t), "u"}, 3600,
                                    im::SystemClock()->NowMs());
    REQUIRE(token.ok());
    clients.push_back(std::make_unique<RawClient>(ts.TcpUrl()));
    REQUIRE(clients.back()->Login(*token) == 0);
  }
  std::map<std::string, double> m;
  REQUIRE(im::test::ScrapeMetrics(ts.server().http_port(), &m));
  CHECK(SeriesOf(m, "im_sessions_online") == im::internal::Metrics::kMaxTenantLabels + 1);
  double total = 0;
  for (const auto& [key, value] : m) {
    if (key.rfind("im_sessions_online{", 0) == 0) total += value;
  }
  CHECK(total == kTenants);
  CHECK(m["im_sessions_online{tenant=\"other\",transport=\"tcp\"}"] ==
        kTenants - im::internal::Metrics::kMaxTenantLabels);
}
