// The REST conventions of protocol.md section 11 and the null rule of section 1, over real
// sockets: empty bodies, null fields, and a members cursor that visits every member once.
#include <doctest/doctest.h>

#include <atomic>
#include <set>
#include <string>
#include <vector>

#include "support/http.h"
#include "support/test_server.h"

using im::test::Http;
using im::test::RawClient;
using im::test::TestServer;

TEST_CASE("rest rules: an empty body is bad_json where a body is taken, ignored where none is") {
  auto reloads = std::make_shared<std::atomic<int>>(0);
  TestServer ts({}, [reloads](im::ServerDeps& deps) {
    deps.reload_filter = [reloads] {
      ++*reloads;
      return im::Status::OK();
    };
  });
  const uint16_t port = ts.server().http_port();
  const std::string token = ts.Token("alice");
  struct Case {
    const char* path;
    std::string bearer;
  };
  for (const Case& c : {Case{"/v1/users", ""}, Case{"/v1/tokens", ""},
                        Case{"/v1/groups", token}, Case{"/v1/messages", TestServer::kAdminKey}}) {
    for (const char* body : {"", " \r\n\t "}) {
      const std::string path = c.path, text = body;
      CAPTURE(path);
      CAPTURE(text);
      auto r = Http(port, "POST", c.path, body, c.bearer);
      CHECK(r.status == 400);
      CHECK(r.Str("error") == "bad_json");
    }
  }
  // The filter reload takes no body: empty, {} or anything else is ignored.
  const std::string bodies[] = {"", "{}", "not json", std::string(100, '[')};
  for (const std::string& body : bodies) {
    CAPTURE(body);
    auto r = Http(port, "POST", "/v1/admin/filter/reload", body, TestServer::kAdminKey);
    CHECK(r.status == 200);
  }
  CHECK(reloads->load() == 4);
}

TEST_CASE("rest rules: a field given as null counts as absent, on the socket and on REST") {
  TestServer ts;
  const uint16_t port = ts.server().http_port();
  RawClient alice(ts.TcpUrl());
  REQUIRE(alice.Login(ts.Token("alice")) == 0);
  rapidjson::Document d;
  REQUIRE(alice.Call(1, "group.create", R"({"name":"team","members":["bob"],"gid":null})", &d));
  REQUIRE(im::test::CodeOf(d) == 0);
  const std::string gid = d["body"]["gid"].GetString();
  CHECK(gid.rfind("g", 0) == 0);  // a generated gid
  // A required field given as null is missing.
  REQUIRE(alice.Call(2, "group.create", R"({"name":"x","members":null})", &d));
  CHECK(im::test::CodeOf(d) == 400);
  CHECK(std::string(d["message"].GetString()) == "missing field 'members'");
  REQUIRE(alice.Call(3, "group.members", R"({"gid":")" + gid + R"(","after":null,"limit":null})",
                     &d));
  CHECK(im::test::CodeOf(d) == 0);
  CHECK(d["body"]["members"].Size() == 2);

  auto r = Http(port, "POST", "/v1/groups", R"({"name":"rest","gid":null,"members":null})",
                ts.Token("alice"));
  CHECK(r.status == 201);
  CHECK(r.Str("gid").rfind("g", 0) == 0);
  r = Http(port, "POST", "/v1/users",
           R"({"user":"carol","password":"correct horse","display_name":null,"tenant":null})");
  CHECK(r.status == 201);
  CHECK(r.Str("tenant") == "default");
  r = Http(port, "POST", "/v1/tokens",
           R"({"user":"carol","password":"correct horse","ttl_s":null,"tenant":null})");
  CHECK(r.status == 201);
  r = Http(port, "POST", "/v1/messages",
           R"({"to":"bob","group":null,"from":null,"cid":null,"type":null,"extra":null,"body":"hi"})",
           TestServer::kAdminKey);
  CHECK(r.status == 200);
  r = Http(port, "POST", "/v1/users", R"({"user":null,"password":"correct horse"})");
  CHECK(r.status == 400);
  CHECK(r.Str("message") == "missing field 'user'");
}

TEST_CASE("rest rules: paging members by next visits ids holding '+' and spaces exactly once") {
  TestServer ts;
  const uint16_t port = ts.server().http_port();
  // Byte order: "a c" < "a+c" < "a%c" ... the ids that made a decoded-but-unencoded cursor loop.
  const std::vector<std::string> others = {"a c", "a+c", "a%2Bc", "a&limit=1", "ab", "a c+d",
                                           "zed", "a",   "\xc3\xbc+1"};
  std::string list;
  for (const std::string& u : others) list += (list.empty() ? "\"" : ",\"") + u + "\"";
  auto r = Http(port, "POST", "/v1/groups", R"({"name":"p","gid":"gp","members":[)" + list + "]}",
                ts.Token("owner"));
  REQUIRE(r.status == 201);
  std::set<std::string> expected(others.begin(), others.end());
  expected.insert("owner");
  for (const int limit : {1, 2, 3}) {
    CAPTURE(limit);
    std::multiset<std::string> seen;
    std::string target = "/v1/groups/gp/members?limit=" + std::to_string(limit);
    for (int page = 0; page < 20; ++page) {
      r = Http(port, "GET", target, "", ts.Token("owner"));
      REQUIRE(r.status == 200);
      for (const auto& m : r.body["members"].GetArray()) seen.insert(m["user"].GetString());
      if (!r.body["more"].GetBool()) {
        CHECK_FALSE(r.body.HasMember("next"));
        break;
      }
      REQUIRE(r.body.HasMember("next"));
      target = "/v1/groups/gp/members?limit=" + std::to_string(limit) + "&after=" + r.Str("next");
    }
    CHECK(seen == std::multiset<std::string>(expected.begin(), expected.end()));
  }
}

TEST_CASE("rest rules: 7.0 and 1e2 are not integers, on the socket and on REST") {
  TestServer ts;
  RawClient c(ts.TcpUrl());
  REQUIRE(c.Login(ts.Token("alice")) == 0);
  rapidjson::Document d;
  for (const char* id : {"7.0", "1e2", "-1"}) {
    CAPTURE(id);
    c.Send(std::string(R"({"id":)") + id + R"(,"cmd":"ping"})");
    auto text = c.NextText();
    REQUIRE(text.has_value());
    REQUIRE(im::test::ParseJson(*text, &d));
    CHECK(im::test::ErrorOf(d) == "bad_json");
  }
  for (const char* body : {R"({"after":1e2})", R"({"after":0.0})", R"({"limit":7.0})"}) {
    CAPTURE(body);
    REQUIRE(c.Call(9, "chat.sync", body, &d));
    CHECK(im::test::CodeOf(d) == 400);
    CHECK(im::test::ErrorOf(d) == "bad_request");
  }
  REQUIRE(c.Call(10, "chat.sync", R"({"after":0,"limit":7})", &d));
  CHECK(im::test::CodeOf(d) == 0);
  auto r = Http(ts.server().http_port(), "POST", "/v1/tokens",
                R"({"user":"alice","ttl_s":1e2})", TestServer::kAdminKey);
  CHECK(r.status == 400);
  CHECK(r.Str("error") == "bad_request");
  r = Http(ts.server().http_port(), "GET", "/v1/groups/g1/members?limit=1e2", "",
           TestServer::kAdminKey);
  CHECK(r.status == 400);
}
