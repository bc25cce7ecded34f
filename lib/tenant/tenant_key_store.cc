// NewTenantKeyStore: signing keys from the tenant registry, read through a short cache, with
// the host's KeyStore for tenants whose record holds none.

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "auth/jwt_internal.h"
#include "im/tenant.h"

namespace im {
namespace {

// Tenants remembered at most (records and tenants without one alike); past it the cache starts
// over, so made-up tenant names in tokens cannot grow it.
constexpr size_t kMaxCached = 2 * kMaxTenants;

class TenantKeyStore final : public KeyStore, public internal::ExistingKeyLookup {
 public:
  TenantKeyStore(std::shared_ptr<TenantStore> tenants, std::shared_ptr<KeyStore> fallback,
                 int64_t cache_ms, Clock* clock)
      : tenants_(std::move(tenants)),
        fallback_(std::move(fallback)),
        existing_(dynamic_cast<internal::ExistingKeyLookup*>(fallback_.get())),
        cache_ms_(cache_ms),
        clock_(clock != nullptr ? clock : SystemClock()) {}

  Result<std::string> KeyFor(std::string_view tenant) override {
    return SigningKeyOf(Lookup(tenant, /*create=*/true));
  }
  Result<std::vector<SigningKey>> KeysFor(std::string_view tenant) override {
    return Lookup(tenant, /*create=*/true);
  }
  // The verifier's lookup: never makes the fallback create a key (see ExistingKeyLookup).
  Result<std::string> ExistingKeyFor(std::string_view tenant) override {
    return SigningKeyOf(Lookup(tenant, /*create=*/false));
  }
  Result<std::vector<SigningKey>> ExistingKeysFor(std::string_view tenant) override {
    return Lookup(tenant, /*create=*/false);
  }

 private:
  // The first key of a lookup (the one that signs).
  static Result<std::string> SigningKeyOf(Result<std::vector<SigningKey>> keys) {
    if (!keys.ok()) return keys.status();
    if (keys->empty()) return Status::Unauthenticated("unknown_tenant", "no key for tenant");
    return keys->front().key;
  }

  // The registry's keys of `tenant` (nullopt: none there), from the cache when fresh.
  std::optional<std::vector<SigningKey>> RegistryKeys(std::string_view tenant) {
    const TimestampMs now = clock_->NowMs();
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = cache_.find(tenant);
      if (it != cache_.end() && now < it->second.expires_ms) return it->second.keys;
    }
    Result<TenantRecord> record = tenants_->Get(tenant);
    std::optional<std::vector<SigningKey>> keys;
    std::lock_guard<std::mutex> lock(mu_);
    if (record.ok()) {
      if (!record->keys.empty()) keys = std::move(record->keys);
    } else if (record.status().code() != Code::kNotFound) {
      // The registry cannot be read: the last view stands, and is asked again next time.
      auto it = cache_.find(tenant);
      return it != cache_.end() ? it->second.keys : std::nullopt;
    }
    if (cache_.size() >= kMaxCached) cache_.clear();
    cache_[std::string(tenant)] = Entry{now + cache_ms_, keys};
    return keys;
  }

  Result<std::vector<SigningKey>> Lookup(std::string_view tenant, bool create) {
    if (std::optional<std::vector<SigningKey>> keys = RegistryKeys(tenant)) return *keys;
    if (fallback_ == nullptr) return Status::Unauthenticated("unknown_tenant", "no key for tenant");
    if (!create && existing_ != nullptr) return existing_->ExistingKeysFor(tenant);
    return fallback_->KeysFor(tenant);
  }

  struct Entry {
    TimestampMs expires_ms = 0;
    std::optional<std::vector<SigningKey>> keys;
  };
  const std::shared_ptr<TenantStore> tenants_;
  const std::shared_ptr<KeyStore> fallback_;
  internal::ExistingKeyLookup* const existing_;  // fallback_ itself when it implements it
  const int64_t cache_ms_;
  Clock* const clock_;
  std::mutex mu_;
  std::map<std::string, Entry, std::less<>> cache_;  // guarded by mu_
};

}  // namespace

std::shared_ptr<KeyStore> NewTenantKeyStore(std::shared_ptr<TenantStore> tenants,
                                            std::shared_ptr<KeyStore> fallback,
                                            int64_t cache_ms, Clock* clock) {
  return std::make_shared<TenantKeyStore>(std::move(tenants), std::move(fallback), cache_ms,
                                          clock);
}

}  // namespace im
