// Groups on durable storage: membership, ownership and group messages through imd on LevelDB read
// back the same after a crash; group_full at GroupLimits::max_members; a group send repeated
// under its cid is stored once.
#include <doctest/doctest.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "support/child_process.h"
#include "support/imd_process.h"
#include "support/temp_dir.h"
#include "support/test_server.h"

using im::test::CodeOf;
using im::test::ErrorOf;
using im::test::RawClient;

namespace {

std::string Json(const rapidjson::Value& v) {
  rapidjson::StringBuffer out;
  rapidjson::Writer<rapidjson::StringBuffer> writer(out);
  v.Accept(writer);
  return out.GetString();
}

std::string Str(const rapidjson::Value& v, const char* k) {
  return v.IsObject() && v.HasMember(k) && v[k].IsString() ? v[k].GetString() : "";
}

// A logged-in raw connection that numbers its own requests.
class Conn {
 public:
  Conn(const std::string& url, const std::string& token, const std::string& device = "default")
      : raw_(url) {
    REQUIRE(raw_.Login(token, device) == 0);
  }
  rapidjson::Document Call(const std::string& cmd, const std::string& body) {
    rapidjson::Document d;
    REQUIRE(raw_.Call(next_id_++, cmd, body, &d, 15000));
    return d;
  }
  RawClient& raw() { return raw_; }

 private:
  RawClient raw_;
  uint32_t next_id_ = 1;
};

// Waits (bounded) until the wall clock is past `ms`, so what happens next gets a later time.
bool WaitWallClockPast(int64_t ms) {
  for (int i = 0; i < 1000; ++i) {
    if (im::SystemClock()->NowMs() > ms) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

std::string Gid(const std::string& gid) { return R"({"gid":")" + gid + R"("})"; }

// The whole inbox, as the JSON text of every synced message.
std::vector<std::string> InboxOf(Conn& c) {
  std::vector<std::string> all;
  uint64_t after = 0;
  for (;;) {
    rapidjson::Document d =
        c.Call("chat.sync", R"({"limit":500,"after":)" + std::to_string(after) + "}");
    REQUIRE(CodeOf(d) == 0);
    for (const auto& m : d["body"]["messages"].GetArray()) {
      after = m["seq"].GetUint64();
      all.push_back(Json(m));
    }
    if (!d["body"]["more"].GetBool()) return all;
  }
}

// group.members of `gid` in pages of two: each page's members, as JSON.
std::vector<std::string> MemberPages(Conn& c, const std::string& gid) {
  std::vector<std::string> pages;
  std::string after;
  for (;;) {
    rapidjson::Document d =
        c.Call("group.members", R"({"gid":")" + gid + R"(","limit":2,"after":")" + after + R"("})");
    REQUIRE(CodeOf(d) == 0);
    const auto& members = d["body"]["members"];
    REQUIRE(members.Size() >= 1);
    REQUIRE(members.Size() <= 2);
    pages.push_back(Json(members));
    after = Str(members[members.Size() - 1], "user");
    if (!d["body"]["more"].GetBool()) return pages;
  }
}

// Owner and member count of `gid` from group.info.
std::pair<std::string, uint64_t> OwnerAndCount(Conn& c, const std::string& gid) {
  rapidjson::Document d = c.Call("group.info", Gid(gid));
  REQUIRE(CodeOf(d) == 0);
  return {Str(d["body"], "owner"), d["body"]["member_count"].GetUint64()};
}

void CheckGroupFull(const rapidjson::Document& d) {
  CHECK(CodeOf(d) == 403);
  CHECK(ErrorOf(d) == "group_full");
}

using Customize = std::function<void(im::ServerDeps&)>;

// Runs `body(customize)` with groups limited to `limits`: in memory, and in LevelDB.
void ForEachGroupStorage(const im::GroupLimits& limits,
                         const std::function<void(const Customize&)>& body) {
  SUBCASE("memory") {
    body([limits](im::ServerDeps& deps) { deps.groups = im::NewMemoryGroupService(limits); });
  }
  SUBCASE("leveldb") {
    im::test::TempDir dir;
    body([limits, path = dir.path()](im::ServerDeps& deps) {
      im::test::UseLevelDb(path)(deps);
      auto groups = im::OpenLevelDbGroupService(path + "/groups-limited", limits);
      REQUIRE(groups.ok());
      deps.groups = *groups;
    });
  }
}

}  // namespace

#ifdef IMD_PATH
TEST_CASE("group storage: imd on LevelDB - groups, owners, members and events survive SIGKILL") {
  const std::string data = im::test::MakeTempDir();
  const std::vector<std::string> config =
      im::test::WriteImdConfig(data, "[storage]\nmax_group_members = 4\n");
  im::test::ImdProcess imd =
      im::test::StartImd(IMD_PATH, data, "127.0.0.1:0", "127.0.0.1:0", config);
  const std::vector<std::string> users = {"abe", "ann", "ben", "cat", "eve", "fay"};
  std::map<std::string, std::string> tokens;
  for (const std::string& u : users) tokens[u] = im::test::ImdToken(IMD_PATH, data, u);
  std::map<std::string, std::unique_ptr<Conn>> c;
  auto connect_all = [&] {
    c.clear();
    for (const std::string& u : users) c[u] = std::make_unique<Conn>(imd.tcp_url, tokens[u]);
  };
  connect_all();

  // ben and cat join at creation (same joined_ms), abe later: the owner hand-over must prefer
  // the earliest joined_ms over the smallest user id.
  rapidjson::Document d =
      c["ann"]->Call("group.create", R"({"name":"crew","gid":"g1","members":["cat","ben"]})");
  REQUIRE(CodeOf(d) == 0);
  const int64_t created_ms = d["body"]["created_ms"].GetInt64();
  CHECK(d["body"]["member_count"].GetUint64() == 3);
  REQUIRE(WaitWallClockPast(created_ms));
  REQUIRE(CodeOf(c["abe"]->Call("group.join", Gid("g1"))) == 0);
  CheckGroupFull(c["eve"]->Call("group.join", Gid("g1")));  // max_group_members = 4
  REQUIRE(CodeOf(c["ann"]->Call("group.quit", Gid("g1"))) == 0);
  CHECK(OwnerAndCount(*c["eve"], "g1") == std::make_pair(std::string("ben"), uint64_t{3}));
  REQUIRE(CodeOf(c["eve"]->Call("group.join", Gid("g1"))) == 0);
  CheckGroupFull(c["fay"]->Call("group.join", Gid("g1")));
  d = c["ben"]->Call("chat.send", R"({"group":"g1","cid":"k1","body":"hello crew"})");
  REQUIRE(CodeOf(d) == 0);
  const std::string k1 = Json(d["body"]);
  // A group emptied by its last member is deleted.
  REQUIRE(CodeOf(c["fay"]->Call("group.create", R"({"name":"solo","gid":"g2","members":[]})")) ==
          0);
  REQUIRE(CodeOf(c["fay"]->Call("group.quit", Gid("g2"))) == 0);
  CHECK(CodeOf(c["fay"]->Call("group.info", Gid("g2"))) == 404);

  const std::vector<std::string> pages = MemberPages(*c["cat"], "g1");
  REQUIRE(pages.size() == 2);
  CHECK(pages[0].find(R"("user":"abe","role":"member")") != std::string::npos);
  CHECK(pages[0].find(R"("user":"ben","role":"owner")") != std::string::npos);
  CHECK(pages[1].find(R"("user":"cat","role":"member")") != std::string::npos);
  CHECK(pages[1].find(R"("user":"eve","role":"member")") != std::string::npos);
  const std::string info = Json(c["fay"]->Call("group.info", Gid("g1"))["body"]);
  std::map<std::string, std::vector<std::string>> inboxes;
  for (const std::string& u : users) inboxes[u] = InboxOf(*c[u]);
  CHECK(inboxes["cat"].size() == 5);  // created, joined abe, quit ann, joined eve, "hello crew"
  CHECK(inboxes["ann"].size() == 2);  // created, joined abe: nothing after the quit

  // Crash, restart on the same data: everything reads back the same.
  c.clear();
  imd.process->Signal(SIGKILL);
  REQUIRE(imd.process->Wait(10000) == 128 + SIGKILL);
  imd = im::test::StartImd(IMD_PATH, data, "127.0.0.1:0", "127.0.0.1:0", config);
  connect_all();
  CHECK(Json(c["fay"]->Call("group.info", Gid("g1"))["body"]) == info);
  CHECK(MemberPages(*c["cat"], "g1") == pages);
  for (const std::string& u : users) {
    CAPTURE(u);
    CHECK(InboxOf(*c[u]) == inboxes[u]);
  }
  CHECK(CodeOf(c["fay"]->Call("group.info", Gid("g2"))) == 404);
  // The dedup record survived: k1 again is answered with the stored message, and stores nothing.
  d = c["ben"]->Call("chat.send", R"({"group":"g1","cid":"k1","body":"hello again"})");
  REQUIRE(CodeOf(d) == 0);
  CHECK(Json(d["body"]) == k1);
  CHECK(InboxOf(*c["cat"]) == inboxes["cat"]);
  // The stored member count and join order still rule: still full, and cat (joined at creation,
  // before abe) takes over from ben.
  CheckGroupFull(c["fay"]->Call("group.join", Gid("g1")));
  REQUIRE(CodeOf(c["ben"]->Call("group.quit", Gid("g1"))) == 0);
  CHECK(OwnerAndCount(*c["fay"], "g1") == std::make_pair(std::string("cat"), uint64_t{3}));
  CHECK(CodeOf(c["fay"]->Call("group.join", Gid("g1"))) == 0);
  c.clear();
  imd.process->Signal(SIGTERM);
  CHECK(imd.process->Wait(15000) == 0);
  std::filesystem::remove_all(data);
}
#endif

TEST_CASE("group storage: group_full at max_members on create and join, with its name") {
  im::GroupLimits limits;
  limits.max_members = 3;
  ForEachGroupStorage(limits, [](const Customize& customize) {
    im::test::TestServer ts({}, customize);
    Conn ann(ts.TcpUrl(), ts.Token("ann")), dan(ts.WsUrl(), ts.Token("dan")),
        eve(ts.TcpUrl(), ts.Token("eve"));
    // Four members with the creator: refused, and nothing was created.
    CheckGroupFull(
        ann.Call("group.create", R"({"name":"big","gid":"big","members":["b","c","d"]})"));
    CHECK(CodeOf(ann.Call("group.info", Gid("big"))) == 404);
    REQUIRE(CodeOf(ann.Call("group.create", R"({"name":"ok","gid":"g","members":["b"]})")) == 0);
    REQUIRE(CodeOf(dan.Call("group.join", Gid("g"))) == 0);  // 3: the limit
    CheckGroupFull(eve.Call("group.join", Gid("g")));
    CHECK(OwnerAndCount(ann, "g") == std::make_pair(std::string("ann"), uint64_t{3}));
    REQUIRE(CodeOf(dan.Call("group.quit", Gid("g"))) == 0);  // room again
    CHECK(CodeOf(eve.Call("group.join", Gid("g"))) == 0);
  });
}

TEST_CASE("group storage: a group send repeated under its cid is stored once") {
  im::test::ForEachStorage([](const Customize& customize) {
    im::test::TestServer ts({}, customize);
    // alice2 is alice on another device: the same sender.
    Conn alice(ts.TcpUrl(), ts.Token("alice")), alice2(ts.WsUrl(), ts.Token("alice"), "tablet"),
        bob(ts.TcpUrl(), ts.Token("bob")), carol(ts.WsUrl(), ts.Token("carol"));
    REQUIRE(CodeOf(alice.Call("group.create",
                              R"({"name":"d","gid":"gd","members":["bob","carol"]})")) == 0);
    rapidjson::Document first =
        alice.Call("chat.send", R"({"group":"gd","cid":"same","body":"once"})");
    REQUIRE(CodeOf(first) == 0);
    // Again, from the other device and with another body: the first send's answer.
    for (Conn* from : {&alice, &alice2}) {
      rapidjson::Document again =
          from->Call("chat.send", R"({"group":"gd","cid":"same","body":"twice"})");
      REQUIRE(CodeOf(again) == 0);
      CHECK(Str(again["body"], "mid") == Str(first["body"], "mid"));
      CHECK(again["body"]["seq"].GetUint64() == first["body"]["seq"].GetUint64());
      CHECK(again["body"]["ts"].GetInt64() == first["body"]["ts"].GetInt64());
    }
    // The same cid from another sender is another message.
    rapidjson::Document bobs = bob.Call("chat.send", R"({"group":"gd","cid":"same","body":"b"})");
    REQUIRE(CodeOf(bobs) == 0);
    CHECK(Str(bobs["body"], "mid") != Str(first["body"], "mid"));

    // Every member's inbox holds alice's message once (and no other text from alice).
    const std::string mid = Str(first["body"], "mid");
    for (Conn* member : {&alice, &bob, &carol}) {
      int from_alice = 0;
      for (const std::string& m : InboxOf(*member)) {
        rapidjson::Document e;
        REQUIRE(im::test::ParseJson(m, &e));
        if (Str(e, "from") != "alice" || Str(e, "type") != "text") continue;
        ++from_alice;
        CHECK(Str(e, "mid") == mid);
        CHECK(Str(e, "body") == "once");
      }
      CHECK(from_alice == 1);
    }
    // carol got one push of it: pushes come in seq order, so a push of a repeat would come
    // before bob's message.
    int pushes = 0;
    for (;;) {
      rapidjson::Document push;
      REQUIRE(carol.raw().WaitPush("chat.message", &push, 10000));
      if (Str(push["body"], "from") == "bob") break;
      pushes += Str(push["body"], "type") == "text";
    }
    CHECK(pushes == 1);
  });
}
