// The key layout shared by the Redis backends (docs/operations.md, Redis backends).
//
// Every key starts with "im:" and carries a Redis Cluster hash tag: the user's or the group's,
// so that all the keys of one user (or one group) hash to one slot and a Lua script may touch
// them together.
//
//   im:{u:<tenant>/<user>}:<what>    a user's keys (account, sessions, inbox, ...)
//   im:{g:<tenant>/<gid>}:<what>     a group's keys
//
// Tenant, user and group ids may hold any character but control characters (im::IsValidId), so
// each is escaped: '%', '/', '{' and '}' become %25, %2F, %7B and %7D. Then no id can end the
// tag early ('}'), and (tenant, user) pairs that concatenate alike stay apart ('/').
#ifndef IM_STORE_REDIS_REDIS_KEYS_H_
#define IM_STORE_REDIS_REDIS_KEYS_H_

#include <string>
#include <string_view>

#include "im/types.h"

namespace im::internal {

// `part` with '%', '/', '{', '}' escaped as %XX (upper-case hex).
std::string EscapeKeyPart(std::string_view part);

// "im:{u:<tenant>/<user>}:" (escaped); append the key's own name.
std::string UserKeyPrefix(const UserKey& user);

// "im:{g:<tenant>/<gid>}:" (escaped); append the key's own name.
std::string GroupKeyPrefix(const GroupKey& group);

// `bytes` random bytes (libsodium) as 2 * bytes lower-case hex digits: node instance ids, epoch
// parts, script tokens.
std::string RandomHexToken(size_t bytes);

}  // namespace im::internal

#endif  // IM_STORE_REDIS_REDIS_KEYS_H_
