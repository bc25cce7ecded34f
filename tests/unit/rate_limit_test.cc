#include "ops/rate_limit.h"

#include <doctest/doctest.h>

#include <atomic>
#include <functional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using im::internal::AddressKey;
using im::internal::BucketLimit;
using im::internal::RateLimiter;

class FakeClock final : public im::Clock {
 public:
  im::TimestampMs NowMs() const override { return now_.load(); }
  void Advance(int64_t ms) { now_ += ms; }

 private:
  std::atomic<im::TimestampMs> now_{1800000000000};
};

}  // namespace

TEST_CASE("rate limit: a burst passes, then one token per refill interval") {
  FakeClock clock;
  RateLimiter limiter(BucketLimit{2, 5}, 1000, &clock);  // 2 a second, 5 at once
  for (int i = 0; i < 5; ++i) CHECK(limiter.Take("a") == 0);
  // Empty: the next token is 500 ms away.
  CHECK(limiter.Take("a") == 500);
  CHECK(limiter.Peek("a") == 500);
  clock.Advance(499);
  CHECK(limiter.Take("a") == 1);
  clock.Advance(1);
  CHECK(limiter.Take("a") == 0);
  CHECK(limiter.Take("a") == 500);
  // Other keys have their own buckets.
  CHECK(limiter.Take("b") == 0);
  // Refill stops at the burst: after a long idle time, again 5 and no more.
  clock.Advance(3600 * 1000);
  for (int i = 0; i < 5; ++i) CHECK(limiter.Take("a") == 0);
  CHECK(limiter.Take("a") > 0);
}

TEST_CASE("rate limit: retry_after counts the tokens missing for the cost") {
  FakeClock clock;
  RateLimiter limiter(BucketLimit{0.5, 4}, 1000, &clock);  // one token every 2 s
  CHECK(limiter.Take("k", 3) == 0);
  CHECK(limiter.Take("k", 3) == 4000);  // 1 left, 2 missing
  CHECK(limiter.Take("k", 1) == 0);
  CHECK(limiter.Take("k", 1) == 2000);
  // A cost above the burst counts as the burst (never a wait that cannot end).
  CHECK(limiter.Take("k", 100) == 8000);
  clock.Advance(8000);
  CHECK(limiter.Take("k", 100) == 0);
}

TEST_CASE("rate limit: refund gives back up to the burst - unlimited never refuses") {
  FakeClock clock;
  RateLimiter limiter(BucketLimit{1, 2}, 1000, &clock);
  CHECK(limiter.Take("x") == 0);
  CHECK(limiter.Take("x") == 0);
  CHECK(limiter.Take("x") > 0);
  limiter.Refund("x");
  CHECK(limiter.Take("x") == 0);
  limiter.Refund("x", 10);
  CHECK(limiter.Take("x") == 0);
  CHECK(limiter.Take("x") == 0);
  CHECK(limiter.Take("x") > 0);

  RateLimiter off(BucketLimit{0, 1}, 16, &clock);
  for (int i = 0; i < 1000; ++i) REQUIRE(off.Take("x") == 0);
  CHECK(off.size() == 0);
}

TEST_CASE("rate limit: a limit given per call uses the same table") {
  FakeClock clock;
  RateLimiter limiter(BucketLimit{1, 1}, 1000, &clock);
  const BucketLimit generous{10, 3};
  for (int i = 0; i < 3; ++i) CHECK(limiter.Take("tenant-a", generous) == 0);
  CHECK(limiter.Take("tenant-a", generous) == 100);
  CHECK(limiter.Take("tenant-b") == 0);
  CHECK(limiter.Take("tenant-b") == 1000);
}

TEST_CASE("rate limit: a key taken under a limit of its own is kept and refunded by that limit") {
  FakeClock clock;
  RateLimiter limiter(BucketLimit{1000, 1000}, 1000, &clock);  // the table's own: generous
  const BucketLimit strict{0.001, 1};  // one token, then one in 1000 s
  // A second key in the same shard, whose takes run the shard's upkeep over the strict one.
  std::string other;
  for (int i = 0; other.empty(); ++i) {
    const std::string k = "k" + std::to_string(i);
    if (std::hash<std::string_view>{}(k) % RateLimiter::kShards ==
        std::hash<std::string_view>{}("strict") % RateLimiter::kShards) {
      other = k;
    }
  }
  CHECK(limiter.Take("strict", strict) == 0);
  CHECK(limiter.Take("strict", strict) > 0);
  clock.Advance(2000);  // the table's limit would have refilled it to full long ago
  for (int i = 0; i < 4; ++i) CHECK(limiter.Take(other) == 0);
  // Still in debt under its own limit: neither forgotten nor refilled at the table's rate.
  CHECK(limiter.Take("strict", strict) > 0);
  CHECK(limiter.Peek("strict") > 0);
  limiter.Refund("strict", 5);  // up to its own burst (1), not the table's (1000)
  CHECK(limiter.Take("strict", strict) == 0);
  CHECK(limiter.Take("strict", strict) > 0);
}

TEST_CASE("rate limit: full buckets are forgotten, so an idle table shrinks") {
  FakeClock clock;
  RateLimiter limiter(BucketLimit{10, 1}, 1000, &clock);
  for (int i = 0; i < 500; ++i) REQUIRE(limiter.Take("k" + std::to_string(i)) == 0);
  const size_t busy = limiter.size();
  CHECK(busy > 400);
  clock.Advance(1000);  // every bucket is full again
  // Each use of a shard forgets its least recently used full buckets: 100 keys used a few times
  // each (every shard is used) leave about those 100.
  for (int round = 0; round < 20; ++round) {
    for (int i = 0; i < 100; ++i) (void)limiter.Take("again" + std::to_string(i));
  }
  CHECK(limiter.size() <= 100);
}

TEST_CASE("rate limit: at the key bound a flood of new keys shares an overflow bucket") {
  FakeClock clock;
  const BucketLimit limit{1, 3};
  RateLimiter limiter(limit, 64, &clock);  // 4 keys per shard
  CHECK(limiter.max_keys() == 64);
  // The victim's key is locked (in debt) before the flood.
  for (int i = 0; i < 3; ++i) REQUIRE(limiter.Take("victim") == 0);
  REQUIRE(limiter.Take("victim") > 0);

  // A flood of made-up keys, each used once: never more than max_keys are held...
  int passed = 0;
  for (int i = 0; i < 10000; ++i) passed += limiter.Take("made-up-" + std::to_string(i)) == 0;
  CHECK(limiter.size() <= limiter.max_keys());
  // ...the flood as a whole is limited: the keys that found a slot (at most max_keys, each with
  // its burst) plus the overflow buckets (kShards x burst); far fewer than 10000.
  CHECK(passed <= static_cast<int>(limiter.max_keys() * 3 + RateLimiter::kShards * 3));
  // ...and it did not reset the locked key: a bucket in debt is never forgotten.
  CHECK(limiter.Take("victim") > 0);

  // Not a lockout of everyone: once the flood's buckets refill (and are forgotten), a new key
  // gets its own full bucket again.
  clock.Advance(3000);
  for (int i = 0; i < 3; ++i) CHECK(limiter.Take("newcomer") == 0);
  CHECK(limiter.Take("newcomer") > 0);
  CHECK(limiter.Take("victim") == 0);
}

TEST_CASE("rate limit: keys in debt are kept - a new key then waits in the overflow bucket") {
  FakeClock clock;
  RateLimiter limiter(BucketLimit{1, 1}, RateLimiter::kShards, &clock);  // 1 key per shard
  // Distinct keys: the first key of each shard gets a slot and stays there in debt; every
  // later key finds its shard full of debt and shares the shard's overflow bucket (one token).
  int passed = 0;
  for (int i = 0; i < 1000; ++i) passed += limiter.Take("d" + std::to_string(i)) == 0;
  CHECK(limiter.size() == RateLimiter::kShards);
  CHECK(passed == static_cast<int>(2 * RateLimiter::kShards));
  // The wait is the overflow bucket's refill time, never forever.
  CHECK(limiter.Take("n-late") == 1000);
}

TEST_CASE("rate limit: concurrent takes never pass more than the burst") {
  FakeClock clock;
  RateLimiter limiter(BucketLimit{1, 100}, 1000, &clock);
  std::atomic<int> passed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 100; ++i) passed += limiter.Take("shared") == 0;
    });
  }
  for (auto& t : threads) t.join();
  CHECK(passed == 100);
}

TEST_CASE("rate limit: address keys drop the port and group IPv6 by /64") {
  CHECK(AddressKey("127.0.0.1:5555") == "127.0.0.1");
  CHECK(AddressKey("10.1.2.3:1") == AddressKey("10.1.2.3:2"));
  CHECK(AddressKey("[2001:db8:1:2:aaaa::1]:443") == "2001:db8:1:2::/64");
  CHECK(AddressKey("[2001:db8:1:2::9]:80") == AddressKey("[2001:db8:1:2:ffff::1]:81"));
  CHECK(AddressKey("[2001:db8:1:3::9]:80") != AddressKey("[2001:db8:1:2::9]:80"));
  CHECK(AddressKey("") == "");
  CHECK(AddressKey("not-an-address") == "not-an-address");
}
