// im::Server: the embeddable IM server. A host builds the backends (see backends.h), passes them
// with ServerOptions, and calls Start(). The server owns its threads; storage interfaces are
// called from its worker pool.
//
// Thread-safety: every method is safe from any thread, except that Start/Stop must not run
// concurrently with each other. Hooks are called from worker threads and must be thread-safe.
#ifndef IM_SERVER_H_
#define IM_SERVER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "im/auth.h"
#include "im/content_filter.h"
#include "im/group_service.h"
#include "im/offline_queue.h"
#include "im/options.h"
#include "im/result.h"
#include "im/router.h"
#include "im/send_receipt.h"
#include "im/session_store.h"
#include "im/tenant.h"
#include "im/user_store.h"

namespace im {

// GET /v1/route: the query's parameters, and the client's address as this server saw it.
struct RouteRequest {
  std::string tenant;
  std::string user;
  std::string region;  // "" = not given
  std::string remote_address;
};

// The backends a server uses. `sessions`, `router`, `inbox` and `tokens` are required; the others
// may be null (features that need them answer 503 unavailable).
struct ServerDeps {
  std::shared_ptr<SessionStore> sessions;
  std::shared_ptr<Router> router;
  std::shared_ptr<OfflineQueue> inbox;
  std::shared_ptr<TokenVerifier> tokens;
  std::shared_ptr<GroupService> groups;
  std::shared_ptr<UserStore> users;
  std::shared_ptr<ContentFilter> filter;  // null = allow everything
  // Keys to sign tokens with (POST /v1/tokens). Null: the endpoint answers 503.
  std::shared_ptr<KeyStore> token_keys;
  // Reloads the content filter's word list (POST /v1/admin/filter/reload). Null: 503.
  std::function<Status()> reload_filter;
  // Answers GET /v1/route with a JSON object text (imd: from its routing rules and node
  // registry; docs/protocol.md). Null: the endpoint answers 404.
  std::function<Result<std::string>(const RouteRequest&)> route;
  // Marks node `node_id` draining (POST /v1/admin/nodes/<id>/drain, admin key). Null: 503.
  std::function<Status(const std::string& node_id)> drain_node;
  // GET (null body) and PUT (the body) of /v1/admin/routing, operator key: the routing rules in
  // force as a JSON object text; a PUT stores and applies the body's rules first. Null: 404.
  std::function<Result<std::string>(const std::string* body)> routing_rules;
  // The tenant registry (status, quotas, word lists; /v1/admin/tenants). Null: an in-memory
  // one, empty (every tenant active, the server-wide settings for all).
  std::shared_ptr<TenantStore> tenants;
};

// Called before a message is stored. Return a non-OK status to refuse it (the sender gets that
// status); the hook may rewrite `message.body`, `type` and `extra`.
using BeforeSendHook = std::function<Status(Message& message)>;
using SessionHook = std::function<void(const SessionInfo& session)>;

class Server {
 public:
  Server(ServerOptions options, ServerDeps deps);
  ~Server();  // Stops.
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the listeners and starts the threads. Fails when a listener cannot bind or a
  // required dependency is missing.
  Status Start();
  // Closes every connection (1001) and stops all threads. Idempotent.
  void Stop();
  // Graceful shutdown: stops taking new work (health, readiness and WebSocket handshakes answer
  // HTTP 503 until the drain ends), finishes the appends already queued (their senders get
  // acks), kicks the logged-in sessions with session.kicked{reason:"drain"} and close 1001 in
  // batches (drain_kicks_per_second) until `deadline_ms`, tells the rest at once, closes every
  // connection with 1001, waits up to the deadline (at least a second more) for the closes,
  // then stops.
  void Drain(int64_t deadline_ms = 10000);

  // Drains the sessions while the server keeps serving the others: from now on /readyz,
  // WebSocket handshakes and logins answer 503 `draining`, and the logged-in sessions get
  // session.kicked{reason:"drain"} and close 1001 in batches, at most
  // drain_kicks_per_second a second. True when no logged-in session is left, false after
  // `deadline_ms`; call it again to go on. A host that drains by command calls Drain() once it
  // returns true (or idles).
  bool DrainSessions(int64_t deadline_ms);
  // Kicks up to `max` logged-in sessions whose user `select` accepts (null: any) the way a drain
  // does; answers how many. For moving users to other nodes a few at a time (canary rules).
  size_t KickForDrain(size_t max, std::function<bool(const UserKey&)> select);
  // Sessions logged in here and not yet kicked by a drain.
  size_t DrainableCount() const;

  // Ports actually bound (useful with port 0). 0 when that listener is disabled or not started.
  uint16_t tcp_port() const;
  uint16_t http_port() const;
  const std::string& node_id() const;

  // Host-side sends (as user `from` of the target's tenant; `from` may be ""). Stored and
  // pushed like a client send. `cid` "" = no dedup.
  Result<SendReceipt> SendToUser(const UserKey& to, const std::string& from, std::string body,
                                 std::string type = "text", std::string cid = "");
  // A host-side send to every member of `group`. With a non-empty `from` only a member may send
  // (403 not_member), and the message goes into `from`'s inbox too.
  Result<SendReceipt> SendToGroup(const GroupKey& group, const std::string& from,
                                  std::string body, std::string type = "text",
                                  std::string cid = "");
  // Disconnects every session of `user` with session.kicked{reason:"admin"} and 4001.
  Status Kick(const UserKey& user);
  // Sessions online on this server.
  size_t OnlineCount() const;

  // Hooks; set them before Start().
  void SetBeforeSend(BeforeSendHook hook);
  void SetOnLogin(SessionHook hook);
  void SetOnLogout(SessionHook hook);

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace im

#endif  // IM_SERVER_H_
