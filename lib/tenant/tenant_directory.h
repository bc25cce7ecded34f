// TenantDirectory: this node's view of the tenant registry (im/tenant.h). Every request path
// reads it from memory, never from the store: Find does not block, so the io threads (the
// sweep) may call it too. It reads the whole registry again every tenant_refresh_ms (Refresh,
// on a worker), so a change written by another node takes effect here within that; a Put
// through this node takes effect here at once.
//
// It also counts this node's sessions per tenant (the max_online_sessions quota).
//
// Thread-safety: every method is safe from any thread; Get, Put and Refresh block on the store.
#ifndef IM_TENANT_TENANT_DIRECTORY_H_
#define IM_TENANT_TENANT_DIRECTORY_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "im/content_filter.h"
#include "im/tenant.h"

namespace im::internal {

class TenantDirectory {
 public:
  // One tenant's settings as this node applies them.
  struct Policy {
    TenantRecord record;
    std::shared_ptr<WordFilter> words;  // the tenant's own words (reject); null when none
    bool suspended() const { return record.status == TenantStatus::kSuspended; }
  };

  explicit TenantDirectory(std::shared_ptr<TenantStore> store) : store_(std::move(store)) {}

  // The tenant's policy, or null when it has no record (active, server-wide settings).
  std::shared_ptr<const Policy> Find(std::string_view tenant) const;

  // Reads every record again; on failure the last view stays in force.
  Status Refresh();
  // The stored record (404 not_found).
  Result<TenantRecord> Get(std::string_view name) { return store_->Get(name); }
  // Stores `record` and applies it here at once. 400 when its words do not build a filter.
  Status Put(const TenantRecord& record);

  // Counts a new session of `tenant` on this node; false (nothing counted) when `max` (> 0)
  // are online already.
  bool AddSession(const std::string& tenant, uint64_t max);
  void RemoveSession(const std::string& tenant);

 private:
  using Map = std::map<std::string, std::shared_ptr<const Policy>, std::less<>>;
  static Result<std::shared_ptr<const Policy>> MakePolicy(const TenantRecord& record);

  const std::shared_ptr<TenantStore> store_;
  mutable std::mutex mu_;
  std::shared_ptr<const Map> policies_ = std::make_shared<Map>();  // guarded by mu_
  std::atomic<uint64_t> puts_{0};  // Puts applied so far (written under mu_)
  std::mutex sessions_mu_;
  std::map<std::string, uint64_t, std::less<>> sessions_;  // guarded by sessions_mu_
};

// The server's content filter followed by the sender tenant's own words.
std::unique_ptr<ContentFilter> NewTenantFilter(std::shared_ptr<ContentFilter> global,
                                               const TenantDirectory* tenants);

}  // namespace im::internal

#endif  // IM_TENANT_TENANT_DIRECTORY_H_
