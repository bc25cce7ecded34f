// PushCatchUp: after a cluster node's subscription to its channels was lost and is back, pushes
// each of its connected users the newest message of their inbox, so that a push published while
// the node was not subscribed (lost for good: pub/sub keeps nothing) still reaches the client.
//
// A lost push in the middle of a conversation shows as a seq gap at the next push, and the
// client syncs (docs/protocol.md, What a client keeps and does). A lost LAST push shows nothing:
// the client would not learn of the message until the next one or its next login. So for every
// user with a connection on this node, the catch-up reads the inbox's newest entries and pushes
// the newest one the user did not send (a client never gets a push of its own send, and its own
// sends' seqs are holes it skips), as an ordinary `chat.message` to each of the user's
// connections here. A client that has it ignores it (seq <= its position); one that missed it
// processes it, or sees the gap before it and syncs. When the newest `kLookBack` entries are all
// the user's own, nothing is pushed (the user sent after the loss, and each of the user's
// devices syncs at the gap its next push shows).
//
// A new epoch: when the storage lost writes (a Redis restart under appendfsync everysec), every
// inbox gets a new epoch and seqs are handed out again. A client notices at a push whose seq it
// has passed, under a mid it does not know; but those pushes may be the very ones lost, and the
// next one may then land exactly on its position + 1, with nothing to notice. So a connection
// whose client was last told (login, chat.sync) another epoch than the inbox has now is not
// pushed to: it is moved (`move_if_epoch_stale`: session.kicked{reason:"drain"}, close 1001),
// and the client reconnects, reads the new epoch at login and syncs from 0.
//
// Work: a snapshot of the connected users (LocalRouter::Users), then two inbox reads (Info, then
// one Fetch of at most kLookBack entries) per user, run on the given pool (the workers) `kSlice`
// users at a time, each slice posted after the last, so other work in the pool interleaves. A
// Start while one runs takes a new snapshot once the current slice ends and begins again (the
// new snapshot holds every user connected then). Pushes are counted in
// im_cluster_catchup_pushes_total (process-wide, GET /metrics).
//
// Thread-safety: Start, Stop, running and pushed are safe from any thread.
#ifndef IM_CORE_PUSH_CATCH_UP_H_
#define IM_CORE_PUSH_CATCH_UP_H_

#include <asio/thread_pool.hpp>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "im/connection.h"
#include "im/offline_queue.h"
#include "im/types.h"

namespace im::internal {

class LocalRouter;

class PushCatchUp {
 public:
  static constexpr size_t kSlice = 64;     // users per posted task
  static constexpr size_t kLookBack = 16;  // newest entries read per user

  struct Deps {
    OfflineQueue* inbox;
    LocalRouter* local;
    asio::thread_pool* pool;
    // Moves the session on a connection whose client was told another inbox epoch than the
    // one given (the inbox's now); true when moved. Null: none is moved.
    std::function<bool(const Connection&, const std::string& epoch)> move_if_epoch_stale;
  };
  explicit PushCatchUp(Deps deps);
  // Waits for a slice under way.
  ~PushCatchUp() { Stop(); }

  // Pushes to every user connected to `local` now, as above.
  void Start();
  // No slice starts after this; waits for the one under way. Idempotent.
  void Stop();

  bool running() const;
  // Pushes sent (connections written to) since construction.
  uint64_t pushed() const { return pushed_.load(std::memory_order_relaxed); }
  // Users whose inbox was read since construction.
  uint64_t users_read() const { return users_read_.load(std::memory_order_relaxed); }

 private:
  void RunSlice();
  // The newest entry of `user`'s inbox not sent by `user`, pushed to its connections here.
  void CatchUp(const UserKey& user);

  const Deps deps_;
  mutable std::mutex mu_;
  std::vector<UserKey> users_;  // the snapshot being worked through
  size_t next_ = 0;             // its next user
  bool again_ = false;          // take a new snapshot before the next slice
  bool posted_ = false;         // a slice is posted or running
  bool stopped_ = false;
  std::condition_variable idle_;
  std::atomic<uint64_t> pushed_{0};
  std::atomic<uint64_t> users_read_{0};
};

}  // namespace im::internal

#endif  // IM_CORE_PUSH_CATCH_UP_H_
