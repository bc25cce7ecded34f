// The server's rate limits: one keyed token-bucket table (ops/rate_limit.h) per limit, and the
// 429 answer a client gets at one. Where each applies: HandleLogin (login_address),
// HttpCreateToken (login_address, login_account), HttpCreateUser (register_address),
// HandleChatSend (chat_connection, chat_user), and HandleHttp's early refusal before a request
// waits for the hashing pool.
#include <algorithm>
#include <string>

#include "core/server_impl.h"

namespace im {

using internal::BucketLimit;
using internal::Metrics;
using internal::RateLimiter;

namespace {

const char* RefusalText(Metrics::Limit limit) {
  switch (limit) {
    case Metrics::Limit::kLoginAddress: return "too many failed logins from this address";
    case Metrics::Limit::kLoginAccount: return "too many failed logins for this account";
    case Metrics::Limit::kRegisterAddress: return "too many accounts created from this address";
    case Metrics::Limit::kChatConnection: return "too many messages on this connection";
    case Metrics::Limit::kChatUser: return "too many messages from this user";
  }
  return "rate limited";
}

Status Refusal(Metrics::Limit limit, int64_t wait_ms) {
  return Status::RateLimited(std::string(RefusalText(limit)) + "; retry in " +
                                 std::to_string(wait_ms) + " ms",
                             wait_ms);
}

}  // namespace

void Server::Impl::MakeLimits() {
  auto make = [this](double rate, size_t burst) {
    return std::make_unique<RateLimiter>(BucketLimit{rate, static_cast<double>(burst)},
                                         options_.rate_limit_max_keys, clock_);
  };
  login_address_limit_ = make(options_.login_address_rate, options_.login_address_burst);
  login_account_limit_ = make(options_.login_account_rate, options_.login_account_burst);
  register_address_limit_ =
      make(options_.register_address_rate, options_.register_address_burst);
  chat_connection_limit_ = make(options_.chat_connection_rate, options_.chat_connection_burst);
  chat_user_limit_ = make(options_.chat_user_rate, options_.chat_user_burst);
}

Server::Impl::LimitKey Server::Impl::LoginAddress(const std::string& remote_address) {
  return {login_address_limit_.get(), Metrics::Limit::kLoginAddress,
          internal::AddressKey(remote_address)};
}

Server::Impl::LimitKey Server::Impl::LoginAccount(const std::string& tenant,
                                                  const std::string& user) {
  return {login_account_limit_.get(), Metrics::Limit::kLoginAccount, tenant + '\x1f' + user};
}

Server::Impl::LimitKey Server::Impl::RegisterAddress(const std::string& remote_address) {
  return {register_address_limit_.get(), Metrics::Limit::kRegisterAddress,
          internal::AddressKey(remote_address)};
}

Status Server::Impl::TakeLimits(std::initializer_list<LimitKey> keys) {
  for (auto it = keys.begin(); it != keys.end(); ++it) {
    int64_t wait = it->limiter->Take(it->key);
    if (wait == 0) continue;
    metrics_.RateLimited(it->limit);
    for (auto taken = keys.begin(); taken != it; ++taken) taken->limiter->Refund(taken->key);
    // Retrying sooner than the slowest bucket allows would only be refused again.
    for (auto rest = it + 1; rest != keys.end(); ++rest) {
      wait = std::max(wait, rest->limiter->Peek(rest->key));
    }
    return Refusal(it->limit, wait);
  }
  return Status::OK();
}

void Server::Impl::RefundLimits(std::initializer_list<LimitKey> keys) {
  for (const LimitKey& k : keys) k.limiter->Refund(k.key);
}

Status Server::Impl::PeekLimit(const LimitKey& key) {
  const int64_t wait = key.limiter->Peek(key.key);
  if (wait == 0) return Status::OK();
  metrics_.RateLimited(key.limit);
  return Refusal(key.limit, wait);
}

}  // namespace im
