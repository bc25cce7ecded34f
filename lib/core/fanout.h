// The fan-out stage: pushes stored messages to their recipients' online sessions, on a thread of
// its own (`im-fanout`), so that storing the next batch never waits for delivering the last.
//
// The committer hands over, after each storage batch and in commit order, one job per stored
// message: the message (its push frame is serialized once per job and shared by every receiver;
// only the seq differs), the recipients with their seqs, and the sending session (it gets the
// ack instead of a push).
//
// Order: one thread delivers, and for every user it delivers in commit order. So with the local
// router a connection receives its pushes in increasing seq order (a user's seqs rise with the
// commit order).
//
// Fairness: a job with more than `slice` recipients is delivered `slice` recipients at a time;
// every job handed over meanwhile with at most `slice` recipients is delivered between two
// slices, so a 1:1 push waits for at most one slice of a big fan-out, not for the whole of it.
// Such a job jumps ahead of the unfinished big jobs without breaking the per-user order: for
// each of its recipients still waiting in an older job, that older push is delivered first
// (pulled forward). Big jobs are delivered in commit order among themselves.
//
// Lookup: with the bundled LocalRouter every reachable session is in the router's own registry,
// so the stage asks it for the recipients' connections directly (LocalRouter::CollectUsers: one
// hash lookup per recipient). With a BroadcastRouter (the Redis router) it does the same with
// the router's local registry and hands the step's pushes, by user, to the other nodes, which
// look up their own registries (route/broadcast_router.h): no SessionStore lookup either. With
// any other router it asks the SessionStore for the recipients' sessions (one FindMany per step)
// and hands each push to Router::Deliver.
//
// Bound: at most `queue_limit` pushes (recipients) wait in the stage. Push() of more waits until
// the stage has room (backpressure on the committer, whose queue then fills and answers 503);
// nothing is dropped. One job larger than the whole bound is taken when the stage is empty.
//
// Thread-safety: Push, depth and deliveries are safe from any thread; Start and Stop from one.
#ifndef IM_CORE_FANOUT_H_
#define IM_CORE_FANOUT_H_

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "im/router.h"
#include "im/session_store.h"
#include "im/types.h"
#include "protocol/codec.h"

namespace im::internal {

class BroadcastRouter;
class LocalRouter;
class Metrics;

// The pushes of one stored message.
struct FanOutJob {
  std::shared_ptr<const Message> message;
  std::vector<UserKey> recipients;
  std::vector<uint64_t> seqs;  // one per recipient, in the same order
  std::string origin_session;  // the sending session: not pushed to
};

class FanOut {
 public:
  struct Deps {
    SessionStore* sessions;
    Router* router;
    size_t queue_limit = 65536;  // pushes waiting in the stage
    size_t slice = 512;          // recipients per step of a big fan-out
    Metrics* metrics = nullptr;  // may be null; else im_fanout_queue_depth follows depth()
    uint32_t thread_slice_us = 0;  // asked for by im-fanout (base/thread_slice.h)
  };
  explicit FanOut(Deps deps);
  ~FanOut();  // Stop()s.

  void Start();
  // Delivers everything handed over, then stops the thread. Idempotent.
  void Stop();

  // Hands over the jobs of one storage batch, in commit order. Waits while the stage is full.
  // After Stop() the jobs are delivered on the calling thread.
  void Push(std::vector<FanOutJob> jobs);

  size_t depth() const;  // pushes waiting
  uint64_t deliveries() const { return deliveries_.load(std::memory_order_relaxed); }

 private:
  struct Job {
    FanOutJob job;
    std::optional<ChatPushEncoder> encoder;  // built at the first online receiver
  };
  // A big job being delivered slice by slice.
  struct Active : Job {
    std::unordered_map<UserKey, size_t, UserKeyHash> index;  // recipient -> position
    std::vector<bool> done;
    size_t next = 0;  // the next slice starts here
    size_t left = 0;  // recipients not yet delivered
  };
  struct PushRef {
    Job* job;
    size_t k;  // recipient k of job
  };

  void Run();
  // Delivers the small jobs of `incoming` and starts the big ones, in commit order.
  void Take(std::vector<FanOutJob>& incoming);
  void DeliverSlice();
  // Without the thread (it ended): every job of `jobs`, on the calling thread, which holds
  // inline_mu_. Their pushes are already counted in pending_.
  void DeliverHere(std::vector<FanOutJob>& jobs);
  // One session lookup for every receiver of `pushes`, then the pushes in order.
  void Deliver(const std::vector<PushRef>& pushes);
  // Deliver through the local router's registry (and a BroadcastRouter's other nodes).
  void DeliverLocal(const std::vector<PushRef>& pushes);
  void Release(size_t pushes);

  Deps deps_;
  // deps_.router when it is the bundled LocalRouter, a BroadcastRouter's local(), else null.
  LocalRouter* const local_;
  BroadcastRouter* const broadcast_;  // deps_.router when it is one, else null
  mutable std::mutex mu_;
  std::condition_variable work_cv_;  // the thread waits for jobs
  std::condition_variable room_cv_;  // Push waits for room
  std::vector<FanOutJob> queue_;     // guarded by mu_
  size_t pending_ = 0;               // pushes queued or in active_; guarded by mu_
  enum class State { kIdle, kRunning, kStopped };
  State state_ = State::kIdle;  // guarded by mu_
  bool stopping_ = false;       // guarded by mu_: the thread ends once everything is delivered
  std::thread thread_;
  std::mutex inline_mu_;  // orders the deliveries made without the thread
  // The fan-out thread's own (and, once it ended, the stopping or pushing thread's under
  // inline_mu_).
  std::deque<Active> active_;
  std::deque<Job> smalls_;  // the small jobs of one Take
  std::atomic<uint64_t> deliveries_{0};
};

}  // namespace im::internal

#endif  // IM_CORE_FANOUT_H_
