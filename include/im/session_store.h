// SessionStore: who is online where. The login path calls Put (which applies the kick policy
// atomically); the logout/close path calls Remove, a compare-and-delete on the session id so
// that a kicked old connection never removes the session that replaced it.
//
// Thread-safety: implementations are safe from any thread. Calls may block on storage (the core
// calls them from its worker pool, never from an io thread).
#ifndef IM_SESSION_STORE_H_
#define IM_SESSION_STORE_H_

#include <vector>

#include "im/result.h"
#include "im/types.h"

namespace im {

class SessionStore {
 public:
  virtual ~SessionStore() = default;

  // Records `session` as online and removes, atomically, the sessions it displaces under
  // `policy` (per device: the user's session with the same device; per account: every other
  // session of the user). Returns the displaced sessions so the caller can kick them.
  virtual Result<std::vector<SessionInfo>> Put(const SessionInfo& session, KickPolicy policy) = 0;

  // Removes `session` only if the stored entry for its (user, device) still has the same
  // session_id. Returns true when it removed it, false when another session had replaced it.
  virtual Result<bool> Remove(const SessionInfo& session) = 0;

  // Every online session of `user` (any order; empty when offline).
  virtual Result<std::vector<SessionInfo>> Find(const UserKey& user) = 0;

  // Every online session of each of `users` (concatenated, any order).
  virtual Result<std::vector<SessionInfo>> FindMany(const std::vector<UserKey>& users) = 0;

  // Number of sessions online in `tenant` ("" = all tenants).
  virtual Result<size_t> Count(std::string_view tenant) = 0;
};

}  // namespace im

#endif  // IM_SESSION_STORE_H_
