// Per-tenant quotas on the Redis stores (one Redis, and sharded over two): max_inbox kept at
// append by the Redis append script, max_groups_per_user counted from the Redis group index,
// over real sockets, with another tenant unaffected.
#if IM_WITH_REDIS

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "im/redis.h"
#include "support/redis_server.h"
#include "support/tenants.h"
#include "support/test_server.h"

using im::test::CallCode;
using im::test::LoggedIn;
using im::test::RawClient;
using im::test::TestServer;

namespace {

std::vector<uint64_t> SyncSeqs(RawClient& c, uint32_t id, bool* gap) {
  rapidjson::Document doc;
  REQUIRE(CallCode(c, id, "chat.sync", R"({"after":0,"limit":100})", &doc) == 0);
  std::vector<uint64_t> seqs;
  for (const auto& m : doc["body"]["messages"].GetArray()) seqs.push_back(m["seq"].GetUint64());
  *gap = doc["body"]["gap"].GetBool();
  return seqs;
}

void RunOn(const std::string& url) {
  im::RedisOptions redis;
  redis.url = url;
  TestServer server(
      im::test::TenantOptions(),
      [&](im::ServerDeps& deps) {
        auto inbox = im::OpenRedisOfflineQueue(redis);
        REQUIRE(inbox.ok());
        deps.inbox = *inbox;
        auto groups = im::OpenRedisGroupService(redis);
        REQUIRE(groups.ok());
        deps.groups = *groups;
      });
  im::test::PutTenant(server, "acme", R"({"quotas":{"max_inbox":3,"max_groups_per_user":2}})");

  auto a = LoggedIn(server, "a", "acme");
  auto d = LoggedIn(server, "a", "default");
  for (uint32_t i = 0; i < 5; ++i) {
    const std::string body = R"({"to":"b","body":"m","cid":"c)" + std::to_string(i) + R"("})";
    REQUIRE(CallCode(*a, 1 + i, "chat.send", body) == 0);
    REQUIRE(CallCode(*d, 100 + i, "chat.send", body) == 0);
  }
  bool gap = false;
  auto acme_b = LoggedIn(server, "b", "acme");
  CHECK(SyncSeqs(*acme_b, 200, &gap) == std::vector<uint64_t>{3, 4, 5});
  CHECK(gap);
  auto default_b = LoggedIn(server, "b", "default");
  CHECK(SyncSeqs(*default_b, 201, &gap) == std::vector<uint64_t>{1, 2, 3, 4, 5});
  CHECK_FALSE(gap);

  // Groups: gids spread over the shards; the count is their sum.
  rapidjson::Document reply;
  CHECK(CallCode(*a, 300, "group.create", R"({"name":"n","gid":"x1","members":[]})") == 0);
  CHECK(CallCode(*acme_b, 301, "group.create", R"({"name":"n","gid":"x2","members":["a"]})") == 0);
  CHECK(CallCode(*acme_b, 302, "group.create", R"({"name":"n","gid":"x3","members":[]})") == 0);
  CHECK(CallCode(*a, 303, "group.join", R"({"gid":"x3"})", &reply) == 403);
  CHECK(im::test::ErrorOf(reply) == "too_many_groups");
  CHECK(CallCode(*a, 304, "group.quit", R"({"gid":"x1"})") == 0);  // the last member: x1 goes
  CHECK(CallCode(*a, 305, "group.join", R"({"gid":"x3"})") == 0);
  for (uint32_t i = 0; i < 4; ++i) {
    CHECK(CallCode(*d, 310 + i, "group.create",
                   R"({"name":"n","gid":"y)" + std::to_string(i) + R"(","members":[]})") == 0);
  }
}

}  // namespace

TEST_CASE("tenant quotas on redis: max_inbox and max_groups_per_user, other tenants unaffected") {
  im::test::RedisServer first;
  SUBCASE("one redis") { RunOn(first.url()); }
  SUBCASE("sharded over two") {
    im::test::RedisServer second;
    RunOn(first.url() + "," + second.url());
  }
}

#endif  // IM_WITH_REDIS
