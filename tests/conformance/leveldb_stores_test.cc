// LevelDB-only GroupService and UserStore cases, beside the conformance suites every backend
// runs: the directory lock, and a hashing cost libsodium refuses.

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <string_view>

#include "conformance/suites/suite.h"
#include "im/backends.h"
#include "support/temp_dir.h"

namespace im {
namespace {

using conformance::internal::CheckError;
using conformance::internal::FastHash;
using im::test::TempDir;

constexpr TimestampMs kT0 = 1'700'000'000'000;

TEST_CASE("GroupService: leveldb refuses a second open of a live dir") {
  TempDir dir;
  Result<std::shared_ptr<GroupService>> first = OpenLevelDbGroupService(dir.path());
  REQUIRE(first.ok());
  Result<std::shared_ptr<GroupService>> second = OpenLevelDbGroupService(dir.path());
  CheckError(second, Code::kUnavailable, "unavailable");
  CHECK(second.status().message().find("leveldb") != std::string_view::npos);
}

TEST_CASE("UserStore: leveldb refuses a second open of a live dir") {
  TempDir dir;
  Result<std::shared_ptr<UserStore>> first = OpenLevelDbUserStore(dir.path(), FastHash());
  REQUIRE(first.ok());
  Result<std::shared_ptr<UserStore>> second = OpenLevelDbUserStore(dir.path(), FastHash());
  CheckError(second, Code::kUnavailable, "unavailable");
  CHECK(second.status().message().find("leveldb") != std::string_view::npos);
}

TEST_CASE("UserStore: a cost libsodium refuses fails loudly") {
  PasswordHashOptions broken = FastHash();
  broken.mem_limit = 0;
  // The memory factory cannot fail, so its Create does; the LevelDB one refuses to open.
  std::shared_ptr<UserStore> memory = NewMemoryUserStore(broken);
  CheckError(memory->Create(UserKey{"default", "alice"}, "password-1", "", kT0), Code::kInternal,
             "internal");
  CheckError(memory->VerifyPassword(UserKey{"default", "alice"}, "password-1"),
             Code::kUnauthenticated, "bad_credentials");
  TempDir dir;
  CheckError(OpenLevelDbUserStore(dir.path(), broken), Code::kInternal, "internal");
}

}  // namespace
}  // namespace im
