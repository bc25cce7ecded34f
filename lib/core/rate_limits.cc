#include "core/rate_limits.h"

#include <algorithm>
#include <string>

namespace im::internal {

namespace {

const char* RefusalText(Metrics::Limit limit) {
  switch (limit) {
    case Metrics::Limit::kLoginAddress: return "too many failed logins from this address";
    case Metrics::Limit::kLoginAccount: return "too many failed logins for this account";
    case Metrics::Limit::kRegisterAddress: return "too many accounts created from this address";
    case Metrics::Limit::kChatConnection: return "too many messages on this connection";
    case Metrics::Limit::kChatUser: return "too many messages from this user";
    case Metrics::Limit::kChatTenant: return "too many messages from this tenant";
    case Metrics::Limit::kRouteAddress: return "too many route requests from this address";
    case Metrics::Limit::kRestTenant: return "too many REST requests of this tenant";
    case Metrics::Limit::kLoginTenant: return "too many logins of this tenant";
    case Metrics::Limit::kCommandTenant: return "too many commands of this tenant";
    case Metrics::Limit::kGroupUser: return "too many group changes from this user";
  }
  return "rate limited";
}

// A tenant's rate setting as a bucket limit: a burst of 0 means twice the rate (at least 1).
BucketLimit TenantLimit(double rate, uint64_t burst) {
  return {rate, burst > 0 ? static_cast<double>(burst) : std::max(1.0, 2 * rate)};
}

Status Refusal(Metrics::Limit limit, int64_t wait_ms) {
  return Status::RateLimited(std::string(RefusalText(limit)) + "; retry in " +
                                 std::to_string(wait_ms) + " ms",
                             wait_ms);
}

}  // namespace

int64_t TokenBucket::Take(const BucketLimit& limit, TimestampMs now) {
  if (limit.unlimited()) return 0;
  if (!used_) {
    used_ = true;
    bucket_ = {std::max(1.0, limit.burst), now};
  }
  RateLimiter::Refill(bucket_, limit, now);
  const int64_t wait = RateLimiter::WaitMs(bucket_, limit, 1.0);
  if (wait == 0) bucket_.tokens -= 1.0;
  return wait;
}

void TokenBucket::Refund(const BucketLimit& limit) {
  if (used_) bucket_.tokens = std::min(std::max(1.0, limit.burst), bucket_.tokens + 1.0);
}

RateLimits::RateLimits(const ServerOptions& options, Clock* clock, Metrics* metrics,
                       const TenantDirectory* tenants)
    : metrics_(metrics),
      clock_(clock),
      chat_connection_{options.chat_connection_rate,
                       static_cast<double>(options.chat_connection_burst)},
      tenants_(tenants) {
  auto make = [&](double rate, size_t burst) {
    return std::make_unique<RateLimiter>(BucketLimit{rate, static_cast<double>(burst)},
                                         options.rate_limit_max_keys, clock);
  };
  login_address_ = make(options.login_address_rate, options.login_address_burst);
  login_account_ = make(options.login_account_rate, options.login_account_burst);
  register_address_ = make(options.register_address_rate, options.register_address_burst);
  chat_user_ = make(options.chat_user_rate, options.chat_user_burst);
  group_user_ = make(options.group_user_rate, options.group_user_burst);
  route_address_ = make(options.route_address_rate, options.route_address_burst);
  // Its own limit is never used: each tenant's comes from the registry at every Take.
  chat_tenant_ = make(0, 1);
  rest_tenant_ = make(0, 1);
  login_tenant_ = make(0, 1);
  command_tenant_ = make(0, 1);
}

RateLimits::Key RateLimits::LoginAddress(const std::string& remote_address) {
  return {login_address_.get(), Metrics::Limit::kLoginAddress, AddressKey(remote_address), {}, {}};
}

RateLimits::Key RateLimits::LoginAccount(const std::string& tenant, const std::string& user) {
  Key k{login_account_.get(), Metrics::Limit::kLoginAccount, tenant + '\x1f' + user, {}, {}};
  std::shared_ptr<const TenantDirectory::Policy> policy =
      tenants_ ? tenants_->Find(tenant) : nullptr;
  // Counted per tenant for tenants of the registry only: the name comes from the request body,
  // and made-up names must not take the bounded tenant labels.
  if (policy) k.tenant = tenant;
  if (policy && policy->record.quotas.login_account_rate > 0) {
    const TenantQuotas& q = policy->record.quotas;
    k.own = TenantLimit(q.login_account_rate, q.login_account_burst);
  }
  return k;
}

RateLimits::Key RateLimits::RegisterAddress(const std::string& remote_address) {
  return {register_address_.get(), Metrics::Limit::kRegisterAddress, AddressKey(remote_address),
          {}, {}};
}

RateLimits::Key RateLimits::RouteAddress(const std::string& remote_address) {
  return {route_address_.get(), Metrics::Limit::kRouteAddress, AddressKey(remote_address), {}, {}};
}

RateLimits::Key RateLimits::ChatUser(const UserKey& user) {
  return {chat_user_.get(), Metrics::Limit::kChatUser, user.tenant + '\x1f' + user.user, {}, {}};
}

Status RateLimits::Take(std::initializer_list<Key> keys) {
  for (auto it = keys.begin(); it != keys.end(); ++it) {
    int64_t wait = it->own ? it->limiter->Take(it->key, *it->own) : it->limiter->Take(it->key);
    if (wait == 0) continue;
    metrics_->RateLimited(it->limit);
    if (!it->tenant.empty()) metrics_->TenantRateLimited(it->tenant, it->limit);
    for (auto taken = keys.begin(); taken != it; ++taken) taken->limiter->Refund(taken->key);
    // Retrying sooner than the slowest bucket allows would only be refused again.
    for (auto rest = it + 1; rest != keys.end(); ++rest) {
      wait = std::max(wait, rest->limiter->Peek(rest->key));
    }
    return Refusal(it->limit, wait);
  }
  return Status::OK();
}

Status RateLimits::TenantRefusal(Metrics::Limit limit, const std::string& tenant, int64_t wait_ms) {
  metrics_->RateLimited(limit);
  metrics_->TenantRateLimited(tenant, limit);
  return Refusal(limit, wait_ms);
}

Status RateLimits::TakeChat(TokenBucket& connection, const UserKey& user) {
  const Key user_key = ChatUser(user);
  std::shared_ptr<const TenantDirectory::Policy> policy =
      tenants_ ? tenants_->Find(user.tenant) : nullptr;
  const TenantQuotas no_quotas;
  const TenantQuotas& q = policy ? policy->record.quotas : no_quotas;
  const BucketLimit connection_limit =
      q.connection_send_rate > 0 ? TenantLimit(q.connection_send_rate, q.connection_send_burst)
                                 : chat_connection_;
  const BucketLimit user_limit = q.user_send_rate > 0
                                     ? TenantLimit(q.user_send_rate, q.user_send_burst)
                                     : user_key.limiter->limit();
  const BucketLimit tenant_limit = TenantLimit(q.tenant_send_rate, q.tenant_send_burst);
  int64_t wait = connection.Take(connection_limit, clock_->NowMs());
  if (wait > 0) {
    // Retrying sooner than the slowest bucket allows would only be refused again.
    return TenantRefusal(Metrics::Limit::kChatConnection, user.tenant,
                       std::max(wait, user_key.limiter->Peek(user_key.key)));
  }
  wait = user_key.limiter->Take(user_key.key, user_limit);
  if (wait > 0) {
    connection.Refund(connection_limit);
    return TenantRefusal(Metrics::Limit::kChatUser, user.tenant, wait);
  }
  if (!tenant_limit.unlimited()) {
    wait = chat_tenant_->Take(user.tenant, tenant_limit);
    if (wait > 0) {
      connection.Refund(connection_limit);
      user_key.limiter->Refund(user_key.key);
      return TenantRefusal(Metrics::Limit::kChatTenant, user.tenant, wait);
    }
  }
  metrics_->TenantMessage(user.tenant);
  return Status::OK();
}

Status RateLimits::TakeTenant(RateLimiter& table, Metrics::Limit limit, const std::string& tenant,
                              double TenantQuotas::*rate, uint64_t TenantQuotas::*burst) {
  std::shared_ptr<const TenantDirectory::Policy> policy =
      tenants_ ? tenants_->Find(tenant) : nullptr;
  if (!policy || !(policy->record.quotas.*rate > 0)) return Status::OK();
  const TenantQuotas& q = policy->record.quotas;
  const int64_t wait = table.Take(tenant, TenantLimit(q.*rate, q.*burst));
  return wait > 0 ? TenantRefusal(limit, tenant, wait) : Status::OK();
}

Status RateLimits::TakeRest(const std::string& tenant) {
  return TakeTenant(*rest_tenant_, Metrics::Limit::kRestTenant, tenant,
                    &TenantQuotas::rest_request_rate, &TenantQuotas::rest_request_burst);
}

Status RateLimits::TakeLogin(const std::string& tenant) {
  return TakeTenant(*login_tenant_, Metrics::Limit::kLoginTenant, tenant,
                    &TenantQuotas::login_rate, &TenantQuotas::login_burst);
}

Status RateLimits::TakeGroup(const UserKey& user, double cost) {
  std::shared_ptr<const TenantDirectory::Policy> policy =
      tenants_ ? tenants_->Find(user.tenant) : nullptr;
  const TenantQuotas* q = policy ? &policy->record.quotas : nullptr;
  const BucketLimit limit = q && q->user_group_rate > 0
                                ? TenantLimit(q->user_group_rate, q->user_group_burst)
                                : group_user_->limit();
  const int64_t wait = group_user_->Take(user.tenant + '\x1f' + user.user, limit, cost);
  return wait == 0 ? Status::OK() : TenantRefusal(Metrics::Limit::kGroupUser, user.tenant, wait);
}

Status RateLimits::TakeCommand(const std::string& tenant) {
  return TakeTenant(*command_tenant_, Metrics::Limit::kCommandTenant, tenant,
                    &TenantQuotas::command_rate, &TenantQuotas::command_burst);
}

void RateLimits::Refund(std::initializer_list<Key> keys) {
  for (const Key& k : keys) k.limiter->Refund(k.key);
}

Status RateLimits::Peek(const Key& key) {
  const int64_t wait = key.limiter->Peek(key.key);
  if (wait == 0) return Status::OK();
  metrics_->RateLimited(key.limit);
  return Refusal(key.limit, wait);
}

}  // namespace im::internal
