// The TenantStore backends (memory, LevelDB, Redis) answer alike: round trip of the record's
// JSON form, 404 for a tenant without a record, a Put replaces, List holds every record, and the
// durable ones keep their records across a reopen (LevelDB) or on the server (Redis).
#include <doctest/doctest.h>

#include <functional>
#include <string>

#include "im/backends.h"
#include "im/tenant.h"
#include "support/temp_dir.h"
#if IM_WITH_REDIS
#include "im/redis.h"
#include "support/redis_server.h"
#endif

namespace {

im::TenantRecord Acme() {
  im::TenantRecord r;
  r.name = "acme";
  r.status = im::TenantStatus::kSuspended;
  r.quotas.max_online_sessions = 7;
  r.quotas.user_send_rate = 0.5;
  r.quotas.tenant_send_rate = 1e-7;  // written exactly, not rounded to 0
  r.quotas.tenant_send_burst = 9;
  r.words = {"zorblax", "敏感词"};
  r.updated_ms = 1234;
  return r;
}

void CheckStore(im::TenantStore& store) {
  CHECK(store.Get("acme").status().code() == im::Code::kNotFound);
  REQUIRE(store.Put(Acme()).ok());
  auto got = store.Get("acme");
  REQUIRE(got.ok());
  CHECK(im::TenantRecordJson(*got) == im::TenantRecordJson(Acme()));
  CHECK(got->quotas.tenant_send_rate == 1e-7);
  im::TenantRecord other;
  other.name = "beta";
  REQUIRE(store.Put(other).ok());
  im::TenantRecord active = Acme();
  active.status = im::TenantStatus::kActive;
  REQUIRE(store.Put(active).ok());
  auto all = store.List();
  REQUIRE(all.ok());
  REQUIRE(all->size() == 2);
  for (const im::TenantRecord& r : *all) {
    CHECK(r.status == im::TenantStatus::kActive);
    CHECK((r.name == "acme" || r.name == "beta"));
  }
}

}  // namespace

TEST_CASE("tenant store: memory") {
  auto store = im::NewMemoryTenantStore();
  CheckStore(*store);
}

TEST_CASE("tenant store: leveldb keeps its records across a reopen") {
  im::test::TempDir dir;
  {
    auto store = im::OpenLevelDbTenantStore(dir.path() + "/tenants");
    REQUIRE(store.ok());
    CheckStore(**store);
  }
  auto again = im::OpenLevelDbTenantStore(dir.path() + "/tenants");
  REQUIRE(again.ok());
  auto got = (*again)->Get("acme");
  REQUIRE(got.ok());
  CHECK(got->quotas.max_online_sessions == 7);
  CHECK(got->words.size() == 2);
}

#if IM_WITH_REDIS
TEST_CASE("tenant store: redis, one registry for every client") {
  im::test::RedisServer redis;
  im::RedisOptions o;
  o.url = redis.url();
  auto store = im::OpenRedisTenantStore(o);
  REQUIRE(store.ok());
  CheckStore(**store);
  auto second = im::OpenRedisTenantStore(o);  // another node's view of the same Redis
  REQUIRE(second.ok());
  auto got = (*second)->Get("beta");
  CHECK(got.ok());
  // A record that is not one (written by hand) is 500, never a half-read record.
  redis.Command({"HSET", "im:tenant-registry", "broken", "{not json"});
  CHECK((*second)->Get("broken").status().code() == im::Code::kInternal);
}
#endif

TEST_CASE("tenant record: the JSON form refuses what breaks a rule") {
  CHECK(im::ParseTenantRecord("acme", "{}").ok());
  CHECK_FALSE(im::ParseTenantRecord("", "{}").ok());
  for (const char* bad :
       {R"({"status":"gone"})", R"({"quotas":[]})", R"({"quotas":{"user_send_rate":-1}})",
        R"({"quotas":{"max_online_sessions":1.5}})", R"({"words":"x"})", R"({"words":[1]})",
        R"({"tenant":"beta"})", R"({"extra":1})", "not json", "[]"}) {
    CHECK_MESSAGE(im::ParseTenantRecord("acme", bad).status().code() == im::Code::kBadRequest,
                  bad);
  }
  std::string many = R"({"words":[)";
  for (int i = 0; i < 1001; ++i) many += std::string(i ? "," : "") + "\"w\"";
  many += "]}";
  CHECK_FALSE(im::ParseTenantRecord("acme", many).ok());
}
