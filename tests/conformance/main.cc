// The project's conformance runner: the conformance library (libim::conformance) over the
// bundled backends, memory and LevelDB (and Redis when built), through the entry points a backend author uses
// (docs/embedding.md section 8). Each case becomes a ctest test (doctest_discover_tests).
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "im/backends.h"
#include "im/conformance.h"
#include "support/backends.h"
#include "support/temp_dir.h"
#ifdef IM_WITH_REDIS
#include "conformance/redis_backends.h"
#endif

namespace {

using im::test::LastLevelDbDir;
using im::test::TempDir;

// A LevelDB backend's open and reopen functions: open makes a fresh directory (the last one is
// kept for reopen, and removed when the backends opened in it are gone), reopen opens it again.
template <typename T, typename Options, typename Open>
std::pair<std::function<std::shared_ptr<T>(const Options&)>,
          std::function<std::shared_ptr<T>(const Options&)>>
LevelDb(Open open) {
  auto reopen = [open](const Options& options) {
    return im::test::HoldingDir(open(LastLevelDbDir()->path(), options), LastLevelDbDir());
  };
  auto fresh = [reopen](const Options& options) {
    LastLevelDbDir() = std::make_shared<TempDir>();
    return reopen(options);
  };
  return {fresh, reopen};
}

}  // namespace

int main(int argc, char** argv) {
  using namespace im::conformance;  // NOLINT(build/namespaces): the entry points read better
  AddBackend(SessionStoreBackend{"memory", [] { return im::NewMemorySessionStore(); }});

  AddBackend(OfflineQueueBackend{
      "memory", [](const im::OfflineQueueOptions& o) { return im::NewMemoryOfflineQueue(o); },
      nullptr});
  auto queue = LevelDb<im::OfflineQueue, im::OfflineQueueOptions>(
      [](const std::string& dir, const im::OfflineQueueOptions& o) {
        return im::OpenLevelDbOfflineQueue(dir, o);
      });
  AddBackend(OfflineQueueBackend{"leveldb", queue.first, queue.second});

  AddBackend(GroupServiceBackend{
      "memory", [](const im::GroupLimits& l) { return im::NewMemoryGroupService(l); }, nullptr});
  auto groups = LevelDb<im::GroupService, im::GroupLimits>(
      [](const std::string& dir, const im::GroupLimits& l) {
        return im::OpenLevelDbGroupService(dir, l);
      });
  AddBackend(GroupServiceBackend{"leveldb", groups.first, groups.second});

  AddBackend(UserStoreBackend{
      "memory", [](const im::PasswordHashOptions& h) { return im::NewMemoryUserStore(h); },
      nullptr, nullptr});
  auto users = LevelDb<im::UserStore, im::PasswordHashOptions>(
      [](const std::string& dir, const im::PasswordHashOptions& h) {
        return im::OpenLevelDbUserStore(dir, h);
      });
  AddBackend(UserStoreBackend{"leveldb", users.first, users.second,
                              [] { return LastLevelDbDir()->path(); }});
#ifdef IM_WITH_REDIS
  im::test::AddRedisBackends();
#endif
  return Run(argc, argv);
}
