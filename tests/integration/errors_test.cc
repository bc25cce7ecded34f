// Error answers whose names no other test pins down: an empty WebSocket message, group_full over
// the protocol, and user_only on the REST front.
#include <doctest/doctest.h>

#include <string>

#include "im/backends.h"
#include "support/test_server.h"

using im::test::CodeOf;
using im::test::ErrorOf;
using im::test::RawClient;
using im::test::TestServer;

TEST_CASE("errors: an empty WebSocket message is bad_json without an id - the connection stays") {
  TestServer ts;
  RawClient c(ts.WsUrl());
  REQUIRE(c.connected());
  rapidjson::Document d;
  for (bool logged_in : {false, true}) {
    CAPTURE(logged_in);
    if (logged_in) REQUIRE(c.Login(ts.Token("alice")) == 0);
    c.SendRaw("");
    auto text = c.NextText();
    REQUIRE(text.has_value());
    REQUIRE(im::test::ParseJson(*text, &d));
    CHECK(CodeOf(d) == 400);
    CHECK(ErrorOf(d) == "bad_json");
    CHECK_FALSE(d.HasMember("id"));
    CHECK_FALSE(d.HasMember("cmd"));
    REQUIRE(c.Call(7, "ping", "", &d));
    CHECK(CodeOf(d) == 0);
    CHECK_FALSE(c.closed());
  }
}

TEST_CASE("errors: group.create and group.join past the member limit are 403 group_full") {
  im::GroupLimits limits;
  limits.max_members = 3;
  TestServer ts({}, [&](im::ServerDeps& d) { d.groups = im::NewMemoryGroupService(limits); });
  RawClient alice(ts.TcpUrl()), dave(ts.WsUrl());
  REQUIRE(alice.Login(ts.Token("alice")) == 0);
  REQUIRE(dave.Login(ts.Token("dave")) == 0);
  rapidjson::Document d;
  REQUIRE(
      alice.Call(1, "group.create", R"({"name":"big","members":["b","c","d"],"gid":"g1"})", &d));
  CHECK(CodeOf(d) == 403);
  CHECK(ErrorOf(d) == "group_full");
  CHECK(ts.deps().groups->Get({"default", "g1"}).status().code() == im::Code::kNotFound);
  REQUIRE(
      alice.Call(2, "group.create", R"({"name":"full","members":["bob","carol"],"gid":"g2"})", &d));
  REQUIRE(CodeOf(d) == 0);
  CHECK(d["body"]["member_count"].GetUint64() == 3);
  REQUIRE(dave.Call(3, "group.join", R"({"gid":"g2"})", &d));
  CHECK(CodeOf(d) == 403);
  CHECK(ErrorOf(d) == "group_full");
  CHECK(ts.deps().groups->Get({"default", "g2"})->member_count == 3);
  // Once someone leaves there is room again.
  REQUIRE(alice.Call(4, "group.quit", R"({"gid":"g2"})", &d));
  REQUIRE(CodeOf(d) == 0);
  REQUIRE(dave.Call(5, "group.join", R"({"gid":"g2"})", &d));
  CHECK(CodeOf(d) == 0);
}

TEST_CASE("errors: POST /v1/groups with an admin key is 403 user_only") {
  TestServer ts;
  const std::string body = R"({"name":"team","members":[],"gid":"g1"})";
  std::string resp = im::test::HttpRoundTrip(
      ts.server().http_port(),
      "POST /v1/groups HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer " +
          std::string(TestServer::kAdminKey) +
          "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
          "\r\n\r\n" + body);
  REQUIRE(resp.rfind("HTTP/1.1 403", 0) == 0);
  rapidjson::Document d;
  REQUIRE(im::test::ParseJson(resp.substr(resp.find("\r\n\r\n") + 4), &d));
  CHECK(ErrorOf(d) == "user_only");
  CHECK(ts.deps().groups->Get({"default", "g1"}).status().code() == im::Code::kNotFound);
  // A user's token creates it.
  resp = im::test::HttpRoundTrip(
      ts.server().http_port(),
      "POST /v1/groups HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer " +
          ts.Token("alice") + "\r\nContent-Type: application/json\r\nContent-Length: " +
          std::to_string(body.size()) + "\r\n\r\n" + body);
  CHECK(resp.rfind("HTTP/1.1 201", 0) == 0);
  CHECK(ts.deps().groups->Get({"default", "g1"}).ok());
}

TEST_CASE("errors: the HTTP Authorization scheme is case-insensitive - another scheme is 401") {
  TestServer ts;
  auto post = [&](const std::string& authorization, const std::string& gid) {
    const std::string body = R"({"name":"team","members":[],"gid":")" + gid + "\"}";
    return im::test::HttpRoundTrip(
        ts.server().http_port(),
        "POST /v1/groups HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: " +
            authorization + "\r\nContent-Type: application/json\r\nContent-Length: " +
            std::to_string(body.size()) + "\r\n\r\n" + body);
  };
  CHECK(post("bearer " + ts.Token("alice"), "g1").rfind("HTTP/1.1 201", 0) == 0);
  CHECK(post("BEARER " + ts.Token("alice"), "g2").rfind("HTTP/1.1 201", 0) == 0);
  CHECK(ts.deps().groups->Get({"default", "g2"}).ok());
  for (const std::string& bad : {"Basic " + ts.Token("alice"), std::string("Bearer"),
                                "Bearer" + ts.Token("alice"), "Bearers " + ts.Token("alice")}) {
    const std::string resp = post(bad, "g3");
    CHECK_MESSAGE(resp.rfind("HTTP/1.1 401", 0) == 0, bad);
    rapidjson::Document d;
    REQUIRE(im::test::ParseJson(resp.substr(resp.find("\r\n\r\n") + 4), &d));
    CHECK(ErrorOf(d) == "unauthenticated");
  }
  CHECK(ts.deps().groups->Get({"default", "g3"}).status().code() == im::Code::kNotFound);
}

TEST_CASE("errors: a member named twice in a frame - the first counts") {
  TestServer ts;
  RawClient c(ts.TcpUrl());
  REQUIRE(c.Login(ts.Token("alice")) == 0);
  rapidjson::Document d;
  c.Send(R"({"id":7,"cmd":"ping","cmd":"nope","id":8})");
  REQUIRE(c.WaitResponse(7, &d));
  CHECK(CodeOf(d) == 0);
  CHECK(im::test::Str(d, "cmd") == "ping");
  c.Send(R"({"id":9,"cmd":"nope","cmd":"ping"})");
  REQUIRE(c.WaitResponse(9, &d));
  CHECK(ErrorOf(d) == "unknown_command");
}
