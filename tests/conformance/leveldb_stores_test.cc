// LevelDB-only GroupService and UserStore cases, beside the conformance suites every backend
// runs: the directory lock, the per-user group index built for a database that has none, and a
// hashing cost libsodium refuses.

#include <doctest/doctest.h>
#include <leveldb/db.h>
#include <leveldb/write_batch.h>

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

TEST_CASE("GroupService: leveldb builds the per-user group index of an older database") {
  TempDir dir;
  {
    Result<std::shared_ptr<GroupService>> s = OpenLevelDbGroupService(dir.path());
    REQUIRE(s.ok());
    REQUIRE((*s)->Create(GroupKey{"t", "g1"}, "One", "alice", {"bob"}, kT0).ok());
    REQUIRE((*s)->Create(GroupKey{"t", "g2"}, "Two", "bob", {}, kT0).ok());
    REQUIRE((*s)->Create(GroupKey{"u", "g1"}, "Other", "bob", {}, kT0).ok());
  }
  {
    // What an older version wrote: no U records and no mark.
    leveldb::DB* raw = nullptr;
    REQUIRE(leveldb::DB::Open(leveldb::Options(), dir.path(), &raw).ok());
    std::unique_ptr<leveldb::DB> db(raw);
    leveldb::WriteBatch batch;
    size_t dropped = 0;
    std::unique_ptr<leveldb::Iterator> it(db->NewIterator(leveldb::ReadOptions()));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if (it->key()[0] == 'U' || it->key()[0] == 'X') {
        batch.Delete(it->key());
        ++dropped;
      }
    }
    CHECK(dropped == 5);  // four memberships and the mark
    it.reset();
    REQUIRE(db->Write(leveldb::WriteOptions(), &batch).ok());
  }
  Result<std::shared_ptr<GroupService>> s = OpenLevelDbGroupService(dir.path());
  REQUIRE(s.ok());
  CHECK(*(*s)->CountGroupsOf(UserKey{"t", "bob"}) == 2);
  CHECK(*(*s)->CountGroupsOf(UserKey{"t", "alice"}) == 1);
  CHECK(*(*s)->CountGroupsOf(UserKey{"u", "bob"}) == 1);
  REQUIRE((*s)->Quit(GroupKey{"t", "g1"}, "bob").ok());
  CHECK(*(*s)->CountGroupsOf(UserKey{"t", "bob"}) == 1);
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
