// The server's rate limits (ServerOptions' login_*, register_*, chat_*, group_user_*): one keyed token-bucket
// table (ops/rate_limit.h) per limit, and the 429 answer a client gets at one. Where each
// applies: SessionService::Login (login_address), the REST token and user endpoints
// (login_address, login_account, register_address, and the early refusal before a request
// waits for the hashing pool), ChatService::TakeSendLimits (chat_connection, chat_user,
// chat_tenant), GET /v1/route (route_address), the REST requests of a tenant (rest_tenant),
// SessionService::Login (login_tenant, once the token is verified) and the socket commands
// chat.sync, chat.ack and group.* (command_tenant), GroupOps::Create and the group joins and
// quits (group_user, weighted by the inbox entries a change stores). The *_tenant buckets and the tenant's
// overrides of the others come from the tenant registry (TenantQuotas) at every take.
// chat_connection is one TokenBucket on each connection's state, not a keyed table: a
// connection's sends take it in the connection's turns, without a lookup or a lock.
//
// Thread-safety: every method is safe from any thread.
#ifndef IM_CORE_RATE_LIMITS_H_
#define IM_CORE_RATE_LIMITS_H_

#include <initializer_list>
#include <memory>
#include <optional>
#include <string>

#include "im/options.h"
#include "im/status.h"
#include "im/types.h"
#include "ops/metrics.h"
#include "ops/rate_limit.h"
#include "tenant/tenant_directory.h"

namespace im::internal {

// One token bucket with no key and no lock, for state that one thread at a time uses (a
// connection's turns). Same arithmetic as a RateLimiter bucket: full at first, `burst`
// tokens at most, `rate_per_s` a second; unlimited when the rate is not positive.
class TokenBucket {
 public:
  // Takes a token: 0; otherwise takes nothing and returns the milliseconds until one is there.
  int64_t Take(const BucketLimit& limit, TimestampMs now);
  // Gives back a token an earlier Take took.
  void Refund(const BucketLimit& limit);

 private:
  bool used_ = false;  // false: a full bucket (bucket_ is not set yet)
  RateLimiter::BucketState bucket_;  // tokens may be a hair below zero (the float tolerance of Take)
};

class RateLimits {
 public:
  // One bucket of one limit.
  struct Key {
    RateLimiter* limiter;
    Metrics::Limit limit;
    std::string key;
    std::optional<BucketLimit> own;  // a tenant's setting, else the limiter's own limit
    std::string tenant;              // not empty: a refusal is counted for this tenant too
  };

  // `clock`, `metrics` and `tenants` must outlive the limits. `tenants` (may be null: no
  // tenant has settings of its own) gives each tenant's chat settings.
  RateLimits(const ServerOptions& options, Clock* clock, Metrics* metrics,
             const TenantDirectory* tenants = nullptr);

  // Takes a token from each bucket in order. When one is empty: gives back the tokens taken,
  // counts the refusal under that limit and returns 429 rate_limited with the longest wait.
  Status Take(std::initializer_list<Key> keys);
  void Refund(std::initializer_list<Key> keys);
  // 429 when `key`'s bucket is empty now (taking nothing), counted under its limit.
  Status Peek(const Key& key);

  // chat.send: a token of the connection's bucket, then of the user's (the tenant's
  // user_send_rate/burst when it sets them, else chat_user_*), then of the tenant's own bucket
  // (when it sets tenant_send_rate); 429 when one is empty (those taken given back), counted
  // under that limit, overall and per tenant. One tenant's flood empties its own buckets only.
  Status TakeChat(TokenBucket& connection, const UserKey& user);
  // A REST request naming `tenant`: a token of the tenant's own bucket when it sets
  // rest_request_rate (else nothing to take); 429 when empty, counted overall and per tenant.
  Status TakeRest(const std::string& tenant);
  // The same for a socket login of `tenant` (login_rate/burst), and for a socket command of
  // the command_rate bucket (command_rate/burst).
  Status TakeLogin(const std::string& tenant);
  Status TakeCommand(const std::string& tenant);
  // A group change of `user` storing `cost` inbox entries (the tenant's user_group_rate/burst
  // when it sets them, else group_user_*); 429 when the user's bucket is short, counted overall
  // and per tenant.
  Status TakeGroup(const UserKey& user, double cost);

  Key LoginAddress(const std::string& remote_address);
  // Under the tenant's login_account_rate/burst when it sets them, else login_account_*.
  Key LoginAccount(const std::string& tenant, const std::string& user);
  Key RegisterAddress(const std::string& remote_address);
  Key ChatUser(const UserKey& user);
  Key RouteAddress(const std::string& remote_address);

 private:
  Metrics* const metrics_;
  Clock* const clock_;
  const BucketLimit chat_connection_;
  std::unique_ptr<RateLimiter> login_address_;
  std::unique_ptr<RateLimiter> login_account_;
  std::unique_ptr<RateLimiter> register_address_;
  std::unique_ptr<RateLimiter> chat_user_;
  std::unique_ptr<RateLimiter> group_user_;
  std::unique_ptr<RateLimiter> chat_tenant_;  // keyed by tenant; limits from the registry
  std::unique_ptr<RateLimiter> route_address_;
  std::unique_ptr<RateLimiter> rest_tenant_;     // the same, for REST requests,
  std::unique_ptr<RateLimiter> login_tenant_;    // socket logins
  std::unique_ptr<RateLimiter> command_tenant_;  // and socket commands
  const TenantDirectory* const tenants_;
  // 429 for a request refused by `limit`, counted overall and for `tenant`.
  Status TenantRefusal(Metrics::Limit limit, const std::string& tenant, int64_t wait_ms);
  // A token of `tenant`'s bucket in `table` when the tenant sets `rate` (else nothing to take);
  // 429 when empty, counted under `limit` overall and per tenant.
  Status TakeTenant(RateLimiter& table, Metrics::Limit limit, const std::string& tenant,
                    double TenantQuotas::*rate, uint64_t TenantQuotas::*burst);
};

}  // namespace im::internal

#endif  // IM_CORE_RATE_LIMITS_H_
