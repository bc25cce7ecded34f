// SessionService: logins, token refresh, logouts and kicks, the same for every front (socket
// commands, the host API, the REST admin endpoints). It knows no socket and no request: a front
// parses its input, calls the service, binds the result to its connection and answers.
//
// Login: verifies the token (under the per-address limit on failed logins), applies the
// per-device limit and the kick policy (SessionStore::Put), attaches the session to the router
// and kicks the sessions it displaced (session.kicked{reason:"login_elsewhere"}, 4001). A login
// on a connection that is already logged in refreshes its token; it cannot switch user or
// device (409 already_logged_in).
//
// Thread-safety: every method is safe from any thread; methods may block on storage (call them
// from a worker, never an io thread). Hooks run on the calling thread.
#ifndef IM_CORE_SESSION_SERVICE_H_
#define IM_CORE_SESSION_SERVICE_H_

#include <atomic>
#include <memory>
#include <string>

#include "core/hooks.h"
#include "core/rate_limits.h"
#include "im/auth.h"
#include "im/connection.h"
#include "im/offline_queue.h"
#include "im/options.h"
#include "im/router.h"
#include "im/session_store.h"
#include "ops/event_log.h"
#include "ops/metrics.h"
#include "tenant/tenant_directory.h"

namespace im::internal {

class SessionService {
 public:
  struct Deps {
    SessionStore* sessions;
    Router* router;
    OfflineQueue* inbox;
    TokenVerifier* tokens;
    RateLimits* limits;
    EventLog* events;
    Metrics* metrics;
    const Hooks* hooks;
    const ServerOptions* options;  // kick_policy, max_devices_per_user, heartbeat_s
    Clock* clock;
    std::string node_id;
    std::string session_prefix;  // session ids are this plus a counter
    TenantDirectory* tenants;    // suspension and the session quotas
  };

  struct LoginRequest {
    std::string token;
    std::string device;
    std::string remote_address;
    // The connection the session is attached to (the router holds it weakly).
    std::shared_ptr<Connection> connection;
    // The connection's current session when it is logged in already (a token refresh).
    const SessionInfo* current = nullptr;
  };

  struct LoginResult {
    SessionInfo session;
    TimestampMs token_expires_ms = 0;  // 0 = never
    bool refreshed = false;            // a token refresh: the session did not change
    InboxInfo inbox;
    uint64_t acked_seq = 0;
  };

  explicit SessionService(Deps deps) : deps_(std::move(deps)) {}

  // A new session (attached and reachable when this returns), or a token refresh.
  Result<LoginResult> Login(const LoginRequest& request);
  // After the front bound a new session to its connection and answered: the login event, the
  // metric and the on_login hook. (Not for a refresh.)
  void Welcome(const SessionInfo& session, const std::string& remote_address);
  // The session ended (logout, closed connection): detached, removed from the SessionStore
  // with compare-and-delete (a kicked session never removes the one that replaced it), the
  // logout event and the on_logout hook.
  void End(const SessionInfo& session, const std::string& remote_address, const char* reason);
  // Disconnects every session of `user` with session.kicked{reason} and 4001.
  Status Kick(const UserKey& user, const std::string& reason = "admin");
  // Records a kick the front carries out itself (drain, token expiry).
  void LogKick(const SessionInfo& session, const std::string& remote_address,
               const std::string& reason);

  // The login answer's body (protocol: `login`).
  std::string LoginJson(const LoginResult& r) const;

 private:
  void LogSession(const char* event, const SessionInfo& s, const std::string& remote,
                  const std::string& reason);
  Result<LoginResult> ReadPosition(LoginResult r);
  // Whether a login of `session` displaces a session of this node under `policy`.
  bool ReplacesLocalSession(const SessionInfo& session, KickPolicy policy);

  Deps deps_;
  std::atomic<uint64_t> counter_{0};
};

}  // namespace im::internal

#endif  // IM_CORE_SESSION_SERVICE_H_
