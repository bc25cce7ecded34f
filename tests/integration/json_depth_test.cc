// Deeply nested JSON over real sockets: REST bodies, socket frames and login tokens are refused
// with the protocol's errors, and the server keeps serving.
#include <doctest/doctest.h>

#include <string>

#include "auth/jwt_internal.h"
#include "im/client.h"
#include "support/http.h"
#include "support/test_server.h"

using im::test::Http;
using im::test::RawClient;
using im::test::TestServer;

namespace {

// `depth` nested arrays around nothing: "[[...]]".
std::string Nested(int depth) { return std::string(depth, '[') + std::string(depth, ']'); }

}  // namespace

TEST_CASE("json depth: a REST body of 200,000 open brackets is refused and the server keeps serving") {
  TestServer ts;
  const uint16_t port = ts.server().http_port();
  const std::string deep(200000, '[');
  const std::string token = ts.Token("alice");

  // Endpoints that read the body before any credential (their rules depend on it).
  for (const char* path : {"/v1/users", "/v1/tokens"}) {
    CAPTURE(path);
    auto r = Http(port, "POST", path, deep);
    CHECK(r.status == 400);
    CHECK(r.Str("error") == "bad_json");
    CHECK(r.Str("message").find("nested deeper than 32") != std::string::npos);
  }
  // Endpoints that need a credential refuse a request without one before reading the body.
  for (const char* path : {"/v1/groups", "/v1/messages", "/v1/admin/filter/reload"}) {
    CAPTURE(path);
    auto r = Http(port, "POST", path, deep);
    CHECK(r.status == 401);
    CHECK(r.Str("error") == "unauthenticated");
  }
  // With a credential, the body is read and refused.
  auto r = Http(port, "POST", "/v1/groups", deep, token);
  CHECK(r.status == 400);
  CHECK(r.Str("error") == "bad_json");
  r = Http(port, "POST", "/v1/messages", deep, TestServer::kAdminKey);
  CHECK(r.status == 400);
  CHECK(r.Str("error") == "bad_json");
  // An unknown path or a wrong method is answered before the body is looked at.
  r = Http(port, "POST", "/v1/nope", deep);
  CHECK(r.status == 404);
  CHECK(r.Str("error") == "not_found");
  r = Http(port, "PUT", "/v1/users", deep);
  CHECK(r.status == 405);
  CHECK(r.Str("error") == "method_not_allowed");
  r = Http(port, "POST", "/v1/users/alice", deep);
  CHECK(r.status == 405);

  // Still serving, and a body nested to the bound is fine.
  CHECK(Http(port, "GET", "/healthz").status == 200);
  r = Http(port, "POST", "/v1/users",
           R"({"user":"bob","password":"correct horse","x":)" + Nested(31) + "}");
  CHECK(r.status == 201);
  r = Http(port, "POST", "/v1/users",
           R"({"user":"carol","password":"correct horse","x":)" + Nested(32) + "}");
  CHECK(r.status == 400);
  CHECK(r.Str("error") == "bad_json");
}

TEST_CASE("json depth: a deeply nested frame is bad_json and the connection keeps working") {
  TestServer ts;
  for (const std::string& url : {ts.TcpUrl(), ts.WsUrl()}) {
    CAPTURE(url);
    RawClient c(url);
    REQUIRE(c.connected());
    rapidjson::Document d;
    // Well-formed JSON, nested one level past the bound (frame, body, x: 1 + 1 + 31).
    c.Send(R"({"id":1,"cmd":"ping","body":{"x":)" + Nested(31) + "}}");
    auto text = c.NextText();
    REQUIRE(text.has_value());
    REQUIRE(im::test::ParseJson(*text, &d));
    CHECK(im::test::CodeOf(d) == 400);
    CHECK(im::test::ErrorOf(d) == "bad_json");
    CHECK_FALSE(d.HasMember("id"));  // an envelope error, as for any bad JSON
    // At the bound it is an ordinary frame.
    REQUIRE(c.Call(2, "ping", R"({"x":)" + Nested(30) + "}", &d));
    CHECK(im::test::CodeOf(d) == 0);
    // 60,000 '[' (under max_frame_bytes) cannot take the parser down either.
    c.Send(std::string(60000, '['));
    text = c.NextText();
    REQUIRE(text.has_value());
    REQUIRE(im::test::ParseJson(*text, &d));
    CHECK(im::test::ErrorOf(d) == "bad_json");
    CHECK(c.Login(ts.Token("alice")) == 0);
    REQUIRE(c.Call(3, "ping", "{}", &d));
    CHECK(im::test::CodeOf(d) == 0);
  }
}

TEST_CASE("json depth: a correctly signed token with deep claims is 401 on socket and REST") {
  TestServer ts;
  const std::string key(32, 'k');  // TestServer's key of tenant "default"
  const std::string exp = std::to_string(im::SystemClock()->NowMs() / 1000 + 3600);
  auto token = [&](int depth) {
    return im::internal::SignJwt(R"({"alg":"HS256","typ":"JWT"})",
                                 R"({"sub":"alice","exp":)" + exp + R"(,"x":)" + Nested(depth) +
                                     "}",
                                 key);
  };
  RawClient ok(ts.TcpUrl());
  CHECK(ok.Login(token(31)) == 0);  // the claims object and 31 arrays: at the bound
  RawClient c(ts.TcpUrl());
  CHECK(c.Login(token(32)) == 401);
  const uint16_t port = ts.server().http_port();
  auto r = Http(port, "GET", "/v1/groups/g1", "", token(32));
  CHECK(r.status == 401);
  CHECK(r.Str("error") == "invalid_token");
  CHECK(Http(port, "GET", "/healthz").status == 200);
}

TEST_CASE("json depth: the client sends and reads back an extra nested to the bound") {
  TestServer ts;
  im::ClientOptions o;
  o.url = ts.TcpUrl();
  im::Client alice(o);
  REQUIRE(alice.Connect().ok());
  REQUIRE(alice.Login(ts.Token("alice")).ok());
  // The deepest extra a request can carry: an object holding 29 nested arrays (30 levels).
  im::OutgoingMessage m;
  m.to = "bob";
  m.body = "deep";
  m.extra = R"({"x":)" + Nested(29) + "}";
  auto ack = alice.Send(m);
  REQUIRE(ack.ok());
  // A chat.sync page holds it two levels deeper than the request did: still read.
  auto page = alice.Sync(0);
  REQUIRE(page.ok());
  REQUIRE(page->messages.size() == 1);
  CHECK(page->messages[0].message.extra == m.extra);
  // One level more is refused by the client itself, at once, not by a timeout.
  m.extra = R"({"x":)" + Nested(30) + "}";
  auto refused = alice.Send(m);
  CHECK(refused.status().code() == im::Code::kBadRequest);
}
