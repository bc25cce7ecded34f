// GroupOps without sockets: create (the filter on the name, generated gids, the created
// event), join and quit with their events and who receives them, and the not_member rules.
#include <doctest/doctest.h>

#include "unit/service_world.h"

namespace im {
namespace {

using internal::GroupOps;
using test::ServiceWorld;

Result<GroupInfo> CreateWait(ServiceWorld& w, const std::string& owner, GroupOps::CreateArgs a) {
  std::promise<Result<GroupInfo>> p;
  auto f = p.get_future();
  Status s = w.groups->Create(UserKey{"default", owner}, std::move(a),
                              [&p](const Result<GroupInfo>& g) { p.set_value(g); });
  if (!s.ok()) return s;
  return f.get();
}

Status ChangeWait(ServiceWorld& w, const std::string& gid, const std::string& user, bool join) {
  std::promise<Status> p;
  auto f = p.get_future();
  auto done = [&p](const Status& s) { p.set_value(s); };
  GroupKey key{"default", gid};
  Status s = join ? w.groups->Join(key, user, done) : w.groups->Quit(key, user, done);
  if (!s.ok()) return s;
  return f.get();
}

// The system events (extra) in `user`'s inbox, in order.
std::vector<std::string> EventsOf(ServiceWorld& w, const std::string& user) {
  auto r = w.inbox->Fetch(UserKey{"default", user}, 0, 100);
  REQUIRE(r.ok());
  std::vector<std::string> out;
  for (const InboxEntry& e : r->entries) {
    if (e.message->type == "system") out.push_back(e.message->extra);
  }
  return out;
}

TEST_CASE("GroupOps: create appends the created event to every member") {
  ServiceWorld w;
  auto g = CreateWait(w, "alice", {"team", "", {"bob", "carol", "bob"}});
  REQUIRE_MESSAGE(g.ok(), g.status().ToString());
  CHECK(g->key.gid.rfind("g", 0) == 0);  // generated
  CHECK(g->owner == "alice");
  CHECK(g->member_count == 3);
  const std::string created = R"({"event":"created","user":"alice"})";
  for (const char* u : {"alice", "bob", "carol"}) {
    CHECK(EventsOf(w, u) == std::vector<std::string>{created});
  }
  auto r = w.inbox->Fetch(UserKey{"default", "bob"}, 0, 1);
  REQUIRE(r.ok());
  CHECK(r->entries.at(0).message->body == "alice created the group");
  CHECK(r->entries.at(0).message->group == g->key.gid);
  CHECK(test::CountEvents(w.Events(), {R"("event":"group_created")", g->key.gid}) == 1);
  // The same gid again: 409, and no second event.
  auto again = CreateWait(w, "bob", {"other", g->key.gid, {}});
  REQUIRE_FALSE(again.ok());
  CHECK(again.status().error() == "group_exists");
  CHECK(EventsOf(w, "bob").size() == 1);
}

TEST_CASE("GroupOps: the content filter applies to the name") {
  auto reject = NewWordFilter({"badword"}, FilterMode::kReject);
  REQUIRE(reject.ok());
  ServiceWorld w(nullptr, *reject);
  auto g = CreateWait(w, "alice", {"badword club", "g1", {}});
  REQUIRE_FALSE(g.ok());
  CHECK(g.status().error() == "content_rejected");
  CHECK_FALSE(w.groups->Info(GroupKey{"default", "g1"}).ok());

  auto mask = NewWordFilter({"badword"}, FilterMode::kMask);
  REQUIRE(mask.ok());
  ServiceWorld m(nullptr, *mask);
  auto masked = CreateWait(m, "alice", {"badword club", "g1", {}});
  REQUIRE(masked.ok());
  CHECK(masked->name == "******* club");
}

TEST_CASE("GroupOps: join is heard by every member, quit by those who remain") {
  ServiceWorld w;
  REQUIRE(CreateWait(w, "alice", {"team", "g1", {"bob"}}).ok());
  REQUIRE(ChangeWait(w, "g1", "carol", /*join=*/true).ok());
  const std::string joined = R"({"event":"joined","user":"carol"})";
  CHECK(EventsOf(w, "carol") == std::vector<std::string>{joined});
  CHECK(EventsOf(w, "alice").back() == joined);
  REQUIRE(ChangeWait(w, "g1", "bob", /*join=*/false).ok());
  const std::string quit = R"({"event":"quit","user":"bob"})";
  CHECK(EventsOf(w, "alice").back() == quit);
  CHECK(EventsOf(w, "carol").back() == quit);
  CHECK(EventsOf(w, "bob").back() != quit);  // the one who left does not hear it
  // Quitting again: not a member.
  Status again = ChangeWait(w, "g1", "bob", /*join=*/false);
  CHECK(again.code() == Code::kForbidden);
  CHECK(again.error() == "not_member");
}

TEST_CASE("GroupOps: members needs a member, and says the same for a missing group") {
  ServiceWorld w;
  REQUIRE(CreateWait(w, "alice", {"team", "g1", {"bob"}}).ok());
  const std::string bob = "bob", eve = "eve";
  auto page = w.groups->Members(GroupKey{"default", "g1"}, &bob, "", 1);
  REQUIRE(page.ok());
  CHECK(page->members.size() == 1);
  CHECK(page->more);
  auto outsider = w.groups->Members(GroupKey{"default", "g1"}, &eve, "", 10);
  REQUIRE_FALSE(outsider.ok());
  CHECK(outsider.status().error() == "not_member");
  auto missing = w.groups->Members(GroupKey{"default", "nope"}, &eve, "", 10);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().error() == "not_member");
  auto admin = w.groups->Members(GroupKey{"default", "g1"}, nullptr, "", 10);
  REQUIRE(admin.ok());
  CHECK(admin->members.size() == 2);
}

TEST_CASE("GroupOps: ParseCreate - members required on the socket, optional in REST") {
  rapidjson::Document doc;
  REQUIRE(internal::ParseJson(R"({"name":"team"})", &doc).ok());
  GroupOps::CreateArgs a;
  CHECK(GroupOps::ParseCreate(internal::Fields(&doc), true, &a).code() == Code::kBadRequest);
  GroupOps::CreateArgs b;
  CHECK(GroupOps::ParseCreate(internal::Fields(&doc), false, &b).ok());
  REQUIRE(internal::ParseJson(R"({"name":"team","members":["ok",7]})", &doc).ok());
  GroupOps::CreateArgs c;
  CHECK(GroupOps::ParseCreate(internal::Fields(&doc), false, &c).code() == Code::kBadRequest);
  REQUIRE(internal::ParseJson(R"({"name":"team","gid":"","members":[]})", &doc).ok());
  GroupOps::CreateArgs d;
  CHECK(GroupOps::ParseCreate(internal::Fields(&doc), true, &d).code() == Code::kBadRequest);
}

}  // namespace
}  // namespace im
