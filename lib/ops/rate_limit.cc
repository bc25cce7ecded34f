#include "ops/rate_limit.h"

#include <asio/ip/address.hpp>

#include <algorithm>
#include <cmath>
#include <functional>

namespace im::internal {

RateLimiter::RateLimiter(BucketLimit limit, size_t max_keys, Clock* clock)
    : limit_(limit),
      per_shard_(std::max<size_t>(1, (max_keys + kShards - 1) / kShards)),
      clock_(clock),
      shards_(std::make_unique<Shard[]>(kShards)) {}

RateLimiter::Shard& RateLimiter::ShardOf(std::string_view key) const {
  return shards_[std::hash<std::string_view>{}(key) % kShards];
}

void RateLimiter::Refill(BucketState& b, const BucketLimit& limit, TimestampMs now) {
  const double burst = std::max(1.0, limit.burst);
  if (now > b.updated) {  // a clock that steps back adds nothing
    b.tokens = std::min(burst, b.tokens + static_cast<double>(now - b.updated) *
                                              limit.rate_per_s / 1000.0);
    b.updated = now;
  }
  b.tokens = std::min(burst, b.tokens);
}

int64_t RateLimiter::WaitMs(const BucketState& b, const BucketLimit& limit, double cost) {
  // A hair of tolerance: after waiting the time it was told, a caller finds the tokens there
  // even when the refill's float arithmetic lands a rounding error short.
  const double missing = cost - b.tokens;
  if (missing <= 1e-6) return 0;
  const double ms = std::ceil(missing * 1000.0 / limit.rate_per_s - 1e-6);
  return std::max<int64_t>(1, static_cast<int64_t>(std::min(ms, 1e15)));
}

RateLimiter::Bucket* RateLimiter::Insert(Shard& s, std::string_view key, const BucketLimit& limit,
                                         TimestampMs now) {
  if (s.index.size() >= per_shard_) {
    // Full: forget a full bucket among the least recently used ones, never one in debt.
    auto it = s.lru.end();
    for (size_t i = 0; i < kEvictScan && it != s.lru.begin(); ++i) {
      --it;
      Refill(it->second, it->second.limit, now);
      if (it->second.tokens >= std::max(1.0, it->second.limit.burst)) {
        s.index.erase(std::string_view(it->first));
        s.lru.erase(it);
        break;
      }
    }
  }
  if (s.index.size() >= per_shard_) {
    if (!s.overflow_used) {
      s.overflow = Bucket{{std::max(1.0, limit.burst), now}, {}};
      s.overflow_used = true;
    }
    Refill(s.overflow, limit, now);
    return &s.overflow;
  }
  s.lru.emplace_front(std::string(key), Bucket{{std::max(1.0, limit.burst), now}, limit});
  s.index.emplace(std::string_view(s.lru.front().first), s.lru.begin());
  return &s.lru.front().second;
}

int64_t RateLimiter::Take(std::string_view key, const BucketLimit& limit, double cost) {
  if (limit.unlimited()) return 0;
  cost = std::min(cost, std::max(1.0, limit.burst));
  const TimestampMs now = clock_->NowMs();
  Shard& s = ShardOf(key);
  std::lock_guard<std::mutex> lock(s.mu);
  Bucket* b;
  auto found = s.index.find(key);
  if (found != s.index.end()) {
    s.lru.splice(s.lru.begin(), s.lru, found->second);  // now the most recently used
    b = &found->second->second;
    b->limit = limit;
    Refill(*b, limit, now);
  } else {
    b = Insert(s, key, limit, now);
  }
  const int64_t wait = WaitMs(*b, limit, cost);
  if (wait == 0) b->tokens -= cost;
  // Keep an idle shard small: its least recently used buckets, once full again, are no
  // buckets. Up to two a call, so that a shard shrinks faster than one key at a time grows it.
  for (int i = 0; i < 2 && s.lru.size() > 1; ++i) {
    auto& [tail_key, tail] = s.lru.back();
    Refill(tail, tail.limit, now);
    if (tail.tokens < std::max(1.0, tail.limit.burst)) break;
    s.index.erase(std::string_view(tail_key));
    s.lru.pop_back();
  }
  return wait;
}

int64_t RateLimiter::Peek(std::string_view key, double cost) const {
  const TimestampMs now = clock_->NowMs();
  Shard& s = ShardOf(key);
  std::lock_guard<std::mutex> lock(s.mu);
  Bucket b{{std::max(1.0, limit_.burst), now}, limit_};
  if (auto found = s.index.find(key); found != s.index.end()) {
    b = found->second->second;
  } else if (s.index.size() >= per_shard_ && s.overflow_used) {
    // A new key would most likely land in the overflow bucket.
    b = s.overflow;
    b.limit = limit_;
  }
  if (b.limit.unlimited()) return 0;
  cost = std::min(cost, std::max(1.0, b.limit.burst));
  Refill(b, b.limit, now);
  return WaitMs(b, b.limit, cost);
}

void RateLimiter::Refund(std::string_view key, double tokens) {
  Shard& s = ShardOf(key);
  std::lock_guard<std::mutex> lock(s.mu);
  auto found = s.index.find(key);
  if (found == s.index.end()) return;
  Bucket& b = found->second->second;
  b.tokens = std::min(std::max(1.0, b.limit.burst), b.tokens + tokens);
}

size_t RateLimiter::size() const {
  size_t n = 0;
  for (size_t i = 0; i < kShards; ++i) {
    std::lock_guard<std::mutex> lock(shards_[i].mu);
    n += shards_[i].index.size();
  }
  return n;
}

std::string AddressKey(std::string_view remote_address) {
  std::string_view host = remote_address;
  if (!host.empty() && host.front() == '[') {
    const size_t close = host.find(']');
    host = close == std::string_view::npos ? host.substr(1) : host.substr(1, close - 1);
  } else if (const size_t colon = host.rfind(':');
             colon != std::string_view::npos && host.find(':') == colon) {
    host = host.substr(0, colon);  // one colon: IPv4 (or a name) and a port
  }
  asio::error_code ec;
  asio::ip::address a = asio::ip::make_address(std::string(host), ec);
  if (ec) return std::string(host);
  if (a.is_v4()) return a.to_string();
  asio::ip::address_v6::bytes_type bytes = a.to_v6().to_bytes();
  std::fill(bytes.begin() + 8, bytes.end(), 0);
  return asio::ip::address_v6(bytes).to_string() + "/64";
}

}  // namespace im::internal
