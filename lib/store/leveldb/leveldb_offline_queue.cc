// The LevelDB OfflineQueue: durable per-user inboxes with the semantics of the memory backend
// (lib/store/memory/memory_offline_queue.cc). Record layout: store/leveldb/keys.h.
//
// A message body is stored once, whatever the fan-out, under a key that starts with its ts; an
// inbox entry is a 16-byte pointer (mid, ts) under (tenant, user, seq). An append writes the
// message, one entry per recipient inbox and the batch's write count, plus a dedup record and its
// time index when it has a dedup key: nothing per inbox but its entry. Each inbox has a header
// (epoch, and a last_seq), written when the inbox is created and when an inbox is emptied, in the
// same batch as the deletes: an inbox's high-water mark is the larger of the header's last_seq
// and its highest entry seq, so it can never fall behind a persisted entry and seqs are never
// handed out twice, across restarts (kill -9 included) and after retention emptied the inbox.
// The state of recently used inboxes is kept in memory; an inbox not in memory costs one read
// and two seeks.
//
// Retention: Append trims an inbox beyond max_inbox right away, deleting its known oldest seqs.
// Expire drops, in write batches of at most kSweepBatchKeys deletions: inbox entries from the
// front of each inbox while they are too old or too many (never scanning past the first kept
// one), message records older than retention from the front of each tenant's range, which their
// keys keep in ts order (however many inboxes still point at them: such entries are skipped by
// Fetch and reported as `gap`), and dedup records older than the window through their time
// index. A message trimmed from every inbox by max_inbox keeps its record until retention
// removes it.
//
// Mids must be unique per tenant (ARCHITECTURE section 2): appending two different messages
// under one mid and ts keeps the later body for both.

#include <leveldb/cache.h>
#include <leveldb/db.h>
#include <leveldb/filter_policy.h>
#include <leveldb/iterator.h>
#include <leveldb/write_batch.h>
#include <sodium.h>

#include <algorithm>
#include <atomic>
#include <limits>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

#include "im/backends.h"
#include "im/offline_queue.h"
#include "ops/log.h"
#include "store/append_rules.h"
#include "store/leveldb/db_util.h"
#include "store/leveldb/inbox_recovery.h"
#include "store/leveldb/keys.h"
#include "store/leveldb/migration.h"
#include "store/leveldb/write_stats.h"

namespace im {
namespace internal::leveldb_queue {
namespace {

constexpr size_t kMaxFetchLimit = 500;
// A sweep deletes at most this many keys per write batch, and holds the writer lock for one
// batch at a time, so appends wait for a bounded chunk rather than a whole sweep.
constexpr size_t kSweepBatchKeys = 10000;
// Inboxes found to need a sweep are collected this many at a time, bounding the sweep's memory
// whatever the number of users.
constexpr size_t kSweepCandidates = 1024;
// Inbox states kept in memory, least recently used first out (roughly 200 bytes each, so ~13 MB).
// An evicted one costs one LevelDB read and two seeks on its next use, never correctness.
constexpr size_t kHeaderCacheCapacity = size_t{1} << 16;

// A write batch that counts its operations, for the sweep's bound and to skip empty writes.
struct Batch {
  leveldb::WriteBatch batch;
  size_t ops = 0;

  void Put(const leveldb::Slice& key, const leveldb::Slice& value) {
    batch.Put(key, value);
    ++ops;
  }
  void Delete(const leveldb::Slice& key) {
    batch.Delete(key);
    ++ops;
  }
};

// Recently used inbox headers by header key, bounded at `capacity`: at the bound the least
// recently used one is dropped.
//
// Thread-safety: none; the owner locks.
class HeaderCache {
 public:
  explicit HeaderCache(size_t capacity) : capacity_(capacity) {}

  const InboxHeader* Find(const std::string& key) {
    auto it = index_.find(key);
    if (it == index_.end()) return nullptr;
    lru_.splice(lru_.begin(), lru_, it->second);
    return &it->second->second;
  }

  void Put(const std::string& key, const InboxHeader& header) {
    auto it = index_.find(key);
    if (it != index_.end()) {
      it->second->second = header;
      lru_.splice(lru_.begin(), lru_, it->second);
      return;
    }
    lru_.emplace_front(key, header);
    index_.emplace(lru_.front().first, lru_.begin());
    if (index_.size() > capacity_) {
      index_.erase(lru_.back().first);
      lru_.pop_back();
    }
  }

 private:
  using Lru = std::list<std::pair<std::string, InboxHeader>>;
  const size_t capacity_;
  Lru lru_;                                                    // most recently used first
  std::unordered_map<std::string_view, Lru::iterator> index_;  // views into lru_'s keys
};

// Inbox states read or changed by one write, by header key. They reach the cache only once the
// write has succeeded: a failed write leaves the cache as it was, which is the rollback.
struct StagedHeader {
  InboxHeader header;
  // The header record is to be written with the batch: a new inbox. An inbox the batch empties
  // gets its header written too (see CommitLocked).
  bool dirty = false;
};
using Staging = std::unordered_map<std::string, StagedHeader>;

// Locking: `write_mu_` serializes every change of an inbox header, so seq assignment, dedup
// lookup and the LevelDB write of an AppendBatch are one critical section: concurrent appends
// are ordered the same way in every inbox, and a repeated dedup key sees the first record.
// `mu_` guards the header cache only and is held for a map lookup at a time: the cache reflects
// committed writes only (states are published after DB::Write returns, and a reader caches what
// it read only when no write was published meanwhile), so a reader that copies a state and then
// reads LevelDB sees at least everything the state describes. Fetch, Info and Acked never wait
// for `write_mu_` (except once, to create a new inbox's epoch); a sweep holds it for one bounded
// batch at a time. `ack_mu_` serializes the read-modify-write of acks.
// Lock order: write_mu_ or ack_mu_, then mu_.
//
// Thread-safety: every method is safe from any thread.
class LevelDbOfflineQueue final : public OfflineQueue {
 public:
  LevelDbOfflineQueue(const OfflineQueueOptions& options, const LevelDbOptions& db_options)
      : options_(options),
        clock_(options.clock ? options.clock : SystemClock()),
        db_(db_options),
        cache_(kHeaderCacheCapacity) {}

  // Opens the database at `dir`, checks every inbox header, migrates an older record layout
  // (store/leveldb/migration.h), and compares the write counts
  // (store/leveldb/inbox_recovery.h): when committed writes are gone, or when `new_epochs`,
  // every inbox gets a new epoch (*renewed: how many; may be null).
  Status Open(const std::string& dir, bool new_epochs, size_t* renewed);

  Result<AppendResult> Append(const AppendRequest& request) override {
    return std::move(AppendMany(&request, 1).front());
  }

  std::vector<Result<AppendResult>> AppendBatch(const std::vector<AppendRequest>& batch) override {
    if (batch.empty()) return {};
    return AppendMany(batch.data(), batch.size());
  }

  Result<FetchResult> Fetch(const UserKey& user, uint64_t after, size_t limit) override;

  Result<InboxInfo> Info(const UserKey& user) override {
    Result<InboxHeader> header = TouchHeader(user);
    if (!header.ok()) return header.status();
    InboxInfo info;
    info.epoch = header->epoch;
    info.first_seq = header->empty() ? 0 : header->first_seq;
    info.last_seq = header->last_seq;
    return info;
  }

  Status Ack(const UserKey& user, const std::string& device, uint64_t seq) override;
  Result<uint64_t> Acked(const UserKey& user, const std::string& device) override;
  Result<size_t> Expire(TimestampMs now) override;

  // What this queue has written since it was opened (store/leveldb/write_stats.h).
  LevelDbWriteStats WriteStats() const {
    LevelDbWriteStats stats;
    stats.batches = written_batches_.load(std::memory_order_relaxed);
    stats.records = written_records_.load(std::memory_order_relaxed);
    stats.bytes = written_bytes_.load(std::memory_order_relaxed);
    return stats;
  }

 private:
  std::vector<Result<AppendResult>> AppendMany(const AppendRequest* requests, size_t count);
  Status SweepInboxes(const std::vector<std::string>& header_keys, TimestampMs cutoff,
                      size_t* dropped);
  Status SweepTimeIndex(RecordType type, TimestampMs keep_from);

  bool IsFresh(TimestampMs recorded_ms, TimestampMs now) const {
    return recorded_ms > SaturatingSub(now, options_.dedup_window_ms);
  }

  // The state of the inbox whose header key is `key` as committed: from the cache, else read
  // from LevelDB and cached, unless a writer published a state since the read began (which may
  // be newer than what the read saw: the cache never holds a state older than a published one).
  // *found is false when the inbox has no header.
  // *seen (when given) is the count of published writes before the read began: while it is
  // unchanged, what was read is still the committed state.
  Status PeekHeader(const std::string& key, InboxHeader* header, bool* found,
                    uint64_t* seen = nullptr) {
    uint64_t publications = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (const InboxHeader* cached = cache_.Find(key)) {
        *header = *cached;
        *found = true;
        return Status::OK();
      }
      publications = publications_;
    }
    if (seen != nullptr) *seen = publications;
    // One snapshot for the header and the entries: a sweep that empties an inbox writes its
    // header in the same batch as the deletes.
    ScopedSnapshot snapshot(db_.get());
    leveldb::ReadOptions read = VerifiedRead();
    read.snapshot = snapshot.get();
    Status status = ReadInbox(read, key, header, found);
    if (status.ok() && *found) {
      std::lock_guard<std::mutex> lock(mu_);
      if (publications_ == publications && cache_.Find(key) == nullptr) cache_.Put(key, *header);
    }
    return status;
  }

  // The inbox state at `key` as `read` sees it: the header record, with first_seq and last_seq
  // raised to the entries present. Without a header (*found false), the epoch is empty and the
  // seqs still cover any entry present, so that a header created now never reuses one.
  Status ReadInbox(const leveldb::ReadOptions& read, const std::string& key, InboxHeader* header,
                   bool* found) {
    std::string value;
    leveldb::Status status = db_->Get(read, key, &value);
    *found = status.ok();
    *header = InboxHeader();
    if (!status.ok() && !status.IsNotFound()) return FromLevelDb(status);
    if (*found && !DecodeHeader(value, header)) return Corrupt("inbox header");
    header->stored_last_seq = header->last_seq;
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(read));
    uint64_t low = 0;
    uint64_t high = 0;
    if (InboxSeqRange(it.get(), InboxPrefixOfHeader(key), &low, &high)) {
      header->first_seq = low;
      header->last_seq = std::max(header->last_seq, high);
    } else {
      if (!it->status().ok()) return FromLevelDb(it->status());
      header->first_seq = header->last_seq + 1;
    }
    return Status::OK();
  }

  // The header of `user`, created with a new epoch and persisted on first touch.
  Result<InboxHeader> TouchHeader(const UserKey& user) {
    const std::string key = HeaderKey(user);
    InboxHeader header;
    bool found = false;
    uint64_t seen = 0;
    Status status = PeekHeader(key, &header, &found, &seen);
    if (!status.ok()) return status;
    if (found) return header;
    std::lock_guard<std::mutex> lock(write_mu_);
    Staging staging;
    StagedHeader* staged = nullptr;
    bool unchanged = false;
    {
      std::lock_guard<std::mutex> cache_lock(mu_);
      unchanged = publications_ == seen;
    }
    if (unchanged) {
      // No write was published since the read began, and every committed write is published
      // (under write_mu_, held now): the inbox is still absent, as read. Created from that read
      // instead of reading LevelDB a second time (what LoadHeaderLocked would do).
      StagedHeader created;
      created.header = std::move(header);
      created.header.epoch = NewEpoch();  // its seqs still cover any entry present
      created.dirty = true;
      staged = &staging.emplace(key, std::move(created)).first->second;
    } else {
      status = LoadHeaderLocked(key, /*create=*/true, &staging, &staged);
    }
    if (status.ok()) {
      Batch batch;
      status = CommitLocked(&staging, &batch, db_.write_options());
    }
    if (!status.ok()) return status;
    return staged->header;
  }

  // Stages the header at `key` (once per write): from the staging, the cache or LevelDB, or new
  // when `create`; *out is null when absent and not created. Requires write_mu_.
  Status LoadHeaderLocked(const std::string& key, bool create, Staging* staging,
                          StagedHeader** out) {
    auto it = staging->find(key);
    if (it != staging->end()) {
      *out = &it->second;
      return Status::OK();
    }
    StagedHeader staged;
    bool found = false;
    Status status = PeekHeader(key, &staged.header, &found);
    if (!status.ok()) return status;
    if (!found) {
      *out = nullptr;
      if (!create) return Status::OK();
      staged.header.epoch = NewEpoch();  // its seqs still cover any entry present
      staged.dirty = true;
    }
    *out = &staging->emplace(key, std::move(staged)).first->second;
    return Status::OK();
  }

  // Adds to `batch` the headers of new inboxes, and of emptied inboxes whose last_seq is above
  // their header's (no entry holds it any more), writes the batch, and publishes the staged
  // states to the cache. On failure nothing is published. Requires write_mu_.
  Status CommitLocked(Staging* staging, Batch* batch, const leveldb::WriteOptions& options) {
    for (auto& [key, staged] : *staging) {
      InboxHeader& header = staged.header;
      if (staged.dirty || (header.empty() && header.last_seq > header.stored_last_seq)) {
        batch->Put(key, EncodeHeader(header));
        header.stored_last_seq = header.last_seq;
      }
    }
    if (batch->ops > 0) {
      batch->Put(WriteCountKey(), EncodeFixed64(write_count_ + 1));
      Status status = Write(options, batch);
      if (!status.ok()) return status;
      write_count_file_.Store(++write_count_);
    }
    std::lock_guard<std::mutex> lock(mu_);
    ++publications_;
    for (const auto& [key, staged] : *staging) cache_.Put(key, staged.header);
    return Status::OK();
  }

  // Writes `batch` and counts it in the write stats.
  Status Write(const leveldb::WriteOptions& options, Batch* batch) {
    leveldb::Status status = db_->Write(options, &batch->batch);
    if (!status.ok()) return FromLevelDb(status);
    written_batches_.fetch_add(1, std::memory_order_relaxed);
    written_records_.fetch_add(batch->ops, std::memory_order_relaxed);
    written_bytes_.fetch_add(batch->batch.ApproximateSize(), std::memory_order_relaxed);
    return Status::OK();
  }

  const OfflineQueueOptions options_;
  Clock* const clock_;
  DbHandle db_;

  std::mutex write_mu_;
  uint64_t write_count_ = 0;  // batches committed; guarded by write_mu_
  WriteCountFile write_count_file_;  // written under write_mu_
  std::mutex ack_mu_;
  std::mutex mu_;
  HeaderCache cache_;         // guarded by mu_
  uint64_t publications_ = 0;  // writes published to cache_; guarded by mu_
  std::atomic<uint64_t> written_batches_{0};
  std::atomic<uint64_t> written_records_{0};
  std::atomic<uint64_t> written_bytes_{0};
};

Status LevelDbOfflineQueue::Open(const std::string& dir, bool new_epochs, size_t* renewed) {
  Status status = db_.Open(dir);
  if (!status.ok()) return status;
  if (status = VerifyHeaders(db_.get(), dir); !status.ok()) return status;
  size_t migrated = 0;
  if (status = MigrateToCurrentFormat(db_.get(), dir, &migrated); !status.ok()) return status;
  uint64_t in_db = 0;
  if (status = ReadWriteCount(db_.get(), &in_db); !status.ok()) return status;
  uint64_t in_file = 0;
  bool valid = true;
  if (status = write_count_file_.Open(dir, &in_file, &valid); !status.ok()) return status;
  // Absent from both (a database written before the counts existed): nothing to compare, and
  // no loss assumed. A damaged file proves nothing either way, so it counts as a loss.
  const bool lost = in_file > in_db || !valid;
  write_count_ = std::max(in_db, valid ? in_file : 0);
  if (lost || new_epochs) {
    ++write_count_;  // above the file's count, so the next open compares against this one
    size_t count = 0;
    if (status = NewEpochForAll(db_.get(), write_count_, &count); !status.ok()) return status;
    if (renewed != nullptr) *renewed = count;
    if (lost && !new_epochs) {  // a repair reports the new epochs itself
      IM_LOG_WARN("inbox database {} lost committed writes (write count {}, {} recorded in "
                  "WRITE-COUNT): a truncated or damaged log, or a machine crash without "
                  "sync_writes. {} inboxes have a new epoch; their clients resync from seq 0",
                  dir, in_db, valid ? std::to_string(in_file) : std::string("a damaged count"),
                  count);
    }
  }
  write_count_file_.Store(write_count_);
  return Status::OK();
}

std::vector<Result<AppendResult>> LevelDbOfflineQueue::AppendMany(const AppendRequest* requests,
                                                                  size_t count) {
  struct Outcome {
    Status status;
    AppendResult result;
    bool needs_write = false;  // its answer holds only if the batch is written
  };
  std::vector<Outcome> outcomes(count);
  for (size_t i = 0; i < count; ++i) outcomes[i].status = ValidateAppendRequest(requests[i]);

  std::lock_guard<std::mutex> lock(write_mu_);
  const TimestampMs now = clock_->NowMs();
  Staging staging;
  Batch batch;
  std::unordered_map<std::string, size_t> batch_dedup;         // dedup record key -> request index
  std::vector<std::pair<std::string, StagedHeader*>> inboxes;  // header key, staged header
  std::string value;
  for (size_t i = 0; i < count; ++i) {
    Outcome& outcome = outcomes[i];
    if (!outcome.status.ok()) continue;
    const AppendRequest& request = requests[i];
    const Message& message = *request.message;
    AppendResult& result = outcome.result;

    std::string dedup_key;
    if (!request.dedup_key.empty()) {
      dedup_key = DedupKey(message.tenant, request.dedup_key);
      auto earlier = batch_dedup.find(dedup_key);
      if (earlier != batch_dedup.end()) {
        const AppendResult& first = outcomes[earlier->second].result;
        result.duplicate = true;
        result.mid = first.mid;
        result.ts = first.ts;
        result.sender_seq = first.sender_seq;
        outcome.needs_write = true;
        continue;
      }
      leveldb::Status status = db_->Get(VerifiedRead(), dedup_key, &value);
      if (status.ok()) {
        DedupValue record;
        if (!DecodeDedup(value, &record)) {
          outcome.status = Corrupt("dedup");
          continue;
        }
        // Checked here too, not only in Expire: a key past the window must not be honoured just
        // because no sweep has run since.
        if (IsFresh(record.recorded_ms, now)) {
          result.duplicate = true;
          result.mid = record.mid;
          result.ts = record.ts;
          result.sender_seq = record.sender_seq;
          continue;
        }
        batch.Delete(DedupTimeKey(message.tenant, record.recorded_ms, request.dedup_key));
      } else if (!status.IsNotFound()) {
        outcome.status = FromLevelDb(status);
        continue;
      }
    }

    // Every header is loaded before any changes, so a failed read leaves this request out whole.
    inboxes.clear();
    for (const UserKey& user : request.recipients) {
      inboxes.emplace_back(HeaderKey(user), nullptr);
      outcome.status =
          LoadHeaderLocked(inboxes.back().first, /*create=*/true, &staging, &inboxes.back().second);
      if (!outcome.status.ok()) break;
    }
    if (!outcome.status.ok()) continue;

    batch.Put(MessageKey(message.tenant, message.ts, message.mid), EncodeMessage(message));
    const std::string entry = EncodeEntry(InboxEntryValue{message.mid, message.ts});
    result.mid = message.mid;
    result.ts = message.ts;
    result.seqs.reserve(inboxes.size());
    const size_t max_inbox = AppendMaxInbox(request, options_.max_inbox);
    for (auto& [header_key, staged] : inboxes) {
      const std::string prefix = InboxPrefixOfHeader(header_key);
      InboxHeader& header = staged->header;
      const uint64_t seq = ++header.last_seq;
      batch.Put(InboxKey(prefix, seq), entry);
      // Retained seqs are consecutive, so the oldest ones are known without a scan.
      while (header.size() > max_inbox) batch.Delete(InboxKey(prefix, header.first_seq++));
      result.seqs.push_back(seq);
    }
    if (request.sender_index >= 0) {
      result.sender_seq = result.seqs[static_cast<size_t>(request.sender_index)];
    }
    if (!dedup_key.empty()) {
      batch.Put(dedup_key, EncodeDedup(DedupValue{result.mid, result.ts, result.sender_seq, now}));
      batch.Put(DedupTimeKey(message.tenant, now, request.dedup_key), leveldb::Slice());
      batch_dedup[dedup_key] = i;
    }
    outcome.needs_write = true;
  }
  // One write for the whole batch: every message, index entry, new header and dedup record of
  // every request becomes durable together, or none does.
  const Status committed = CommitLocked(&staging, &batch, db_.write_options());

  std::vector<Result<AppendResult>> results;
  results.reserve(count);
  for (Outcome& outcome : outcomes) {
    if (!outcome.status.ok()) {
      results.emplace_back(std::move(outcome.status));
    } else if (outcome.needs_write && !committed.ok()) {
      results.emplace_back(committed);
    } else {
      results.emplace_back(std::move(outcome.result));
    }
  }
  return results;
}

Result<FetchResult> LevelDbOfflineQueue::Fetch(const UserKey& user, uint64_t after, size_t limit) {
  if (limit < 1 || limit > kMaxFetchLimit) return Status::BadRequest("limit must be 1..500");
  Result<InboxHeader> loaded = TouchHeader(user);
  if (!loaded.ok()) return loaded.status();
  const InboxHeader& header = *loaded;
  FetchResult result;
  result.epoch = header.epoch;
  result.last_seq = header.last_seq;
  result.first_seq = header.empty() ? 0 : header.first_seq;
  // Retained seqs are consecutive, so anything between `after` and the first retained entry
  // existed once and was dropped by retention.
  result.gap = after < header.last_seq && after + 1 < header.first_seq;
  if (after >= header.last_seq) return result;

  // The snapshot is taken after the header was read, so it holds every entry up to last_seq
  // except those a concurrent sweep has deleted since; those show up as holes, reported as gap.
  // Entries past last_seq (appended since) are left for the next fetch.
  ScopedSnapshot snapshot(db_.get());
  leveldb::ReadOptions read = VerifiedRead();
  read.snapshot = snapshot.get();
  std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(read));
  const std::string prefix = InboxPrefix(user);
  uint64_t expected = std::max(after + 1, header.first_seq);
  std::string value;
  for (it->Seek(InboxKey(prefix, expected)); it->Valid(); it->Next()) {
    uint64_t seq = 0;
    if (!ParseInboxKey(View(it->key()), prefix, &seq) || seq > header.last_seq) break;
    if (result.entries.size() == limit) {
      result.more = true;
      break;
    }
    if (seq != expected) result.gap = true;
    expected = seq + 1;
    InboxEntryValue entry;
    if (!DecodeEntry(View(it->value()), &entry)) return Corrupt("inbox entry");
    leveldb::Status status = db_->Get(read, MessageKey(user.tenant, entry.ts, entry.mid), &value);
    if (status.IsNotFound()) {  // retention dropped the message before this inbox's entry
      result.gap = true;
      continue;
    }
    if (!status.ok()) return FromLevelDb(status);
    std::shared_ptr<Message> message = DecodeMessage(value, user.tenant, entry.ts, entry.mid);
    if (message == nullptr) return Corrupt("message");
    result.entries.push_back(InboxEntry{seq, std::move(message)});
  }
  if (!it->status().ok()) return FromLevelDb(it->status());
  if (!result.more && expected <= header.last_seq) result.gap = true;  // the tail was swept
  return result;
}

Status LevelDbOfflineQueue::Ack(const UserKey& user, const std::string& device, uint64_t seq) {
  std::lock_guard<std::mutex> lock(ack_mu_);
  InboxHeader header;
  bool found = false;
  Status status = PeekHeader(HeaderKey(user), &header, &found);
  if (!status.ok()) return status;
  const uint64_t last_seq = found ? header.last_seq : 0;
  if (seq > last_seq) {
    return Status::BadRequest("ack seq " + std::to_string(seq) + " is beyond last_seq " +
                              std::to_string(last_seq));
  }
  if (seq == 0) return Status::OK();  // acks nothing; not worth a record
  Result<uint64_t> acked = Acked(user, device);
  if (!acked.ok()) return acked.status();
  if (seq <= *acked) return Status::OK();
  Batch batch;
  batch.Put(AckKey(user, device), EncodeFixed64(seq));
  return Write(db_.write_options(), &batch);
}

Result<uint64_t> LevelDbOfflineQueue::Acked(const UserKey& user, const std::string& device) {
  std::string value;
  leveldb::Status status = db_->Get(VerifiedRead(), AckKey(user, device), &value);
  if (status.IsNotFound()) return uint64_t{0};
  if (!status.ok()) return FromLevelDb(status);
  uint64_t acked = 0;
  if (!DecodeFixed64(value, &acked)) return Corrupt("ack");
  return acked;
}

Result<size_t> LevelDbOfflineQueue::Expire(TimestampMs now) {
  const TimestampMs cutoff = SaturatingSub(now, options_.retention_ms);
  size_t dropped = 0;
  // Pass 1 judges each inbox on a snapshot, without locks: an inbox needs a sweep when it holds
  // more than max_inbox entries or its first entry is too old. Most do not, and cost two seeks.
  {
    ScopedSnapshot snapshot(db_.get());
    leveldb::ReadOptions read = ScanRead();
    read.snapshot = snapshot.get();
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(read));
    std::unique_ptr<leveldb::Iterator> entries(db_->NewIterator(read));
    std::vector<std::string> candidates;
    std::string value;
    for (it->Seek(std::string(1, kHeaderRecord)); it->Valid() && it->key()[0] == kHeaderRecord;
         it->Next()) {
      uint64_t first = 0;
      uint64_t last = 0;
      if (!InboxSeqRange(entries.get(), InboxPrefixOfHeader(View(it->key())), &first, &last,
                         &value)) {
        if (!entries->status().ok()) return FromLevelDb(entries->status());
        continue;  // empty
      }
      InboxEntryValue entry;
      if (!DecodeEntry(value, &entry)) return Corrupt("inbox entry");
      // Holes only make the count too high, and pass 2 counts again.
      if (last - first >= options_.max_inbox || entry.ts < cutoff) {
        candidates.push_back(it->key().ToString());
      }
      if (candidates.size() == kSweepCandidates) {
        Status swept = SweepInboxes(candidates, cutoff, &dropped);
        if (!swept.ok()) return swept;
        candidates.clear();
      }
    }
    if (!it->status().ok()) return FromLevelDb(it->status());
    Status swept = SweepInboxes(candidates, cutoff, &dropped);
    if (!swept.ok()) return swept;
  }
  Status swept = SweepTimeIndex(kMessageRecord, cutoff);
  if (!swept.ok()) return swept;
  // A dedup record is fresh while recorded_ms > now - window: kept from (now - window) + 1.
  const TimestampMs dedup_cutoff = SaturatingSub(now, options_.dedup_window_ms);
  swept = SweepTimeIndex(kDedupTimeRecord, dedup_cutoff == std::numeric_limits<TimestampMs>::max()
                                               ? dedup_cutoff
                                               : dedup_cutoff + 1);
  if (!swept.ok()) return swept;
  return dropped;
}

// Pass 2: under the writer lock, re-reads each candidate's current header and deletes from the
// front of its inbox while entries are too many or too old, stopping at the first kept one.
Status LevelDbOfflineQueue::SweepInboxes(const std::vector<std::string>& header_keys,
                                         TimestampMs cutoff, size_t* dropped) {
  // A lost sweep is redone by the next one, so its writes need no fsync of their own.
  const leveldb::WriteOptions sweep_options;
  size_t next = 0;
  while (next < header_keys.size()) {
    std::lock_guard<std::mutex> lock(write_mu_);
    Staging staging;
    Batch batch;
    size_t deleted = 0;
    leveldb::ReadOptions read = ScanRead();
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(read));
    while (next < header_keys.size() && batch.ops < kSweepBatchKeys) {
      StagedHeader* staged = nullptr;
      Status status = LoadHeaderLocked(header_keys[next], /*create=*/false, &staging, &staged);
      if (!status.ok()) return status;
      if (staged == nullptr) {
        ++next;
        continue;
      }
      InboxHeader& header = staged->header;
      const std::string prefix = InboxPrefixOfHeader(header_keys[next]);
      bool done = true;
      it->Seek(InboxKey(prefix, header.first_seq));
      while (!header.empty()) {
        if (batch.ops >= kSweepBatchKeys) {  // continue this inbox in the next batch
          done = false;
          break;
        }
        uint64_t seq = 0;
        if (!it->Valid() || !ParseInboxKey(View(it->key()), prefix, &seq) ||
            seq > header.last_seq) {
          header.first_seq = header.last_seq + 1;  // the rest is already gone
          break;
        }
        if (seq > header.first_seq) header.first_seq = seq;  // a hole: nothing to delete up to seq
        InboxEntryValue entry;
        if (!DecodeEntry(View(it->value()), &entry)) return Corrupt("inbox entry");
        // Stops at the first young entry even if older ones follow (ts is taken before the
        // append, so it is not strictly monotonic in seq): dropping only from the front keeps the
        // retained seqs consecutive, which `gap` relies on.
        if (header.size() <= options_.max_inbox && entry.ts >= cutoff) break;
        batch.Delete(it->key());
        ++deleted;
        ++header.first_seq;
        it->Next();
      }
      if (!it->status().ok()) return FromLevelDb(it->status());
      if (done) ++next;
    }
    it.reset();
    Status status = CommitLocked(&staging, &batch, sweep_options);
    if (!status.ok()) return status;
    *dropped += deleted;
  }
  return Status::OK();
}

// Deletes the message records, or the entries of the dedup time index with the dedup records they
// point to, older than `keep_from`, one tenant after another: a tenant's scan stops at its first
// young key and seeks to the next tenant.
Status LevelDbOfflineQueue::SweepTimeIndex(RecordType type, TimestampMs keep_from) {
  const leveldb::WriteOptions sweep_options;
  std::string cursor(1, type);
  std::string value;
  std::string target;
  for (;;) {
    // The writer lock keeps a dedup key from being recorded again between our check of its
    // record and the delete.
    std::lock_guard<std::mutex> lock(write_mu_);
    Batch batch;
    bool more = false;
    leveldb::ReadOptions read = ScanRead();
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(read));
    it->Seek(cursor);
    while (it->Valid() && it->key()[0] == type) {
      if (batch.ops >= kSweepBatchKeys) {
        cursor = it->key().ToString();
        more = true;
        break;
      }
      TimeKey key;
      if (!ParseTimeKey(View(it->key()), &key)) return Corrupt("time index");
      if (key.ts >= keep_from) {
        const std::string next_tenant = PrefixSuccessor(key.tenant_prefix);
        if (next_tenant.empty()) break;
        it->Seek(next_tenant);
        continue;
      }
      if (type == kDedupTimeRecord) {
        // The record may have been written again since (expired at lookup, then re-recorded):
        // only the record this entry indexes goes.
        target = DedupKeyOfTimeKey(key);
        leveldb::Status status = db_->Get(read, target, &value);
        DedupValue record;
        if (status.ok() && DecodeDedup(value, &record) && record.recorded_ms == key.ts) {
          batch.Delete(target);
        } else if (!status.ok() && !status.IsNotFound()) {
          return FromLevelDb(status);
        }
      }
      batch.Delete(it->key());
      it->Next();
    }
    if (!it->status().ok()) return FromLevelDb(it->status());
    it.reset();
    if (batch.ops > 0) {
      if (Status status = Write(sweep_options, &batch); !status.ok()) return status;
    }
    if (!more) return Status::OK();
  }
}

}  // namespace
}  // namespace internal::leveldb_queue

namespace internal {

bool GetLevelDbWriteStats(const OfflineQueue& queue, LevelDbWriteStats* out) {
  const auto* leveldb_queue = dynamic_cast<const leveldb_queue::LevelDbOfflineQueue*>(&queue);
  if (leveldb_queue == nullptr) return false;
  *out = leveldb_queue->WriteStats();
  return true;
}

}  // namespace internal

Result<std::shared_ptr<OfflineQueue>> OpenLevelDbOfflineQueue(const std::string& dir,
                                                              OfflineQueueOptions options,
                                                              LevelDbOptions db) {
  if (sodium_init() < 0) return Status::Internal("libsodium failed to initialize");
  auto queue = std::make_shared<internal::leveldb_queue::LevelDbOfflineQueue>(options, db);
  Status status = queue->Open(dir, /*new_epochs=*/false, nullptr);
  if (!status.ok()) return status;
  return std::shared_ptr<OfflineQueue>(std::move(queue));
}

Result<size_t> RepairLevelDbOfflineQueue(const std::string& dir, LevelDbOptions db) {
  if (sodium_init() < 0) return Status::Internal("libsodium failed to initialize");
  if (Status s = internal::RepairDb(dir); !s.ok()) return s;
  db.create_if_missing = false;
  internal::leveldb_queue::LevelDbOfflineQueue queue({}, db);
  size_t renewed = 0;
  if (Status s = queue.Open(dir, /*new_epochs=*/true, &renewed); !s.ok()) return s;
  return renewed;
}

}  // namespace im
