// The consistent-hash ring of the sharded Redis backends (store/redis/redis_shards.h).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "store/redis/redis_shards.h"

namespace im::internal {
namespace {

std::string Tag(int i) { return "u:default/user" + std::to_string(i); }

TEST_CASE("ShardRing: the same key maps to the same shard in every instance") {
  const ShardRing a(3), b(3);
  for (int i = 0; i < 2000; ++i) CHECK(a.ShardOf(Tag(i)) == b.ShardOf(Tag(i)));
  // Fixed values: a change of the hash or of the point placement would move stored keys.
  CHECK(ShardHash("") == 0xf52a15e9a9b5e89bull);
  CHECK(ShardRing(2).ShardOf(UserKey{"default", "alice"}) ==
        ShardRing(2).ShardOf(std::string("u:default/alice")));
}

TEST_CASE("ShardRing: keys spread over the shards, and a new shard takes about 1/N of them") {
  constexpr int kKeys = 20000;
  for (size_t n = 2; n <= 4; ++n) {
    const ShardRing before(n), after(n + 1);
    std::vector<int> count(n, 0);
    int moved = 0;
    for (int i = 0; i < kKeys; ++i) {
      const size_t s = before.ShardOf(Tag(i));
      ++count[s];
      const size_t t = after.ShardOf(Tag(i));
      if (t != s) {
        ++moved;
        CHECK(t == n);  // only to the new shard
      }
    }
    for (int c : count) {
      CAPTURE(n);
      CHECK(c > kKeys / static_cast<int>(n) * 7 / 10);
      CHECK(c < kKeys / static_cast<int>(n) * 13 / 10);
    }
    const int ideal = kKeys / static_cast<int>(n + 1);
    CHECK(moved > ideal * 7 / 10);
    CHECK(moved < ideal * 13 / 10);
  }
}

TEST_CASE("SplitRedisUrls: one URL, a list, and the refusals") {
  CHECK(SplitRedisUrls("redis://h:1/0")->size() == 1);
  CHECK_FALSE(IsShardedRedisUrl("redis://h:1/0"));
  CHECK(IsShardedRedisUrl("redis://h:1/0,redis://h:2/0"));
  CHECK(SplitRedisUrls("redis://h:1/0,redis://h:2/0")->size() == 2);
  CHECK_FALSE(SplitRedisUrls("redis://h:1/0,").ok());
  CHECK_FALSE(SplitRedisUrls("redis://h:1/0,redis://h:1/0").ok());
  CHECK(SplitRedisUrls("redis://h:1/0,redis://h:99999/0").status().message().find(
            "URL 2 of the list") != std::string::npos);
}

}  // namespace
}  // namespace im::internal
