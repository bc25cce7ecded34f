// The in-memory OfflineQueue: per-user inboxes with the full seq/sync/ack/retention/dedup
// semantics of include/im/offline_queue.h, lost on exit (each start is a new epoch).
//
// Memory bound: an inbox never holds more than max_inbox entries, because Append trims the
// oldest ones right away instead of waiting for the sweep; a message is stored once however many
// inboxes index it, and is freed when the last of them drops it. What remains per user ever
// touched is a small header (epoch, high-water mark, one ack per device), kept for good because
// seqs must never be reused. Dedup keys live for dedup_window_ms (until the next Expire).

#include <algorithm>
#include <array>
#include <cinttypes>
#include <cstdio>
#include <limits>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "im/backends.h"
#include "im/offline_queue.h"
#include "store/append_rules.h"

namespace im {
namespace internal {
namespace {

constexpr size_t kMaxFetchLimit = 500;

// 16 random hex chars. Random rather than time-based so that two processes started in the same
// millisecond (or a restart after a clock step back) never reuse an epoch.
std::string NewEpoch() {
  thread_local std::mt19937_64 rng = [] {
    std::random_device device;
    std::seed_seq seed{device(), device(), device(), device()};
    return std::mt19937_64(seed);
  }();
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016" PRIx64, static_cast<uint64_t>(rng()));
  return buf;
}

// One user's inbox. Seqs of the retained entries are consecutive: appends take last_seq + 1 and
// retention only drops from the front.
struct Inbox {
  // Compact the entry vector only past this many dropped slots, so trimming one entry per append
  // costs amortized O(1).
  static constexpr size_t kCompactMin = 32;

  std::string epoch;
  uint64_t last_seq = 0;  // high-water mark, kept when every entry has expired
  // entries[head..] are retained, oldest first. A vector with a moving head rather than a
  // std::deque because libstdc++'s deque allocates ~600 bytes even when empty, and most inboxes
  // are empty most of the time.
  std::vector<InboxEntry> entries;
  size_t head = 0;
  std::unordered_map<std::string, uint64_t> acks;  // device -> cumulative ack

  size_t size() const { return entries.size() - head; }
  bool empty() const { return size() == 0; }
  const InboxEntry& front() const { return entries[head]; }
  std::vector<InboxEntry>::const_iterator begin() const { return entries.begin() + head; }
  std::vector<InboxEntry>::const_iterator end() const { return entries.end(); }

  void PopFront() {
    entries[head].message.reset();  // free the message now, not at the next compaction
    ++head;
    if (head == entries.size()) {
      std::vector<InboxEntry>().swap(entries);  // an emptied inbox returns its buffer
      head = 0;
    } else if (head >= kCompactMin && head * 2 >= entries.size()) {
      entries.erase(entries.begin(), entries.begin() + static_cast<ptrdiff_t>(head));
      head = 0;
    }
  }
};

// What a dedup key remembers: the answer to repeat, and when it was recorded.
struct DedupRecord {
  uint64_t mid = 0;
  TimestampMs ts = 0;
  uint64_t sender_seq = 0;
  TimestampMs recorded_ms = 0;
};

// Locking: inboxes and dedup keys live in shards, each with its own mutex. Append holds the
// dedup key's shard (when it has a key) for its whole duration, so a concurrent repeat of the
// key waits and then sees the record; then it locks the shards of all recipients in ascending
// index order and appends to every inbox before unlocking any. Holding all recipient locks at
// once is what makes the append atomic and gives every pair of inboxes the same relative order
// of the messages they share. Lock order is always: at most one dedup shard, then inbox shards
// ascending; every other method takes a single lock at a time, so there is no deadlock. A Fetch
// waits at most for the appends that touch its shard, each a few pointer pushes per recipient.
//
// Thread-safety: every method is safe from any thread.
class MemoryOfflineQueue final : public OfflineQueue {
 public:
  explicit MemoryOfflineQueue(const OfflineQueueOptions& options)
      : options_(options), clock_(options.clock ? options.clock : SystemClock()) {}

  Result<AppendResult> Append(const AppendRequest& request) override {
    Status invalid = ValidateAppendRequest(request);
    if (!invalid.ok()) return invalid;
    const Message& message = *request.message;
    const TimestampMs now = clock_->NowMs();

    DedupShard* dedup = nullptr;
    std::string dedup_key;
    std::unique_lock<std::mutex> dedup_lock;
    if (!request.dedup_key.empty()) {
      dedup_key = DedupMapKey(message.tenant, request.dedup_key);
      dedup = &DedupShardOf(dedup_key);
      dedup_lock = std::unique_lock<std::mutex>(dedup->mu);
      auto it = dedup->keys.find(dedup_key);
      if (it != dedup->keys.end()) {
        // Checked here too, not only in Expire: a key past the window must not be honoured just
        // because no sweep has run since.
        if (IsFresh(it->second.recorded_ms, now)) {
          AppendResult repeat;
          repeat.duplicate = true;
          repeat.mid = it->second.mid;
          repeat.ts = it->second.ts;
          repeat.sender_seq = it->second.sender_seq;
          return repeat;
        }
        dedup->keys.erase(it);
      }
    }

    AppendResult result;
    result.mid = message.mid;
    result.ts = message.ts;
    result.seqs.reserve(request.recipients.size());
    {
      std::vector<size_t> shard_index(request.recipients.size());
      for (size_t i = 0; i < request.recipients.size(); ++i) {
        shard_index[i] = ShardIndex(request.recipients[i]);
      }
      std::vector<std::unique_lock<std::mutex>> locks = LockShards(shard_index);
      const size_t max_inbox = AppendMaxInbox(request, options_.max_inbox);
      for (size_t i = 0; i < request.recipients.size(); ++i) {
        Inbox& inbox = TouchInbox(shards_[shard_index[i]], request.recipients[i]);
        const uint64_t seq = ++inbox.last_seq;
        inbox.entries.push_back(InboxEntry{seq, request.message});
        while (inbox.size() > max_inbox) inbox.PopFront();
        result.seqs.push_back(seq);
      }
    }
    if (request.sender_index >= 0) {
      result.sender_seq = result.seqs[static_cast<size_t>(request.sender_index)];
    }
    if (dedup != nullptr) {
      dedup->keys[dedup_key] = DedupRecord{result.mid, result.ts, result.sender_seq, now};
    }
    return result;
  }

  Result<FetchResult> Fetch(const UserKey& user, uint64_t after, size_t limit) override {
    if (limit < 1 || limit > kMaxFetchLimit) return Status::BadRequest("limit must be 1..500");
    Shard& shard = shards_[ShardIndex(user)];
    std::lock_guard<std::mutex> lock(shard.mu);
    const Inbox& inbox = TouchInbox(shard, user);
    FetchResult result;
    result.epoch = inbox.epoch;
    result.last_seq = inbox.last_seq;
    result.first_seq = inbox.empty() ? 0 : inbox.front().seq;
    auto first =
        std::upper_bound(inbox.begin(), inbox.end(), after,
                         [](uint64_t seq, const InboxEntry& entry) { return seq < entry.seq; });
    const size_t available = static_cast<size_t>(inbox.end() - first);
    const size_t count = std::min(available, limit);
    result.entries.assign(first, first + static_cast<ptrdiff_t>(count));
    result.more = available > count;
    // Seqs are consecutive, so anything between `after` and the first retained entry existed
    // once and was dropped by retention.
    result.gap = inbox.last_seq > after && (inbox.empty() || result.first_seq > after + 1);
    return result;
  }

  Result<InboxInfo> Info(const UserKey& user) override {
    Shard& shard = shards_[ShardIndex(user)];
    std::lock_guard<std::mutex> lock(shard.mu);
    const Inbox& inbox = TouchInbox(shard, user);
    InboxInfo info;
    info.epoch = inbox.epoch;
    info.first_seq = inbox.empty() ? 0 : inbox.front().seq;
    info.last_seq = inbox.last_seq;
    return info;
  }

  Status Ack(const UserKey& user, const std::string& device, uint64_t seq) override {
    Shard& shard = shards_[ShardIndex(user)];
    std::lock_guard<std::mutex> lock(shard.mu);
    auto it = shard.inboxes.find(user);
    const uint64_t last_seq = it == shard.inboxes.end() ? 0 : it->second.last_seq;
    if (seq > last_seq) {
      return Status::BadRequest("ack seq " + std::to_string(seq) + " is beyond last_seq " +
                                std::to_string(last_seq));
    }
    if (seq == 0) return Status::OK();  // acks nothing; not worth an entry
    uint64_t& acked = it->second.acks[device];
    acked = std::max(acked, seq);
    return Status::OK();
  }

  Result<uint64_t> Acked(const UserKey& user, const std::string& device) override {
    Shard& shard = shards_[ShardIndex(user)];
    std::lock_guard<std::mutex> lock(shard.mu);
    auto it = shard.inboxes.find(user);
    if (it == shard.inboxes.end()) return uint64_t{0};
    auto ack = it->second.acks.find(device);
    return ack == it->second.acks.end() ? uint64_t{0} : ack->second;
  }

  // Takes one shard lock at a time, so a sweep delays each Fetch by at most one shard's scan.
  Result<size_t> Expire(TimestampMs now) override {
    const TimestampMs cutoff = SaturatingSub(now, options_.retention_ms);
    size_t dropped = 0;
    for (Shard& shard : shards_) {
      std::lock_guard<std::mutex> lock(shard.mu);
      for (auto& [user, inbox] : shard.inboxes) {
        // Stops at the first young entry even if older ones follow (ts is taken before the
        // append, so it is not strictly monotonic in seq): dropping only from the front keeps
        // the retained seqs consecutive, which `gap` relies on.
        while (!inbox.empty() &&
               (inbox.size() > options_.max_inbox || inbox.front().message->ts < cutoff)) {
          inbox.PopFront();
          ++dropped;
        }
      }
    }
    for (DedupShard& shard : dedup_shards_) {
      std::lock_guard<std::mutex> lock(shard.mu);
      for (auto it = shard.keys.begin(); it != shard.keys.end();) {
        it = IsFresh(it->second.recorded_ms, now) ? std::next(it) : shard.keys.erase(it);
      }
    }
    return dropped;
  }

 private:
  static constexpr size_t kShards = 16;

  struct Shard {
    std::mutex mu;
    std::unordered_map<UserKey, Inbox, UserKeyHash> inboxes;
  };
  struct DedupShard {
    std::mutex mu;
    std::unordered_map<std::string, DedupRecord> keys;  // by DedupMapKey
  };

  // Dedup keys are scoped by tenant, so that two tenants' callers choosing the same key (same
  // user id and cid) never see each other's messages. Ids cannot hold NUL, so the join is
  // unambiguous.
  static std::string DedupMapKey(const std::string& tenant, const std::string& key) {
    std::string out;
    out.reserve(tenant.size() + 1 + key.size());
    out.append(tenant).push_back('\0');
    out.append(key);
    return out;
  }

  bool IsFresh(TimestampMs recorded_ms, TimestampMs now) const {
    return recorded_ms > SaturatingSub(now, options_.dedup_window_ms);
  }

  static size_t ShardIndex(const UserKey& user) { return UserKeyHash()(user) % kShards; }

  DedupShard& DedupShardOf(const std::string& key) {
    return dedup_shards_[std::hash<std::string>()(key) % kShards];
  }

  // Locks each distinct shard once, in ascending index order (the global lock order).
  std::vector<std::unique_lock<std::mutex>> LockShards(std::vector<size_t> indexes) {
    std::sort(indexes.begin(), indexes.end());
    indexes.erase(std::unique(indexes.begin(), indexes.end()), indexes.end());
    std::vector<std::unique_lock<std::mutex>> locks;
    locks.reserve(indexes.size());
    for (size_t index : indexes) locks.emplace_back(shards_[index].mu);
    return locks;
  }

  // The inbox of `user`, created with a fresh epoch on first touch. Requires shard.mu held.
  static Inbox& TouchInbox(Shard& shard, const UserKey& user) {
    auto [it, inserted] = shard.inboxes.try_emplace(user);
    if (inserted) it->second.epoch = NewEpoch();
    return it->second;
  }

  const OfflineQueueOptions options_;
  Clock* const clock_;
  std::array<Shard, kShards> shards_;
  std::array<DedupShard, kShards> dedup_shards_;
};

}  // namespace
}  // namespace internal

std::shared_ptr<OfflineQueue> NewMemoryOfflineQueue(OfflineQueueOptions options) {
  return std::make_shared<internal::MemoryOfflineQueue>(options);
}

}  // namespace im
