// The web service over real HTTP on 127.0.0.1.
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <asio.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "im/content_filter.h"
#include "support/test_server.h"

using im::test::RawClient;
using im::test::TestServer;

namespace {

struct HttpResult {
  int status = 0;
  rapidjson::Document body;
};

// One HTTP/1.1 request on a fresh connection (Connection: close); reads to EOF.
HttpResult Http(uint16_t port, const std::string& method, const std::string& target,
                const std::string& body = "", const std::string& bearer = "") {
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  if (!bearer.empty()) req += "Authorization: Bearer " + bearer + "\r\n";
  if (!body.empty() || method == "POST") {
    req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  req += "\r\n" + body;
  std::string resp = im::test::HttpRoundTrip(port, req);
  HttpResult r;
  if (resp.size() > 12) r.status = std::stoi(resp.substr(9, 3));
  auto split = resp.find("\r\n\r\n");
  std::string payload = split == std::string::npos ? "" : resp.substr(split + 4);
  r.body.Parse(payload.data(), payload.size());
  return r;
}

std::string Str(const rapidjson::Value& v, const char* k) {
  return v.IsObject() && v.HasMember(k) && v[k].IsString() ? v[k].GetString() : "";
}

}  // namespace

TEST_CASE("rest: users and password tokens") {
  TestServer ts;
  uint16_t port = ts.server().http_port();
  auto r = Http(port, "POST", "/v1/users",
                R"({"user":"alice","password":"correct horse","display_name":"Alice A."})");
  CHECK(r.status == 201);
  CHECK(Str(r.body, "user") == "alice");
  CHECK(Str(r.body, "display_name") == "Alice A.");
  CHECK_FALSE(r.body.HasMember("password"));
  r = Http(port, "POST", "/v1/users", R"({"user":"alice","password":"another one"})");
  CHECK(r.status == 409);
  CHECK(Str(r.body, "error") == "user_exists");

  r = Http(port, "POST", "/v1/tokens", R"({"user":"alice","password":"wrong password"})");
  CHECK(r.status == 401);
  CHECK(Str(r.body, "error") == "bad_credentials");
  r = Http(port, "POST", "/v1/tokens", R"({"user":"nobody","password":"wrong password"})");
  CHECK(r.status == 401);
  CHECK(Str(r.body, "error") == "bad_credentials");
  r = Http(port, "POST", "/v1/tokens", R"({"user":"alice","password":"correct horse","ttl_s":600})");
  REQUIRE(r.status == 201);
  std::string token = Str(r.body, "token");
  CHECK(r.body["expires_ms"].GetInt64() > 0);

  // The token works on the socket and on the REST API.
  RawClient c(ts.WsUrl());
  CHECK(c.Login(token) == 0);
  r = Http(port, "GET", "/v1/users/alice", "", token);
  CHECK(r.status == 200);
  CHECK(Str(r.body, "display_name") == "Alice A.");
  r = Http(port, "GET", "/v1/users/nobody", "", token);
  CHECK(r.status == 404);
  r = Http(port, "GET", "/v1/users/alice");
  CHECK(r.status == 401);
  r = Http(port, "GET", "/v1/users/alice", "", "forged.token.here");
  CHECK(r.status == 401);
}

TEST_CASE("rest: admin minted tokens and server-side sends reach online and offline users") {
  TestServer ts;
  uint16_t port = ts.server().http_port();
  auto r = Http(port, "POST", "/v1/tokens", R"({"user":"bob"})", TestServer::kAdminKey);
  REQUIRE(r.status == 201);
  std::string bob_token = Str(r.body, "token");
  r = Http(port, "POST", "/v1/tokens", R"({"user":"bob"})", "not-the-admin-key");
  CHECK(r.status == 401);
  r = Http(port, "POST", "/v1/tokens", R"({"user":"bob","tenant":"acme"})", TestServer::kAdminKey);
  CHECK(r.status == 403);  // an admin key is for its own tenant

  RawClient bob(ts.TcpUrl());
  REQUIRE(bob.Login(bob_token) == 0);
  r = Http(port, "POST", "/v1/messages", R"({"to":"bob","body":"from the backend","cid":"srv1"})",
           TestServer::kAdminKey);
  REQUIRE(r.status == 200);
  CHECK_FALSE(Str(r.body, "mid").empty());
  rapidjson::Document d;
  REQUIRE(bob.WaitPush("chat.message", &d));
  CHECK(Str(d["body"], "body") == "from the backend");
  r = Http(port, "POST", "/v1/messages", R"({"to":"bob","body":"again","cid":"srv1"})",
           TestServer::kAdminKey);
  CHECK(r.status == 200);
  CHECK(r.body["duplicate"].GetBool());

  // Offline: it waits in the inbox.
  r = Http(port, "POST", "/v1/messages", R"({"to":"carol","from":"bob","body":"later"})",
           TestServer::kAdminKey);
  REQUIRE(r.status == 200);
  auto inbox = ts.deps().inbox->Fetch({"default", "carol"}, 0, 10);
  REQUIRE(inbox.ok());
  REQUIRE(inbox->entries.size() == 1);
  CHECK(inbox->entries[0].message->from == "bob");
  // A user token may not send server-side.
  r = Http(port, "POST", "/v1/messages", R"({"to":"bob","body":"x"})", bob_token);
  CHECK(r.status == 403);
}

TEST_CASE("rest: groups over HTTP") {
  TestServer ts;
  uint16_t port = ts.server().http_port();
  std::string alice = ts.Token("alice"), eve = ts.Token("eve");
  auto r = Http(port, "POST", "/v1/groups", R"({"name":"ops","members":["bob"],"gid":"ops"})", alice);
  REQUIRE(r.status == 201);
  CHECK(Str(r.body, "owner") == "alice");
  CHECK(r.body["member_count"].GetUint64() == 2);
  r = Http(port, "GET", "/v1/groups/ops", "", eve);
  CHECK(r.status == 200);
  r = Http(port, "GET", "/v1/groups/ops/members?limit=1", "", alice);
  REQUIRE(r.status == 200);
  CHECK(r.body["members"].Size() == 1);
  CHECK(r.body["more"].GetBool());
  r = Http(port, "GET", "/v1/groups/ops/members", "", eve);
  CHECK(r.status == 403);
  r = Http(port, "GET", "/v1/groups/ops/members", "", TestServer::kAdminKey);
  CHECK(r.status == 200);
  r = Http(port, "GET", "/v1/groups/nope", "", alice);
  CHECK(r.status == 404);
  r = Http(port, "POST", "/v1/messages", R"({"group":"ops","body":"deploy at 5"})",
           TestServer::kAdminKey);
  CHECK(r.status == 200);
  CHECK(ts.deps().inbox->Fetch({"default", "bob"}, 0, 10)->entries.size() == 2);
}

TEST_CASE("rest: ids in paths and queries are percent-decoded") {
  TestServer ts;
  uint16_t port = ts.server().http_port();
  // An id may hold spaces, '/', '+', '%' and any UTF-8: clients send them percent-encoded.
  auto r = Http(port, "POST", "/v1/users",
                "{\"user\":\"ann lee/\u00fc+1%\",\"password\":\"correct horse\"}");
  REQUIRE(r.status == 201);
  const std::string user = Str(r.body, "user");
  CHECK(user == "ann lee/\xc3\xbc+1%");
  std::string token = ts.Token(user);
  r = Http(port, "GET", "/v1/users/ann%20lee%2F%C3%BC+1%25", "", token);
  CHECK(r.status == 200);
  CHECK(Str(r.body, "user") == user);
  CHECK(Http(port, "GET", "/v1/users/ann%20lee%2f%c3%bc+1%25", "", token).status == 200);
  // Undecoded, the same bytes name somebody else.
  CHECK(Http(port, "GET", "/v1/users/ann%20lee", "", token).status == 404);

  r = Http(port, "POST", "/v1/groups", R"({"name":"a/b","gid":"team a/b","members":["bob","carl"]})",
           ts.Token("alice"));
  REQUIRE(r.status == 201);
  r = Http(port, "GET", "/v1/groups/team%20a%2Fb", "", ts.Token("alice"));
  CHECK(r.status == 200);
  CHECK(Str(r.body, "gid") == "team a/b");
  // In a query '+' is a space; after=bob skips alice and bob.
  r = Http(port, "GET", "/v1/groups/team+a%2Fb", "", ts.Token("alice"));
  CHECK(r.status == 404);  // '+' in a path is a plus sign: no such group
  r = Http(port, "GET", "/v1/groups/team%20a%2Fb/members?after=b%6Fb&limit=%35", "",
           ts.Token("alice"));
  REQUIRE(r.status == 200);
  REQUIRE(r.body["members"].Size() == 1);
  CHECK(Str(r.body["members"][0], "user") == "carl");

  // Malformed escapes are 400, in the path and in the query.
  r = Http(port, "GET", "/v1/users/ann%2", "", token);
  CHECK(r.status == 400);
  CHECK(Str(r.body, "error") == "bad_request");
  CHECK(Http(port, "GET", "/v1/users/%zz", "", token).status == 400);
  CHECK(Http(port, "GET", "/v1/groups/team%20a%2Fb/members?limit=%G1", "", ts.Token("alice"))
            .status == 400);
}

TEST_CASE("rest: bad requests get the protocol's codes") {
  TestServer ts;
  uint16_t port = ts.server().http_port();
  CHECK(Http(port, "POST", "/v1/users", "{broken").status == 400);
  CHECK(Str(Http(port, "POST", "/v1/users", "{broken").body, "error") == "bad_json");
  CHECK(Http(port, "POST", "/v1/users", R"({"user":"x"})").status == 400);
  CHECK(Http(port, "POST", "/v1/users", R"({"user":"x","password":5})").status == 400);
  CHECK(Http(port, "POST", "/v1/users", R"({"user":"x","password":"short"})").status == 400);
  CHECK(Http(port, "GET", "/v1/users").status == 405);
  CHECK(Http(port, "DELETE", "/v1/users/x").status == 405);
  CHECK(Http(port, "GET", "/v1/nothing").status == 404);
  CHECK(Http(port, "GET", "/nothing").status == 404);
  CHECK(Http(port, "POST", "/healthz").status == 405);
  CHECK(Http(port, "GET", "/healthz").status == 200);
  auto ready = Http(port, "GET", "/readyz");
  CHECK(ready.status == 200);
  CHECK(Str(ready.body, "status") == "ready");
  CHECK(Http(port, "POST", "/readyz").status == 405);
  auto huge = Http(port, "POST", "/v1/users", std::string(2 << 20, ' '));
  CHECK(huge.status == 413);
}

TEST_CASE("filter: chat bodies and group names are rejected or masked - reload by admin") {
  std::string words_path = "/tmp/im-filter-" + std::to_string(::getpid()) + ".txt";
  { std::ofstream(words_path) << "badword\n敏感词\n"; }
  for (im::FilterMode mode : {im::FilterMode::kReject, im::FilterMode::kMask}) {
    std::shared_ptr<im::WordFilter> filter;
    TestServer ts({}, [&](im::ServerDeps& d) {
      im::WordFilterOptions fo;
      fo.words_file = words_path;
      fo.mode = mode;
      filter = *im::OpenWordFilter(fo);
      d.filter = filter;
      d.reload_filter = [filter] { return filter->Reload(); };
    });
    RawClient alice(ts.TcpUrl()), bob(ts.WsUrl());
    REQUIRE(alice.Login(ts.Token("alice")) == 0);
    REQUIRE(bob.Login(ts.Token("bob")) == 0);
    rapidjson::Document d;
    REQUIRE(alice.Call(1, "chat.send", R"({"to":"bob","cid":"f1","body":"a B.A.D.W.O.R.D here"})", &d));
    if (mode == im::FilterMode::kReject) {
      CHECK(im::test::CodeOf(d) == 422);
      CHECK(im::test::ErrorOf(d) == "content_rejected");
      CHECK(ts.deps().inbox->Fetch({"default", "bob"}, 0, 10)->entries.empty());
    } else {
      REQUIRE(im::test::CodeOf(d) == 0);
      REQUIRE(bob.WaitPush("chat.message", &d));
      CHECK(Str(d["body"], "body") == "a *.*.*.*.*.*.* here");
    }
    REQUIRE(alice.Call(2, "chat.send", R"({"to":"bob","cid":"f2","body":"这是敏\u200b感词"})", &d));
    CHECK(im::test::CodeOf(d) == (mode == im::FilterMode::kReject ? 422 : 0));
    REQUIRE(alice.Call(3, "chat.send", R"({"to":"bob","cid":"f3","body":"a classic ＡＳＳ-free text"})", &d));
    CHECK(im::test::CodeOf(d) == 0);
    REQUIRE(alice.Call(4, "group.create", R"({"name":"badword club","members":[]})", &d));
    CHECK(im::test::CodeOf(d) == (mode == im::FilterMode::kReject ? 422 : 0));
    std::map<std::string, double> m;
    REQUIRE(im::test::ScrapeMetrics(ts.server().http_port(), &m));
    const bool reject = mode == im::FilterMode::kReject;
    CHECK(m["im_messages_rejected_total"] == (reject ? 2 : 0));
    CHECK(m["im_messages_masked_total"] == (reject ? 0 : 2));

    // A new word is picked up by a reload through the admin endpoint.
    { std::ofstream(words_path) << "badword\n敏感词\nnewword\n"; }
    uint16_t port = ts.server().http_port();
    CHECK(Http(port, "POST", "/v1/admin/filter/reload", "{}", ts.Token("alice")).status == 403);
    CHECK(Http(port, "POST", "/v1/admin/filter/reload", "{}", TestServer::kAdminKey).status == 200);
    CHECK(filter->word_count() == 3);
    REQUIRE(alice.Call(5, "chat.send", R"({"to":"bob","cid":"f5","body":"NewWord"})", &d));
    CHECK(im::test::CodeOf(d) == (mode == im::FilterMode::kReject ? 422 : 0));
    { std::ofstream(words_path) << "badword\n敏感词\n"; }
  }
  std::remove(words_path.c_str());
}


TEST_CASE("metrics: counters and histograms move by the right amounts") {
  TestServer ts({}, [](im::ServerDeps& d) {
    d.filter = *im::NewWordFilter({"forbidden"}, im::FilterMode::kReject);
  });
  uint16_t port = ts.server().http_port();
  auto scrape = [&] {
    std::map<std::string, double> m;
    REQUIRE(im::test::ScrapeMetrics(port, &m));
    return m;
  };
  auto before = scrape();
  RawClient alice(ts.TcpUrl()), bob(ts.WsUrl()), bob2(ts.TcpUrl()), bad(ts.TcpUrl());
  REQUIRE(alice.Login(ts.Token("alice")) == 0);
  REQUIRE(bob.Login(ts.Token("bob")) == 0);
  {
    // The per-tenant gauge exists once a session was online at a scrape; it must read 0 later.
    auto during = scrape();
    const std::string ws_online = "im_sessions_online{tenant=\"default\",transport=\"ws\"}";
    REQUIRE(during.count(ws_online) == 1);
    CHECK(during.at(ws_online) == 1);
  }
  REQUIRE(bob2.Login(ts.Token("bob")) == 0);  // kicks the first bob
  CHECK(bob.WaitClosed() == 4001);
  CHECK(bad.Login("x.y.z") == 401);
  rapidjson::Document d;
  for (int i = 0; i < 5; ++i) {
    REQUIRE(alice.Call(10 + i, "chat.send", R"({"to":"bob","cid":"m)" + std::to_string(i) + R"(","body":"hi"})", &d));
    REQUIRE(im::test::CodeOf(d) == 0);
    REQUIRE(bob2.WaitPush("chat.message", &d));
  }
  REQUIRE(alice.Call(20, "chat.send", R"({"to":"bob","cid":"r","body":"forbidden"})", &d));
  CHECK(im::test::CodeOf(d) == 422);
  REQUIRE(bob2.Call(21, "chat.sync", R"({"after":0,"limit":3})", &d));
  REQUIRE(d["body"]["messages"].Size() == 3);
  auto after = scrape();
  // A series missing from the scrape fails the check instead of reading as 0. One missing before
  // the traffic (a label first used by it) started at 0.
  auto get = [](const std::map<std::string, double>& m, const std::string& k) {
    auto it = m.find(k);
    return it == m.end() ? std::nan("") : it->second;
  };
  auto at = [&](const std::string& k) {
    CHECK_MESSAGE(after.count(k) == 1, "missing series " << k);
    return get(after, k);
  };
  auto delta = [&](const std::string& k) { return at(k) - (before.count(k) ? before.at(k) : 0.0); };
  // What the clients wrote and read over TCP is what the server counted, headers included.
  const double tcp_in =
      static_cast<double>(alice.bytes_sent() + bob2.bytes_sent() + bad.bytes_sent());
  const double tcp_out =
      static_cast<double>(alice.bytes_received() + bob2.bytes_received() + bad.bytes_received());
  // Three figures settle after the client saw the effect: the kicked WebSocket session counts
  // until the server has finished closing it, the fan-out counter moves after the push was
  // written, and TCP bytes are counted when a write completes. Scrape again until they settle
  // (or 5 s pass), then check everything.
  for (int i = 0; i < 250; ++i) {
    if (get(after, "im_sessions_online{tenant=\"default\",transport=\"ws\"}") == 0 &&
        get(after, "im_fanout_deliveries_total") - get(before, "im_fanout_deliveries_total") >= 5 &&
        get(after, "im_bytes_sent_total{transport=\"tcp\"}") -
                get(before, "im_bytes_sent_total{transport=\"tcp\"}") >=
            tcp_out) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    after = scrape();
  }
  CHECK(delta("im_logins_total{result=\"ok\"}") == 3);
  CHECK(delta("im_logins_total{result=\"failed\"}") == 1);
  CHECK(delta("im_kicks_total{reason=\"login_elsewhere\"}") == 1);
  CHECK(delta("im_messages_in_total") == 5);
  CHECK(delta("im_messages_rejected_total") == 1);
  CHECK(delta("im_fanout_deliveries_total") == 5);
  CHECK(at("im_connections{transport=\"tcp\"}") == 3);  // alice, bob2 and the failed login
  CHECK(at("im_sessions_online{tenant=\"default\",transport=\"tcp\"}") == 2);
  CHECK(at("im_sessions_online{tenant=\"default\",transport=\"ws\"}") == 0);  // bob was kicked
  CHECK(delta("im_messages_out_total{via=\"push\"}") == 5);
  CHECK(delta("im_messages_out_total{via=\"sync\"}") == 3);
  // Every frame both ways is counted, exactly.
  CHECK(delta("im_bytes_received_total{transport=\"tcp\"}") == tcp_in);
  CHECK(delta("im_bytes_sent_total{transport=\"tcp\"}") == tcp_out);
  CHECK(delta("im_bytes_received_total{transport=\"ws\"}") ==
        static_cast<double>(bob.bytes_sent()));
  CHECK(delta("im_bytes_sent_total{transport=\"ws\"}") ==
        static_cast<double>(bob.bytes_received()));
  // Histograms: the count, the +Inf bucket and the sum of each series, and cumulative buckets.
  auto check_histogram = [&](const std::string& name, const std::string& label, double count) {
    CAPTURE(name);
    CAPTURE(label);
    CHECK(delta(name + "_count{" + label + "}") == count);
    CHECK(delta(name + "_bucket{" + label + ",le=\"+Inf\"}") == count);
    CHECK(delta(name + "_sum{" + label + "}") > 0);
    // The buckets, by bound, are cumulative.
    const std::string prefix = name + "_bucket{" + label + ",le=\"";
    std::vector<std::pair<double, double>> buckets;  // (le, value)
    for (auto it = after.lower_bound(prefix); it != after.end() && it->first.rfind(prefix, 0) == 0;
         ++it) {
      buckets.emplace_back(std::strtod(it->first.c_str() + prefix.size(), nullptr), it->second);
    }
    std::sort(buckets.begin(), buckets.end());
    CHECK(buckets.size() > 2);
    for (size_t b = 1; b < buckets.size(); ++b) CHECK(buckets[b - 1].second <= buckets[b].second);
  };
  check_histogram("im_command_duration_seconds", "cmd=\"chat.send\"", 6);
  check_histogram("im_command_duration_seconds", "cmd=\"login\"", 4);
  // Storage: one append per stored message (each send waited for its answer, so each was a batch
  // of its own); the inbox read at each successful login; the fetch of the sync.
  check_histogram("im_store_duration_seconds", "op=\"inbox.append\"", 5);
  check_histogram("im_store_duration_seconds", "op=\"inbox.info\"", 3);
  check_histogram("im_store_duration_seconds", "op=\"inbox.fetch\"", 1);
  check_histogram("im_store_duration_seconds", "op=\"sessions.put\"", 3);
  CHECK(after.count("im_send_queue_bytes") == 1);
  CHECK(after.count("im_send_queue_max_bytes") == 1);
  CHECK(at("im_slow_consumer_closes_total{transport=\"tcp\"}") == 0);
  CHECK(at("process_resident_memory_bytes") > 0);
  CHECK(at("process_threads") > 1);
  CHECK(at("process_open_fds") > 3);
}
