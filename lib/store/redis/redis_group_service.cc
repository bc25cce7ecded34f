// The Redis GroupService: groups with the semantics of the LevelDB one
// (lib/store/leveldb/leveldb_group_service.cc), shared by every node on one Redis.
//
// Three keys per group, all in the group's hash-tag slot (store/redis/redis_keys.h), so that
// one script may touch them together, also on Redis Cluster:
//
//   im:{g:<tenant>/<gid>}:info     hash: v (record version), name, owner, created_ms
//   im:{g:<tenant>/<gid>}:members  hash: user -> "<joined_ms> <role>"
//   im:{g:<tenant>/<gid>}:index    sorted set of the users, all with score 0: Redis orders
//                                  equal scores bytewise, so Members(after, limit) is one
//                                  ZRANGEBYLEX and AllMembers one ZRANGE, both ascending
//
// And one key per user, in the user's slot: `im:{u:<tenant>/<user>}:groups`, a set of the gids
// of this Redis the user may be a member of (CountGroupsOf). It is an index beside the group
// keys, not in their scripts (another slot), so it is written so that it never misses a group:
// a gid is added before the script that makes the user a member and removed after the one that
// ends it; CountGroupsOf counts only the gids whose group has the user now (one pipelined
// check) and drops those whose group is gone.
//
// The member count is HLEN of `members`. Every call is one Lua script: one round trip, and
// check-then-write (409 group_exists, already_member, group_full, the owner hand-over, the
// deletion with the last member) is atomic whichever node runs it. Nothing is cached here.

#include <charconv>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "im/group_service.h"
#include "im/redis.h"
#include "store/group_rules.h"
#include "store/redis/redis_client.h"
#include "store/redis/redis_keys.h"
#include "store/redis/redis_shards.h"

namespace im {
namespace internal::redis_group {
namespace {

constexpr std::string_view kRecordVersion = "1";
constexpr size_t kMaxMembersPage = 500;

// Every script takes KEYS info, members, index and answers an array whose first element says
// what happened: 'ok' (then the data), 'missing' (404), or another refusal.

// ARGV: version, name, owner, created_ms, then the other members. 'ok' or 'exists'.
const RedisScript& CreateScript() {
  static const RedisScript script(R"lua(
if redis.call('EXISTS', KEYS[1]) == 1 then return {'exists'} end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'name', ARGV[2], 'owner', ARGV[3],
           'created_ms', ARGV[4])
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4] .. ' owner')
redis.call('ZADD', KEYS[3], 0, ARGV[3])
local member = ARGV[4] .. ' member'
for i = 5, #ARGV do
  redis.call('HSET', KEYS[2], ARGV[i], member)
  redis.call('ZADD', KEYS[3], 0, ARGV[i])
end
return {'ok'}
)lua");
  return script;
}

// 'ok', v, name, owner, created_ms, member count.
const RedisScript& GetScript() {
  static const RedisScript script(R"lua(
local info = redis.call('HMGET', KEYS[1], 'v', 'name', 'owner', 'created_ms')
if not info[1] then return {'missing'} end
return {'ok', info[1], info[2], info[3], info[4], redis.call('HLEN', KEYS[2])}
)lua");
  return script;
}

// ARGV: user, joined_ms, max_members. 'ok', 'member' or 'full'.
const RedisScript& JoinScript() {
  static const RedisScript script(R"lua(
if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing'} end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return {'member'} end
if redis.call('HLEN', KEYS[2]) >= tonumber(ARGV[3]) then return {'full'} end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. ' member')
redis.call('ZADD', KEYS[3], 0, ARGV[1])
return {'ok'}
)lua");
  return script;
}

// ARGV: user. 'ok' or 'not_member'. The owner's heir: the earliest joined_ms, then the
// smallest user id (the index is ascending, so the first of equals wins).
const RedisScript& QuitScript() {
  static const RedisScript script(R"lua(
if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing'} end
if redis.call('HDEL', KEYS[2], ARGV[1]) == 0 then return {'not_member'} end
redis.call('ZREM', KEYS[3], ARGV[1])
if redis.call('HLEN', KEYS[2]) == 0 then
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
  return {'ok'}
end
if redis.call('HGET', KEYS[1], 'owner') == ARGV[1] then
  local heir, heir_joined = nil, nil
  for _, user in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
    local joined = tonumber(string.match(redis.call('HGET', KEYS[2], user), '^(%-?%d+) '))
    if heir == nil or joined < heir_joined then
      heir, heir_joined = user, joined
    end
  end
  redis.call('HSET', KEYS[2], heir, string.format('%d owner', heir_joined))
  redis.call('HSET', KEYS[1], 'owner', heir)
end
return {'ok'}
)lua");
  return script;
}

// ARGV: the ZRANGEBYLEX start, limit. 'ok', then user, "<joined_ms> <role>" per member, at
// most limit + 1 of them (the last one only tells that there are more).
const RedisScript& MembersScript() {
  static const RedisScript script(R"lua(
if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing'} end
local users = redis.call('ZRANGEBYLEX', KEYS[3], ARGV[1], '+', 'LIMIT', 0, tonumber(ARGV[2]) + 1)
local out = {'ok'}
if #users == 0 then return out end
local records = redis.call('HMGET', KEYS[2], unpack(users))
for i, user in ipairs(users) do
  out[#out + 1] = user
  out[#out + 1] = records[i] or ''
end
return out
)lua");
  return script;
}

// ARGV: user. 'ok', 1 or 0.
const RedisScript& IsMemberScript() {
  static const RedisScript script(R"lua(
if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing'} end
return {'ok', redis.call('HEXISTS', KEYS[2], ARGV[1])}
)lua");
  return script;
}

// ARGV: none. 'ok', then every user, ascending.
const RedisScript& AllMembersScript() {
  static const RedisScript script(R"lua(
if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing'} end
local out = redis.call('ZRANGE', KEYS[3], 0, -1)
table.insert(out, 1, 'ok')
return out
)lua");
  return script;
}

bool ParseI64(std::string_view text, int64_t* out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return !text.empty() && ec == std::errc() && end == text.data() + text.size();
}

Status Corrupt(std::string_view what) {
  return Status::Internal("redis: corrupt group " + std::string(what));
}

// Thread-safety: every method is safe from any thread (the state is in Redis).
class RedisGroupService final : public GroupService {
 public:
  RedisGroupService(std::shared_ptr<RedisClient> client, const GroupLimits& limits)
      : client_(std::move(client)), limits_(limits) {}

  Result<GroupInfo> Create(const GroupKey& key, const std::string& name, const std::string& owner,
                           const std::vector<std::string>& members, TimestampMs now) override {
    std::set<std::string_view> others;
    if (Status s = ValidateGroupCreate(key, name, owner, members, limits_, &others); !s.ok()) {
      return s;
    }
    RedisArgs args = {std::string(kRecordVersion), name, owner, std::to_string(now)};
    for (std::string_view user : others) args.emplace_back(user);
    std::vector<RedisArgs> index = {{"SADD", GroupsKey(key.tenant, owner), key.gid}};
    for (std::string_view user : others) {
      index.push_back({"SADD", GroupsKey(key.tenant, user), key.gid});
    }
    if (Status s = RunIndex(index); !s.ok()) return s;
    Result<RedisReply> r = Run(CreateScript(), key, args);
    if (!r.ok()) return r.status();
    if (Verdict(*r) == "exists") {
      return Status::Error(Code::kConflict, "group_exists", "group " + key.gid + " exists");
    }
    if (Verdict(*r) != "ok") return Unexpected();
    GroupInfo info;
    info.key = key;
    info.name = name;
    info.owner = owner;
    info.member_count = others.size() + 1;
    info.created_ms = now;
    return info;
  }

  Result<GroupInfo> Get(const GroupKey& key) override {
    if (Status s = ValidateGroupKey(key); !s.ok()) return s;
    Result<RedisReply> r = RunFound(GetScript(), key, {});
    if (!r.ok()) return r.status();
    const std::vector<RedisReply>& out = r->elements;
    GroupInfo info;
    info.key = key;
    if (out.size() != 6 || out[1].str != kRecordVersion || out[2].str.empty() ||
        out[3].str.empty() || !ParseI64(out[4].str, &info.created_ms) || out[5].integer < 1) {
      return Corrupt("record");
    }
    info.name = out[2].str;
    info.owner = out[3].str;
    info.member_count = static_cast<size_t>(out[5].integer);
    return info;
  }

  Status Join(const GroupKey& key, const std::string& user, TimestampMs now) override {
    if (Status s = ValidateGroupKey(key); !s.ok()) return s;
    if (Status s = ValidateGroupUser(user); !s.ok()) return s;
    if (Status s = RunIndex({{"SADD", GroupsKey(key.tenant, user), key.gid}}); !s.ok()) return s;
    Result<RedisReply> r = RunFound(
        JoinScript(), key, {user, std::to_string(now), std::to_string(limits_.max_members)});
    if (!r.ok()) return r.status();
    if (Verdict(*r) == "member") {
      return Status::Error(Code::kConflict, "already_member", user + " is already a member");
    }
    if (Verdict(*r) == "full") return GroupFull(limits_);
    return Verdict(*r) == "ok" ? Status::OK() : Unexpected();
  }

  Status Quit(const GroupKey& key, const std::string& user) override {
    if (Status s = ValidateGroupKey(key); !s.ok()) return s;
    if (Status s = ValidateGroupUser(user); !s.ok()) return s;
    Result<RedisReply> r = RunFound(QuitScript(), key, {user});
    if (!r.ok()) return r.status();
    if (Verdict(*r) == "not_member")
      return Status::Forbidden("not_member", user + " is not a member");
    if (Verdict(*r) != "ok") return Unexpected();
    // Failing here leaves a gid that CountGroupsOf does not count (the user is no member).
    return RunIndex({{"SREM", GroupsKey(key.tenant, user), key.gid}});
  }

  Result<MemberPage> Members(const GroupKey& key, std::string_view after, size_t limit) override {
    if (Status s = ValidateGroupKey(key); !s.ok()) return s;
    if (limit < 1 || limit > kMaxMembersPage) {
      return Status::BadRequest("limit must be 1.." + std::to_string(kMaxMembersPage));
    }
    // "(after" is exclusive; "-" is the start.
    const std::string start = after.empty() ? std::string("-") : "(" + std::string(after);
    Result<RedisReply> r = RunFound(MembersScript(), key, {start, std::to_string(limit)});
    if (!r.ok()) return r.status();
    const std::vector<RedisReply>& out = r->elements;
    if (out.size() % 2 != 1) return Unexpected();
    MemberPage page;
    for (size_t i = 1; i + 1 < out.size(); i += 2) {
      if (page.members.size() == limit) {
        page.more = true;
        break;
      }
      GroupMember member;
      member.user = out[i].str;
      const std::string& record = out[i + 1].str;
      const size_t space = record.find(' ');
      if (space == std::string::npos ||
          !ParseI64(std::string_view(record).substr(0, space), &member.joined_ms) ||
          space + 1 == record.size()) {
        return Corrupt("member " + member.user);
      }
      member.role = record.substr(space + 1);
      page.members.push_back(std::move(member));
    }
    return page;
  }

  Result<bool> IsMember(const GroupKey& key, const std::string& user) override {
    if (Status s = ValidateGroupKey(key); !s.ok()) return s;
    if (Status s = ValidateGroupUser(user); !s.ok()) return s;
    Result<RedisReply> r = RunFound(IsMemberScript(), key, {user});
    if (!r.ok()) return r.status();
    if (r->elements.size() != 2) return Unexpected();
    return r->elements[1].integer == 1;
  }

  Result<std::vector<std::string>> AllMembers(const GroupKey& key) override {
    if (Status s = ValidateGroupKey(key); !s.ok()) return s;
    Result<RedisReply> r = RunFound(AllMembersScript(), key, {});
    if (!r.ok()) return r.status();
    std::vector<std::string> users;
    users.reserve(r->elements.size() - 1);
    for (size_t i = 1; i < r->elements.size(); ++i) users.push_back(std::move(r->elements[i].str));
    return users;
  }

  Result<size_t> CountGroupsOf(const UserKey& user) override {
    if (Status s = ValidateGroupUser(user.user); !s.ok()) return s;
    const std::string groups_key = GroupsKey(user.tenant, user.user);
    Result<RedisReply> gids = client_->Command({"SMEMBERS", groups_key});
    if (!gids.ok()) return gids.status();
    if (!gids->is_array()) return Unexpected();
    std::vector<RedisArgs> checks;
    for (const RedisReply& gid : gids->elements) {
      const std::string prefix = GroupKeyPrefix(GroupKey{user.tenant, gid.str});
      Result<RedisArgs> check = client_->EvalCommand(
          IsMemberScript(), {prefix + "info", prefix + "members", prefix + "index"}, {user.user});
      if (!check.ok()) return check.status();
      checks.push_back(std::move(*check));
    }
    Result<std::vector<RedisReply>> answers = client_->Pipeline(checks);
    if (!answers.ok()) return answers.status();
    size_t n = 0;
    std::vector<RedisArgs> gone;
    for (size_t i = 0; i < answers->size(); ++i) {
      const RedisReply& a = (*answers)[i];
      if (!a.is_array() || a.elements.empty()) return Unexpected();
      if (a.elements[0].str == "missing") {
        gone.push_back({"SREM", groups_key, gids->elements[i].str});
      } else if (a.elements.size() == 2 && a.elements[1].integer == 1) {
        ++n;
      }
    }
    if (Status s = RunIndex(gone); !s.ok()) return s;
    return n;
  }

 private:
  static std::string GroupsKey(const std::string& tenant, std::string_view user) {
    return UserKeyPrefix(UserKey{tenant, std::string(user)}) + "groups";
  }

  // Index commands in one round trip; an error reply of one is an error.
  Status RunIndex(const std::vector<RedisArgs>& commands) {
    Result<std::vector<RedisReply>> r = client_->Pipeline(commands);
    if (!r.ok()) return r.status();
    for (const RedisReply& reply : *r) {
      if (reply.is_error()) return Status::Internal("redis: " + reply.str);
    }
    return Status::OK();
  }

  static std::string_view Verdict(const RedisReply& reply) { return reply.elements[0].str; }
  static Status Unexpected() {
    return Status::Internal("redis: unexpected reply of a group script");
  }

  // Runs `script` over the group's keys; the reply is an array starting with a string.
  Result<RedisReply> Run(const RedisScript& script, const GroupKey& key, const RedisArgs& args) {
    const std::string prefix = GroupKeyPrefix(key);
    Result<RedisReply> r =
        client_->Eval(script, {prefix + "info", prefix + "members", prefix + "index"}, args);
    if (!r.ok()) return r;
    if (!r->is_array() || r->elements.empty() || !r->elements[0].is_string()) return Unexpected();
    return r;
  }

  // As Run, with 404 for 'missing'.
  Result<RedisReply> RunFound(const RedisScript& script, const GroupKey& key,
                              const RedisArgs& args) {
    Result<RedisReply> r = Run(script, key, args);
    if (r.ok() && Verdict(*r) == "missing") return GroupNotFound(key);
    return r;
  }

  const std::shared_ptr<RedisClient> client_;
  const GroupLimits limits_;
};

}  // namespace
}  // namespace internal::redis_group

Result<std::shared_ptr<GroupService>> OpenRedisGroupService(const RedisOptions& redis,
                                                            GroupLimits limits) {
  if (internal::IsShardedRedisUrl(redis.url)) {
    return internal::OpenShardedGroupService(redis, limits);
  }
  Result<std::shared_ptr<internal::RedisClient>> client = internal::RedisClient::Create(redis);
  if (!client.ok()) return client.status();
  return std::shared_ptr<GroupService>(std::make_shared<internal::redis_group::RedisGroupService>(
      std::move(client).value(), limits));
}

}  // namespace im
