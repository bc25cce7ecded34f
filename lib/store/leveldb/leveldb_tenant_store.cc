// The LevelDB TenantStore: one record per tenant, the record's JSON form (im/tenant.h) as the
// value, under the key T | tenant. The type byte T is used by no other store. The registry is
// small (at most kMaxTenants records, read whole by List), so nothing is cached here: the
// server keeps its own view (TenantDirectory).

#include <leveldb/cache.h>
#include <leveldb/db.h>
#include <leveldb/filter_policy.h>

#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "im/backends.h"
#include "im/tenant.h"
#include "store/leveldb/db_util.h"

namespace im {
namespace {

constexpr char kTenantRecord = 'T';

std::string RecordKey(std::string_view name) {
  std::string key(1, kTenantRecord);
  key.append(name);
  return key;
}

class LevelDbTenantStore final : public TenantStore {
 public:
  explicit LevelDbTenantStore(const LevelDbOptions& db) : db_(db) {}

  Status Open(const std::string& dir) { return db_.Open(dir); }

  Result<TenantRecord> Get(std::string_view name) override {
    std::string value;
    leveldb::Status s = db_->Get(internal::VerifiedRead(), RecordKey(name), &value);
    if (s.IsNotFound()) return Status::NotFound("no such tenant");
    if (!s.ok()) return internal::FromLevelDb(s);
    Result<TenantRecord> r = ParseTenantRecord(name, value);
    if (!r.ok()) return internal::Corrupt("tenant record of '" + std::string(name) + "'");
    return r;
  }

  Status Put(const TenantRecord& record) override {
    // The count check and the write are one step, so two writers cannot pass the bound.
    std::lock_guard<std::mutex> lock(write_mu_);
    std::string existing;
    leveldb::Status found = db_->Get(internal::VerifiedRead(), RecordKey(record.name), &existing);
    if (!found.ok() && !found.IsNotFound()) return internal::FromLevelDb(found);
    if (found.IsNotFound()) {
      Result<size_t> count = Count();
      if (!count.ok()) return count.status();
      if (*count >= kMaxTenants) {
        return Status::Error(Code::kRateLimited, "too_many_tenants", "the registry is full");
      }
    }
    leveldb::Status s =
        db_->Put(db_.write_options(), RecordKey(record.name), TenantRecordJson(record));
    return s.ok() ? Status::OK() : internal::FromLevelDb(s);
  }

  Result<std::vector<TenantRecord>> List() override {
    std::vector<TenantRecord> all;
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(internal::ScanRead()));
    for (it->Seek(std::string(1, kTenantRecord));
         it->Valid() && !it->key().empty() && it->key()[0] == kTenantRecord &&
         all.size() < kMaxTenants;
         it->Next()) {
      const std::string_view name = internal::View(it->key()).substr(1);
      Result<TenantRecord> r = ParseTenantRecord(name, internal::View(it->value()));
      if (!r.ok()) return internal::Corrupt("tenant record of '" + std::string(name) + "'");
      all.push_back(std::move(*r));
    }
    if (!it->status().ok()) return internal::FromLevelDb(it->status());
    return all;
  }

 private:
  Result<size_t> Count() {
    size_t n = 0;
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(internal::ScanRead()));
    for (it->Seek(std::string(1, kTenantRecord));
         it->Valid() && !it->key().empty() && it->key()[0] == kTenantRecord; it->Next()) {
      ++n;
    }
    if (!it->status().ok()) return internal::FromLevelDb(it->status());
    return n;
  }

  internal::DbHandle db_;
  std::mutex write_mu_;
};

}  // namespace

Result<std::shared_ptr<TenantStore>> OpenLevelDbTenantStore(const std::string& dir,
                                                            LevelDbOptions db) {
  auto store = std::make_shared<LevelDbTenantStore>(db);
  if (Status s = store->Open(dir); !s.ok()) return s;
  return std::shared_ptr<TenantStore>(std::move(store));
}

}  // namespace im
