// The chat committer: the single place where sends become stored messages. It sequences and
// stores; delivery is the fan-out stage's (core/fanout.h).
//
// Threads. Worker threads (and the REST and host-API callers) validate a send and Submit() it.
// The committer thread (`im-commit`) assigns mids, resolves group members, appends a batch of
// sends to the OfflineQueue as one storage batch (group commit), acks each sender (the ack
// means stored), and hands the batch's pushes to the fan-out thread (`im-fanout`) without
// waiting for them: batch N+1 is stored while batch N is delivered.
//
// A send that comes alone. A worker with nothing else waiting behind a 1:1 send (Submit's
// store_here; ServerOptions::commit_on_worker, on by default) stores it itself when the
// committer thread is idle: nothing queued, no batch in flight, the fan-out stage empty. It
// takes the committer's place for that one batch (mid, ts, append, ack, hand-over to fan-out),
// and the committer thread waits for it before taking anything queued meanwhile. Sends that
// come one at a time then skip one thread hand-over; sends that come faster find the committer
// busy and are batched as above.
//
// Lanes and fairness. Sends queue in lanes, one per sender: (tenant, user) for a user's own
// sends from any of its sessions, and a separate lane per (tenant, from) for server-side sends
// (host API, REST: no sending session). The committer serves the lanes round-robin, one send
// per lane per turn, into a storage batch of at most `batch_max` sends and `batch_recipients`
// inbox entries. A send too big for what is left of that budget (a large group) is set aside
// with its lane paused, and the sends set aside are stored after the batch, in batches of their
// own (again at most `batch_recipients` entries, but at least one send). So before its own
// batch a 1:1 send waits for at most the batch being stored and one batch of big sends, however
// much one sender floods.
//
// Batches in flight. A batch is handed to OfflineQueue::AppendBatchAsync and the committer goes
// on to the next without waiting for the answer, up to `inflight` unanswered batches: a backend
// with a network round trip pipelines them, so the node stays busy while a batch travels. The
// backend applies and answers batches in hand-over order (its contract), and each answer acks
// its senders and hands its pushes on (on the thread that answers), so everything below holds
// as with one batch at a time. The bundled backends answer each batch before AppendBatchAsync
// returns: one in flight.
//
// Membership changes (SubmitOp) are barriers in queue order: the sends queued before one are
// all stored before it runs, the sends queued after it are stored after it (a group's members
// are read on the committer thread, within the same stretch between two barriers in which its
// message is stored). So a member who quit receives nothing appended after the quit, and a new
// member nothing appended before the join.
//
// The price: a barrier waits for everything queued before it, so while a sender floods a large
// group, a membership change (and every send queued after it) waits for the flood's queued
// sends, at most `lane_limit` of them.
//
// Bounds. At most `queue_limit` sends and membership changes wait server-wide, and at most
// `lane_limit` sends of one lane. Beyond the lane's bound that sender alone gets 503
// unavailable with retry_after_ms; beyond the server-wide one every sender does. Nothing is
// stored then; the client retries under the same cid (dedup: nothing is stored twice). The fan-out stage holds at most
// `fanout_queue_limit` pushes; when it is full the committer waits for room before handing
// over the next batch's pushes (so storage never runs unboundedly ahead of delivery), its queue
// fills, and senders get 503 as above. Nothing acked is ever dropped.
//
// Ordering invariants, and the tests that prove them (unit/ = tests/unit/committer_test.cc,
// the others under tests/integration/):
// - A sender's sends (one lane) are stored, and acked, in Submit order; a group send set aside
//   holds back the sends of its lane queued after it. (unit/ "lanes keep each sender's order,
//   big group sends included"; chat "10000 messages arrive in order with increasing seq".)
// - Every message is appended to all of its inboxes in one storage batch, and batches are
//   applied one at a time in the order one thread hands them over (AppendBatchAsync's
//   contract), so the messages of a conversation (1:1 or group) have the same relative order
//   in every inbox. (crash "kill -9 under concurrent senders ...";
//   group "1000 members with 300 online ... 500 messages from 10 senders".)
// - An ack means stored: done() runs when the batch's answer came; pushes are handed over after
//   that and never awaited; answers are handled in hand-over order. (crash, as above; unit/
//   "acks do not wait for delivery", "batches in flight are answered in order".)
// - A connection receives its pushes in increasing seq order: the fan-out stage delivers each
//   user's pushes in commit order (fanout.h). (unit/ "a big fan-out does not hold back a 1:1
//   push, and push order holds"; group "1000 members ..."; chat "10000 messages ...".)
// - A send stored on the caller's thread (store_here) is a batch of one taken in the committer's
//   place: only when every send and barrier submitted before it is stored and nothing is in
//   flight, and whatever is submitted while it is stored waits for it, barriers included. So
//   every order above holds for it. (unit/ "an idle committer lets the caller store a 1:1
//   send, in order", "what is queued while a caller stores waits for it, barriers too".)
// - Membership changes are barriers, as above; one waits for every batch in flight before it
//   runs. (unit/ "membership changes are barriers", "a barrier waits for the batches in
//   flight";
//   group "quit and join racing with sends split the stream exactly".)
// - Fairness: a flood of group sends by one sender holds back another sender's 1:1 ack by at
//   most the append under way, and its push by about one fan-out slice. (unit/ "a group flood
//   does not delay another sender's 1:1 ack", "the per-lane bound refuses only the sender over
//   it", "a big fan-out does not hold back a 1:1 push ..."; fairness "a 5,000-member group
//   flood does not hold back a 1:1 pair".)
// - The fan-out bound drops nothing and holds the committer back. (unit/ "a full fan-out stage
//   holds the committer back and drops nothing"; commit_queue "full - 503 unavailable ...".)
//
// Stop() finishes everything queued (acks included) on the committer thread, then stops the
// fan-out stage, which delivers everything handed to it: committer first, fan-out second.
//
// Thread-safety: Submit(), SubmitOp(), depth() and deliveries() are safe from any thread.
#ifndef IM_CORE_COMMITTER_H_
#define IM_CORE_COMMITTER_H_

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/fanout.h"
#include "core/mid.h"
#include "im/group_service.h"
#include "im/offline_queue.h"
#include "im/router.h"
#include "im/send_receipt.h"
#include "im/session_store.h"
#include "tenant/tenant_directory.h"

namespace im::internal {

class Metrics;

struct PendingSend {
  std::shared_ptr<Message> message;  // mid and ts are filled in by the committer
  // 1:1: the inboxes, sender first when it has one. Group sends (message->group set) leave it
  // empty: the committer takes the members at commit time.
  std::vector<UserKey> recipients;
  int sender_index = -1;
  std::string sender;  // the sending user ("" for server-side sends without one)
  std::string dedup_key;
  // The sending session: not pushed to (it gets the ack). Empty for server-side sends (host
  // API, REST), which queue in lanes of their own.
  std::string origin_session;
  // Called once with the receipt or the error: on the committer thread, or on the thread that
  // stored the send itself (Committer::Submit's store_here) before Submit returns.
  std::function<void(const Result<SendReceipt>&)> done;
};

class Committer;

// A membership change, run on the committer thread between batches. It may append messages
// (group events) with Committer::CommitNow.
using PendingOp = std::function<void(Committer& committer)>;

class Committer {
 public:
  // How long a sender refused at its lane's bound is told to wait (retry_after_ms).
  static constexpr int64_t kLaneRetryMs = 100;

  struct Deps {
    OfflineQueue* inbox;
    SessionStore* sessions;
    Router* router;
    GroupService* groups;  // may be null: group sends then fail with 503
    Clock* clock;
    uint16_t node_number;
    size_t queue_limit;
    size_t batch_max;
    size_t lane_limit = 128;          // sends waiting per lane
    size_t batch_recipients = 4096;   // inbox entries per storage batch (but one send at least)
    size_t fanout_queue_limit = 65536;  // pushes waiting in the fan-out stage
    size_t fanout_slice = 512;          // recipients per step of a big fan-out
    Metrics* metrics = nullptr;         // may be null
    size_t inflight = 4;                // storage batches handed over and not yet answered
    const TenantDirectory* tenants = nullptr;  // each tenant's max_inbox; null: the queue's
    uint32_t thread_slice_us = 0;  // asked for by im-commit and im-fanout (base/thread_slice.h)
  };
  explicit Committer(Deps deps);
  ~Committer();  // Stop()s.

  void Start();
  // Finishes everything queued, then stops the fan-out stage once it delivered everything.
  // Idempotent.
  void Stop();

  // Queues a send. 503 unavailable when the server-wide queue or the sender's lane is full, or
  // the committer stopped.
  //
  // `store_here`: the caller has no other work waiting behind this send. A 1:1 send is then
  // sequenced and stored on the calling thread when the committer is idle (nothing queued or
  // being taken, no batch in flight, the fan-out stage empty): the caller holds the committer's
  // place meanwhile, and the committer thread waits for it before it takes anything queued
  // after. done() has then run (acked, pushes handed over) when Submit returns. This saves the
  // hand-over to the committer thread when sends come one at a time; when they come faster,
  // the committer is busy and they batch as before (group commit).
  Status Submit(PendingSend send, bool store_here = false);
  // Queues a membership change (the server-wide bound): a barrier between the sends queued
  // before and after it.
  Status SubmitOp(PendingOp op);

  // Committer thread only (from a PendingOp): stores `batch` now, acks it and hands its pushes
  // to the fan-out stage, and returns once that is done. Consumes the sends.
  void CommitNow(std::vector<PendingSend>& batch) {
    Commit(batch);
    WaitInFlight(0);
  }
  const Deps& deps() const { return deps_; }

  // Sends and membership changes waiting (not yet taken into a storage batch).
  size_t depth() const;
  // Pushes waiting in the fan-out stage.
  size_t fanout_depth() const { return fanout_.depth(); }
  uint64_t deliveries() const { return fanout_.deliveries(); }

 private:
  struct Item {
    PendingSend send;
    PendingOp op;      // set for membership changes
    std::string lane;  // sends only
  };
  // The committer thread's view of the queue (no lock: only that thread touches it).
  struct Lane {
    std::string key;
    std::deque<PendingSend> sends;
    bool in_ring = false;
    bool parked = false;  // its head send is set aside in parked_
  };
  // The sends between two barriers, in lanes, and the barrier that ends them.
  struct Segment {
    std::unordered_map<std::string, Lane> lanes;
    std::deque<Lane*> ring;  // lanes with sends to take, round-robin
    PendingOp barrier;       // null for the last segment (still open)
  };
  struct Parked {
    Lane* lane;
    PendingSend send;
  };

  Status Enqueue(Item item);
  // Submit(store_here): stores `send` on this thread if the committer is idle; false (and
  // `send` untouched) if not.
  bool TryStoreHere(PendingSend& send);
  void Run();
  // Files `incoming` into the segments (committer thread).
  void Stage(std::deque<Item>& incoming);
  bool HasWork() const;
  // One step: a barrier, or a round-robin batch and then a batch of the sends set aside.
  void Step();
  // Puts `lane` back in the ring if it has sends, or forgets it.
  void Requeue(Segment& segment, Lane* lane);
  // The lanes of the sends taken out of the queue: they no longer count against the bounds.
  void Taken(const std::vector<std::string>& lanes, size_t ops);
  // Hands `batch` to the store (waiting while `inflight` batches are unanswered); its answer
  // acks the senders and hands the pushes on. Consumes the sends.
  void Commit(std::vector<PendingSend>& batch);
  // The tenant's max_inbox quota for an AppendRequest (0: the queue's own).
  size_t MaxInboxOf(const std::string& tenant) const;
  struct Flight;
  void Answer(Flight& flight, std::vector<Result<AppendResult>>& results);
  // Waits until at most `n` batches are in flight.
  void WaitInFlight(size_t n);
  // Fills in the recipients of group sends from the current membership; false (and done()
  // called) when the send is refused.
  bool ResolveGroup(PendingSend& p);

  Deps deps_;
  MidGenerator mids_;
  FanOut fanout_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> intake_;                              // guarded by mu_
  std::unordered_map<std::string, size_t> lane_depth_;  // guarded by mu_
  size_t queued_ = 0;                                    // guarded by mu_
  bool stopping_ = false;
  bool started_ = false;
  bool idle_ = false;      // the committer thread waits for sends, with nothing of its own left
  bool borrowed_ = false;  // a Submit(store_here) holds the committer's place
  std::thread thread_;
  // Committer thread only.
  std::deque<Segment> segments_;  // front: being stored; back: open
  std::deque<Parked> parked_;     // sends of the front segment set aside, in order
  // Batches handed to AppendBatchAsync and not yet answered.
  std::mutex flight_mu_;
  std::condition_variable flight_cv_;
  size_t in_flight_ = 0;  // guarded by flight_mu_
};

}  // namespace im::internal

#endif  // IM_CORE_COMMITTER_H_
