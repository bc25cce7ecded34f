// Tenant rules over REST, each answered as docs/protocol.md and docs/operations.md say, over
// real sockets: a suspended tenant's POST /v1/tokens (with a password and with its admin key),
// group_full on POST /v1/groups and on a join of a group created there, the Retry-After header
// of a tenant's REST 429, and the tenant's own sensitive words applied with the server's list
// to group names (socket and REST) and to REST POST /v1/messages, another tenant unaffected.
#include <doctest/doctest.h>

#include <string>

#include "im/content_filter.h"
#include "support/http.h"
#include "support/tenants.h"
#include "support/test_server.h"

using namespace im::test;  // NOLINT: the test support helpers

namespace {

// The value of header `name` in a raw HTTP response, "" when absent.
std::string Header(const std::string& response, const std::string& name) {
  const std::string head = response.substr(0, response.find("\r\n\r\n"));
  const size_t at = head.find("\r\n" + name + ": ");
  if (at == std::string::npos) return "";
  const size_t from = at + 2 + name.size() + 2;
  return head.substr(from, head.find("\r\n", from) - from);
}

}  // namespace

TEST_CASE("tenant rest: a suspended tenant gets no token, with a password or its admin key") {
  TestServer server(TenantOptions());
  const uint16_t port = server.server().http_port();
  REQUIRE(Http(port, "POST", "/v1/users", R"({"user":"alice","password":"pw-of-alice-123"})",
               kAcmeAdminKey)
              .status == 201);
  const std::string with_password =
      R"({"tenant":"acme","user":"alice","password":"pw-of-alice-123"})";
  REQUIRE(Http(port, "POST", "/v1/tokens", with_password).status == 201);
  REQUIRE(Http(port, "POST", "/v1/tokens", R"({"user":"bob"})", kAcmeAdminKey).status == 201);

  PutTenant(server, "acme", R"({"status":"suspended"})");
  for (const auto& [body, credential] :
       {std::pair<std::string, std::string>{with_password, ""},
        std::pair<std::string, std::string>{R"({"user":"bob"})", kAcmeAdminKey}}) {
    auto r = Http(port, "POST", "/v1/tokens", body, credential);
    CHECK_MESSAGE(r.status == 403, r.text);
    CHECK(r.Str("error") == "tenant_suspended");
    CHECK(!r.body.HasMember("token"));
  }
  // Another tenant still gets tokens.
  CHECK(Http(port, "POST", "/v1/tokens", R"({"user":"bob"})", TestServer::kAdminKey).status ==
        201);
  // Active again: both ways work.
  PutTenant(server, "acme", R"({"status":"active"})");
  CHECK(Http(port, "POST", "/v1/tokens", with_password).status == 201);
  CHECK(Http(port, "POST", "/v1/tokens", R"({"user":"bob"})", kAcmeAdminKey).status == 201);
}

TEST_CASE("tenant rest: max_group_members answers group_full to POST /v1/groups and a join") {
  TestServer server(TenantOptions());
  const uint16_t port = server.server().http_port();
  PutTenant(server, "acme", R"({"quotas":{"max_group_members":2}})");
  const std::string owner = server.Token("o", "acme");
  auto big = Http(port, "POST", "/v1/groups", R"({"name":"big","gid":"g3","members":["m1","m2"]})",
                  owner);
  CHECK(big.status == 403);
  CHECK(big.Str("error") == "group_full");
  CHECK(Http(port, "GET", "/v1/groups/g3", "", owner).status == 404);  // nothing created
  auto two = Http(port, "POST", "/v1/groups", R"({"name":"two","gid":"g2","members":["m1"]})",
                  owner);
  REQUIRE(two.status == 201);
  CHECK(two.body["member_count"].GetUint64() == 2);
  auto m2 = LoggedIn(server, "m2", "acme");
  rapidjson::Document doc;
  REQUIRE(m2->Call(1, "group.join", R"({"gid":"g2"})", &doc));
  CHECK(CodeOf(doc) == 403);
  CHECK(ErrorOf(doc) == "group_full");
  CHECK(Http(port, "GET", "/v1/groups/g2", "", owner).body["member_count"].GetUint64() == 2);
  // Another tenant has the server's bound.
  CHECK(Http(port, "POST", "/v1/groups", R"({"name":"big","gid":"g3","members":["m1","m2"]})",
             server.Token("o"))
            .status == 201);
}

TEST_CASE("tenant rest: a tenant's REST 429 carries Retry-After, the wait in whole seconds") {
  TestServer server(TenantOptions());
  const uint16_t port = server.server().http_port();
  // One request, then a token every 100 s.
  PutTenant(server, "acme", R"({"quotas":{"rest_request_rate":0.01,"rest_request_burst":1}})");
  const std::string request = std::string("GET /v1/users/nobody HTTP/1.1\r\nHost: x\r\n") +
                              "Connection: close\r\nAuthorization: Bearer " + kAcmeAdminKey +
                              "\r\n\r\n";
  const std::string first = HttpRoundTrip(port, request);
  CHECK(first.compare(0, 12, "HTTP/1.1 404") == 0);
  CHECK(Header(first, "Retry-After").empty());
  const std::string second = HttpRoundTrip(port, request);
  REQUIRE(second.compare(0, 12, "HTTP/1.1 429") == 0);
  rapidjson::Document body;
  REQUIRE(ParseJson(second.substr(second.find("\r\n\r\n") + 4), &body));
  CHECK(ErrorOf(body) == "rate_limited");
  REQUIRE(body.HasMember("retry_after_ms"));
  const int64_t ms = body["retry_after_ms"].GetInt64();
  CHECK(ms > 90000);  // about 100 s
  CHECK(ms <= 100000);
  CHECK(Header(second, "Retry-After") == std::to_string((ms + 999) / 1000));
}

TEST_CASE("tenant rest: the tenant's words and the server's apply to group names and REST sends") {
  TestServer server(TenantOptions(), [](im::ServerDeps& d) {
    d.filter = *im::NewWordFilter({"globalbad"}, im::FilterMode::kReject);
  });
  const uint16_t port = server.server().http_port();
  PutTenant(server, "acme", R"({"words":["zorblax"]})");
  auto rejected = [](const HttpResult& r) {
    return r.status == 422 && r.Str("error") == "content_rejected";
  };
  // Group names: over the socket and over REST, acme's word and the server's.
  auto a = LoggedIn(server, "a", "acme");
  rapidjson::Document doc;
  REQUIRE(a->Call(1, "group.create", R"({"name":"zorblax club","gid":"s1","members":[]})", &doc));
  CHECK(CodeOf(doc) == 422);
  CHECK(ErrorOf(doc) == "content_rejected");
  const std::string acme_token = server.Token("a", "acme");
  for (const char* name : {"zorblax club", "globalbad club"}) {
    CHECK_MESSAGE(rejected(Http(port, "POST", "/v1/groups",
                                std::string(R"({"name":")") + name + R"(","gid":"r1"})",
                                acme_token)),
                  name);
  }
  CHECK(Http(port, "GET", "/v1/groups/r1", "", acme_token).status == 404);
  CHECK(Http(port, "POST", "/v1/groups", R"({"name":"fine club","gid":"r1"})", acme_token).status ==
        201);
  // REST sends by acme's admin, to a user and as a user: both lists.
  for (const char* body : {R"({"to":"b","body":"a zorblax here"})",
                           R"({"to":"b","from":"a","body":"a zorblax here"})",
                           R"({"group":"r1","body":"a zorblax here"})",
                           R"({"to":"b","body":"a globalbad here"})"}) {
    CHECK_MESSAGE(rejected(Http(port, "POST", "/v1/messages", body, kAcmeAdminKey)), body);
  }
  CHECK(Http(port, "POST", "/v1/messages", R"({"to":"b","body":"harmless"})", kAcmeAdminKey)
            .status == 200);
  auto inbox = server.deps().inbox->Fetch({"acme", "b"}, 0, 10);
  REQUIRE(inbox.ok());
  REQUIRE(inbox->entries.size() == 1);  // the harmless one alone was stored
  CHECK(inbox->entries[0].message->body == "harmless");
  // Tenant default has the server's word alone.
  CHECK(Http(port, "POST", "/v1/messages", R"({"to":"b","body":"a zorblax here"})",
             TestServer::kAdminKey)
            .status == 200);
  CHECK(rejected(Http(port, "POST", "/v1/messages", R"({"to":"b","body":"a globalbad here"})",
                      TestServer::kAdminKey)));
  CHECK(Http(port, "POST", "/v1/groups", R"({"name":"zorblax club","gid":"r1"})",
             server.Token("a"))
            .status == 201);
}
