#include "conformance/redis_backends.h"

#include <memory>
#include <string>

#include "im/conformance.h"
#include "im/redis.h"
#include "support/backends.h"

namespace im::test {
namespace {

RedisOptions Options() {
  RedisOptions options;
  options.url = SharedRedisServer().url();
  // Generous: the box running the tests may be loaded.
  options.connect_timeout_ms = 5000;
  options.command_timeout_ms = 5000;
  return options;
}

// The second redis-server of the sharded backends (the first is SharedRedisServer()).
RedisServer& SecondRedisServer() {
  static RedisServer* server = new RedisServer();
  static const bool registered = [] {
    std::atexit([] { delete server; });
    return true;
  }();
  (void)registered;
  return *server;
}

// Two shards: every user and group on one of the two servers.
RedisOptions ShardedOptions() {
  RedisOptions options = Options();
  options.url = SharedRedisServer().url() + "," + SecondRedisServer().url();
  return options;
}

void FlushBoth() {
  SharedRedisServer().FlushAll();
  SecondRedisServer().FlushAll();
}

template <typename T>
std::shared_ptr<T> Must(Result<std::shared_ptr<T>> opened) {
  REQUIRE_MESSAGE(opened.ok(), opened.status().ToString());
  return std::move(opened).value();
}

}  // namespace

RedisServer& SharedRedisServer() {
  static RedisServer* server = new RedisServer();  // stopped by its exit handler below
  static const bool registered = [] {
    std::atexit([] { delete server; });
    return true;
  }();
  (void)registered;
  return *server;
}

void AddRedisBackends() {
  using namespace im::conformance;  // NOLINT(build/namespaces)
  AddBackend(SessionStoreBackend{"redis", [] {
                                   SharedRedisServer().FlushAll();
                                   return Must(OpenRedisSessionStore(Options()));
                                 }});
  AddBackend(UserStoreBackend{
      "redis",
      [](const PasswordHashOptions& h) {
        SharedRedisServer().FlushAll();
        return Must(OpenRedisUserStore(Options(), h));
      },
      [](const PasswordHashOptions& h) { return Must(OpenRedisUserStore(Options(), h)); },
      // The AOF: the password-in-clear case searches it.
      [] { return SharedRedisServer().dir(); }});
  AddBackend(OfflineQueueBackend{
      "redis",
      [](const OfflineQueueOptions& o) {
        SharedRedisServer().FlushAll();
        return Must(OpenRedisOfflineQueue(Options(), o));
      },
      [](const OfflineQueueOptions& o) { return Must(OpenRedisOfflineQueue(Options(), o)); }});
  AddBackend(GroupServiceBackend{
      "redis",
      [](const GroupLimits& l) {
        SharedRedisServer().FlushAll();
        return Must(OpenRedisGroupService(Options(), l));
      },
      [](const GroupLimits& l) { return Must(OpenRedisGroupService(Options(), l)); }});

  AddBackend(SessionStoreBackend{"redis-sharded", [] {
                                   FlushBoth();
                                   return Must(OpenRedisSessionStore(ShardedOptions()));
                                 }});
  AddBackend(UserStoreBackend{
      "redis-sharded",
      [](const PasswordHashOptions& h) {
        FlushBoth();
        return Must(OpenRedisUserStore(ShardedOptions(), h));
      },
      [](const PasswordHashOptions& h) { return Must(OpenRedisUserStore(ShardedOptions(), h)); },
      nullptr});  // the single-Redis backend searches its AOF for a password in clear
  AddBackend(OfflineQueueBackend{
      "redis-sharded",
      [](const OfflineQueueOptions& o) {
        FlushBoth();
        return Must(OpenRedisOfflineQueue(ShardedOptions(), o));
      },
      [](const OfflineQueueOptions& o) { return Must(OpenRedisOfflineQueue(ShardedOptions(), o)); },
      /*one_order=*/false});
  AddBackend(GroupServiceBackend{
      "redis-sharded",
      [](const GroupLimits& l) {
        FlushBoth();
        return Must(OpenRedisGroupService(ShardedOptions(), l));
      },
      [](const GroupLimits& l) { return Must(OpenRedisGroupService(ShardedOptions(), l)); }});
}

}  // namespace im::test
