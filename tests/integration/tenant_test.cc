// Tenants as a first-class thing, over real sockets: the registry's admin API and who may use
// it, suspension (logins refused, sessions kicked), each per-tenant quota hit and answered as
// docs/protocol.md says with another tenant unaffected, and isolation: tenant acme's token and
// admin key, aimed at tenant default's users and groups by their ids, through every socket
// command and every REST endpoint, get a refusal (403/404) or act inside acme alone, and no
// answer carries any of default's data.
#include <doctest/doctest.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <atomic>
#include <chrono>
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

// TenantOptions() with a fast sweep.
im::ServerOptions SweptTenantOptions() {
  im::ServerOptions o = TenantOptions();
  o.sweep_interval_ms = 50;
  return o;
}

// chat.send of `body` to `to`: the reply's code (0 = stored).
int Send(RawClient& c, uint32_t id, const std::string& to, const std::string& body,
         rapidjson::Document* reply = nullptr) {
  return im::test::CallCode(
      c, id, "chat.send",
      R"({"to":")" + to + R"(","cid":"c)" + std::to_string(id) + R"(","body":")" + body + R"("})",
      reply);
}

// Default's data: none of it may appear in any answer to acme.
const std::vector<std::string> kSecrets = {"SecretDoraName", "SecretGroupName",
                                           "SecretMessageBody"};

std::string Text(const rapidjson::Value& v) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  v.Accept(writer);
  return buffer.GetString();
}

void CheckReveals(const std::string& what, const std::string& text) {
  for (const std::string& secret : kSecrets) {
    CHECK_MESSAGE(text.find(secret) == std::string::npos, what << " revealed " << secret);
  }
}

}  // namespace

TEST_CASE("tenants: the registry answers the operator key alone") {
  TestServer server(SweptTenantOptions());
  const uint16_t port = server.server().http_port();
  const std::string path = "/v1/admin/tenants/acme";
  CHECK(Http(port, "GET", path).status == 401);
  for (const std::string& wrong :
       {std::string(kAcmeAdminKey), std::string(TestServer::kAdminKey),
        server.Token("alice", "acme"), std::string("operator-key-0123456788")}) {
    auto g = Http(port, "GET", path, "", wrong);
    CHECK(g.status == 403);
    CHECK(g.Str("error") == "operator_only");
    auto p = Http(port, "PUT", path, R"({"status":"suspended"})", wrong);
    CHECK(p.status == 403);
  }
  auto missing = Http(port, "GET", path, "", kOperatorKey);
  CHECK(missing.status == 404);
  PutTenant(server, "acme",
            R"({"status":"active","quotas":{"max_devices_per_user":3},"words":["zorblax"]})");
  auto got = Http(port, "GET", path, "", kOperatorKey);
  REQUIRE(got.status == 200);
  CHECK(got.Str("tenant") == "acme");
  CHECK(got.Str("status") == "active");
  CHECK(got.body["quotas"]["max_devices_per_user"].GetUint64() == 3);
  CHECK(got.body["words"][0] == "zorblax");
  // Bad bodies are 400 and change nothing.
  for (const char* bad : {R"({"status":"paused"})", R"({"quotas":{"max_sessions":1}})",
                          R"({"quotas":{"max_group_members":-1}})", R"({"words":[""]})",
                          R"({"tenant":"other"})", R"([1])", R"({"colour":1})"}) {
    auto r = Http(port, "PUT", path, bad, kOperatorKey);
    CHECK_MESSAGE(r.status == 400, bad);
  }
  CHECK(Http(port, "GET", path, "", kOperatorKey).body["quotas"]["max_devices_per_user"] == 3);
  CHECK(Http(port, "POST", path, "{}", kOperatorKey).status == 405);
  // The operator key is no tenant's credential anywhere else.
  auto user = Http(port, "GET", "/v1/users/alice", "", kOperatorKey);
  CHECK(user.status == 403);
  CHECK(user.Str("error") == "operator_only");
}

TEST_CASE("tenants: a suspended tenant's sessions are kicked and its logins refused 403") {
  TestServer server(SweptTenantOptions());
  auto acme = LoggedIn(server, "alice", "acme");
  auto other = LoggedIn(server, "bob", "default");
  PutTenant(server, "acme", R"({"status":"suspended"})");
  rapidjson::Document push;
  REQUIRE(acme->WaitPush("session.kicked", &push, 10000));
  CHECK(im::test::Str(push["body"], "reason") == "tenant_suspended");
  CHECK(acme->WaitClosed(10000) == im::close_code::kKicked);

  RawClient again(server.TcpUrl());
  rapidjson::Document doc;
  REQUIRE(again.Call(1, "login", R"({"token":")" + server.Token("alice", "acme") + R"("})",
                     &doc));
  CHECK(im::test::CodeOf(doc) == 403);
  CHECK(im::test::ErrorOf(doc) == "tenant_suspended");
  auto rest = Http(server.server().http_port(), "GET", "/v1/users/alice", "",
                   server.Token("alice", "acme"));
  CHECK(rest.status == 403);
  CHECK(rest.Str("error") == "tenant_suspended");
  // Another tenant carries on.
  CHECK(Send(*other, 2, "carol", "still here") == 0);
  CHECK_FALSE(other->closed());
  // Active again: logins pass.
  PutTenant(server, "acme", R"({"status":"active"})");
  RawClient back(server.TcpUrl());
  CHECK(back.Login(server.Token("alice", "acme")) == 0);
}

TEST_CASE("tenants: each quota is answered as documented, other tenants unaffected") {
  TestServer server(SweptTenantOptions());
  SUBCASE("max_devices_per_user") {
    PutTenant(server, "acme", R"({"quotas":{"max_devices_per_user":1}})");
    auto first = LoggedIn(server, "alice", "acme", "phone");
    RawClient second(server.TcpUrl());
    rapidjson::Document doc;
    REQUIRE(second.Call(1, "login",
                        R"({"token":")" + server.Token("alice", "acme") +
                            R"(","device":"laptop"})", &doc));
    CHECK(im::test::CodeOf(doc) == 429);
    CHECK(im::test::ErrorOf(doc) == "too_many_devices");
    auto d1 = LoggedIn(server, "alice", "default", "phone");
    auto d2 = LoggedIn(server, "alice", "default", "laptop");
  }
  SUBCASE("max_online_sessions") {
    PutTenant(server, "acme", R"({"quotas":{"max_online_sessions":2}})");
    auto a = LoggedIn(server, "a", "acme");
    auto b = LoggedIn(server, "b", "acme");
    RawClient c(server.TcpUrl());
    rapidjson::Document doc;
    REQUIRE(c.Call(1, "login", R"({"token":")" + server.Token("c", "acme") + R"("})", &doc));
    CHECK(im::test::CodeOf(doc) == 429);
    CHECK(im::test::ErrorOf(doc) == "too_many_sessions");
    auto x = LoggedIn(server, "x", "default");
    auto y = LoggedIn(server, "y", "default");
    auto z = LoggedIn(server, "z", "default");
    // At the bound, a login that replaces one of the tenant's sessions here still passes.
    auto b_again = LoggedIn(server, "b", "acme");
    rapidjson::Document kicked;
    CHECK(b->WaitPush("session.kicked", &kicked, 10000));
    // A session that ends frees its place.
    a->Close();
    CHECK(im::test::WaitUntil([&] {
      RawClient retry(server.TcpUrl());
      return retry.Login(server.Token("c", "acme")) == 0;
    }));
  }
  SUBCASE("max_group_members") {
    PutTenant(server, "acme", R"({"quotas":{"max_group_members":2}})");
    auto owner = LoggedIn(server, "o", "acme");
    rapidjson::Document doc;
    REQUIRE(owner->Call(1, "group.create", R"({"name":"big","members":["m1","m2"]})", &doc));
    CHECK(im::test::CodeOf(doc) == 403);
    CHECK(im::test::ErrorOf(doc) == "group_full");
    REQUIRE(owner->Call(2, "group.create", R"({"name":"two","gid":"g2","members":["m1"]})",
                        &doc));
    CHECK(im::test::CodeOf(doc) <= 0);
    auto m2 = LoggedIn(server, "m2", "acme");
    REQUIRE(m2->Call(3, "group.join", R"({"gid":"g2"})", &doc));
    CHECK(im::test::CodeOf(doc) == 403);
    CHECK(im::test::ErrorOf(doc) == "group_full");
    auto other = LoggedIn(server, "o", "default");
    REQUIRE(other->Call(4, "group.create", R"({"name":"big","members":["m1","m2","m3"]})",
                        &doc));
    CHECK(im::test::CodeOf(doc) <= 0);
  }
  SUBCASE("words") {
    PutTenant(server, "acme", R"({"words":["zorblax"]})");
    auto a = LoggedIn(server, "a", "acme");
    rapidjson::Document reply;
    CHECK(Send(*a, 1, "b", "a zorblax here", &reply) == 422);
    CHECK(im::test::ErrorOf(reply) == "content_rejected");
    CHECK(Send(*a, 2, "b", "a harmless text") == 0);
    auto d = LoggedIn(server, "a", "default");
    CHECK(Send(*d, 3, "b", "a zorblax here") == 0);
  }
  SUBCASE("user_send_rate") {
    PutTenant(server, "acme", R"({"quotas":{"user_send_rate":0.5,"user_send_burst":2}})");
    auto a = LoggedIn(server, "a", "acme");
    CHECK(Send(*a, 1, "b", "one") == 0);
    CHECK(Send(*a, 2, "b", "two") == 0);
    rapidjson::Document reply;
    CHECK(Send(*a, 3, "b", "three", &reply) == 429);
    CHECK(im::test::ErrorOf(reply) == "rate_limited");
    CHECK(reply["retry_after_ms"].GetInt64() > 0);
    // Another user of the tenant has a bucket of their own; another tenant is not limited.
    auto a2 = LoggedIn(server, "a2", "acme");
    CHECK(Send(*a2, 4, "b", "one") == 0);
    auto d = LoggedIn(server, "a", "default");
    for (uint32_t i = 0; i < 10; ++i) CHECK(Send(*d, 10 + i, "b", "free") == 0);
  }
  SUBCASE("user_group_rate") {
    // Replaces group_user_* (burst 20000) for the tenant's users: a create of two members
    // and the owner costs 3, so a burst of 4 takes one such create, not two.
    PutTenant(server, "acme", R"({"quotas":{"user_group_rate":0.5,"user_group_burst":4}})");
    auto a = LoggedIn(server, "a", "acme");
    rapidjson::Document reply;
    REQUIRE(a->Call(1, "group.create", R"({"name":"one","members":["x","y"]})", &reply));
    CHECK(im::test::CodeOf(reply) <= 0);
    REQUIRE(a->Call(2, "group.create", R"({"name":"two","members":["x","y"]})", &reply));
    CHECK(im::test::CodeOf(reply) == 429);
    CHECK(im::test::ErrorOf(reply) == "rate_limited");
    CHECK(reply["retry_after_ms"].GetInt64() > 0);
    auto d = LoggedIn(server, "a", "default");
    for (uint32_t i = 0; i < 5; ++i) {
      REQUIRE(d->Call(10 + i, "group.create", R"({"name":"free","members":["x","y"]})", &reply));
      CHECK(im::test::CodeOf(reply) <= 0);
    }
    std::map<std::string, double> m;
    REQUIRE(im::test::ScrapeMetrics(server.server().http_port(), &m));
    CHECK(m[R"(im_tenant_rate_limited_total{limit="group_user",tenant="acme"})"] == 1);
  }
  SUBCASE("tenant_send_rate") {
    PutTenant(server, "acme", R"({"quotas":{"tenant_send_rate":0.5,"tenant_send_burst":3}})");
    auto a = LoggedIn(server, "a", "acme");
    auto b = LoggedIn(server, "b", "acme");
    CHECK(Send(*a, 1, "x", "1") == 0);
    CHECK(Send(*b, 2, "x", "2") == 0);
    CHECK(Send(*a, 3, "x", "3") == 0);
    rapidjson::Document reply;
    CHECK(Send(*b, 4, "x", "4", &reply) == 429);
    CHECK(im::test::ErrorOf(reply) == "rate_limited");
    CHECK(reply["retry_after_ms"].GetInt64() > 0);
    auto d = LoggedIn(server, "a", "default");
    for (uint32_t i = 0; i < 10; ++i) CHECK(Send(*d, 10 + i, "x", "free") == 0);
    std::map<std::string, double> m;
    REQUIRE(im::test::ScrapeMetrics(server.server().http_port(), &m));
    CHECK(m[R"(im_tenant_rate_limited_total{limit="chat_tenant",tenant="acme"})"] == 1);
    CHECK(m[R"(im_tenant_messages_total{tenant="default"})"] == 10);
  }
}

TEST_CASE("tenants: one tenant's flood leaves another tenant's sends going") {
  TestServer server(SweptTenantOptions());
  PutTenant(server, "acme", R"({"quotas":{"tenant_send_rate":100,"tenant_send_burst":100}})");
  auto flooder = LoggedIn(server, "f", "acme");
  auto quiet = LoggedIn(server, "q", "default");
  const auto flood_began = std::chrono::steady_clock::now();
  // The flood: 3000 sends written without waiting for answers.
  for (uint32_t i = 0; i < 3000; ++i) {
    flooder->Send(R"({"id":)" + std::to_string(i + 1) +
                  R"(,"cmd":"chat.send","body":{"to":"sink","body":"flood","cid":"f)" +
                  std::to_string(i) + R"("}})");
  }
  // Meanwhile the other tenant's sends each succeed, within a generous bound.
  int64_t worst_ms = 0;
  for (uint32_t i = 0; i < 30; ++i) {
    const auto began = std::chrono::steady_clock::now();
    CHECK(Send(*quiet, 100000 + i, "r", "hello") == 0);
    worst_ms = std::max<int64_t>(
        worst_ms, std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - began)
                      .count());
  }
  CHECK(worst_ms < 3000);
  // The flood was cut by acme's own bucket.
  std::map<std::string, double> m;
  CHECK(im::test::WaitUntil([&] {
    m.clear();
    return im::test::ScrapeMetrics(server.server().http_port(), &m) &&
           m[R"(im_tenant_rate_limited_total{limit="chat_tenant",tenant="acme"})"] > 100;
  }));
  CHECK(m[R"(im_tenant_rate_limited_total{limit="chat_tenant",tenant="default"})"] == 0);
  // Every send of the other tenant was taken; acme's never passed its bucket: at most the burst
  // plus the rate over the time since the flood began (a bound a slow machine only loosens).
  const double elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                                         flood_began).count();
  CHECK(m[R"(im_tenant_messages_total{tenant="default"})"] == 30);
  CHECK(m[R"(im_tenant_messages_total{tenant="acme"})"] <= 100 + 100 * elapsed_s);
}

TEST_CASE("tenants: per-tenant metrics fold tenants past metrics_max_tenants into other") {
  im::ServerOptions o = SweptTenantOptions();
  o.metrics_max_tenants = 1;
  TestServer server(o);
  auto d = LoggedIn(server, "a", "default");
  CHECK(Send(*d, 1, "b", "x") == 0);
  auto a = LoggedIn(server, "a", "acme");
  CHECK(Send(*a, 2, "b", "x") == 0);
  std::map<std::string, double> m;
  REQUIRE(im::test::ScrapeMetrics(server.server().http_port(), &m));
  CHECK(m[R"(im_tenant_messages_total{tenant="default"})"] == 1);
  CHECK(m[R"(im_tenant_messages_total{tenant="other"})"] == 1);
  CHECK(m.count(R"(im_tenant_messages_total{tenant="acme"})") == 0);
}

TEST_CASE("tenant isolation: every command and endpoint refuses another tenant's ids") {
  TestServer server(TenantOptions());
  const uint16_t port = server.server().http_port();

  // Tenant default: dora (an account with a display name), her group with dan, a message.
  REQUIRE(Http(port, "POST", "/v1/users",
               R"({"user":"dora","password":"pw-of-dora-123","display_name":"SecretDoraName"})",
               TestServer::kAdminKey)
              .status == 201);
  RawClient dora(server.TcpUrl());
  REQUIRE(dora.Login(server.Token("dora")) == 0);
  rapidjson::Document doc;
  REQUIRE(dora.Call(1, "group.create",
                    R"({"name":"SecretGroupName","gid":"gsecret","members":["dan"]})", &doc));
  REQUIRE(im::test::CodeOf(doc) <= 0);
  REQUIRE(dora.Call(2, "chat.send", R"({"to":"dan","cid":"d1","body":"SecretMessageBody"})", &doc));
  REQUIRE(im::test::CodeOf(doc) <= 0);
  REQUIRE(dora.Call(3, "chat.send", R"({"group":"gsecret","cid":"d2","body":"SecretMessageBody"})", &doc));
  REQUIRE(im::test::CodeOf(doc) <= 0);
  // A group of default's whose gid acme never has until eve creates one of her own below.
  REQUIRE(dora.Call(4, "group.create",
                    R"({"name":"SecretGroupName","gid":"gonly","members":["dan"]})", &doc));
  REQUIRE(im::test::CodeOf(doc) <= 0);

  // Tenant acme's eve, over the socket.
  RawClient eve(server.TcpUrl());
  REQUIRE(eve.Login(server.Token("eve", "acme")) == 0);
  struct Probe {
    const char* cmd;
    std::string body;
    std::vector<int> allowed;  // acceptable codes; 0 = acts inside acme only
  };
  const std::vector<Probe> probes = {
      {"ping", "{}", {0}},
      {"chat.send", R"({"group":"gsecret","cid":"e1","body":"hi"})", {403}},
      {"chat.sync", R"({"after":0})", {0}},
      {"chat.ack", R"({"seq":1})", {0, 400}},
      {"group.info", R"({"gid":"gsecret"})", {404}},
      {"group.join", R"({"gid":"gsecret"})", {404}},
      {"group.quit", R"({"gid":"gsecret"})", {404}},
      {"group.members", R"({"gid":"gsecret"})", {403}},
      {"chat.send", R"({"to":"dan","cid":"e2","body":"from eve"})", {0}},  // acme's dan, not default's
      {"group.create", R"({"name":"mine","gid":"gsecret","members":["dan","dora"]})", {0}},
      {"logout", "{}", {0}},
  };
  uint32_t id = 100;
  for (const Probe& p : probes) {
    rapidjson::Document reply;
    REQUIRE_MESSAGE(eve.Call(++id, p.cmd, p.body, &reply), std::string(p.cmd));
    const int code = std::max(0, im::test::CodeOf(reply));
    bool ok = false;
    for (int a : p.allowed) ok = ok || a == code;
    CHECK_MESSAGE(ok, std::string(p.cmd) << " " << p.body << " answered " << code);
    CheckReveals(p.cmd, Text(reply));
  }
  // acme's own dora (the same id as default's dora) is another user and sees nothing of hers.
  RawClient forged(server.TcpUrl());
  rapidjson::Document login;
  REQUIRE(forged.Call(1, "login", R"({"token":")" + server.Token("dora", "acme") + R"("})",
                      &login));
  CHECK(im::test::CodeOf(login) <= 0);
  CheckReveals("acme's dora login", Text(login));
  REQUIRE(forged.Call(2, "group.info", R"({"gid":"gsecret"})", &login));
  CheckReveals("acme's dora group.info", Text(login));

  // Over REST, with acme's user token and acme's admin key.
  const std::string eve_token = server.Token("eve", "acme");
  struct Request {
    const char* method;
    std::string target;
    std::string body;
    std::string credential;
    std::vector<int> allowed;  // acceptable statuses; 200/201 = acts inside acme only
    std::string error = "";    // the error name, when one is pinned down
  };
  const std::vector<Request> requests = {
      {"GET", "/v1/users/dora", "", eve_token, {404}},
      {"GET", "/v1/users/dora", "", kAcmeAdminKey, {404}},
      {"GET", "/v1/groups/gsecret", "", kAcmeAdminKey, {200}},  // acme's own gsecret
      {"GET", "/v1/groups/gsecret/members", "", kAcmeAdminKey, {200}},
      // eve's token: default's gonly is no group of acme's (404, or 403 not_member for the
      // members, as for any group she is not in); acme's gsecret is hers (created above).
      {"GET", "/v1/groups/gonly", "", eve_token, {404}, "not_found"},
      {"GET", "/v1/groups/gonly/members", "", eve_token, {403}, "not_member"},
      {"GET", "/v1/groups/gsecret", "", eve_token, {200}},
      {"GET", "/v1/groups/gsecret/members", "", eve_token, {200}},
      // A gid that exists in default alone: eve creates acme's own (201, not 409 group_exists).
      {"POST", "/v1/groups", R"({"name":"eves","gid":"gonly","members":["dora"]})", eve_token,
       {201}},
      {"POST", "/v1/messages", R"({"to":"dan","from":"dora","body":"from eve rest"})", eve_token,
       {403}, "admin_only"},
      {"POST", "/v1/messages", R"({"group":"gsecret","body":"from eve rest"})", eve_token, {403},
       "admin_only"},
      {"POST", "/v1/users", R"({"user":"zed","password":"pw-of-zed-1234","tenant":"default"})",
       kAcmeAdminKey, {403}},
      {"POST", "/v1/tokens", R"({"user":"dora","tenant":"default"})", kAcmeAdminKey, {403}},
      {"POST", "/v1/tokens", R"({"user":"dora","tenant":"default","password":"pw-of-dora-123"})",
       "", {201}},  // the right password of default's dora: her own token, nothing of acme's
      {"POST", "/v1/groups", R"({"name":"x"})", kAcmeAdminKey, {403}},
      {"POST", "/v1/messages", R"({"group":"gnone","from":"dora","body":"x"})", kAcmeAdminKey,
       {403, 404}},
      {"POST", "/v1/messages", R"({"to":"dan","from":"dora","body":"from acme"})", kAcmeAdminKey,
       {200}},  // acme's dan
      {"POST", "/v1/admin/filter/reload", "", eve_token, {403}, "operator_only"},
      // The word list is every tenant's: with an operator key set, no tenant's admin reloads it.
      {"POST", "/v1/admin/filter/reload", "", kAcmeAdminKey, {403}, "operator_only"},
      {"GET", "/v1/admin/tenants/default", "", kAcmeAdminKey, {403}},
      {"PUT", "/v1/admin/tenants/default", R"({"status":"suspended"})", kAcmeAdminKey, {403}},
      {"GET", "/v1/admin/tenants/default", "", eve_token, {403}},
      {"PUT", "/v1/admin/tenants/acme", R"({"status":"active"})", eve_token, {403}},
      // The cluster's own endpoints are the operator's alone (403 operator_only): no tenant key
      // or token drains a node or reads or changes the routing rules.
      {"POST", "/v1/admin/nodes/n1/drain", "", kAcmeAdminKey, {403}},
      {"POST", "/v1/admin/nodes/n1/drain", "", eve_token, {403}},
      {"GET", "/v1/admin/routing", "", kAcmeAdminKey, {403}},
      {"PUT", "/v1/admin/routing", R"({"canary_percent":100})", kAcmeAdminKey, {403}},
      {"GET", "/v1/admin/routing", "", eve_token, {403}},
  };
  for (const Request& r : requests) {
    auto answer = Http(port, r.method, r.target, r.body, r.credential);
    bool ok = false;
    for (int a : r.allowed) ok = ok || a == answer.status;
    CHECK_MESSAGE(ok, std::string(r.method) << " " << r.target << " answered " << answer.status << " "
                               << answer.text);
    if (!r.error.empty()) {
      CHECK_MESSAGE(answer.Str("error") == r.error, r.method << " " << r.target << " " << answer.text);
    }
    if (r.credential.empty()) continue;  // dora's own password: her own data is no leak
    CheckReveals(std::string(r.method) + " " + r.target, answer.text);
  }

  // Default's data is untouched: dan's inbox holds dora's two messages only, the group is hers.
  RawClient dan(server.TcpUrl());
  REQUIRE(dan.Login(server.Token("dan")) == 0);
  REQUIRE(dan.Call(1, "chat.sync", R"({"after":0})", &doc));
  const std::string page = Text(doc);
  CHECK(page.find("from eve") == std::string::npos);
  CHECK(page.find("from acme") == std::string::npos);
  REQUIRE(dan.Call(2, "group.info", R"({"gid":"gsecret"})", &doc));
  CHECK(im::test::Str(doc["body"], "owner") == "dora");
  CHECK(im::test::Str(doc["body"], "name") == "SecretGroupName");
  CHECK(doc["body"]["member_count"].GetUint64() == 2);
  REQUIRE(dan.Call(3, "group.info", R"({"gid":"gonly"})", &doc));
  CHECK(im::test::Str(doc["body"], "owner") == "dora");
  CHECK(im::test::Str(doc["body"], "name") == "SecretGroupName");
  CHECK(doc["body"]["member_count"].GetUint64() == 2);
  // acme's gonly is eve's, with acme's dora: the same ids, another tenant's group.
  auto eves = Http(port, "GET", "/v1/groups/gonly", "", eve_token);
  REQUIRE(eves.status == 200);
  CHECK(eves.Str("owner") == "eve");
  CHECK(eves.Str("name") == "eves");

  // The endpoints without a credential (docs/operations.md section 4, What the endpoints
  // without a credential show):
  // health and readiness say nothing but their status; /metrics names tenants and counts, no
  // user, group or message; /v1/route answers gateways only (404 here: a single server with
  // no routing configured; route_test.cc covers what a cluster's answer tells).
  auto health = Http(port, "GET", "/healthz");
  CHECK(health.status == 200);
  CHECK(health.text == R"({"status":"ok"})");
  auto ready = Http(port, "GET", "/readyz");
  CHECK(ready.status == 200);
  CHECK(ready.text == R"({"status":"ready"})");
  auto metrics = Http(port, "GET", "/metrics");
  REQUIRE(metrics.status == 200);
  CHECK(metrics.text.find(R"(tenant="acme")") != std::string::npos);
  CHECK(metrics.text.find(R"(tenant="default")") != std::string::npos);
  CheckReveals("/metrics", metrics.text);
  for (const char* id : {"dora", "dan", "eve", "gsecret", "gonly"}) {
    CHECK_MESSAGE(metrics.text.find(std::string("\"") + id + "\"") == std::string::npos, id);
  }
  auto route = Http(port, "GET", "/v1/route?tenant=default&user=dora");
  CHECK(route.status == 404);
  CheckReveals("/v1/route", route.text);
  auto tenant = Http(port, "GET", "/v1/admin/tenants/default", "", kOperatorKey);
  CHECK(tenant.status == 404);  // never written by acme's PUT
}

TEST_CASE("tenants: signing keys in the registry rotate by kid without a restart") {
  auto registry = im::NewMemoryTenantStore();
  im::ServerOptions o = SweptTenantOptions();
  o.login_address_rate = 0;  // the waits below make many refused logins from one address
  TestServer server(o, [&](im::ServerDeps& deps) {
    deps.tenants = registry;
    // The registry's keys first, the host's for tenants without any (as imd does).
    auto keys = im::NewTenantKeyStore(registry, deps.token_keys, /*cache_ms=*/50);
    deps.tokens = im::NewHs256Verifier(keys);
    deps.token_keys = keys;
  });
  const uint16_t port = server.server().http_port();
  // Raw keys of 32 bytes '1' and '2': hex "31" and "32", 32 times each.
  std::string hex1, hex2;
  for (int i = 0; i < 32; ++i) {
    hex1 += "31";
    hex2 += "32";
  }
  auto token = [](const std::string& kid, char fill) {
    auto keys = im::NewRotatingKeyStore({{"acme", {{kid, std::string(32, fill)}}}});
    REQUIRE(keys.ok());
    auto t = im::SignHs256Token(**keys, im::UserKey{"acme", "alice"}, 3600,
                                im::SystemClock()->NowMs());
    REQUIRE(t.ok());
    return *t;
  };
  auto login = [&](const std::string& t) {
    RawClient c(server.TcpUrl());
    return c.Login(t);
  };
  const std::string r1 = token("r1", '1'), r2 = token("r2", '2');
  const std::string host_key = server.Token("alice", "acme");  // the host's key of acme
  CHECK(login(host_key) == 0);
  CHECK(login(r1) == 401);
  PutTenant(server, "acme", R"({"keys":[{"kid":"r1","key":")" + hex1 + R"("}]})");
  CHECK(im::test::WaitUntil([&] { return login(r1) == 0; }));
  CHECK(login(host_key) == 401);  // the registry's keys replace the host's for acme
  // The admin API never shows key material.
  auto got = Http(port, "GET", "/v1/admin/tenants/acme", "", kOperatorKey);
  CHECK(got.text.find(hex1) == std::string::npos);
  CHECK(got.body["keys"][0]["kid"] == "r1");
  CHECK_FALSE(got.body["keys"][0].HasMember("key"));
  // Rotation: r2 signs, r1 still passes; a PUT without keys keeps them.
  PutTenant(server, "acme", R"({"keys":[{"kid":"r2","key":")" + hex2 + R"("},{"kid":"r1","key":")" +
                                hex1 + R"("}]})");
  PutTenant(server, "acme", R"({"quotas":{"max_devices_per_user":3}})");
  CHECK(im::test::WaitUntil([&] { return login(r2) == 0; }));
  CHECK(login(r1) == 0);
  auto minted = Http(port, "POST", "/v1/tokens", R"({"user":"bob"})", kAcmeAdminKey);
  REQUIRE(minted.status == 201);
  CHECK(login(minted.Str("token")) == 0);
  // r1 removed: its tokens get 401 once the cache (50 ms) has passed.
  PutTenant(server, "acme", R"({"keys":[{"kid":"r2","key":")" + hex2 + R"("}]})");
  CHECK(im::test::WaitUntil([&] { return login(r1) == 401; }));
  CHECK(login(r2) == 0);
  // Other tenants keep the host's keys.
  CHECK(login(server.Token("alice")) == 0);
  // Bad keys are 400 and change nothing.
  for (const std::string& bad :
       {std::string(R"({"keys":[{"kid":"r3","key":"abc"}]})"),
        std::string(R"({"keys":[{"kid":"","key":")") + hex1 + R"("}]})",
        std::string(R"({"keys":[{"kid":"a","key":")") + hex1 + R"("},{"kid":"a","key":")" +
            hex2 + R"("}]})"}) {
    CHECK_MESSAGE(Http(port, "PUT", "/v1/admin/tenants/acme", bad, kOperatorKey).status == 400,
                  bad);
  }
  CHECK(login(r2) == 0);
}

TEST_CASE("tenants: the filter reload is the operator's when an operator key is set") {
  auto reloads = std::make_shared<std::atomic<int>>(0);
  auto count_reloads = [reloads](im::ServerDeps& d) {
    d.reload_filter = [reloads] {
      reloads->fetch_add(1);
      return im::Status::OK();
    };
  };
  const std::string path = "/v1/admin/filter/reload";
  {
    // An operator key: the server's word list applies to every tenant, so no tenant reloads it.
    TestServer server(TenantOptions(), count_reloads);
    const uint16_t port = server.server().http_port();
    CHECK(Http(port, "POST", path).status == 401);
    for (const std::string& credential :
         {std::string(kAcmeAdminKey), std::string(TestServer::kAdminKey),
          server.Token("eve", "acme")}) {
      auto r = Http(port, "POST", path, "", credential);
      CHECK(r.status == 403);
      CHECK(r.Str("error") == "operator_only");
    }
    CHECK(reloads->load() == 0);
    auto r = Http(port, "POST", path, "", kOperatorKey);
    CHECK(r.status == 200);
    CHECK(r.text == R"({"reloaded":true})");
    CHECK(reloads->load() == 1);
  }
  {
    // No operator key (a single-tenant deployment): any tenant's admin key, as before.
    im::ServerOptions o = TenantOptions();
    o.operator_key.clear();
    TestServer server(o, count_reloads);
    const uint16_t port = server.server().http_port();
    CHECK(Http(port, "POST", path, "", kAcmeAdminKey).status == 200);
    CHECK(Http(port, "POST", path, "", TestServer::kAdminKey).status == 200);
    auto user = Http(port, "POST", path, "", server.Token("eve", "acme"));
    CHECK(user.status == 403);
    CHECK(user.Str("error") == "admin_only");
    CHECK(reloads->load() == 3);
  }
}
