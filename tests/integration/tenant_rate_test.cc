// Per-tenant rate limits over real sockets, each hit and answered as docs/protocol.md says (429
// rate_limited with retry_after_ms, the connection open), with another tenant served at the same
// time and the refusals counted for the flooding tenant alone: login_rate (socket logins),
// command_rate (chat.sync, chat.ack, group.*), and the tenant's own connection_send_rate and
// login_account_rate in place of the server's chat_connection_* and login_account_*.
#include <doctest/doctest.h>

#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "support/http.h"
#include "support/tenants.h"
#include "support/test_server.h"

using namespace im::test;  // NOLINT: the test support helpers

namespace {

// A command's answer: 0 when it succeeded, else its code; `error` and `retry_after_ms` (-1
// when absent) get the rest of a refusal.
int Call(RawClient& c, uint32_t id, const std::string& cmd, const std::string& body,
         std::string* error = nullptr, int64_t* retry_after_ms = nullptr) {
  rapidjson::Document doc;
  const int code = CallCode(c, id, cmd, body, &doc);
  if (code >= 0 && error != nullptr) *error = ErrorOf(doc);
  if (retry_after_ms != nullptr) {
    *retry_after_ms = doc.IsObject() && doc.HasMember("retry_after_ms") &&
                              doc["retry_after_ms"].IsInt64()
                          ? doc["retry_after_ms"].GetInt64()
                          : -1;
  }
  return code;
}

// Sends the command and checks that it is refused as documented: 429 rate_limited with a wait
// of at least 1 ms.
void CheckLimited(RawClient& c, uint32_t id, const std::string& cmd, const std::string& body) {
  std::string error;
  int64_t retry_after_ms = -1;
  CHECK(Call(c, id, cmd, body, &error, &retry_after_ms) == 429);
  CHECK(error == "rate_limited");
  CHECK(retry_after_ms >= 1);
}

// A PUT of acme's record that must be refused with 400 bad_request naming `field`.
void CheckRefusedPut(uint16_t port, const std::string& body, const std::string& field) {
  auto r = Http(port, "PUT", "/v1/admin/tenants/acme", body, kOperatorKey);
  CHECK_MESSAGE(r.status == 400, body);
  CHECK(r.Str("error") == "bad_request");
  CHECK_MESSAGE(r.Str("message").find(field) != std::string::npos, r.Str("message"));
}

// PUTs acme's record with one rate quota and its burst, and checks that a GET shows them.
void PutRate(TestServer& server, const std::string& rate, double rate_value,
             const std::string& burst, uint64_t burst_value) {
  std::ostringstream body;
  body << R"({"quotas":{")" << rate << "\":" << rate_value << ",\"" << burst
       << "\":" << burst_value << "}}";
  PutTenant(server, "acme", body.str());
  auto got = Http(server.server().http_port(), "GET", "/v1/admin/tenants/acme", "", kOperatorKey);
  REQUIRE(got.status == 200);
  CHECK(got.body["quotas"][rate.c_str()].GetDouble() == doctest::Approx(rate_value));
  CHECK(got.body["quotas"][burst.c_str()].GetUint64() == burst_value);
}

std::map<std::string, double> Scrape(uint16_t port) {
  std::map<std::string, double> m;
  REQUIRE(ScrapeMetrics(port, &m));
  return m;
}

std::string Limited(const std::string& limit, const std::string& tenant) {
  return R"(im_tenant_rate_limited_total{limit=")" + limit + R"(",tenant=")" + tenant + R"("})";
}

}  // namespace

TEST_CASE("tenant rates: login_rate refuses one tenant's logins past its bucket, others log in") {
  TestServer server(TenantOptions());
  const uint16_t port = server.server().http_port();
  // Nearly no refill: the burst is what the tenant gets during the test.
  PutRate(server, "login_rate", 0.01, "login_burst", 3);

  // acme floods logins (each user on a connection of its own), default logs in between.
  std::vector<std::unique_ptr<RawClient>> acme, other;
  int acme_in = 0, acme_refused = 0;
  for (int i = 0; i < 8; ++i) {
    acme.push_back(std::make_unique<RawClient>(server.TcpUrl()));
    REQUIRE(acme.back()->connected());
    std::string error;
    int64_t wait = -1;
    const int code =
        Call(*acme.back(), 1, "login",
             R"({"token":")" + server.Token("u" + std::to_string(i), "acme") + R"("})", &error,
             &wait);
    if (code == 0) {
      ++acme_in;
    } else {
      ++acme_refused;
      CHECK(code == 429);
      CHECK(error == "rate_limited");
      CHECK(wait >= 1);
      // The connection stays open: a command of its own still gets an answer.
      CHECK(Call(*acme.back(), 2, "ping", "{}") == 0);
    }
    other.push_back(LoggedIn(server, "u" + std::to_string(i), "default"));
  }
  CHECK(acme_in == 3);
  CHECK(acme_refused == 5);
  // The logged-in ones work on; a refresh is a login too, refused while the bucket is empty.
  CHECK(Call(*acme[0], 3, "chat.sync", R"({"after":0})") == 0);
  CheckLimited(*acme[0], 4, "login", R"({"token":")" + server.Token("u0", "acme") + R"("})");
  // A forged token of acme is refused as invalid, and spends no login of acme's: it is not
  // counted under login_tenant.
  RawClient forged(server.TcpUrl());
  CHECK(Call(forged, 1, "login", R"({"token":"x.y.z"})") == 401);

  auto m = Scrape(port);
  CHECK(m[R"(im_rate_limited_total{limit="login_tenant"})"] == 6);
  CHECK(m[Limited("login_tenant", "acme")] == 6);
  CHECK(m.count(Limited("login_tenant", "default")) == 0);

  // Bad values are 400 and change nothing.
  CheckRefusedPut(port, R"({"quotas":{"login_rate":-1}})", "login_rate");
  CheckRefusedPut(port, R"({"quotas":{"login_burst":2.5}})", "login_burst");
  CHECK(Http(port, "GET", "/v1/admin/tenants/acme", "", kOperatorKey)
            .body["quotas"]["login_burst"]
            .GetUint64() == 3);
}

TEST_CASE("tenant rates: command_rate refuses one tenant's sync, ack and group commands") {
  TestServer server(TenantOptions());
  const uint16_t port = server.server().http_port();
  PutRate(server, "command_rate", 0.01, "command_burst", 4);

  // Logins do not take from the command bucket.
  auto alice = LoggedIn(server, "alice", "acme");
  auto bob = LoggedIn(server, "bob", "acme");
  auto dora = LoggedIn(server, "dora", "default");
  const std::string group = R"({"name":"n","gid":"g1","members":[]})";
  const std::string gid = R"({"gid":"g1"})";
  // The burst: four commands of the tenant, from two users.
  CHECK(Call(*alice, 1, "chat.sync", R"({"after":0})") == 0);
  CHECK(Call(*alice, 2, "chat.ack", R"({"seq":0})") == 0);
  CHECK(Call(*alice, 3, "group.create", group) == 0);
  CHECK(Call(*bob, 4, "group.join", gid) == 0);
  // Then each kind is refused, for either user, the connection staying open.
  struct Attempt {
    RawClient* client;
    std::string cmd, body;
  };
  const std::vector<Attempt> flood = {
      {alice.get(), "chat.sync", R"({"after":0})"}, {alice.get(), "chat.ack", R"({"seq":0})"},
      {bob.get(), "group.info", gid},               {bob.get(), "group.members", gid},
      {bob.get(), "group.quit", gid},               {alice.get(), "group.create", group},
      {alice.get(), "group.join", gid}};
  uint32_t id = 10;
  for (const Attempt& a : flood) {
    CAPTURE(a.cmd);
    CheckLimited(*a.client, id++, a.cmd, a.body);
    // Another tenant at the same time: served.
    CHECK(Call(*dora, id++, "chat.sync", R"({"after":0})") == 0);
  }
  // Commands outside the bucket still pass: ping, and chat.send (its own limits).
  CHECK(Call(*alice, 100, "ping", "{}") == 0);
  CHECK(Call(*alice, 101, "chat.send", R"({"to":"bob","cid":"c1","body":"hi"})") == 0);
  // The other tenant's group commands: all served.
  CHECK(Call(*dora, 102, "group.create", group) == 0);
  CHECK(Call(*dora, 103, "group.info", gid) == 0);
  CHECK(Call(*dora, 104, "group.members", gid) == 0);

  auto m = Scrape(port);
  CHECK(m[R"(im_rate_limited_total{limit="command_tenant"})"] == static_cast<double>(flood.size()));
  CHECK(m[Limited("command_tenant", "acme")] == static_cast<double>(flood.size()));
  CHECK(m.count(Limited("command_tenant", "default")) == 0);

  CheckRefusedPut(port, R"({"quotas":{"command_rate":"fast"}})", "command_rate");
  CheckRefusedPut(port, R"({"quotas":{"command_burst":-1}})", "command_burst");
}

TEST_CASE("tenant rates: connection_send_rate replaces chat_connection for one tenant") {
  TestServer server(TenantOptions());
  const uint16_t port = server.server().http_port();
  PutRate(server, "connection_send_rate", 0.01, "connection_send_burst", 2);

  auto body = [](uint32_t id) {
    return R"({"to":"bob","cid":"c)" + std::to_string(id) + R"(","body":"hi"})";
  };
  auto send = [&](RawClient& c, uint32_t id) { return Call(c, id, "chat.send", body(id)); };
  auto a1 = LoggedIn(server, "alice", "acme", "d1");
  auto a2 = LoggedIn(server, "alice", "acme", "d2");
  auto dora = LoggedIn(server, "dora", "default");
  CHECK(send(*a1, 1) == 0);
  CHECK(send(*a1, 2) == 0);
  CheckLimited(*a1, 3, "chat.send", body(3));
  // Per connection: the same user's other device has a bucket of its own.
  CHECK(send(*a2, 4) == 0);
  CHECK(send(*a2, 5) == 0);
  CheckLimited(*a2, 6, "chat.send", body(6));
  // The other tenant keeps the server's chat_connection_* (2000 at once).
  for (uint32_t i = 0; i < 20; ++i) CHECK(send(*dora, 100 + i) == 0);

  auto m = Scrape(port);
  CHECK(m[R"(im_rate_limited_total{limit="chat_connection"})"] == 2);
  CHECK(m[Limited("chat_connection", "acme")] == 2);
  CHECK(m.count(Limited("chat_connection", "default")) == 0);
  CheckRefusedPut(port, R"({"quotas":{"connection_send_rate":-0.5}})", "connection_send_rate");
}

TEST_CASE("tenant rates: login_account_rate replaces login_account for one tenant's accounts") {
  im::ServerOptions o = TenantOptions();
  o.login_address_rate = 0;  // only the account limits here
  TestServer server(o);
  const uint16_t port = server.server().http_port();
  PutRate(server, "login_account_rate", 0.01, "login_account_burst", 2);

  auto credentials = [](const std::string& tenant, const std::string& password) {
    return R"({"tenant":")" + tenant + R"(","user":"alice","password":")" + password + R"("})";
  };
  for (const std::string tenant : {"acme", "default"}) {
    const std::string key = tenant == "acme" ? kAcmeAdminKey : TestServer::kAdminKey;
    REQUIRE(Http(port, "POST", "/v1/users", credentials(tenant, "correct horse"), key).status ==
            201);
  }
  // acme's alice: two wrong passwords, then 429 for the right one too.
  CHECK(Http(port, "POST", "/v1/tokens", credentials("acme", "guess-1")).status == 401);
  CHECK(Http(port, "POST", "/v1/tokens", credentials("acme", "guess-2")).status == 401);
  auto r = Http(port, "POST", "/v1/tokens", credentials("acme", "correct horse"));
  CHECK(r.status == 429);
  CHECK(r.Str("error") == "rate_limited");
  CHECK(r.body.HasMember("retry_after_ms"));
  // default's alice keeps the server's login_account_burst (5): three wrong ones and the right
  // one pass.
  for (int i = 0; i < 3; ++i) {
    CHECK(Http(port, "POST", "/v1/tokens", credentials("default", "guess")).status == 401);
  }
  CHECK(Http(port, "POST", "/v1/tokens", credentials("default", "correct horse")).status == 201);

  auto m = Scrape(port);
  CHECK(m[R"(im_rate_limited_total{limit="login_account"})"] == 1);
  CHECK(m[Limited("login_account", "acme")] == 1);
  CHECK(m.count(Limited("login_account", "default")) == 0);
  CheckRefusedPut(port, R"({"quotas":{"login_account_burst":"5"}})", "login_account_burst");
}
