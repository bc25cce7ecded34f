// The committer and its fan-out stage, without sockets: memory backends, a router that records
// (and can hold) every push, and the GatedInbox to hold appends. The cases prove what
// core/committer.h promises: acks do not wait for delivery, senders are served round-robin
// (a group flood does not hold back another sender's 1:1 ack or push), the per-lane bound
// refuses only the sender over it, membership changes stay barriers, each sender's order and
// each connection's push order (increasing seqs) hold, and a full fan-out stage holds the
// committer back without dropping anything.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/committer.h"
#include "im/backends.h"
#include "support/gate.h"
#include "support/gated_inbox.h"
#include "support/test_server.h"
#include "support/wait_until.h"

namespace im::test {
namespace {

using internal::Committer;
using internal::PendingSend;

// Records every push (per session: seq and body, in delivery order) and can hold deliveries.
class RecordingRouter final : public Router {
 public:
  struct Push {
    uint64_t seq;
    std::string body;
  };
  void Attach(const SessionInfo&, std::shared_ptr<Connection>) override {}
  void Detach(const SessionInfo&) override {}
  SendResult Deliver(const SessionInfo& target, const Frame& frame) override {
    gate_.Pass();
    // The head ends with "\"seq\":N,"; the tail is shared by every receiver of a message.
    const size_t at = frame.head.rfind(':');
    const uint64_t seq = std::stoull(frame.head.substr(at + 1));
    std::lock_guard<std::mutex> lock(mu_);
    auto it = bodies_.find(frame.tail.get());
    if (it == bodies_.end()) {
      rapidjson::Document d;
      std::string body;
      if (ParseJson(frame.ToString(), &d)) body = Str(d["body"], "body");
      it = bodies_.emplace(frame.tail.get(), std::make_pair(frame.tail, body)).first;
    }
    pushes_[target.session_id].push_back(Push{seq, it->second.second});
    order_.push_back(it->second.second);
    return SendResult::kOk;
  }
  void Close(const SessionInfo&, const Frame&, int, std::string_view) override {}
  size_t LocalCount() const override { return 0; }

  void Hold() { gate_.Close(); }
  void Release() { gate_.Open(); }
  bool WaitHeld() { return gate_.WaitHeld(10000); }
  std::vector<Push> PushesTo(const std::string& session) {
    std::lock_guard<std::mutex> lock(mu_);
    return pushes_[session];
  }
  // Every push so far, by body, in delivery order.
  std::vector<std::string> Order() {
    std::lock_guard<std::mutex> lock(mu_);
    return order_;
  }
  size_t Count() {
    std::lock_guard<std::mutex> lock(mu_);
    return order_.size();
  }
  std::map<std::string, std::vector<Push>> All() {
    std::lock_guard<std::mutex> lock(mu_);
    return pushes_;
  }

 private:
  Gate gate_;
  std::mutex mu_;
  std::map<std::string, std::vector<Push>> pushes_;
  std::vector<std::string> order_;
  // Keeps each tail alive, so its address is not reused by another message's.
  std::unordered_map<const std::string*, std::pair<std::shared_ptr<const std::string>, std::string>>
      bodies_;
};

// A committer over memory backends. Acks are recorded by the sent body, in the order the
// committer answered them.
class Harness {
 public:
  using Wrap = std::function<std::shared_ptr<OfflineQueue>(std::shared_ptr<OfflineQueue>)>;
  // `wrap` may put another store in front of the gated memory inbox.
  explicit Harness(const std::function<void(Committer::Deps&)>& tune = nullptr,
                   const Wrap& wrap = nullptr) {
    inbox_ = std::make_shared<GatedInbox>(memory_);
    store_ = wrap ? wrap(inbox_) : inbox_;
    Committer::Deps deps{store_.get(), sessions_.get(), &router_, groups_.get(), SystemClock(),
                         0,            65536,           512};
    if (tune) tune(deps);
    committer_ = std::make_unique<Committer>(deps);
    committer_->Start();
  }
  ~Harness() {
    inbox_->Open(GatedInbox::Op::kAppend);
    router_.Release();
    committer_->Stop();
  }

  // `user` online with one session, "s-<user>".
  void Online(const std::string& user) {
    SessionInfo s;
    s.user = UserKey{"t", user};
    s.device = "d";
    s.session_id = "s-" + user;
    REQUIRE(sessions_->Put(s, KickPolicy::kPerDevice).ok());
  }
  void Group(const std::string& gid, const std::string& owner,
             const std::vector<std::string>& members) {
    REQUIRE(groups_->Create(GroupKey{"t", gid}, gid, owner, members, 1).ok());
  }

  PendingSend Send(const std::string& from, const std::string& to, const std::string& body,
                   const std::string& session = "") {
    PendingSend p;
    p.message = std::make_shared<Message>();
    p.message->tenant = "t";
    p.message->from = from;
    p.message->to = to;
    p.message->body = body;
    p.sender = from;
    p.origin_session = session.empty() ? "s-" + from : session;
    p.recipients = {UserKey{"t", from}, UserKey{"t", to}};
    p.sender_index = 0;
    p.done = Recorder(body);
    return p;
  }
  PendingSend GroupSend(const std::string& from, const std::string& gid, const std::string& body) {
    PendingSend p = Send(from, "", body);
    p.message->to.clear();
    p.message->group = gid;
    p.recipients.clear();
    p.sender_index = -1;
    return p;
  }
  std::function<void(const Result<SendReceipt>&)> Recorder(const std::string& body) {
    return [this, body](const Result<SendReceipt>& r) {
      std::lock_guard<std::mutex> lock(mu_);
      acks_.push_back(body);
      if (!r.ok()) errors_[body] = r.status();
    };
  }

  std::vector<std::string> Acks() {
    std::lock_guard<std::mutex> lock(mu_);
    return acks_;
  }
  size_t AckCount() {
    std::lock_guard<std::mutex> lock(mu_);
    return acks_.size();
  }
  bool Failed(const std::string& body) {
    std::lock_guard<std::mutex> lock(mu_);
    return errors_.count(body) != 0;
  }
  // The bodies in `user`'s inbox, in seq order.
  std::vector<std::string> Inbox(const std::string& user) {
    std::vector<std::string> bodies;
    uint64_t after = 0;
    for (;;) {
      Result<FetchResult> r = memory_->Fetch(UserKey{"t", user}, after, 500);
      REQUIRE(r.ok());
      for (const InboxEntry& e : r->entries) {
        bodies.push_back(e.message->body);
        after = e.seq;
      }
      if (!r->more) return bodies;
    }
  }

  GatedInbox& inbox() { return *inbox_; }
  RecordingRouter& router() { return router_; }
  Committer& committer() { return *committer_; }
  GroupService& groups() { return *groups_; }

 private:
  std::shared_ptr<OfflineQueue> memory_ = NewMemoryOfflineQueue();
  std::shared_ptr<GatedInbox> inbox_;
  std::shared_ptr<OfflineQueue> store_;
  std::shared_ptr<SessionStore> sessions_ = NewMemorySessionStore();
  std::shared_ptr<GroupService> groups_ = NewMemoryGroupService();
  RecordingRouter router_;
  std::unique_ptr<Committer> committer_;
  std::mutex mu_;
  std::vector<std::string> acks_;
  std::map<std::string, Status> errors_;
};

std::vector<std::string> Members(size_t n, const std::string& prefix = "m") {
  std::vector<std::string> v;
  for (size_t i = 0; i < n; ++i) v.push_back(prefix + std::to_string(i));
  return v;
}

size_t IndexOf(const std::vector<std::string>& v, const std::string& x) {
  return static_cast<size_t>(std::find(v.begin(), v.end(), x) - v.begin());
}

void CheckIncreasing(const std::map<std::string, std::vector<RecordingRouter::Push>>& all) {
  for (const auto& [session, pushes] : all) {
    for (size_t i = 1; i < pushes.size(); ++i) {
      INFO("session " << session << " push " << i);
      CHECK(pushes[i - 1].seq < pushes[i].seq);
    }
  }
}

}  // namespace

TEST_CASE("committer: acks do not wait for delivery") {
  Harness h;
  h.Online("bob");
  h.router().Hold();
  REQUIRE(h.committer().Submit(h.Send("alice", "bob", "first")).ok());
  // The fan-out thread is stuck delivering "first"; the committer goes on storing and acking.
  REQUIRE(h.router().WaitHeld());
  for (int i = 0; i < 5; ++i) {
    REQUIRE(h.committer().Submit(h.Send("alice", "bob", "next" + std::to_string(i))).ok());
    // One batch at a time: each is stored and acked while the first push is still held.
    REQUIRE(WaitUntil([&] { return h.AckCount() == static_cast<size_t>(i) + 2; }));
  }
  CHECK(h.router().Count() == 0);
  CHECK(h.Inbox("bob").size() == 6);
  h.router().Release();
  REQUIRE(WaitUntil([&] { return h.router().Count() == 6; }));
  CHECK(h.router().Order() ==
        std::vector<std::string>{"first", "next0", "next1", "next2", "next3", "next4"});
  CheckIncreasing(h.router().All());
}

TEST_CASE("committer: a group flood does not delay another sender's 1:1 ack") {
  Harness h;
  h.Group("big", "flooder", Members(4999));
  h.inbox().Close(GatedInbox::Op::kAppend);
  REQUIRE(h.committer().Submit(h.GroupSend("flooder", "big", "g0")).ok());
  REQUIRE(h.inbox().WaitHeld(GatedInbox::Op::kAppend));
  // While g0 is being stored, the flooder queues 100 more and alice one 1:1 send.
  for (int i = 1; i <= 100; ++i) {
    REQUIRE(h.committer().Submit(h.GroupSend("flooder", "big", "g" + std::to_string(i))).ok());
  }
  REQUIRE(h.committer().Submit(h.Send("alice", "bob", "hello")).ok());
  h.inbox().Open(GatedInbox::Op::kAppend);
  REQUIRE(WaitUntil([&] { return h.AckCount() == 102; }, 60000));
  const std::vector<std::string> acks = h.Acks();
  // Only g0, the append already under way, is acked before alice's send.
  CHECK(IndexOf(acks, "hello") <= 1);
  // The flood stays in its own order.
  std::vector<std::string> flood;
  for (const std::string& a : acks) {
    if (a != "hello") flood.push_back(a);
  }
  for (size_t i = 0; i < flood.size(); ++i) CHECK(flood[i] == "g" + std::to_string(i));
  // No storage batch carries a big group send together with others.
  for (size_t n : h.inbox().batch_sizes()) CHECK(n <= 2);
}

TEST_CASE("committer: a big fan-out does not hold back a 1:1 push, and push order holds") {
  Harness h([](Committer::Deps& d) { d.fanout_slice = 100; });
  // 2,000 members online, bob among them: he receives both the group's pushes and alice's.
  std::vector<std::string> members = Members(1999);
  members.push_back("bob");
  for (const std::string& m : members) h.Online(m);
  h.Online("alice");
  h.Group("big", "owner", members);
  h.router().Hold();
  REQUIRE(h.committer().Submit(h.GroupSend("owner", "big", "g0")).ok());
  REQUIRE(h.router().WaitHeld());
  // Five more group messages are stored while the fan-out of g0 waits, then alice's.
  for (int i = 1; i <= 5; ++i) {
    REQUIRE(h.committer().Submit(h.GroupSend("owner", "big", "g" + std::to_string(i))).ok());
  }
  REQUIRE(WaitUntil([&] { return h.AckCount() == 6; }));
  REQUIRE(h.committer().Submit(h.Send("alice", "bob", "hello")).ok());
  REQUIRE(WaitUntil([&] { return h.AckCount() == 7; }));
  h.router().Release();
  REQUIRE(WaitUntil([&] { return h.router().Count() == 6 * 2000 + 1; }, 60000));
  // alice's push went out within about one slice of g0, not after 12,000 group pushes.
  const std::vector<std::string> order = h.router().Order();
  const size_t at = IndexOf(order, "hello");
  INFO("hello delivered after " << at << " pushes");
  CHECK(at <= 3 * 100);
  // bob got the group's pushes that were older than alice's message first: increasing seqs
  // on every connection.
  const std::vector<RecordingRouter::Push> bob = h.router().PushesTo("s-bob");
  std::vector<std::string> bob_bodies;
  for (const RecordingRouter::Push& p : bob) bob_bodies.push_back(p.body);
  CHECK(bob_bodies == std::vector<std::string>{"g0", "g1", "g2", "g3", "g4", "g5", "hello"});
  CheckIncreasing(h.router().All());
  CHECK(h.committer().fanout_depth() == 0);
}

TEST_CASE("committer: the per-lane bound refuses only the sender over it") {
  Harness h([](Committer::Deps& d) { d.lane_limit = 4; });
  h.inbox().Close(GatedInbox::Op::kAppend);
  REQUIRE(h.committer().Submit(h.Send("flooder", "x", "f0")).ok());
  REQUIRE(h.inbox().WaitHeld(GatedInbox::Op::kAppend));
  // f0 is being stored; four more may wait, the fifth is refused with a retry hint.
  for (int i = 1; i <= 4; ++i) {
    REQUIRE(h.committer().Submit(h.Send("flooder", "x", "f" + std::to_string(i))).ok());
  }
  Status refused = h.committer().Submit(h.Send("flooder", "x", "f5"));
  CHECK(refused.code() == Code::kUnavailable);
  CHECK(refused.retry_after_ms() > 0);
  // The flooder's other session shares the lane; another sender, and a server-side send in
  // the flooder's name, do not.
  CHECK(h.committer().Submit(h.Send("flooder", "x", "f6", "s-flooder-2")).code() ==
        Code::kUnavailable);
  CHECK(h.committer().Submit(h.Send("alice", "bob", "hello")).ok());
  PendingSend server_side = h.Send("flooder", "x", "system");
  server_side.origin_session.clear();
  CHECK(h.committer().Submit(std::move(server_side)).ok());
  h.inbox().Open(GatedInbox::Op::kAppend);
  REQUIRE(WaitUntil([&] { return h.AckCount() == 7; }));
  // x got the flooder's five accepted sends in order, and the server-side one.
  std::vector<std::string> x = h.Inbox("x");
  CHECK(x.size() == 6);
  x.erase(std::remove(x.begin(), x.end(), "system"), x.end());
  CHECK(x == std::vector<std::string>{"f0", "f1", "f2", "f3", "f4"});
  CHECK(!h.Failed("f5"));  // refused at Submit: its done() is never called
}

TEST_CASE("committer: membership changes are barriers") {
  Harness h;
  h.Group("g", "alice", {"bob"});
  h.inbox().Close(GatedInbox::Op::kAppend);
  REQUIRE(h.committer().Submit(h.Send("zed", "yan", "warmup")).ok());
  REQUIRE(h.inbox().WaitHeld(GatedInbox::Op::kAppend));
  // Queued while the first append is held: sends of other lanes around every change, so
  // round-robin has every chance to move a send across one.
  auto op = [&](const std::string& what) {
    return [&h, what](Committer&) {
      Status s = what == "join carol" ? h.groups().Join(GroupKey{"t", "g"}, "carol", 2)
                                      : h.groups().Quit(GroupKey{"t", "g"}, "bob");
      CHECK(s.ok());  // on the committer thread: CHECK, not REQUIRE (which throws)
    };
  };
  for (int i = 0; i < 3; ++i) {
    REQUIRE(h.committer().Submit(h.Send("zed", "yan", "z" + std::to_string(i))).ok());
  }
  REQUIRE(h.committer().Submit(h.GroupSend("alice", "g", "G1")).ok());
  REQUIRE(h.committer().SubmitOp(op("join carol")).ok());
  REQUIRE(h.committer().Submit(h.GroupSend("alice", "g", "G2")).ok());
  REQUIRE(h.committer().Submit(h.Send("zed", "yan", "z3")).ok());
  REQUIRE(h.committer().SubmitOp(op("quit bob")).ok());
  REQUIRE(h.committer().Submit(h.GroupSend("alice", "g", "G3")).ok());
  h.inbox().Open(GatedInbox::Op::kAppend);
  REQUIRE(WaitUntil([&] { return h.AckCount() == 8; }));
  CHECK(WaitUntil([&] { return h.committer().depth() == 0; }));
  CHECK(h.Inbox("bob") == std::vector<std::string>{"G1", "G2"});
  CHECK(h.Inbox("carol") == std::vector<std::string>{"G2", "G3"});
  CHECK(h.Inbox("alice") == std::vector<std::string>{"G1", "G2", "G3"});
  CHECK(h.Inbox("yan") == std::vector<std::string>{"warmup", "z0", "z1", "z2", "z3"});
}

TEST_CASE("committer: lanes keep each sender's order, big group sends included") {
  Harness h([](Committer::Deps& d) { d.batch_recipients = 100; });
  h.Group("big", "s0", Members(200));
  h.Group("small1", "s1", {"q1", "q2"});
  h.Group("small2", "s2", {"q3"});
  h.inbox().Close(GatedInbox::Op::kAppend);
  REQUIRE(h.committer().Submit(h.Send("w", "v", "warmup")).ok());
  REQUIRE(h.inbox().WaitHeld(GatedInbox::Op::kAppend));
  // s0 alternates 1:1 sends with sends to a group too big to share a batch; s1 and s2 send
  // 1:1 and to a small group.
  std::map<std::string, std::vector<std::string>> sent;
  for (int i = 0; i < 20; ++i) {
    for (const std::string s : {"s0", "s1", "s2"}) {
      const std::string body = s + "-" + std::to_string(i);
      const bool group = i % 3 == 0;
      PendingSend p = !group      ? h.Send(s, "r", body)
                      : s == "s0" ? h.GroupSend(s, "big", body)
                                  : h.GroupSend(s, s == "s1" ? "small1" : "small2", body);
      REQUIRE(h.committer().Submit(std::move(p)).ok());
      sent[s].push_back(body);
    }
  }
  h.inbox().Open(GatedInbox::Op::kAppend);
  REQUIRE(WaitUntil([&] { return h.AckCount() == 61; }));
  const std::vector<std::string> acks = h.Acks();
  for (const auto& [sender, bodies] : sent) {
    std::vector<std::string> acked;
    for (const std::string& a : acks) {
      if (a.rfind(sender + "-", 0) == 0) acked.push_back(a);
    }
    CHECK(acked == bodies);
    // The sender's own inbox too (every send is also appended to the sender's inbox).
    CHECK(h.Inbox(sender) == bodies);
  }
}

TEST_CASE("committer: a full fan-out stage holds the committer back and drops nothing") {
  Harness h([](Committer::Deps& d) {
    d.fanout_queue_limit = 10;
    d.batch_max = 1;
  });
  h.Online("bob");
  h.router().Hold();
  for (int i = 0; i < 20; ++i) {
    REQUIRE(h.committer().Submit(h.Send("alice", "bob", "m" + std::to_string(i))).ok());
  }
  REQUIRE(h.router().WaitHeld());
  // m0 is being delivered; m1..m4 fill the stage (two pushes each, ten at most), m5 is stored
  // and acked but waits to hand its pushes over; the rest wait in the committer's queue.
  REQUIRE(WaitUntil([&] { return h.AckCount() >= 6; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  CHECK(h.AckCount() == 6);
  CHECK(h.committer().fanout_depth() == 10);
  CHECK(h.committer().depth() == 14);
  h.router().Release();
  REQUIRE(WaitUntil([&] { return h.router().Count() == 20 && h.AckCount() == 20; }));
  std::vector<std::string> expected;
  for (int i = 0; i < 20; ++i) expected.push_back("m" + std::to_string(i));
  CHECK(h.router().Order() == expected);
  CheckIncreasing(h.router().All());
}

}  // namespace im::test

namespace im::test {
namespace {

// A store with a round trip: AppendBatchAsync applies the batch at once (so batches are applied
// in hand-over order, as the contract says) but answers only when the test says so, oldest
// first, like a pipelined network store whose replies are still travelling.
class PipelinedInbox final : public OfflineQueue {
 public:
  explicit PipelinedInbox(std::shared_ptr<OfflineQueue> inner) : inner_(std::move(inner)) {}

  Result<AppendResult> Append(const AppendRequest& r) override { return inner_->Append(r); }
  std::vector<Result<AppendResult>> AppendBatch(const std::vector<AppendRequest>& b) override {
    return inner_->AppendBatch(b);
  }
  void AppendBatchAsync(std::shared_ptr<const std::vector<AppendRequest>> batch,
                        AppendDone done) override {
    std::vector<Result<AppendResult>> results = inner_->AppendBatch(*batch);
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++handed_;
      cv_.notify_all();
      if (!answer_at_once_) {
        waiting_.push_back(Waiting{std::move(results), std::move(done)});
        return;
      }
    }
    done(std::move(results));
  }
  // From now on every batch is answered when handed over (a failed test must not leave the
  // committer waiting for answers at its Stop).
  void AnswerFromNowOn() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      answer_at_once_ = true;
    }
    AnswerAll();
  }
  Result<FetchResult> Fetch(const UserKey& u, uint64_t after, size_t limit) override {
    return inner_->Fetch(u, after, limit);
  }
  Result<InboxInfo> Info(const UserKey& u) override { return inner_->Info(u); }
  Status Ack(const UserKey& u, const std::string& device, uint64_t seq) override {
    return inner_->Ack(u, device, seq);
  }
  Result<uint64_t> Acked(const UserKey& u, const std::string& device) override {
    return inner_->Acked(u, device);
  }
  Result<size_t> Expire(TimestampMs now) override { return inner_->Expire(now); }

  // Batches handed over so far, and how many of them are not answered yet.
  size_t handed() {
    std::lock_guard<std::mutex> lock(mu_);
    return handed_;
  }
  size_t unanswered() {
    std::lock_guard<std::mutex> lock(mu_);
    return waiting_.size();
  }
  bool WaitHanded(size_t n, int ms = 10000) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::milliseconds(ms), [&] { return handed_ >= n; });
  }
  // Answers the oldest batch (on the calling thread, as a network store's reader would).
  void AnswerOne() {
    Waiting w;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (waiting_.empty()) return;
      w = std::move(waiting_.front());
      waiting_.pop_front();
    }
    w.done(std::move(w.results));
  }
  void AnswerAll() {
    while (unanswered() > 0) AnswerOne();
  }

 private:
  struct Waiting {
    std::vector<Result<AppendResult>> results;
    AppendDone done;
  };
  std::shared_ptr<OfflineQueue> inner_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Waiting> waiting_;
  size_t handed_ = 0;
  bool answer_at_once_ = false;
};

// Declared after the Harness: answers whatever is left before the committer stops.
struct AnswerOnExit {
  std::shared_ptr<PipelinedInbox>& store;
  ~AnswerOnExit() {
    if (store) store->AnswerFromNowOn();
  }
};

Harness::Wrap Pipelined(std::shared_ptr<PipelinedInbox>* out) {
  return [out](std::shared_ptr<OfflineQueue> inner) {
    *out = std::make_shared<PipelinedInbox>(std::move(inner));
    return *out;
  };
}

TEST_CASE("committer: batches in flight are answered in order") {
  std::shared_ptr<PipelinedInbox> store;
  Harness h([](Committer::Deps& d) { d.inflight = 3; }, Pipelined(&store));
  AnswerOnExit answer_on_exit{store};
  h.Online("b");
  // Four senders, each send in a batch of its own: the next is handed over while the earlier
  // ones are still unanswered, up to three.
  for (int i = 1; i <= 3; ++i) {
    const std::string n = std::to_string(i);
    REQUIRE(h.committer().Submit(h.Send("a" + n, "b", "m" + n)).ok());
    REQUIRE(store->WaitHanded(static_cast<size_t>(i)));
  }
  CHECK(store->unanswered() == 3);
  CHECK(h.AckCount() == 0);  // an ack means stored and answered
  REQUIRE(h.committer().Submit(h.Send("a4", "b", "m4")).ok());
  // The fourth waits for room: it is handed over only once the oldest is answered.
  CHECK_FALSE(store->WaitHanded(4, 200));
  store->AnswerOne();
  REQUIRE(store->WaitHanded(4));
  CHECK(h.Acks() == std::vector<std::string>{"m1"});
  store->AnswerAll();
  CHECK(h.Acks() == std::vector<std::string>{"m1", "m2", "m3", "m4"});
  REQUIRE(WaitUntil([&] { return h.router().Count() == 4; }));
  CHECK(h.router().Order() == std::vector<std::string>{"m1", "m2", "m3", "m4"});
  CheckIncreasing(h.router().All());
  CHECK(h.Inbox("b") == std::vector<std::string>{"m1", "m2", "m3", "m4"});
}

TEST_CASE("committer: with one batch in flight the next waits for the answer") {
  std::shared_ptr<PipelinedInbox> store;
  Harness h([](Committer::Deps& d) { d.inflight = 1; }, Pipelined(&store));
  AnswerOnExit answer_on_exit{store};
  REQUIRE(h.committer().Submit(h.Send("a1", "b", "m1")).ok());
  REQUIRE(store->WaitHanded(1));
  REQUIRE(h.committer().Submit(h.Send("a2", "b", "m2")).ok());
  CHECK_FALSE(store->WaitHanded(2, 200));
  store->AnswerOne();
  REQUIRE(store->WaitHanded(2));
  store->AnswerAll();
  CHECK(h.Acks() == std::vector<std::string>{"m1", "m2"});
}

TEST_CASE("committer: a barrier waits for the batches in flight") {
  std::shared_ptr<PipelinedInbox> store;
  Harness h([](Committer::Deps& d) { d.inflight = 4; }, Pipelined(&store));
  AnswerOnExit answer_on_exit{store};
  REQUIRE(h.committer().Submit(h.Send("a1", "b", "m1")).ok());
  REQUIRE(store->WaitHanded(1));
  std::atomic<bool> ran{false};
  std::atomic<size_t> acks_seen{0};
  REQUIRE(h.committer()
              .SubmitOp([&](Committer&) {
                acks_seen = h.AckCount();
                ran = true;
              })
              .ok());
  REQUIRE(h.committer().Submit(h.Send("a2", "b", "m2")).ok());
  // Neither the barrier nor the send queued after it runs while m1 is unanswered.
  CHECK_FALSE(WaitUntil([&] { return ran.load() || store->handed() > 1; }, 200));
  store->AnswerOne();
  REQUIRE(WaitUntil([&] { return ran.load(); }));
  CHECK(acks_seen == 1);
  REQUIRE(store->WaitHanded(2));
  store->AnswerAll();
  CHECK(h.Acks() == std::vector<std::string>{"m1", "m2"});
}

}  // namespace

namespace {

// Submits store_here sends from this thread until one is stored on it (the committer idle);
// false if none was within `tries`.
bool StoredOnCaller(Harness& h, const std::string& body, int tries = 200) {
  for (int i = 0; i < tries; ++i) {
    const std::thread::id caller = std::this_thread::get_id();
    auto on = std::make_shared<std::atomic<bool>>(false);
    PendingSend p = h.Send("alice", "bob", body + "-" + std::to_string(i));
    auto record = p.done;
    p.done = [record, on, caller](const Result<SendReceipt>& r) {
      on->store(std::this_thread::get_id() == caller);
      record(r);
    };
    REQUIRE(h.committer().Submit(std::move(p), /*store_here=*/true).ok());
    if (on->load()) return true;
    REQUIRE(WaitUntil([&] { return h.committer().depth() == 0; }));
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

}  // namespace

TEST_CASE("committer: an idle committer lets the caller store a 1:1 send, in order") {
  Harness h;
  h.Online("bob");
  REQUIRE(StoredOnCaller(h, "here"));
  const std::vector<std::string> stored = h.Inbox("bob");
  REQUIRE(!stored.empty());
  CHECK(stored.back() == h.Acks().back());
  REQUIRE(WaitUntil([&] { return h.router().Count() == stored.size(); }));
  CheckIncreasing(h.router().All());

  // A busy committer (an append held): a store_here send queues behind it, in order.
  h.inbox().Close(GatedInbox::Op::kAppend);
  REQUIRE(h.committer().Submit(h.Send("zed", "bob", "held")).ok());
  REQUIRE(h.inbox().WaitHeld(GatedInbox::Op::kAppend));
  const size_t acked = h.AckCount();
  REQUIRE(h.committer().Submit(h.Send("alice", "bob", "queued"), /*store_here=*/true).ok());
  CHECK(h.AckCount() == acked);  // not stored on this thread
  h.inbox().Open(GatedInbox::Op::kAppend);
  REQUIRE(WaitUntil([&] { return h.AckCount() == acked + 2; }));
  std::vector<std::string> inbox = h.Inbox("bob");
  REQUIRE(inbox.size() >= 2);
  CHECK(inbox[inbox.size() - 2] == "held");
  CHECK(inbox.back() == "queued");
}

TEST_CASE("committer: what is queued while a caller stores waits for it, barriers too") {
  Harness h;
  h.Group("g", "alice", {"bob"});
  REQUIRE(StoredOnCaller(h, "warmup"));
  // The committer is idle (nothing else was sent); the caller's store needs the fan-out stage
  // empty too.
  REQUIRE(WaitUntil([&] { return h.committer().fanout_depth() == 0; }));
  // The caller's store is held in the append; meanwhile a barrier and a send queue.
  h.inbox().Close(GatedInbox::Op::kAppend);
  std::atomic<bool> here{false};
  std::thread caller([&] {
    const std::thread::id id = std::this_thread::get_id();
    PendingSend p = h.Send("alice", "bob", "first");
    auto record = p.done;
    p.done = [&, record, id](const Result<SendReceipt>& r) {
      here = std::this_thread::get_id() == id;
      record(r);
    };
    CHECK(h.committer().Submit(std::move(p), /*store_here=*/true).ok());
  });
  REQUIRE(h.inbox().WaitHeld(GatedInbox::Op::kAppend));
  REQUIRE(h.committer().Submit(h.Send("zed", "bob", "second")).ok());
  std::atomic<bool> saw_first{false};
  REQUIRE(h.committer()
              .SubmitOp([&](Committer&) {
                const std::vector<std::string> bob = h.Inbox("bob");
                saw_first = std::find(bob.begin(), bob.end(), "first") != bob.end();
                CHECK(h.groups().Quit(GroupKey{"t", "g"}, "bob").ok());
              })
              .ok());
  REQUIRE(h.committer().Submit(h.GroupSend("alice", "g", "after quit")).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(h.inbox().held_appends() == 1);  // the committer waits for the caller
  h.inbox().Open(GatedInbox::Op::kAppend);
  caller.join();
  CHECK(here.load());
  REQUIRE(WaitUntil([&] {
    const std::vector<std::string> a = h.Acks();
    return IndexOf(a, "second") < a.size() && IndexOf(a, "after quit") < a.size();
  }));
  CHECK(saw_first.load());
  std::vector<std::string> bob = h.Inbox("bob");
  bob.erase(bob.begin(), std::find(bob.begin(), bob.end(), "first"));
  CHECK(bob == std::vector<std::string>{"first", "second"});
  const std::vector<std::string> acks = h.Acks();
  CHECK(IndexOf(acks, "first") < IndexOf(acks, "after quit"));
  CHECK(IndexOf(acks, "first") < IndexOf(acks, "second"));
}

}  // namespace im::test
