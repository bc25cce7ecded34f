// Per-tenant quotas over real sockets and REST, each hit and answered as docs/protocol.md says,
// with another tenant working at the same time: max_groups_per_user (socket group.create and
// group.join, REST POST /v1/groups), the REST request rate (rest_request_rate/burst: 429
// rate_limited with retry_after_ms, counted per tenant), and the inbox bounds max_inbox (kept
// at append) and retention_s (hidden at sync, reported as gap), on the memory and LevelDB
// stores (tenant_quota_redis_test.cc: max_inbox on Redis).
#include <doctest/doctest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "support/http.h"
#include "support/tenants.h"
#include "support/test_server.h"
#include "support/wait_until.h"

using namespace im::test;  // NOLINT: the test support helpers

namespace {

im::ServerOptions QuotaOptions() {
  im::ServerOptions o = TenantOptions();
  // The memory and LevelDB stores' defaults (OfflineQueueOptions), as imd passes its own.
  o.inbox_retention_s = 7 * 24 * 3600;
  o.inbox_max = 10000;
  return o;
}

// A group command's answer: 0 when it succeeded, else its code; `error` gets the error name.
int Call(RawClient& c, uint32_t id, const std::string& cmd, const std::string& body,
         std::string* error = nullptr) {
  rapidjson::Document doc;
  const int code = im::test::CallCode(c, id, cmd, body, &doc);
  if (code >= 0 && error != nullptr) *error = im::test::ErrorOf(doc);
  return code;
}

std::string Create(const std::string& gid, const std::string& members = "") {
  return R"({"name":"n","gid":")" + gid + R"(","members":[)" + members + "]}";
}

// A PUT of acme's record that must be refused with 400 bad_request naming `field`.
void CheckRefusedPut(uint16_t port, const std::string& body, const std::string& field) {
  auto r = Http(port, "PUT", "/v1/admin/tenants/acme", body, kOperatorKey);
  CHECK_MESSAGE(r.status == 400, body);
  CHECK(r.Str("error") == "bad_request");
  CHECK_MESSAGE(r.Str("message").find(field) != std::string::npos, r.Str("message"));
}

std::string Join(const std::string& gid) { return R"({"gid":")" + gid + R"("})"; }

// chat.send of `n` messages from `from` to `to`, each REQUIREd to be stored.
void SendMany(RawClient& from, uint32_t first_id, const std::string& to, int n) {
  for (int i = 0; i < n; ++i) {
    const uint32_t id = first_id + static_cast<uint32_t>(i);
    REQUIRE(Call(from, id, "chat.send",
                 R"({"to":")" + to + R"(","cid":"c)" + std::to_string(id) + R"(","body":"m)" +
                     std::to_string(i) + R"("})") == 0);
  }
}

struct SyncPage {
  std::vector<uint64_t> seqs;
  uint64_t first_seq = 0;
  bool gap = false;
  bool more = false;
};

SyncPage Sync(RawClient& c, uint32_t id, uint64_t after, int limit = 100) {
  rapidjson::Document doc;
  REQUIRE(c.Call(id, "chat.sync",
                 R"({"after":)" + std::to_string(after) + R"(,"limit":)" +
                     std::to_string(limit) + "}",
                 &doc, 10000));
  REQUIRE(im::test::CodeOf(doc) <= 0);
  const rapidjson::Value& body = doc["body"];
  SyncPage page;
  for (const auto& m : body["messages"].GetArray()) page.seqs.push_back(m["seq"].GetUint64());
  page.first_seq = body["first_seq"].GetUint64();
  page.gap = body["gap"].GetBool();
  page.more = body["more"].GetBool();
  return page;
}

}  // namespace

TEST_CASE("tenant quotas: max_groups_per_user refuses a create or join past it with 403") {
  im::test::ForEachStorage([](const std::function<void(im::ServerDeps&)>& customize) {
    TestServer server(QuotaOptions(), customize);
    const uint16_t port = server.server().http_port();
    PutTenant(server, "acme", R"({"quotas":{"max_groups_per_user":2}})");
    auto got = Http(port, "GET", "/v1/admin/tenants/acme", "", kOperatorKey);
    REQUIRE(got.status == 200);
    CHECK(got.body["quotas"]["max_groups_per_user"].GetUint64() == 2);

    auto alice = LoggedIn(server, "alice", "acme");
    auto bob = LoggedIn(server, "bob", "acme");
    std::string error;
    // alice: owner of a1, named in b1 by bob: two groups, the most.
    CHECK(Call(*alice, 1, "group.create", Create("a1")) == 0);
    CHECK(Call(*bob, 2, "group.create", Create("b1", R"("alice")")) == 0);
    CHECK(Call(*alice, 3, "group.create", Create("a2"), &error) == 403);
    CHECK(error == "too_many_groups");
    CHECK(Call(*bob, 4, "group.create", Create("b2"), &error) == 0);
    CHECK(Call(*alice, 5, "group.join", Join("b2"), &error) == 403);
    CHECK(error == "too_many_groups");
    // A create naming her as a member is refused whole (bob gets no group either).
    CHECK(Call(*bob, 6, "group.create", Create("b3", R"("alice")"), &error) == 403);
    CHECK(error == "too_many_groups");
    CHECK(Call(*bob, 7, "group.info", Join("b3"), &error) == 404);
    // REST create goes through the same check.
    auto rest = Http(port, "POST", "/v1/groups", R"({"name":"r","gid":"a3"})",
                     server.Token("alice", "acme"));
    CHECK(rest.status == 403);
    CHECK(rest.Str("error") == "too_many_groups");
    // A join of a group she is in still answers 409 already_member, not the quota.
    CHECK(Call(*alice, 8, "group.join", Join("a1"), &error) == 409);
    CHECK(error == "already_member");
    // Quitting one frees a place.
    CHECK(Call(*alice, 9, "group.quit", Join("b1")) == 0);
    CHECK(Call(*alice, 10, "group.join", Join("b2")) == 0);
    CHECK(Call(*alice, 11, "group.join", Join("b1"), &error) == 403);

    // Another tenant's user, at the same time, has no such bound.
    auto dora = LoggedIn(server, "alice", "default");
    for (uint32_t i = 0; i < 5; ++i) {
      CHECK(Call(*dora, 100 + i, "group.create", Create("d" + std::to_string(i))) == 0);
    }
    auto dora_rest = Http(port, "POST", "/v1/groups", R"({"name":"r","gid":"d9"})",
                          server.Token("alice", "default"));
    CHECK(dora_rest.status == 201);
  });
}

TEST_CASE("tenant quotas: rest_request_rate answers 429 rate_limited to that tenant alone") {
  TestServer server(QuotaOptions());
  const uint16_t port = server.server().http_port();
  // Nearly no refill: the burst is what the tenant gets during the test.
  PutTenant(server, "acme", R"({"quotas":{"rest_request_rate":0.01,"rest_request_burst":3}})");
  auto got = Http(port, "GET", "/v1/admin/tenants/acme", "", kOperatorKey);
  REQUIRE(got.status == 200);
  CHECK(got.body["quotas"]["rest_request_rate"].GetDouble() == doctest::Approx(0.01));
  CHECK(got.body["quotas"]["rest_request_burst"].GetUint64() == 3);

  const std::string token = server.Token("alice", "acme");
  // Any authenticated request takes a token: a user token, then the tenant's admin key.
  CHECK(Http(port, "GET", "/v1/groups/nope", "", token).status == 404);
  CHECK(Http(port, "GET", "/v1/users/nobody", "", token).status == 404);
  CHECK(Http(port, "GET", "/v1/users/nobody", "", kAcmeAdminKey).status == 404);
  for (const std::string& credential : {token, std::string(kAcmeAdminKey)}) {
    auto r = Http(port, "GET", "/v1/users/nobody", "", credential);
    CHECK(r.status == 429);
    CHECK(r.Str("error") == "rate_limited");
    REQUIRE(r.body.HasMember("retry_after_ms"));
    CHECK(r.body["retry_after_ms"].GetInt64() > 0);
  }
  // A password token request names the tenant in its body: refused before the password is read.
  auto minted = Http(port, "POST", "/v1/tokens",
                     R"({"tenant":"acme","user":"alice","password":"whatever"})");
  CHECK(minted.status == 429);
  CHECK(minted.Str("error") == "rate_limited");

  // Another tenant at the same time: never limited.
  const std::string other = server.Token("alice", "default");
  for (int i = 0; i < 20; ++i) {
    CHECK(Http(port, "GET", "/v1/users/nobody", "", other).status == 404);
  }
  std::map<std::string, double> m;
  REQUIRE(im::test::ScrapeMetrics(port, &m));
  CHECK(m[R"(im_rate_limited_total{limit="rest_tenant"})"] == 3);
  CHECK(m[R"(im_tenant_rate_limited_total{limit="rest_tenant",tenant="acme"})"] == 3);
  CHECK(m.count(R"(im_tenant_rate_limited_total{limit="rest_tenant",tenant="default"})") == 0);

  // Bad values are 400 and change nothing.
  CheckRefusedPut(port, R"({"quotas":{"rest_request_rate":-1}})", "rest_request_rate");
  CheckRefusedPut(port, R"({"quotas":{"rest_request_burst":1.5}})", "rest_request_burst");
  CheckRefusedPut(port, R"({"quotas":{"max_groups_per_user":"2"}})", "max_groups_per_user");
  CHECK(Http(port, "GET", "/v1/admin/tenants/acme", "", kOperatorKey)
            .body["quotas"]["rest_request_burst"]
            .GetUint64() == 3);
}

TEST_CASE("tenant quotas: max_inbox keeps a tenant's inboxes shorter, others keep the store's") {
  im::test::ForEachStorage([](const std::function<void(im::ServerDeps&)>& customize) {
    TestServer server(QuotaOptions(), customize);
    const uint16_t port = server.server().http_port();
    CheckRefusedPut(port, R"({"quotas":{"max_inbox":10001}})", "max_inbox");
    PutTenant(server, "acme", R"({"quotas":{"max_inbox":3}})");
    CHECK(Http(port, "GET", "/v1/admin/tenants/acme", "", kOperatorKey)
              .body["quotas"]["max_inbox"]
              .GetUint64() == 3);
    auto a = LoggedIn(server, "a", "acme");
    auto d = LoggedIn(server, "a", "default");
    SendMany(*a, 1, "b", 5);
    SendMany(*d, 100, "b", 5);
    auto acme_b = LoggedIn(server, "b", "acme");
    SyncPage page = Sync(*acme_b, 1000, 0);
    CHECK(page.seqs == std::vector<uint64_t>{3, 4, 5});
    CHECK(page.first_seq == 3);
    CHECK(page.gap);
    auto default_b = LoggedIn(server, "b", "default");
    page = Sync(*default_b, 1001, 0);
    CHECK(page.seqs == std::vector<uint64_t>{1, 2, 3, 4, 5});
    CHECK(page.first_seq == 1);
    CHECK_FALSE(page.gap);
  });
}

TEST_CASE("tenant quotas: retention_s hides a tenant's older entries at sync, reported as gap") {
  im::test::ForEachStorage([](const std::function<void(im::ServerDeps&)>& customize) {
    im::test::FakeClock clock;
    im::ServerOptions o = QuotaOptions();
    o.clock = &clock;
    TestServer server(o, customize);
    const uint16_t port = server.server().http_port();
    CheckRefusedPut(port, R"({"quotas":{"retention_s":604801}})", "retention_s");
    PutTenant(server, "acme", R"({"quotas":{"retention_s":20}})");
    auto a = LoggedIn(server, "a", "acme");
    auto d = LoggedIn(server, "a", "default");
    SendMany(*a, 1, "b", 3);
    SendMany(*d, 100, "b", 3);
    auto acme_b = LoggedIn(server, "b", "acme");
    SyncPage page = Sync(*acme_b, 1000, 0);
    CHECK(page.seqs == std::vector<uint64_t>{1, 2, 3});  // younger than 20 s: all there
    CHECK_FALSE(page.gap);
    clock.Advance(21000);
    SendMany(*a, 10, "b", 1);
    SendMany(*d, 110, "b", 1);
    page = Sync(*acme_b, 1001, 0);
    CHECK(page.seqs == std::vector<uint64_t>{4});
    CHECK(page.first_seq == 4);
    CHECK(page.gap);
    // Pages of hidden entries only are passed over: the client's cursor moves on.
    page = Sync(*acme_b, 1002, 0, /*limit=*/2);
    CHECK(page.seqs == std::vector<uint64_t>{4});
    CHECK(page.gap);
    CHECK_FALSE(page.more);
    // From past the hidden ones: nothing hidden, no gap.
    page = Sync(*acme_b, 1003, 3);
    CHECK(page.seqs == std::vector<uint64_t>{4});
    CHECK_FALSE(page.gap);
    // The other tenant keeps the store's retention.
    auto default_b = LoggedIn(server, "b", "default");
    page = Sync(*default_b, 1004, 0);
    CHECK(page.seqs == std::vector<uint64_t>{1, 2, 3, 4});
    CHECK_FALSE(page.gap);
  });
}
