// ChatService without sockets: validation errors, the content filter, the before_send hook,
// dedup, 1:1 and group sends through a real committer, sync pages, acks and the send limits.
#include <doctest/doctest.h>

#include "unit/service_world.h"

namespace im {
namespace {

using test::ServiceWorld;

std::shared_ptr<Message> To(const std::string& to, const std::string& body,
                            const std::string& type = "text") {
  auto m = std::make_shared<Message>();
  m->to = to;
  m->body = body;
  m->type = type;
  return m;
}

std::vector<std::string> Bodies(ServiceWorld& w, const std::string& user) {
  auto r = w.inbox->Fetch(UserKey{"default", user}, 0, 100);
  REQUIRE(r.ok());
  std::vector<std::string> out;
  for (const InboxEntry& e : r->entries) out.push_back(e.message->body);
  return out;
}

TEST_CASE("ChatService: a 1:1 send is stored in both inboxes and answered with a receipt") {
  ServiceWorld w;
  auto alice = w.Login("alice", "phone");
  auto r = w.SendWait(&alice.session, To("bob", "hi"), "c1");
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  CHECK(r->seq == 1);
  CHECK_FALSE(r->duplicate);
  CHECK(Bodies(w, "alice") == std::vector<std::string>{"hi"});
  CHECK(Bodies(w, "bob") == std::vector<std::string>{"hi"});
  // The same cid again: the same message, not a second one.
  auto again = w.SendWait(&alice.session, To("bob", "hi"), "c1");
  REQUIRE(again.ok());
  CHECK(again->duplicate);
  CHECK(again->mid == r->mid);
  CHECK(Bodies(w, "bob").size() == 1);
}

TEST_CASE("ChatService: validation errors name the field and store nothing") {
  ServiceWorld w([](ServerOptions& o) {
    o.max_body_bytes = 10;
    o.max_cid_bytes = 8;
  });
  auto alice = w.Login("alice", "phone");
  struct Case {
    std::shared_ptr<Message> m;
    std::string cid;
    Code code;
    std::string in_message;
  };
  std::vector<Case> cases = {
      {To("", "x"), "c", Code::kBadRequest, "'to'"},
      {To(std::string(65, 'b'), "x"), "c", Code::kBadRequest, "'to'"},
      {To("bob", "x"), "123456789", Code::kBadRequest, "'cid'"},
      {To("bob", "x", ""), "c", Code::kBadRequest, "'type'"},
      {To("bob", "0123456789x"), "c", Code::kTooLarge, "'body'"},
      {To("bob", "\xff\xfe"), "c", Code::kBadRequest, "UTF-8"},
  };
  for (Case& c : cases) {
    auto r = w.SendWait(&alice.session, c.m, c.cid);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == c.code);
    CHECK_MESSAGE(r.status().message().find(c.in_message) != std::string::npos,
                  r.status().ToString());
  }
  CHECK(Bodies(w, "bob").empty());
}

TEST_CASE("ChatService: the filter rejects (logged) or masks") {
  auto reject = NewWordFilter({"badword"}, FilterMode::kReject);
  REQUIRE(reject.ok());
  ServiceWorld w(nullptr, *reject);
  auto alice = w.Login("alice", "phone");
  auto r = w.SendWait(&alice.session, To("bob", "a badword here"), "c1");
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Code::kContentRejected);
  CHECK(r.status().error() == "content_rejected");
  CHECK(test::CountEvents(w.Events(), {R"("event":"message_rejected")", "badword"}) == 1);
  CHECK(Bodies(w, "bob").empty());

  auto mask = NewWordFilter({"badword"}, FilterMode::kMask);
  REQUIRE(mask.ok());
  ServiceWorld m(nullptr, *mask);
  auto a2 = m.Login("alice", "phone");
  REQUIRE(m.SendWait(&a2.session, To("bob", "a badword here"), "c1").ok());
  CHECK(Bodies(m, "bob") == std::vector<std::string>{"a ******* here"});
}

TEST_CASE("ChatService: before_send may veto or rewrite the content, never the addressing") {
  ServiceWorld w;
  w.hooks.before_send = [](Message& m) -> Status {
    if (m.body == "veto") return Status::Forbidden("vetoed", "no");
    if (m.body == "huge") m.body = std::string(100000, 'x');  // checked again: too large
    m.body = m.body == "huge" ? m.body : "[" + m.body + "]";
    m.to = "mallory";
    m.from = "mallory";
    return Status::OK();
  };
  auto alice = w.Login("alice", "phone");
  auto vetoed = w.SendWait(&alice.session, To("bob", "veto"), "c1");
  REQUIRE_FALSE(vetoed.ok());
  CHECK(vetoed.status().error() == "vetoed");
  auto huge = w.SendWait(&alice.session, To("bob", "huge"), "c2");
  REQUIRE_FALSE(huge.ok());
  CHECK(huge.status().code() == Code::kTooLarge);
  REQUIRE(w.SendWait(&alice.session, To("bob", "hi"), "c3").ok());
  CHECK(Bodies(w, "bob") == std::vector<std::string>{"[hi]"});
  CHECK(Bodies(w, "mallory").empty());
  auto stored = w.inbox->Fetch(UserKey{"default", "bob"}, 0, 10);
  REQUIRE(stored.ok());
  CHECK(stored->entries.at(0).message->from == "alice");
}

TEST_CASE("ChatService: group sends need a member - server-side sends without a sender") {
  ServiceWorld w;
  auto alice = w.Login("alice", "phone");
  auto carol = w.Login("carol", "phone");
  std::promise<Result<GroupInfo>> created;
  REQUIRE(w.groups
              ->Create(UserKey{"default", "alice"}, {"team", "g1", {"bob"}},
                       [&](const Result<GroupInfo>& g) { created.set_value(g); })
              .ok());
  REQUIRE(created.get_future().get().ok());
  auto to_group = [](const std::string& body) {
    auto m = std::make_shared<Message>();
    m->group = "g1";
    m->body = body;
    m->type = "text";
    return m;
  };
  auto not_member = w.SendWait(&carol.session, to_group("let me in"), "c1");
  REQUIRE_FALSE(not_member.ok());
  CHECK(not_member.status().error() == "not_member");
  REQUIRE(w.SendWait(&alice.session, to_group("hello team"), "c1").ok());
  auto server = To("bob", "from the host");
  server->tenant = "default";
  REQUIRE(w.SendWait(nullptr, server).ok());
  // bob: the created event, the group message, the server-side one.
  auto bob = Bodies(w, "bob");
  REQUIRE(bob.size() == 3);
  CHECK(bob[1] == "hello team");
  CHECK(bob[2] == "from the host");
  CHECK(Bodies(w, "carol").empty());
}

TEST_CASE("ChatService: sync pages, acks, and the per-connection send limit") {
  ServiceWorld w([](ServerOptions& o) {
    o.chat_connection_rate = 0.001;
    o.chat_connection_burst = 3;
    o.max_sync_bytes = 600;
  });
  auto alice = w.Login("alice", "phone");
  for (int i = 0; i < 5; ++i) {
    REQUIRE(w.SendWait(&alice.session, To("bob", std::string(200, 'a' + i)),
                       "c" + std::to_string(i))
                .ok());
  }
  auto page = w.chat->Sync(UserKey{"default", "bob"}, 0, 100);
  REQUIRE(page.ok());
  CHECK(page->count >= 1);
  CHECK(page->count < 5);  // max_sync_bytes cut the page
  CHECK(page->more);
  CHECK(page->json.find(R"("more":true)") != std::string::npos);
  REQUIRE(w.chat->Ack(alice.session, 3).ok());
  auto acked = w.inbox->Acked(UserKey{"default", "alice"}, "phone");
  REQUIRE(acked.ok());
  CHECK(*acked == 3);

  internal::TokenBucket first, second;
  for (int i = 0; i < 3; ++i) CHECK(w.chat->TakeSendLimits(first, alice.session.user).ok());
  Status limited = w.chat->TakeSendLimits(first, alice.session.user);
  CHECK(limited.code() == Code::kRateLimited);
  CHECK(limited.retry_after_ms() > 0);
  CHECK(w.chat->TakeSendLimits(second, alice.session.user).ok());  // another connection
}

}  // namespace
}  // namespace im

namespace im {
namespace {

TEST_CASE("TokenBucket: the per-connection chat bucket - burst, refill, refund, no reset") {
  internal::TokenBucket b;
  const internal::BucketLimit limit{0.9999995, 1};
  CHECK(b.Take(limit, 0) == 0);     // full at first
  CHECK(b.Take(limit, 0) > 990);    // then about a second until the next token
  // Refilled to a hair under one token: taken (the float tolerance), which leaves the bucket a
  // hair below zero; that must still be an empty bucket, not a new full one.
  CHECK(b.Take(limit, 1000) == 0);
  CHECK(b.Take(limit, 1000) > 990);
  b.Refund(limit);
  CHECK(b.Take(limit, 1000) == 0);
  CHECK(internal::TokenBucket().Take(internal::BucketLimit{0, 1}, 0) == 0);  // unlimited
}

}  // namespace
}  // namespace im
