// The LevelDB GroupService: durable groups with the semantics of the memory backend
// (lib/store/memory/memory_group_service.cc).
//
// Record layout. Every key starts with a record type and the tenant, so nothing can address
// another tenant's data; tenant and gid are length-prefixed (one byte) and so self-delimiting:
// no group's key range is a prefix of another's. The user is the last component of a member key
// and is not length-prefixed, so a group's member keys sort by user id exactly as the memory
// backend's std::map does (bytewise) and Members(after, limit) is one Seek.
//
//   G | lp(tenant) | lp(gid)          -> GroupRecord (created_ms, member_count, name, owner)
//   M | lp(tenant) | lp(gid) | user   -> MemberRecord (joined_ms, role)
//   U | lp(tenant) | lp(user) | gid   -> "" (the user's groups, for CountGroupsOf)
//   X user-index                      -> "" (the U records are complete; see Open)
//
// The type bytes are upper case, apart from the OfflineQueue's lower-case ones
// (store/leveldb/keys.h), should the two ever share a database.
//
// Writes: every mutation (a create with its members, a join, a quit with its owner hand-over or
// the deletion of the group) is one WriteBatch, so a crash leaves either all of it or none. The
// group record carries member_count, so a join checks max_members without scanning and a quit
// knows when it removes the last member.
//
// Reads take no lock: each read that needs more than one record (group then members) reads
// them from one snapshot, so it never sees a half-applied mutation. Nothing is cached here but
// LevelDB's block cache, so nothing can go stale.

#include <leveldb/cache.h>
#include <leveldb/db.h>
#include <leveldb/filter_policy.h>
#include <leveldb/iterator.h>
#include <leveldb/write_batch.h>

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "im/backends.h"
#include "store/group_rules.h"
#include "store/leveldb/coding.h"
#include "store/leveldb/db_util.h"
#include "im/group_service.h"

namespace im {
namespace internal::leveldb_group {
namespace {

constexpr char kGroupRecord = 'G';
constexpr char kMemberRecord = 'M';
constexpr char kUserGroupRecord = 'U';
// Written once every member has its U record: a database of an older version has none, and
// Open builds them before serving.
constexpr std::string_view kUserIndexMark = "Xuser-index";
// Bumped when a value layout changes, so that a newer reader can tell old records apart.
constexpr char kValueVersion = 1;

constexpr std::string_view kOwnerRole = "owner";
constexpr std::string_view kMemberRole = "member";
constexpr size_t kMaxMembersPage = 500;
// Mutations of one group serialize on one of these, chosen by a hash of the GroupKey; groups
// sharing a stripe merely wait for each other.
constexpr size_t kLockStripes = 64;

// Encoding.

std::string GroupRecordKey(const GroupKey& key) {
  std::string out(1, kGroupRecord);
  coding::PutLengthPrefixed(&out, key.tenant);
  coding::PutLengthPrefixed(&out, key.gid);
  return out;
}

// Every member key of the group starts with this; the user id follows.
std::string MemberPrefix(const GroupKey& key) {
  std::string out(1, kMemberRecord);
  coding::PutLengthPrefixed(&out, key.tenant);
  coding::PutLengthPrefixed(&out, key.gid);
  return out;
}

std::string MemberKey(std::string_view prefix, std::string_view user) {
  std::string out(prefix);
  out.append(user);
  return out;
}

// Every group key of the user starts with this; the gid follows.
std::string UserGroupPrefix(std::string_view tenant, std::string_view user) {
  std::string out(1, kUserGroupRecord);
  coding::PutLengthPrefixed(&out, tenant);
  coding::PutLengthPrefixed(&out, user);
  return out;
}

std::string UserGroupKey(const GroupKey& key, std::string_view user) {
  std::string out = UserGroupPrefix(key.tenant, user);
  out.append(key.gid);
  return out;
}

struct GroupRecord {
  std::string name;
  std::string owner;
  TimestampMs created_ms = 0;
  uint64_t member_count = 0;  // owner included; a stored group has at least one
};

// version | created_ms | member_count | id(owner) | name (the rest: its length is a limit that
// may change, so it gets no one-byte prefix).
std::string EncodeGroup(const GroupRecord& group) {
  std::string value(1, kValueVersion);
  coding::PutBigEndian(&value, static_cast<uint64_t>(group.created_ms));
  coding::PutBigEndian(&value, group.member_count);
  coding::PutLengthPrefixed(&value, group.owner);
  value.append(group.name);
  return value;
}

bool DecodeGroup(std::string_view value, GroupRecord* out) {
  uint64_t created = 0;
  if (!coding::GetVersion(&value, kValueVersion) || !coding::GetBigEndian(&value, &created) ||
      !coding::GetBigEndian(&value, &out->member_count) ||
      !coding::GetLengthPrefixed(&value, &out->owner)) {
    return false;
  }
  out->created_ms = static_cast<TimestampMs>(created);
  out->name.assign(value);
  return out->member_count > 0 && !out->name.empty();
}

struct MemberRecord {
  std::string role;
  TimestampMs joined_ms = 0;
};

// version | joined_ms | role (the rest).
std::string EncodeMember(std::string_view role, TimestampMs joined_ms) {
  std::string value(1, kValueVersion);
  coding::PutBigEndian(&value, static_cast<uint64_t>(joined_ms));
  value.append(role);
  return value;
}

bool DecodeMember(std::string_view value, MemberRecord* out) {
  uint64_t joined = 0;
  if (!coding::GetVersion(&value, kValueVersion) || !coding::GetBigEndian(&value, &joined) ||
      value.empty()) {
    return false;
  }
  out->joined_ms = static_cast<TimestampMs>(joined);
  out->role.assign(value);
  return true;
}

GroupInfo InfoOf(const GroupKey& key, const GroupRecord& group) {
  GroupInfo info;
  info.key = key;
  info.name = group.name;
  info.owner = group.owner;
  info.member_count = static_cast<size_t>(group.member_count);
  info.created_ms = group.created_ms;
  return info;
}

// Mutations take the stripe lock of their group, then read the group's records and write one
// batch, so check-then-write (max_members, already_member, owner hand-over) is atomic per group.
// Reads take no lock (see the file comment).
//
// Thread-safety: every method is safe from any thread.
class LevelDbGroupService final : public GroupService {
 public:
  LevelDbGroupService(const GroupLimits& limits, const LevelDbOptions& db_options)
      : limits_(limits), db_(db_options) {}

  Status Open(const std::string& dir) {
    Status s = db_.Open(dir);
    return s.ok() ? BuildUserIndex() : s;
  }

  Result<size_t> CountGroupsOf(const UserKey& user) override {
    if (Status s = ValidateGroupUser(user.user); !s.ok()) return s;
    const std::string prefix = UserGroupPrefix(user.tenant, user.user);
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(VerifiedRead()));
    size_t n = 0;
    for (it->Seek(prefix); it->Valid() && View(it->key()).substr(0, prefix.size()) == prefix;
         it->Next()) {
      ++n;
    }
    if (!it->status().ok()) return FromLevelDb(it->status());
    return n;
  }

  Result<GroupInfo> Create(const GroupKey& key, const std::string& name, const std::string& owner,
                           const std::vector<std::string>& members, TimestampMs now) override;

  Result<GroupInfo> Get(const GroupKey& key) override {
    if (Status s = ValidateGroupKey(key); !s.ok()) return s;
    GroupRecord group;
    if (Status s = LoadGroup(VerifiedRead(), key, &group); !s.ok()) return s;
    return InfoOf(key, group);
  }

  Status Join(const GroupKey& key, const std::string& user, TimestampMs now) override;
  Status Quit(const GroupKey& key, const std::string& user) override;
  Result<MemberPage> Members(const GroupKey& key, std::string_view after, size_t limit) override;

  Result<bool> IsMember(const GroupKey& key, const std::string& user) override {
    if (Status s = ValidateGroupKey(key); !s.ok()) return s;
    if (Status s = ValidateGroupUser(user); !s.ok()) return s;
    ScopedSnapshot snapshot(db_.get());
    GroupRecord group;
    if (Status s = LoadGroup(snapshot.Options(), key, &group); !s.ok()) return s;
    MemberRecord member;
    bool found = false;
    Status s = LoadMember(snapshot.Options(), MemberKey(MemberPrefix(key), user), &member, &found);
    if (!s.ok()) return s;
    return found;
  }

  Result<std::vector<std::string>> AllMembers(const GroupKey& key) override {
    if (Status s = ValidateGroupKey(key); !s.ok()) return s;
    ScopedSnapshot snapshot(db_.get());
    GroupRecord group;
    if (Status s = LoadGroup(snapshot.Options(), key, &group); !s.ok()) return s;
    std::vector<std::string> users;
    users.reserve(static_cast<size_t>(group.member_count));
    const std::string prefix = MemberPrefix(key);
    Status s = ScanMembers(snapshot.Options(), prefix, prefix,
                           [&](std::string_view user, MemberRecord&&) {
                             users.emplace_back(user);
                             return true;
                           });
    if (!s.ok()) return s;
    return users;
  }

 private:
  std::mutex& StripeOf(const GroupKey& key) {
    return stripes_[GroupKeyHash()(key) % kLockStripes];
  }

  // The group record, or 404 when the group does not exist.
  Status LoadGroup(const leveldb::ReadOptions& options, const GroupKey& key, GroupRecord* group) {
    std::string value;
    leveldb::Status status = db_->Get(options, GroupRecordKey(key), &value);
    if (status.IsNotFound()) return GroupNotFound(key);
    if (!status.ok()) return FromLevelDb(status);
    if (!DecodeGroup(value, group)) return Corrupt("group");
    return Status::OK();
  }

  Status LoadMember(const leveldb::ReadOptions& options, const std::string& member_key,
                    MemberRecord* member, bool* found) {
    std::string value;
    leveldb::Status status = db_->Get(options, member_key, &value);
    *found = status.ok();
    if (status.IsNotFound()) return Status::OK();
    if (!status.ok()) return FromLevelDb(status);
    if (!DecodeMember(value, member)) return Corrupt("member");
    return Status::OK();
  }

  // For a change to one membership, under the group's stripe lock: the group record (404 when
  // there is no group) and the member record at `member_key`, if any (`found`).
  Status LoadForChange(const GroupKey& key, const std::string& member_key, GroupRecord* group,
                       MemberRecord* member, bool* found) {
    if (Status s = LoadGroup(VerifiedRead(), key, group); !s.ok()) return s;
    return LoadMember(VerifiedRead(), member_key, member, found);
  }

  // Calls visit(user, record) for the members of the group whose member keys start with
  // `prefix`, from the first key at or after `start`, in ascending user order, until it returns
  // false.
  template <typename Visit>
  Status ScanMembers(const leveldb::ReadOptions& options, const std::string& prefix,
                     const std::string& start, Visit visit) {
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(options));
    for (it->Seek(start); it->Valid(); it->Next()) {
      std::string_view key = View(it->key());
      if (key.substr(0, prefix.size()) != prefix) break;
      MemberRecord record;
      if (!DecodeMember(View(it->value()), &record)) return Corrupt("member");
      if (!visit(key.substr(prefix.size()), std::move(record))) break;
    }
    return it->status().ok() ? Status::OK() : FromLevelDb(it->status());
  }

  // A database written before the U records existed gets one per member record, in batches,
  // then the mark (a start killed half way writes them again: each Put is idempotent).
  Status BuildUserIndex() {
    std::string value;
    leveldb::Status status = db_->Get(VerifiedRead(), std::string(kUserIndexMark), &value);
    if (status.ok()) return Status::OK();
    if (!status.IsNotFound()) return FromLevelDb(status);
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(VerifiedRead()));
    leveldb::WriteBatch batch;
    size_t pending = 0;
    for (it->Seek(std::string(1, kMemberRecord)); it->Valid(); it->Next()) {
      std::string_view rest = View(it->key());
      if (rest.empty() || rest[0] != kMemberRecord) break;
      rest.remove_prefix(1);
      GroupKey key;
      if (!coding::GetLengthPrefixed(&rest, &key.tenant) ||
          !coding::GetLengthPrefixed(&rest, &key.gid) || rest.empty()) {
        return Corrupt("member");
      }
      batch.Put(UserGroupKey(key, rest), "");
      if (++pending == 10000) {
        if (Status s = Write(&batch); !s.ok()) return s;
        batch.Clear();
        pending = 0;
      }
    }
    if (!it->status().ok()) return FromLevelDb(it->status());
    batch.Put(std::string(kUserIndexMark), "");
    return Write(&batch);
  }

  Status Write(leveldb::WriteBatch* batch) {
    leveldb::Status status = db_->Write(db_.write_options(), batch);
    return status.ok() ? Status::OK() : FromLevelDb(status);
  }

  const GroupLimits limits_;
  std::array<std::mutex, kLockStripes> stripes_;
  DbHandle db_;
};

Result<GroupInfo> LevelDbGroupService::Create(const GroupKey& key, const std::string& name,
                                              const std::string& owner,
                                              const std::vector<std::string>& members,
                                              TimestampMs now) {
  // Checked before any lock: the size check depends on the request alone.
  std::set<std::string_view> others;
  if (Status s = ValidateGroupCreate(key, name, owner, members, limits_, &others); !s.ok()) {
    return s;
  }

  GroupRecord group;
  group.name = name;
  group.owner = owner;
  group.created_ms = now;
  group.member_count = others.size() + 1;
  const std::string prefix = MemberPrefix(key);
  leveldb::WriteBatch batch;
  batch.Put(GroupRecordKey(key), EncodeGroup(group));
  batch.Put(MemberKey(prefix, owner), EncodeMember(kOwnerRole, now));
  batch.Put(UserGroupKey(key, owner), "");
  const std::string member_value = EncodeMember(kMemberRole, now);
  for (std::string_view user : others) {
    batch.Put(MemberKey(prefix, user), member_value);
    batch.Put(UserGroupKey(key, user), "");
  }

  std::lock_guard<std::mutex> lock(StripeOf(key));
  GroupRecord existing;
  Status s = LoadGroup(VerifiedRead(), key, &existing);
  if (s.ok()) return Status::Error(Code::kConflict, "group_exists", "group " + key.gid + " exists");
  if (s.code() != Code::kNotFound) return s;
  // A deleted group left no member records behind (Quit deletes the last one with the group), so
  // the batch needs no cleanup of an earlier incarnation.
  if (s = Write(&batch); !s.ok()) return s;
  return InfoOf(key, group);
}

Status LevelDbGroupService::Join(const GroupKey& key, const std::string& user, TimestampMs now) {
  if (Status s = ValidateGroupKey(key); !s.ok()) return s;
  if (Status s = ValidateGroupUser(user); !s.ok()) return s;
  const std::string member_key = MemberKey(MemberPrefix(key), user);
  std::lock_guard<std::mutex> lock(StripeOf(key));
  GroupRecord group;
  MemberRecord member;
  bool found = false;
  if (Status s = LoadForChange(key, member_key, &group, &member, &found); !s.ok()) return s;
  if (found) return Status::Error(Code::kConflict, "already_member", user + " is already a member");
  if (group.member_count >= limits_.max_members) return GroupFull(limits_);
  ++group.member_count;
  leveldb::WriteBatch batch;
  batch.Put(member_key, EncodeMember(kMemberRole, now));
  batch.Put(UserGroupKey(key, user), "");
  batch.Put(GroupRecordKey(key), EncodeGroup(group));
  return Write(&batch);
}

Status LevelDbGroupService::Quit(const GroupKey& key, const std::string& user) {
  if (Status s = ValidateGroupKey(key); !s.ok()) return s;
  if (Status s = ValidateGroupUser(user); !s.ok()) return s;
  const std::string prefix = MemberPrefix(key);
  const std::string member_key = MemberKey(prefix, user);
  std::lock_guard<std::mutex> lock(StripeOf(key));
  GroupRecord group;
  MemberRecord member;
  bool found = false;
  if (Status s = LoadForChange(key, member_key, &group, &member, &found); !s.ok()) return s;
  if (!found) return Status::Forbidden("not_member", user + " is not a member");

  leveldb::WriteBatch batch;
  batch.Delete(member_key);
  batch.Delete(UserGroupKey(key, user));
  if (group.member_count <= 1) {
    // The last member: the group goes with it, and its gid may be created again.
    batch.Delete(GroupRecordKey(key));
    return Write(&batch);
  }
  --group.member_count;
  if (group.owner == user) {
    // The earliest joined_ms inherits, then the smallest user id. A scan of the group: owners
    // quit rarely, and an index by join time would cost every join a second record.
    std::string heir;
    MemberRecord heir_record;
    Status s = ScanMembers(VerifiedRead(), prefix, prefix,
                           [&](std::string_view other, MemberRecord&& record) {
                             // Ascending ids: on a joined_ms tie the smaller id stays.
                             if (other != user && (heir.empty() || record.joined_ms <
                                                                       heir_record.joined_ms)) {
                               heir.assign(other);
                               heir_record = std::move(record);
                             }
                             return true;
                           });
    if (!s.ok()) return s;
    if (heir.empty()) return Status::Internal("leveldb: corrupt group: no member left to own it");
    batch.Put(MemberKey(prefix, heir), EncodeMember(kOwnerRole, heir_record.joined_ms));
    group.owner = std::move(heir);
  }
  batch.Put(GroupRecordKey(key), EncodeGroup(group));
  return Write(&batch);
}

Result<MemberPage> LevelDbGroupService::Members(const GroupKey& key, std::string_view after,
                                                size_t limit) {
  if (Status s = ValidateGroupKey(key); !s.ok()) return s;
  if (limit < 1 || limit > kMaxMembersPage) {
    return Status::BadRequest("limit must be 1.." + std::to_string(kMaxMembersPage));
  }
  ScopedSnapshot snapshot(db_.get());
  GroupRecord group;
  if (Status s = LoadGroup(snapshot.Options(), key, &group); !s.ok()) return s;
  const std::string prefix = MemberPrefix(key);
  // after + '\0' is the smallest user id greater than `after`, so the first key at or past it is
  // the first member the page wants.
  std::string start = MemberKey(prefix, after);
  if (!after.empty()) start.push_back('\0');
  MemberPage page;
  Status s = ScanMembers(snapshot.Options(), prefix, start,
                         [&](std::string_view user, MemberRecord&& record) {
                           if (page.members.size() == limit) {
                             page.more = true;
                             return false;
                           }
                           page.members.push_back(GroupMember{
                               std::string(user), std::move(record.role), record.joined_ms});
                           return true;
                         });
  if (!s.ok()) return s;
  return page;
}

}  // namespace
}  // namespace internal::leveldb_group

Result<std::shared_ptr<GroupService>> OpenLevelDbGroupService(const std::string& dir,
                                                              GroupLimits limits,
                                                              LevelDbOptions db) {
  auto service = std::make_shared<internal::leveldb_group::LevelDbGroupService>(limits, db);
  Status status = service->Open(dir);
  if (!status.ok()) return status;
  return std::shared_ptr<GroupService>(std::move(service));
}

}  // namespace im
