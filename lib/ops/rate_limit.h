// Token buckets keyed by strings that come from clients (remote addresses, account names,
// connection ids, user ids), in a table whose memory is bounded however many keys a client
// makes up.
//
// A bucket holds up to `burst` tokens and gains `rate_per_s` tokens a second; an action that
// costs n tokens passes when the bucket holds n, and otherwise learns how long to wait. A key
// the table does not hold has a full bucket, so forgetting a full bucket loses nothing.
//
// The bound. The table keeps at most `max_keys` keys, spread over kShards shards (a key's shard
// is fixed by its hash), each with its own lock, so the lock is held for a few map operations
// by a fraction of the callers. A shard keeps the keys it holds in least-recently-used order.
// Every Take drops up to two of the shard's least recently used buckets that have filled up
// again (such a bucket is the same as no bucket), so a table in use shrinks back to its active
// keys (a shard nobody uses keeps what it holds, within the bound). When a new key
// arrives at a full shard, the shard looks at its few least recently used buckets and forgets
// the first one that is full. When none is full (every key of the shard was used recently: a
// flood of made-up keys), the new key is not stored: it shares the shard's one overflow bucket
// (same limit) with every other key that found no room. This fails safe both ways:
//  - never unlimited for a flooder: a bucket in debt is never evicted, so making up keys cannot
//    reset a key that is being limited (a locked account stays locked), and the made-up keys
//    themselves share kShards overflow buckets, together at most kShards times one key's rate;
//  - never a lockout of everyone: keys already tracked keep their own buckets, and a new key
//    in the overflow still gets its share of a bucket that refills, and its own bucket as soon
//    as a slot frees (a bucket refills in burst / rate seconds).
//
// Limits per call. The table stores tokens and a time; the limit applies when a key is used, so
// one table can serve keys with different limits (the overload of Take taking a BucketLimit),
// e.g. a per-tenant setting, and a per-tenant bucket is one more RateLimiter keyed by tenant.
//
// Memory: about 170 bytes per key plus the key's length (max_keys x that at the bound).
//
// Thread-safety: every method is safe from any thread.
#ifndef IM_OPS_RATE_LIMIT_H_
#define IM_OPS_RATE_LIMIT_H_

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "im/types.h"

namespace im::internal {

struct BucketLimit {
  double rate_per_s = 0;  // tokens added per second; 0 (or less, or NaN) = no limit at all
  double burst = 1;       // the most tokens a bucket holds (at least 1 is used)
  bool unlimited() const { return !(rate_per_s > 0); }
};

class RateLimiter {
 public:
  static constexpr size_t kShards = 16;
  // How many of a full shard's least recently used buckets a new key looks at for one to drop.
  static constexpr size_t kEvictScan = 8;

  // `max_keys` is rounded up to a multiple of kShards (at least one key per shard). `clock`
  // must outlive the limiter.
  RateLimiter(BucketLimit limit, size_t max_keys, Clock* clock);
  RateLimiter(const RateLimiter&) = delete;
  RateLimiter& operator=(const RateLimiter&) = delete;

  // Takes `cost` tokens from `key`'s bucket: 0 when taken; otherwise nothing is taken and the
  // result is how many milliseconds until the bucket will hold `cost` (at least 1). A cost above
  // the burst counts as the burst. Unlimited: always 0, and nothing is stored.
  int64_t Take(std::string_view key, double cost = 1) { return Take(key, limit_, cost); }
  int64_t Take(std::string_view key, const BucketLimit& limit, double cost = 1);
  // Milliseconds until `key`'s bucket holds `cost` (0: now), taking nothing and storing no key.
  int64_t Peek(std::string_view key, double cost = 1) const;
  // Gives back tokens an earlier Take took (up to the burst); a key no longer held (forgotten,
  // or sharing the overflow bucket) gets nothing back.
  void Refund(std::string_view key, double tokens = 1);

  const BucketLimit& limit() const { return limit_; }

  // One bucket's arithmetic, shared with the keyless TokenBucket (core/rate_limits.h), which
  // keeps only this state (its limit is the caller's: no copy on every connection).
  struct BucketState {
    double tokens = 0;
    TimestampMs updated = 0;
  };
  struct Bucket : BucketState {
    // The limit the key was last taken under (Take's), which the table's own upkeep (eviction,
    // Refund, Peek) applies to it: a key with a limit of its own is never judged by another.
    BucketLimit limit{};
  };
  // Refills `b` to `now` under `limit`.
  static void Refill(BucketState& b, const BucketLimit& limit, TimestampMs now);
  // Milliseconds until `b` holds `cost` (0: now).
  static int64_t WaitMs(const BucketState& b, const BucketLimit& limit, double cost);
  size_t max_keys() const { return per_shard_ * kShards; }
  // Keys held now (the overflow buckets not counted).
  size_t size() const;

 private:
  using Lru = std::list<std::pair<std::string, Bucket>>;  // most recently used first
  struct Shard {
    mutable std::mutex mu;
    Lru lru;
    std::unordered_map<std::string_view, Lru::iterator> index;  // views into lru's keys
    Bucket overflow;
    bool overflow_used = false;
  };

  Shard& ShardOf(std::string_view key) const;
  // The bucket of a key the shard does not hold: a new slot, or the overflow bucket.
  Bucket* Insert(Shard& s, std::string_view key, const BucketLimit& limit, TimestampMs now);

  const BucketLimit limit_;
  const size_t per_shard_;
  Clock* const clock_;
  std::unique_ptr<Shard[]> shards_;
};

// The part of a remote address ("1.2.3.4:5678", "[2001:db8::1]:5678") that names a client for
// a limit: an IPv4 address without the port, or an IPv6 address's /64 prefix (one subscriber
// usually holds a whole /64, so its addresses are one client). Anything else is used as given.
std::string AddressKey(std::string_view remote_address);

}  // namespace im::internal

#endif  // IM_OPS_RATE_LIMIT_H_
