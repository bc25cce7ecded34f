// The socket command group.create and the REST endpoint POST /v1/groups go through one code
// path (GroupOps): the same group object, the same system event, the same refusals.
#include <doctest/doctest.h>

#include "support/http.h"
#include "support/test_server.h"

using im::test::CodeOf;
using im::test::Http;
using im::test::RawClient;
using im::test::Str;
using im::test::TestServer;

namespace {

// The parts of a chat.message push that do not depend on the group: everything but the group
// id, mid, seq and time.
std::string EventShape(const rapidjson::Value& body) {
  std::string extra;
  for (auto it = body["extra"].MemberBegin(); it != body["extra"].MemberEnd(); ++it) {
    extra += std::string(it->name.GetString()) + "=" + it->value.GetString() + ";";
  }
  return Str(body, "type") + "|" + Str(body, "from") + "|" + Str(body, "body") + "|" + extra;
}

}  // namespace

TEST_CASE("group fronts: socket and REST group.create produce the same system event") {
  im::ServerOptions options;
  TestServer ts(options, [](im::ServerDeps& deps) {
    auto filter = im::NewWordFilter({"badword"}, im::FilterMode::kMask);
    REQUIRE(filter.ok());
    deps.filter = *filter;
  });
  RawClient alice(ts.TcpUrl()), bob(ts.WsUrl());
  REQUIRE(alice.Login(ts.Token("alice")) == 0);
  REQUIRE(bob.Login(ts.Token("bob")) == 0);

  rapidjson::Document d;
  REQUIRE(alice.Call(1, "group.create", R"({"name":"badword team","members":["bob"],"gid":"s1"})",
                     &d));
  REQUIRE(CodeOf(d) == 0);
  CHECK(Str(d["body"], "name") == "******* team");  // the filter ran on the socket path
  REQUIRE(bob.WaitPush("chat.message", &d));
  CHECK(Str(d["body"], "group") == "s1");
  const std::string socket_event = EventShape(d["body"]);

  auto r = Http(ts.server().http_port(), "POST", "/v1/groups",
                R"({"name":"badword team","members":["bob"],"gid":"r1"})", ts.Token("alice"));
  REQUIRE(r.status == 201);
  CHECK(r.Str("name") == "******* team");  // and on the REST path
  REQUIRE(bob.WaitPush("chat.message", &d));
  CHECK(Str(d["body"], "group") == "r1");
  const std::string rest_event = EventShape(d["body"]);

  CHECK(socket_event == "system|alice|alice created the group|event=created;user=alice;");
  CHECK(rest_event == socket_event);

  // The stored events are alike too (alice's inbox: one per group).
  auto page = ts.deps().inbox->Fetch({"default", "alice"}, 0, 10);
  REQUIRE(page.ok());
  REQUIRE(page->entries.size() == 2);
  const im::Message& a = *page->entries[0].message;
  const im::Message& b = *page->entries[1].message;
  CHECK(a.group == "s1");
  CHECK(b.group == "r1");
  CHECK(a.type == b.type);
  CHECK(a.body == b.body);
  CHECK(a.extra == b.extra);

  // A taken gid: 409 group_exists from both fronts.
  REQUIRE(alice.Call(2, "group.create", R"({"name":"x","members":[],"gid":"r1"})", &d));
  CHECK(CodeOf(d) == 409);
  r = Http(ts.server().http_port(), "POST", "/v1/groups", R"({"name":"x","gid":"s1"})",
           ts.Token("alice"));
  CHECK(r.status == 409);
  CHECK(r.Str("error") == "group_exists");
}
