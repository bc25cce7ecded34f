// GroupService conformance: every backend added (im::conformance::AddBackend or
// RunGroupServiceSuite) runs the same cases. `open` must return an empty service; a persistent
// backend also sets `reopen`, which closes nothing itself (the caller drops the old instance
// first) and opens the data of the last `open` again.

#include <doctest/doctest.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "im/backends.h"
#include "im/group_service.h"
#include "suites/suite.h"

namespace im {
namespace conformance::internal {
void LinkGroupServiceSuite() {}
}  // namespace conformance::internal

namespace {

using conformance::GroupServiceBackend;
using conformance::internal::CheckError;
using conformance::internal::Must;
using conformance::internal::MustOk;

template <typename Body>
void ForEachBackend(Body body) {
  conformance::internal::ForEachBackend<GroupServiceBackend>(body);
}

constexpr TimestampMs kT0 = 1'700'000'000'000;

GroupKey G(const std::string& gid, const std::string& tenant = "default") {
  return GroupKey{tenant, gid};
}

// Every member, paging through Members.
std::vector<GroupMember> AllPages(GroupService& s, const GroupKey& key, size_t limit = 500) {
  std::vector<GroupMember> all;
  std::string after;
  for (;;) {
    MemberPage page = Must(s.Members(key, after, limit));
    all.insert(all.end(), page.members.begin(), page.members.end());
    if (!page.more) return all;
    REQUIRE_FALSE(page.members.empty());
    after = page.members.back().user;
  }
}

std::string RoleOf(GroupService& s, const GroupKey& key, const std::string& user) {
  for (const GroupMember& m : AllPages(s, key)) {
    if (m.user == user) return m.role;
  }
  return "";
}

TEST_CASE("GroupService: create then get") {
  ForEachBackend([](const GroupServiceBackend& backend) {
    std::shared_ptr<GroupService> s = backend.open({});
    // The owner among the members and a duplicate are ignored.
    GroupInfo created = Must(s->Create(G("g1"), "Friends ✓", "alice", {"bob", "carol", "bob",
                                                                         "alice"}, kT0));
    CHECK(created.key == G("g1"));
    CHECK(created.name == "Friends ✓");
    CHECK(created.owner == "alice");
    CHECK(created.member_count == 3);
    CHECK(created.created_ms == kT0);

    GroupInfo got = Must(s->Get(G("g1")));
    CHECK(got.key == G("g1"));
    CHECK(got.name == "Friends ✓");
    CHECK(got.owner == "alice");
    CHECK(got.member_count == 3);
    CHECK(got.created_ms == kT0);

    std::vector<GroupMember> members = AllPages(*s, G("g1"));
    REQUIRE(members.size() == 3);
    CHECK(members[0].user == "alice");
    CHECK(members[0].role == "owner");
    CHECK(members[1].user == "bob");
    CHECK(members[1].role == "member");
    CHECK(members[2].user == "carol");
    CHECK(members[2].role == "member");
    for (const GroupMember& m : members) CHECK(m.joined_ms == kT0);
    CHECK(Must(s->AllMembers(G("g1"))) == std::vector<std::string>{"alice", "bob", "carol"});

    // A group of the owner alone.
    CHECK(Must(s->Create(G("solo"), "Solo", "alice", {}, kT0)).member_count == 1);
    CHECK(Must(s->AllMembers(G("solo"))) == std::vector<std::string>{"alice"});
  });
}

TEST_CASE("GroupService: create on an existing gid is 409 group_exists") {
  ForEachBackend([](const GroupServiceBackend& backend) {
    std::shared_ptr<GroupService> s = backend.open({});
    MustOk(s->Create(G("g1"), "First", "alice", {"bob"}, kT0).status());
    CheckError(s->Create(G("g1"), "Second", "carol", {"dave"}, kT0 + 1), Code::kConflict,
               "group_exists");
    GroupInfo info = Must(s->Get(G("g1")));
    CHECK(info.name == "First");
    CHECK(info.owner == "alice");
    CHECK(Must(s->AllMembers(G("g1"))) == std::vector<std::string>{"alice", "bob"});
  });
}

TEST_CASE("GroupService: ids and names are validated") {
  ForEachBackend([](const GroupServiceBackend& backend) {
    std::shared_ptr<GroupService> s = backend.open({});
    const std::string long_id(65, 'x');
    for (const std::string& gid : {std::string(), long_id, std::string("g\n1"),
                                   std::string("g\xC2\x85"), std::string("\xFF")}) {
      CAPTURE(gid);
      CheckError(s->Create(G(gid), "Name", "alice", {}, kT0), Code::kBadRequest, "bad_request");
      CheckError(s->Get(G(gid)), Code::kBadRequest, "bad_request");
      CheckError(s->Join(G(gid), "bob", kT0), Code::kBadRequest, "bad_request");
      CheckError(s->Quit(G(gid), "bob"), Code::kBadRequest, "bad_request");
      CheckError(s->Members(G(gid), "", 10), Code::kBadRequest, "bad_request");
      CheckError(s->IsMember(G(gid), "bob"), Code::kBadRequest, "bad_request");
      CheckError(s->AllMembers(G(gid)), Code::kBadRequest, "bad_request");
    }
    CheckError(s->Create(G("g1", ""), "Name", "alice", {}, kT0), Code::kBadRequest,
               "bad_request");
    CHECK(Must(s->Create(G(std::string(64, 'g')), "Name", "alice", {}, kT0)).member_count == 1);

    const std::string max_name(128, 'n');
    for (const std::string& name :
         {std::string(), max_name + "n", std::string("bad \xC3\x28"), std::string("\xED\xA0\x80"),
          std::string("tab\there"), std::string("del\x7F"), std::string("c1 \xC2\x9F")}) {
      CAPTURE(name);
      CheckError(s->Create(G("g1"), name, "alice", {}, kT0), Code::kBadRequest, "bad_request");
    }
    CheckError(s->Create(G("g1"), "Name", "", {}, kT0), Code::kBadRequest, "bad_request");
    CheckError(s->Create(G("g1"), "Name", long_id, {}, kT0), Code::kBadRequest, "bad_request");
    CheckError(s->Create(G("g1"), "Name", "alice", {"bob", ""}, kT0), Code::kBadRequest,
               "bad_request");
    CheckError(s->Create(G("g1"), "Name", "alice", {"bob", "x\x01"}, kT0), Code::kBadRequest,
               "bad_request");
    // Nothing of a rejected create was stored.
    CheckError(s->Get(G("g1")), Code::kNotFound, "not_found");

    // 128 bytes of multi-byte UTF-8 is within the limit.
    std::string accents;
    for (int i = 0; i < 64; ++i) accents += "é";
    MustOk(s->Create(G("g1"), max_name, "alice", {"bob"}, kT0).status());
    MustOk(s->Create(G("g2"), accents, "alice", {}, kT0).status());
    CheckError(s->Join(G("g1"), "", kT0), Code::kBadRequest, "bad_request");
    CheckError(s->Join(G("g1"), long_id, kT0), Code::kBadRequest, "bad_request");
    CheckError(s->Quit(G("g1"), "b\x7F"), Code::kBadRequest, "bad_request");
    CheckError(s->IsMember(G("g1"), ""), Code::kBadRequest, "bad_request");
  });
}

TEST_CASE("GroupService: max_members applies to create and join") {
  ForEachBackend([](const GroupServiceBackend& backend) {
    GroupLimits limits;
    limits.max_members = 3;
    std::shared_ptr<GroupService> s = backend.open(limits);
    CheckError(s->Create(G("big"), "Big", "alice", {"b", "c", "d"}, kT0), Code::kForbidden,
               "group_full");
    CheckError(s->Get(G("big")), Code::kNotFound, "not_found");
    // Duplicates and the owner do not count twice.
    CHECK(Must(s->Create(G("g1"), "G", "alice", {"b", "c", "b", "alice"}, kT0)).member_count ==
          3);
    CheckError(s->Join(G("g1"), "d", kT0), Code::kForbidden, "group_full");
    CHECK(Must(s->Get(G("g1"))).member_count == 3);
    CHECK_FALSE(Must(s->IsMember(G("g1"), "d")));
    // A place freed by a quit can be taken again.
    MustOk(s->Quit(G("g1"), "b"));
    MustOk(s->Join(G("g1"), "d", kT0 + 1));
    CheckError(s->Join(G("g1"), "e", kT0 + 2), Code::kForbidden, "group_full");
  });
}

TEST_CASE("GroupService: join then quit updates membership") {
  ForEachBackend([](const GroupServiceBackend& backend) {
    std::shared_ptr<GroupService> s = backend.open({});
    MustOk(s->Create(G("g1"), "G", "alice", {}, kT0).status());
    CHECK_FALSE(Must(s->IsMember(G("g1"), "bob")));
    MustOk(s->Join(G("g1"), "bob", kT0 + 5));
    CHECK(Must(s->IsMember(G("g1"), "bob")));
    CHECK(Must(s->IsMember(G("g1"), "alice")));
    CHECK(Must(s->Get(G("g1"))).member_count == 2);
    std::vector<GroupMember> members = AllPages(*s, G("g1"));
    REQUIRE(members.size() == 2);
    CHECK(members[1].user == "bob");
    CHECK(members[1].role == "member");
    CHECK(members[1].joined_ms == kT0 + 5);

    MustOk(s->Quit(G("g1"), "bob"));
    CHECK_FALSE(Must(s->IsMember(G("g1"), "bob")));
    CHECK(Must(s->Get(G("g1"))).member_count == 1);
    CHECK(Must(s->AllMembers(G("g1"))) == std::vector<std::string>{"alice"});
    // Joining again starts a new membership.
    MustOk(s->Join(G("g1"), "bob", kT0 + 9));
    CHECK(AllPages(*s, G("g1"))[1].joined_ms == kT0 + 9);
  });
}

TEST_CASE("GroupService: joining twice is 409 already_member") {
  ForEachBackend([](const GroupServiceBackend& backend) {
    std::shared_ptr<GroupService> s = backend.open({});
    MustOk(s->Create(G("g1"), "G", "alice", {"bob"}, kT0).status());
    CheckError(s->Join(G("g1"), "bob", kT0), Code::kConflict, "already_member");
    CheckError(s->Join(G("g1"), "alice", kT0), Code::kConflict, "already_member");
    CHECK(Must(s->Get(G("g1"))).member_count == 2);
    CHECK(RoleOf(*s, G("g1"), "alice") == "owner");
  });
}

TEST_CASE("GroupService: quitting a group one is not in is 403 not_member") {
  ForEachBackend([](const GroupServiceBackend& backend) {
    std::shared_ptr<GroupService> s = backend.open({});
    MustOk(s->Create(G("g1"), "G", "alice", {"bob"}, kT0).status());
    CheckError(s->Quit(G("g1"), "carol"), Code::kForbidden, "not_member");
    MustOk(s->Quit(G("g1"), "bob"));
    CheckError(s->Quit(G("g1"), "bob"), Code::kForbidden, "not_member");
    CHECK(Must(s->Get(G("g1"))).member_count == 1);
  });
}

TEST_CASE("GroupService: a missing group is 404 everywhere") {
  ForEachBackend([](const GroupServiceBackend& backend) {
    std::shared_ptr<GroupService> s = backend.open({});
    MustOk(s->Create(G("other"), "G", "alice", {}, kT0).status());
    CheckError(s->Get(G("nope")), Code::kNotFound, "not_found");
    CheckError(s->Join(G("nope"), "bob", kT0), Code::kNotFound, "not_found");
    CheckError(s->Quit(G("nope"), "alice"), Code::kNotFound, "not_found");
    CheckError(s->Members(G("nope"), "", 10), Code::kNotFound, "not_found");
    CheckError(s->IsMember(G("nope"), "alice"), Code::kNotFound, "not_found");
    CheckError(s->AllMembers(G("nope")), Code::kNotFound, "not_found");
    // A failed join created nothing.
    CheckError(s->Get(G("nope")), Code::kNotFound, "not_found");
  });
}

TEST_CASE("GroupService: the longest-standing member inherits ownership") {
  ForEachBackend([](const GroupServiceBackend& backend) {
    std::shared_ptr<GroupService> s = backend.open({});
    MustOk(s->Create(G("g1"), "G", "owner", {"m2", "m1"}, kT0).status());
    MustOk(s->Join(G("g1"), "a-late", kT0 + 10));
    // m1 and m2 joined together: the smaller id wins; a-late is smaller still but joined later.
    MustOk(s->Quit(G("g1"), "owner"));
    GroupInfo info = Must(s->Get(G("g1")));
    CHECK(info.owner == "m1");
    CHECK(info.member_count == 3);
    CHECK(RoleOf(*s, G("g1"), "m1") == "owner");
    CHECK(RoleOf(*s, G("g1"), "m2") == "member");
    CHECK(RoleOf(*s, G("g1"), "a-late") == "member");

    MustOk(s->Quit(G("g1"), "m1"));
    CHECK(Must(s->Get(G("g1"))).owner == "m2");
    MustOk(s->Quit(G("g1"), "m2"));
    info = Must(s->Get(G("g1")));
    CHECK(info.owner == "a-late");
    CHECK(info.member_count == 1);
    std::vector<GroupMember> members = AllPages(*s, G("g1"));
    REQUIRE(members.size() == 1);
    CHECK(members[0].role == "owner");
    CHECK(members[0].joined_ms == kT0 + 10);  // the hand-over keeps the join time
    // A member quitting leaves the owner alone.
    MustOk(s->Join(G("g1"), "z", kT0 + 20));
    MustOk(s->Quit(G("g1"), "z"));
    CHECK(Must(s->Get(G("g1"))).owner == "a-late");
  });
}

TEST_CASE("GroupService: the last member to quit deletes the group") {
  ForEachBackend([](const GroupServiceBackend& backend) {
    std::shared_ptr<GroupService> s = backend.open({});
    MustOk(s->Create(G("g1"), "Old", "alice", {"bob"}, kT0).status());
    MustOk(s->Quit(G("g1"), "alice"));
    MustOk(s->Quit(G("g1"), "bob"));
    CheckError(s->Get(G("g1")), Code::kNotFound, "not_found");
    CheckError(s->AllMembers(G("g1")), Code::kNotFound, "not_found");
    CheckError(s->Join(G("g1"), "bob", kT0), Code::kNotFound, "not_found");
    // The gid is free again, and nothing of the old group comes back with it.
    GroupInfo info = Must(s->Create(G("g1"), "New", "carol", {}, kT0 + 100));
    CHECK(info.name == "New");
    CHECK(info.owner == "carol");
    CHECK(info.member_count == 1);
    CHECK(info.created_ms == kT0 + 100);
    CHECK(Must(s->AllMembers(G("g1"))) == std::vector<std::string>{"carol"});
    CHECK_FALSE(Must(s->IsMember(G("g1"), "bob")));
  });
}

TEST_CASE("GroupService: members pages by user cursor") {
  ForEachBackend([](const GroupServiceBackend& backend) {
    std::shared_ptr<GroupService> s = backend.open({});
    std::vector<std::string> users;
    for (int i = 0; i < 24; ++i) users.push_back("u" + std::to_string(100 + i));
    MustOk(s->Create(G("g1"), "G", "u100", users, kT0).status());
    MustOk(s->Join(G("g1"), "é-late", kT0 + 1));  // bytewise after every "u..." id
    users.push_back("é-late");

    MemberPage page = Must(s->Members(G("g1"), "", 10));
    REQUIRE(page.members.size() == 10);
    CHECK(page.more);
    CHECK(page.members.front().user == "u100");
    CHECK(page.members.back().user == "u109");
    page = Must(s->Members(G("g1"), "u109", 10));
    REQUIRE(page.members.size() == 10);
    CHECK(page.more);
    CHECK(page.members.front().user == "u110");
    page = Must(s->Members(G("g1"), "u119", 10));
    REQUIRE(page.members.size() == 5);
    CHECK_FALSE(page.more);
    CHECK(page.members.back().user == "é-late");
    CHECK(page.members.back().joined_ms == kT0 + 1);
    // Exactly `limit` left: no more.
    page = Must(s->Members(G("g1"), "u119", 5));
    CHECK(page.members.size() == 5);
    CHECK_FALSE(page.more);
    // The cursor need not be a member, and past the end is an empty page.
    page = Must(s->Members(G("g1"), "u1125", 3));
    REQUIRE(page.members.size() == 3);
    CHECK(page.members.front().user == "u113");
    page = Must(s->Members(G("g1"), "\xF4\x8F\xBF\xBF", 10));
    CHECK(page.members.empty());
    CHECK_FALSE(page.more);

    std::vector<std::string> paged;
    for (const GroupMember& m : AllPages(*s, G("g1"), 7)) paged.push_back(m.user);
    CHECK(paged == users);
    CHECK(Must(s->AllMembers(G("g1"))) == users);
    CHECK(Must(s->Members(G("g1"), "", 500)).members.size() == 25);

    CheckError(s->Members(G("g1"), "", 0), Code::kBadRequest, "bad_request");
    CheckError(s->Members(G("g1"), "", 501), Code::kBadRequest, "bad_request");
    CheckError(s->Members(G("missing"), "", 0), Code::kBadRequest, "bad_request");
  });
}

TEST_CASE("GroupService: tenants are isolated") {
  ForEachBackend([](const GroupServiceBackend& backend) {
    std::shared_ptr<GroupService> s = backend.open({});
    MustOk(s->Create(G("g1", "t1"), "One", "alice", {"bob"}, kT0).status());
    CheckError(s->Get(G("g1", "t2")), Code::kNotFound, "not_found");
    MustOk(s->Create(G("g1", "t2"), "Two", "carol", {}, kT0 + 1).status());
    // Components that concatenate alike stay apart: (t, 1g) is not (t1, g), nor g1 a prefix of g.
    MustOk(s->Create(G("1g1", "t"), "Three", "dave", {}, kT0).status());
    MustOk(s->Create(G("g", "t1"), "Four", "erin", {"1x"}, kT0).status());

    MustOk(s->Join(G("g1", "t1"), "zed", kT0));
    CHECK(Must(s->Get(G("g1", "t1"))).name == "One");
    CHECK(Must(s->Get(G("g1", "t2"))).name == "Two");
    CHECK(Must(s->AllMembers(G("g1", "t1"))) == std::vector<std::string>{"alice", "bob", "zed"});
    CHECK(Must(s->AllMembers(G("g1", "t2"))) == std::vector<std::string>{"carol"});
    CHECK(Must(s->AllMembers(G("1g1", "t"))) == std::vector<std::string>{"dave"});
    CHECK(Must(s->AllMembers(G("g", "t1"))) == std::vector<std::string>{"1x", "erin"});
    CHECK_FALSE(Must(s->IsMember(G("g1", "t2"), "alice")));

    // Deleting t2's group leaves t1's.
    MustOk(s->Quit(G("g1", "t2"), "carol"));
    CheckError(s->Get(G("g1", "t2")), Code::kNotFound, "not_found");
    CHECK(Must(s->Get(G("g1", "t1"))).member_count == 3);
  });
}

// Joins users "t<thread>-<i>" from `threads` threads at once; returns the number that succeeded
// and counts 403 group_full answers in `*full`.
size_t JoinConcurrently(GroupService& s, const GroupKey& key, int threads, int per_thread,
                        size_t* full) {
  std::atomic<size_t> ok{0};
  std::atomic<size_t> rejected{0};
  std::atomic<size_t> other{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        Status st = s.Join(key, "t" + std::to_string(t) + "-" + std::to_string(i), kT0 + i);
        if (st.ok()) {
          ++ok;
        } else if (st.code() == Code::kForbidden && st.error() == "group_full") {
          ++rejected;
        } else {
          ++other;
        }
      }
    });
  }
  for (std::thread& w : workers) w.join();
  CHECK(other.load() == 0);
  *full = rejected.load();
  return ok.load();
}

TEST_CASE("GroupService: concurrent joins into one group are all counted") {
  ForEachBackend([](const GroupServiceBackend& backend) {
    std::shared_ptr<GroupService> s = backend.open({});
    MustOk(s->Create(G("g1"), "G", "owner", {}, kT0).status());
    size_t full = 0;
    CHECK(JoinConcurrently(*s, G("g1"), 8, 100, &full) == 800);
    CHECK(full == 0);
    CHECK(Must(s->Get(G("g1"))).member_count == 801);
    CHECK(Must(s->AllMembers(G("g1"))).size() == 801);
    CHECK(AllPages(*s, G("g1")).size() == 801);
  });
}

TEST_CASE("GroupService: concurrent joins stop exactly at max_members") {
  ForEachBackend([](const GroupServiceBackend& backend) {
    GroupLimits limits;
    limits.max_members = 500;
    std::shared_ptr<GroupService> s = backend.open(limits);
    MustOk(s->Create(G("g1"), "G", "owner", {}, kT0).status());
    size_t full = 0;
    // The owner holds one of the 500 places.
    CHECK(JoinConcurrently(*s, G("g1"), 8, 100, &full) == 499);
    CHECK(full == 301);
    CHECK(Must(s->Get(G("g1"))).member_count == 500);
    CHECK(Must(s->AllMembers(G("g1"))).size() == 500);
  });
}

TEST_CASE("GroupService: concurrent creates of one gid let exactly one win") {
  ForEachBackend([](const GroupServiceBackend& backend) {
    std::shared_ptr<GroupService> s = backend.open({});
    std::atomic<int> created{0};
    std::atomic<int> conflicts{0};
    std::vector<std::thread> workers;
    for (int t = 0; t < 8; ++t) {
      workers.emplace_back([&, t] {
        Result<GroupInfo> r = s->Create(G("g1"), "G", "owner" + std::to_string(t), {}, kT0);
        if (r.ok()) {
          ++created;
        } else if (r.status().error() == "group_exists") {
          ++conflicts;
        }
      });
    }
    for (std::thread& w : workers) w.join();
    CHECK(created.load() == 1);
    CHECK(conflicts.load() == 7);
    CHECK(Must(s->AllMembers(G("g1"))).size() == 1);
  });
}

TEST_CASE("GroupService: CountGroupsOf counts creates and joins, less quits") {
  ForEachBackend([](const GroupServiceBackend& backend) {
    GroupLimits limits;
    limits.max_members = 3;
    std::shared_ptr<GroupService> s = backend.open(limits);
    const UserKey bob{"default", "bob"};
    CHECK(Must(s->CountGroupsOf(bob)) == 0);
    MustOk(s->Create(G("g1"), "One", "alice", {"bob"}, kT0).status());  // named in a create
    MustOk(s->Create(G("g2"), "Two", "bob", {}, kT0).status());         // its owner
    MustOk(s->Create(G("g3"), "Three", "carol", {"dave"}, kT0).status());
    MustOk(s->Join(G("g3"), "bob", kT0));
    CHECK(Must(s->CountGroupsOf(bob)) == 3);
    CHECK(Must(s->CountGroupsOf(UserKey{"default", "alice"})) == 1);
    // Refusals count nothing: a second join, a join of a full group, a create on a taken gid,
    // a create over max_members, a quit of a group one is not in.
    CheckError(s->Join(G("g1"), "bob", kT0), Code::kConflict, "already_member");
    CheckError(s->Join(G("g3"), "erin", kT0), Code::kForbidden, "group_full");
    CheckError(s->Create(G("g1"), "Again", "erin", {"frank"}, kT0), Code::kConflict,
               "group_exists");
    CheckError(s->Create(G("g4"), "Big", "erin", {"a", "b", "c"}, kT0), Code::kForbidden,
               "group_full");
    CheckError(s->Quit(G("g3"), "erin"), Code::kForbidden, "not_member");
    CHECK(Must(s->CountGroupsOf(UserKey{"default", "erin"})) == 0);
    CHECK(Must(s->CountGroupsOf(UserKey{"default", "frank"})) == 0);
    CHECK(Must(s->CountGroupsOf(bob)) == 3);
    // Another tenant's bob is another user.
    MustOk(s->Create(G("g1", "t2"), "Other", "bob", {}, kT0).status());
    CHECK(Must(s->CountGroupsOf(UserKey{"t2", "bob"})) == 1);
    CHECK(Must(s->CountGroupsOf(bob)) == 3);
    // Quits: an owner's (the group stays), the last member's (the group goes).
    MustOk(s->Quit(G("g1"), "bob"));
    MustOk(s->Quit(G("g2"), "bob"));
    CHECK(Must(s->CountGroupsOf(bob)) == 1);
    MustOk(s->Create(G("g2"), "Two again", "zoe", {}, kT0).status());
    CHECK(Must(s->CountGroupsOf(bob)) == 1);
    MustOk(s->Join(G("g2"), "bob", kT0));
    CHECK(Must(s->CountGroupsOf(bob)) == 2);
    CHECK(Must(s->CountGroupsOf(UserKey{"default", "alice"})) == 1);
    if (!backend.reopen) return;
    s.reset();
    s = backend.reopen(limits);
    CHECK(Must(s->CountGroupsOf(bob)) == 2);
    MustOk(s->Quit(G("g3"), "bob"));
    CHECK(Must(s->CountGroupsOf(bob)) == 1);
  });
}

TEST_CASE("GroupService: groups survive a reopen") {
  ForEachBackend([](const GroupServiceBackend& backend) {
    if (!backend.reopen) return;
    GroupLimits limits;
    limits.max_members = 4;
    std::shared_ptr<GroupService> s = backend.open(limits);
    MustOk(s->Create(G("g1"), "Friends", "alice", {"bob", "carol"}, kT0).status());
    MustOk(s->Join(G("g1"), "dave", kT0 + 7));
    MustOk(s->Quit(G("g1"), "alice"));  // bob inherits
    MustOk(s->Create(G("g1", "t2"), "Other", "erin", {}, kT0 + 1).status());
    MustOk(s->Create(G("gone"), "Gone", "zoe", {}, kT0).status());
    MustOk(s->Quit(G("gone"), "zoe"));

    s.reset();
    s = backend.reopen(limits);
    GroupInfo info = Must(s->Get(G("g1")));
    CHECK(info.name == "Friends");
    CHECK(info.owner == "bob");
    CHECK(info.member_count == 3);
    CHECK(info.created_ms == kT0);
    std::vector<GroupMember> members = AllPages(*s, G("g1"));
    REQUIRE(members.size() == 3);
    CHECK(members[0].user == "bob");
    CHECK(members[0].role == "owner");
    CHECK(members[0].joined_ms == kT0);
    CHECK(members[1].user == "carol");
    CHECK(members[1].role == "member");
    CHECK(members[2].user == "dave");
    CHECK(members[2].joined_ms == kT0 + 7);
    CHECK_FALSE(Must(s->IsMember(G("g1"), "alice")));
    CHECK(Must(s->Get(G("g1", "t2"))).owner == "erin");
    CheckError(s->Get(G("gone")), Code::kNotFound, "not_found");

    // The stored count still guards max_members, and mutations after the reopen persist too.
    MustOk(s->Join(G("g1"), "frank", kT0 + 8));
    CheckError(s->Join(G("g1"), "gina", kT0 + 9), Code::kForbidden, "group_full");
    MustOk(s->Quit(G("g1"), "bob"));
    s.reset();
    s = backend.reopen(limits);
    info = Must(s->Get(G("g1")));
    CHECK(info.owner == "carol");
    CHECK(info.member_count == 3);
    CHECK(Must(s->AllMembers(G("g1"))) == std::vector<std::string>{"carol", "dave", "frank"});
  });
}

}  // namespace
}  // namespace im
