// The chat committer: the single place where sends become stored messages and pushes.
//
// Worker threads validate a send and Submit() it. One committer thread takes everything queued
// (up to a batch limit), assigns mids, appends the whole batch to the OfflineQueue as one storage
// batch (group commit), then, in batch order, acks each sender and pushes the message to every
// online session of every recipient. Because one thread assigns seqs and enqueues pushes in the
// same order, every connection receives its pushes in increasing seq order, and the messages of
// a conversation (1:1 or group) have the same relative order in every inbox.
//
// Group membership is read on the committer thread right before the append, and membership
// changes (create, join, quit) are applied on the same thread, in queue order, between batches.
// So a member who quit receives nothing appended after the quit, and a new member nothing
// appended before the join.
//
// Bound: at most `queue_limit` items wait; Submit() refuses more with 503 unavailable (the client
// retries under the same cid, so nothing is lost or duplicated).
//
// Thread-safety: Submit() and SubmitOp() are safe from any thread.
#ifndef IM_CORE_COMMITTER_H_
#define IM_CORE_COMMITTER_H_

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/mid.h"
#include "im/group_service.h"
#include "im/offline_queue.h"
#include "im/router.h"
#include "im/server.h"
#include "im/session_store.h"

namespace im::internal {

struct PendingSend {
  std::shared_ptr<Message> message;  // mid and ts are filled in by the committer
  // 1:1: the inboxes, sender first when it has one. Group sends (message->group set) leave it
  // empty: the committer takes the members at commit time.
  std::vector<UserKey> recipients;
  int sender_index = -1;
  std::string sender;  // group sends: the sending user ("" for server-side sends)
  std::string dedup_key;
  std::string origin_session;  // the sending session: not pushed to (it gets the ack)
  // Called once on the committer thread with the receipt or the error.
  std::function<void(const Result<SendReceipt>&)> done;
};

class Committer;

// A membership change, run on the committer thread between batches. It may append messages
// (group events) with Committer::CommitNow.
using PendingOp = std::function<void(Committer& committer)>;

class Committer {
 public:
  struct Deps {
    OfflineQueue* inbox;
    SessionStore* sessions;
    Router* router;
    GroupService* groups;  // may be null: group sends then fail with 503
    Clock* clock;
    uint16_t node_number;
    size_t queue_limit;
    size_t batch_max;
  };
  explicit Committer(Deps deps);
  ~Committer();  // Stop()s.

  void Start();
  // Finishes everything queued, then stops the thread. Idempotent.
  void Stop();

  // Queues a send. 503 unavailable when the queue is full or the committer stopped.
  Status Submit(PendingSend send);
  // Queues a membership change (same bound).
  Status SubmitOp(PendingOp op);

  // Committer thread only (from a PendingOp): stores and fans out `batch` now.
  void CommitNow(std::vector<PendingSend>& batch) { Commit(batch); }
  const Deps& deps() const { return deps_; }

  size_t depth() const;
  uint64_t deliveries() const { return deliveries_.load(std::memory_order_relaxed); }

 private:
  struct Item {
    PendingSend send;
    PendingOp op;  // set for membership changes
  };
  Status Enqueue(Item item);
  void Run();
  void Commit(std::vector<PendingSend>& batch);
  // Fills in the recipients of group sends from the current membership; false (and done()
  // called) when the send is refused.
  bool ResolveGroup(PendingSend& p);
  void FanOut(const std::vector<PendingSend*>& sends,
              const std::vector<Result<AppendResult>>& results);

  Deps deps_;
  MidGenerator mids_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> queue_;
  bool stopping_ = false;
  bool started_ = false;
  std::thread thread_;
  std::atomic<uint64_t> deliveries_{0};
};

}  // namespace im::internal

#endif  // IM_CORE_COMMITTER_H_
