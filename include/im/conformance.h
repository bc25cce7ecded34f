// The conformance suites of the backend interfaces, as a library (libim::conformance,
// find_package(libim COMPONENTS conformance)). A backend author describes a backend with a
// factory (and, for a persistent backend, a reopen function) and runs every case of its
// interface against it from a test binary of their own:
//
//   int main(int argc, char** argv) {
//     return im::conformance::RunSessionStoreSuite(
//         {"mine", [] { return std::make_shared<MySessionStore>(); }}, argc, argv);
//   }
//
// The cases are doctest test cases and the library holds doctest's runner: argc/argv take
// doctest's options (-tc="*dedup*" selects cases, -s shows passing checks, -ltc lists them).
// A binary linking this library must not define a doctest runner (DOCTEST_CONFIG_IMPLEMENT)
// of its own; its own TEST_CASEs, if any, run along (same doctest version as libim's build).
// A failure names the case and the backend (as a doctest subcase).
#ifndef IM_CONFORMANCE_H_
#define IM_CONFORMANCE_H_

#include <functional>
#include <memory>
#include <string>

#include "im/group_service.h"
#include "im/offline_queue.h"
#include "im/session_store.h"
#include "im/user_store.h"

namespace im::conformance {

struct SessionStoreBackend {
  std::string name;
  // An empty store; a backend with shared state (a server) clears it here. Called per case.
  std::function<std::shared_ptr<SessionStore>()> open;
};

struct OfflineQueueBackend {
  std::string name;
  // An empty queue with these options. Called at least once per case.
  std::function<std::shared_ptr<OfflineQueue>(const OfflineQueueOptions&)> open;
  // Persistent backends: opens the data of the last `open` again (the caller has dropped the
  // old instance first). Null: the backend does not persist and the reopen cases are skipped.
  std::function<std::shared_ptr<OfflineQueue>(const OfflineQueueOptions&)> reopen;
  // True: any two messages are in one relative order in every inbox that holds both. False (a
  // backend whose batches are atomic per partition only, as the Redis one sharded over several
  // primaries): only the messages of one caller, appended one after the other, are in call
  // order in every inbox; the suite checks that instead.
  bool one_order = true;
};

struct GroupServiceBackend {
  std::string name;
  std::function<std::shared_ptr<GroupService>(const GroupLimits&)> open;    // empty service
  std::function<std::shared_ptr<GroupService>(const GroupLimits&)> reopen;  // as above
};

struct UserStoreBackend {
  std::string name;
  // An empty store. The cases pass libsodium's minimum hashing cost, to run fast.
  std::function<std::shared_ptr<UserStore>(const PasswordHashOptions&)> open;
  std::function<std::shared_ptr<UserStore>(const PasswordHashOptions&)> reopen;  // as above
  // A backend that writes files: the directory holding the last `open`'s data, which a case
  // searches for a password in clear. Null: that case is skipped.
  std::function<std::string()> data_dir;
};

// One entry point per interface: every case of the interface against `backend` (and against
// any backend added before with AddBackend). Returns the process exit code: 0 when every case
// passed. argc/argv are doctest's options; argc 0 and argv null run everything.
int RunSessionStoreSuite(SessionStoreBackend backend, int argc = 0,
                         const char* const* argv = nullptr);
int RunOfflineQueueSuite(OfflineQueueBackend backend, int argc = 0,
                         const char* const* argv = nullptr);
int RunGroupServiceSuite(GroupServiceBackend backend, int argc = 0,
                         const char* const* argv = nullptr);
int RunUserStoreSuite(UserStoreBackend backend, int argc = 0, const char* const* argv = nullptr);

// For one binary testing several backends or interfaces: add each, then Run: the cases of every
// interface that has a backend, and the binary's own doctest cases (the Run*Suite entry points
// run their interface's cases only). Returns 2 when no backend was added.
void AddBackend(SessionStoreBackend backend);
void AddBackend(OfflineQueueBackend backend);
void AddBackend(GroupServiceBackend backend);
void AddBackend(UserStoreBackend backend);
int Run(int argc = 0, const char* const* argv = nullptr);

}  // namespace im::conformance

#endif  // IM_CONFORMANCE_H_
