// The server's rate limits (ServerOptions' login_*, register_*, chat_*): one keyed token-bucket
// table (ops/rate_limit.h) per limit, and the 429 answer a client gets at one. Where each
// applies: SessionService::Login (login_address), the REST token and user endpoints
// (login_address, login_account, register_address, and the early refusal before a request
// waits for the hashing pool), ChatService::TakeSendLimits (chat_connection, chat_user).
//
// Thread-safety: every method is safe from any thread.
#ifndef IM_CORE_RATE_LIMITS_H_
#define IM_CORE_RATE_LIMITS_H_

#include <initializer_list>
#include <memory>
#include <string>

#include "im/options.h"
#include "im/status.h"
#include "im/types.h"
#include "ops/metrics.h"
#include "ops/rate_limit.h"

namespace im::internal {

class RateLimits {
 public:
  // One bucket of one limit.
  struct Key {
    RateLimiter* limiter;
    Metrics::Limit limit;
    std::string key;
  };

  // `clock` and `metrics` must outlive the limits.
  RateLimits(const ServerOptions& options, Clock* clock, Metrics* metrics);

  // Takes a token from each bucket in order. When one is empty: gives back the tokens taken,
  // counts the refusal under that limit and returns 429 rate_limited with the longest wait.
  Status Take(std::initializer_list<Key> keys);
  void Refund(std::initializer_list<Key> keys);
  // 429 when `key`'s bucket is empty now (taking nothing), counted under its limit.
  Status Peek(const Key& key);

  Key LoginAddress(const std::string& remote_address);
  Key LoginAccount(const std::string& tenant, const std::string& user);
  Key RegisterAddress(const std::string& remote_address);
  Key ChatConnection(uint64_t connection_id);
  Key ChatUser(const UserKey& user);

 private:
  Metrics* const metrics_;
  std::unique_ptr<RateLimiter> login_address_;
  std::unique_ptr<RateLimiter> login_account_;
  std::unique_ptr<RateLimiter> register_address_;
  std::unique_ptr<RateLimiter> chat_connection_;
  std::unique_ptr<RateLimiter> chat_user_;
};

}  // namespace im::internal

#endif  // IM_CORE_RATE_LIMITS_H_
