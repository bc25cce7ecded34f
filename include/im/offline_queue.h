// OfflineQueue: the per-user inbox with sequence numbers (ARCHITECTURE section 4).
//
// Every message a user receives or sends gets the next seq of that user's inbox: strictly
// increasing, never reused, also across restarts. Each inbox has an epoch, fixed when the inbox
// is first created; a backend that lost history starts a new one. Acks are cumulative per
// (user, device). Retention drops the oldest entries (by age and by count); a fetch that starts
// before the first retained entry reports `gap`.
//
// Thread-safety: implementations are safe from any thread. Calls may block on storage.
#ifndef IM_OFFLINE_QUEUE_H_
#define IM_OFFLINE_QUEUE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "im/result.h"
#include "im/types.h"

namespace im {

struct AppendRequest {
  // The message, with mid and ts already set. Stored once, indexed into every recipient inbox.
  std::shared_ptr<const Message> message;
  // The inboxes to index it into, without duplicates (400 otherwise). For chat this includes
  // the sender.
  std::vector<UserKey> recipients;
  // Index into `recipients` of the sender's own inbox, or -1 when the sender has none
  // (server-side sends).
  int sender_index = -1;
  // Empty: no dedup. Otherwise a repeat of the same key within the dedup window appends
  // nothing and returns the first append's mid, ts and sender seq. Keys are scoped to the
  // message's tenant.
  std::string dedup_key;
  // The recipients' max_inbox for this append (their tenant's own): 0 = the queue's, else the
  // smaller of the two. An append trims each inbox it writes to it.
  size_t max_inbox = 0;
};

struct AppendResult {
  bool duplicate = false;
  uint64_t mid = 0;
  TimestampMs ts = 0;
  uint64_t sender_seq = 0;     // the sender's inbox seq (0 when sender_index == -1)
  // seq per recipient, in `recipients` order; empty when duplicate. 0 for a recipient whose
  // inbox a concurrent retry of the same dedup key filled first (the Redis queue sharded over
  // several primaries only): it holds the message under a seq this result does not know.
  std::vector<uint64_t> seqs;
  uint64_t gseq = 0;  // the group sequence stamped on the message (sharded Redis only), else 0
};

struct FetchResult {
  std::vector<InboxEntry> entries;  // seq > after, ascending, at most `limit`
  std::string epoch;
  uint64_t first_seq = 0;  // seq of the first retained entry; 0 when the inbox holds none
  uint64_t last_seq = 0;   // highest seq ever assigned (high-water mark)
  bool more = false;       // entries remain after the last one returned
  bool gap = false;        // entries with seq > after were dropped by retention
};

struct InboxInfo {
  std::string epoch;
  uint64_t first_seq = 0;
  uint64_t last_seq = 0;
};

struct OfflineQueueOptions {
  int64_t retention_ms = 7LL * 24 * 3600 * 1000;  // entries older than this are swept
  size_t max_inbox = 10000;                        // entries kept per user; older ones swept
  int64_t dedup_window_ms = 24LL * 3600 * 1000;   // how long a dedup key is remembered
  Clock* clock = nullptr;                          // nullptr = SystemClock()
};

class OfflineQueue {
 public:
  virtual ~OfflineQueue() = default;

  // Appends one message to every recipient inbox atomically (all or none).
  virtual Result<AppendResult> Append(const AppendRequest& request) = 0;

  // Appends many messages, in order, as one storage batch where the backend can. Results are in
  // request order; dedup applies within the batch too. The default loops over Append.
  virtual std::vector<Result<AppendResult>> AppendBatch(const std::vector<AppendRequest>& batch);

  // AppendBatch without waiting for it: `done` gets what AppendBatch would return, once, on any
  // thread, possibly before this returns. Batches are applied, and their `done` called, in call
  // order: a batch handed over later never gets lower seqs in an inbox than an earlier one, and
  // its `done` never runs first. `batch` stays alive until `done` returns. The committer keeps
  // up to ServerOptions::commit_inflight batches in flight this way, so a backend with a network
  // round trip overrides it to pipeline them instead of waiting for each. The default calls
  // AppendBatch and then `done`, on the calling thread (one batch in flight).
  using AppendDone = std::function<void(std::vector<Result<AppendResult>> results)>;
  virtual void AppendBatchAsync(std::shared_ptr<const std::vector<AppendRequest>> batch,
                                AppendDone done);

  // Entries of `user` with seq > after, ascending, at most `limit` (1..500).
  virtual Result<FetchResult> Fetch(const UserKey& user, uint64_t after, size_t limit) = 0;

  // Epoch and seq range of `user`'s inbox (creating the epoch when the inbox is new).
  virtual Result<InboxInfo> Info(const UserKey& user) = 0;

  // Records that `device` of `user` has processed every entry up to `seq`. Cumulative: a lower
  // value than the stored one is ignored. 400 when seq is beyond the inbox's last_seq.
  virtual Status Ack(const UserKey& user, const std::string& device, uint64_t seq) = 0;

  // The cumulative ack of (user, device); 0 when none.
  virtual Result<uint64_t> Acked(const UserKey& user, const std::string& device) = 0;

  // Deletes entries older than the retention period (relative to `now`) or beyond max_inbox, and
  // dedup keys older than the window. Returns the number of inbox entries deleted.
  virtual Result<size_t> Expire(TimestampMs now) = 0;
};

}  // namespace im

#endif  // IM_OFFLINE_QUEUE_H_
