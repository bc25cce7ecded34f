// The Redis TenantStore: one hash, `im:tenant-registry`, field = tenant, value = the record's
// JSON form (im/tenant.h). Every node of a cluster reads the same hash; each keeps its own view
// (TenantDirectory) and reads the hash again every tenant_refresh_ms, so nothing is cached here.

#include "store/redis/redis_tenant_store.h"

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "im/redis.h"

namespace im {
namespace internal {
namespace {

constexpr char kRegistryKey[] = "im:tenant-registry";

// HSET unless the field is new and the hash holds ARGV[3] fields already: 0 = full.
const RedisScript& PutScript() {
  static const RedisScript script(R"lua(
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 and
   redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
)lua");
  return script;
}

class RedisTenantStore final : public TenantStore {
 public:
  explicit RedisTenantStore(std::shared_ptr<RedisClient> client) : client_(std::move(client)) {}

  Result<TenantRecord> Get(std::string_view name) override {
    Result<RedisReply> r = client_->Command({"HGET", kRegistryKey, std::string(name)});
    if (!r.ok()) return r.status();
    if (r->is_nil()) return Status::NotFound("no such tenant");
    if (!r->is_string()) return Status::Internal("redis: unexpected reply to HGET");
    return Decode(name, r->str);
  }

  Status Put(const TenantRecord& record) override {
    Result<RedisReply> r =
        client_->Eval(PutScript(), {kRegistryKey},
                      {record.name, TenantRecordJson(record), std::to_string(kMaxTenants)});
    if (!r.ok()) return r.status();
    if (!r->is_integer()) return Status::Internal("redis: unexpected reply to a tenant put");
    if (r->integer == 0) {
      return Status::Error(Code::kRateLimited, "too_many_tenants", "the registry is full");
    }
    return Status::OK();
  }

  Result<std::vector<TenantRecord>> List() override {
    Result<RedisReply> r = client_->Command({"HGETALL", kRegistryKey});
    if (!r.ok()) return r.status();
    if (!r->is_array() || r->elements.size() % 2 != 0) {
      return Status::Internal("redis: unexpected reply to HGETALL");
    }
    std::vector<TenantRecord> all;
    for (size_t i = 0; i + 1 < r->elements.size() && all.size() < kMaxTenants; i += 2) {
      Result<TenantRecord> record = Decode(r->elements[i].str, r->elements[i + 1].str);
      if (!record.ok()) return record.status();
      all.push_back(std::move(*record));
    }
    return all;
  }

 private:
  static Result<TenantRecord> Decode(std::string_view name, std::string_view json) {
    Result<TenantRecord> r = ParseTenantRecord(name, json);
    if (!r.ok()) {
      return Status::Internal("redis: corrupt tenant record of '" + std::string(name) + "'");
    }
    return r;
  }

  const std::shared_ptr<RedisClient> client_;
};

}  // namespace

std::shared_ptr<TenantStore> NewRedisTenantStore(std::shared_ptr<RedisClient> client) {
  return std::make_shared<RedisTenantStore>(std::move(client));
}

}  // namespace internal

Result<std::shared_ptr<TenantStore>> OpenRedisTenantStore(const RedisOptions& redis) {
  Result<std::shared_ptr<internal::RedisClient>> client = internal::RedisClient::Create(redis);
  if (!client.ok()) return client.status();
  return internal::NewRedisTenantStore(std::move(client).value());
}

}  // namespace im
