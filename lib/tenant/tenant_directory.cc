#include "tenant/tenant_directory.h"

#include <utility>
#include <vector>

namespace im::internal {

std::shared_ptr<const TenantDirectory::Policy> TenantDirectory::Find(
    std::string_view tenant) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = policies_->find(tenant);
  return it == policies_->end() ? nullptr : it->second;
}

Result<std::shared_ptr<const TenantDirectory::Policy>> TenantDirectory::MakePolicy(
    const TenantRecord& record) {
  auto policy = std::make_shared<Policy>();
  policy->record = record;
  if (!record.words.empty()) {
    auto words = NewWordFilter(record.words, FilterMode::kReject);
    if (!words.ok()) return words.status();
    policy->words = std::move(*words);
  }
  return std::shared_ptr<const Policy>(std::move(policy));
}

Status TenantDirectory::Refresh() {
  // A Put while the list is read may be missing from it: then this view is dropped (the next
  // refresh reads it), so a change never goes back to its old value here for a while.
  const uint64_t puts_before = puts_.load();
  Result<std::vector<TenantRecord>> all = store_->List();
  if (!all.ok()) return all.status();
  auto fresh = std::make_shared<Map>();
  for (const TenantRecord& r : *all) {
    // A record whose words no longer build keeps the policy this node had (logged by the
    // caller through the status of the next Put; here it is skipped, never fatal).
    auto policy = MakePolicy(r);
    if (policy.ok()) {
      (*fresh)[r.name] = std::move(*policy);
    } else if (auto old = Find(r.name)) {
      (*fresh)[r.name] = old;
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (puts_.load() == puts_before) policies_ = std::move(fresh);
  return Status::OK();
}

Status TenantDirectory::Put(const TenantRecord& record) {
  auto policy = MakePolicy(record);
  if (!policy.ok()) return policy.status();
  if (Status s = store_->Put(record); !s.ok()) return s;
  std::lock_guard<std::mutex> lock(mu_);
  auto next = std::make_shared<Map>(*policies_);
  (*next)[record.name] = std::move(*policy);
  policies_ = std::move(next);
  puts_.fetch_add(1);
  return Status::OK();
}

bool TenantDirectory::AddSession(const std::string& tenant, uint64_t max) {
  std::lock_guard<std::mutex> lock(sessions_mu_);
  uint64_t& n = sessions_[tenant];
  if (max > 0 && n >= max) {
    if (n == 0) sessions_.erase(tenant);
    return false;
  }
  ++n;
  return true;
}

void TenantDirectory::RemoveSession(const std::string& tenant) {
  std::lock_guard<std::mutex> lock(sessions_mu_);
  auto it = sessions_.find(tenant);
  if (it == sessions_.end()) return;
  if (--it->second == 0) sessions_.erase(it);
}

namespace {

class TenantFilter final : public ContentFilter {
 public:
  TenantFilter(std::shared_ptr<ContentFilter> global, const TenantDirectory* tenants)
      : global_(std::move(global)), tenants_(tenants) {}

  FilterDecision Check(std::string_view tenant, std::string_view text) const override {
    FilterDecision d = global_->Check(tenant, text);
    if (d.action == FilterAction::kReject) return d;
    std::shared_ptr<const TenantDirectory::Policy> policy = tenants_->Find(tenant);
    if (!policy || !policy->words) return d;
    FilterDecision own = policy->words->Check(
        tenant, d.action == FilterAction::kMask ? std::string_view(d.text) : text);
    return own.action == FilterAction::kReject ? own : d;
  }

 private:
  const std::shared_ptr<ContentFilter> global_;
  const TenantDirectory* const tenants_;
};

}  // namespace

std::unique_ptr<ContentFilter> NewTenantFilter(std::shared_ptr<ContentFilter> global,
                                               const TenantDirectory* tenants) {
  return std::make_unique<TenantFilter>(std::move(global), tenants);
}

}  // namespace im::internal
