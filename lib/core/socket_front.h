// SocketFront: the protocol's front on the socket transports (TCP and WebSocket). It is the
// TransportHandler: it keeps each connection's state (ConnState, the transport's context), cuts
// commands into the connection's turns on the worker pool, and runs them from a table (name,
// handler, needs login, chat limits). Each handler parses the body, calls a service
// (SessionService, ChatService, GroupOps) and answers; what is stored (sends, group changes)
// is answered from the committer thread. It also owns the node's one registry of connections:
// the sweep (login timeout, token expiry, heartbeats), the metrics, the drain and the close.
//
// Unknown commands, commands before login and every error reply follow docs/protocol.md.
//
// Thread-safety: the TransportHandler methods run on io threads and never block; the command
// handlers in the connection's turns (one at a time, in order); Sweep on the io thread of the timer; the rest anywhere.
#ifndef IM_CORE_SOCKET_FRONT_H_
#define IM_CORE_SOCKET_FRONT_H_

#include <asio/thread_pool.hpp>

#include <atomic>
#include <memory>
#include <string>

#include "core/chat_service.h"
#include "core/conn_state.h"
#include "core/group_ops.h"
#include "core/rate_limits.h"
#include "core/session_service.h"
#include "im/options.h"
#include "ops/event_log.h"
#include "ops/metrics.h"
#include "protocol/codec.h"
#include "tenant/tenant_directory.h"
#include "transport/handler.h"

namespace im::internal {

class SocketFront final : public TransportHandler {
 public:
  struct Deps {
    const ServerOptions* options;
    Clock* clock;
    asio::thread_pool* workers;  // runs the connections' turns
    SessionService* sessions;
    ChatService* chat;
    GroupOps* groups;
    EventLog* events;
    Metrics* metrics;
    const TenantDirectory* tenants;  // the sweep kicks the sessions of suspended tenants
    RateLimits* limits;              // the tenants' command buckets
  };
  explicit SocketFront(Deps deps);

  // TransportHandler (io threads). The context of a connection is its ConnState.
  ConnectionContext OnOpen(const std::shared_ptr<Connection>& connection) override;
  void OnFrame(const std::shared_ptr<Connection>& connection, const ConnectionContext& context,
               std::string payload) override;
  void OnClose(const std::shared_ptr<Connection>& connection,
               const ConnectionContext& context) override;
  void OnTraffic(const Connection& connection, const ConnectionContext& context) override;
  void OnSlowConsumer(const Connection& connection, size_t queued_bytes) override;

  // Closes connections that did not log in in time, whose token ran out, whose tenant is
  // suspended, or that went quiet.
  void Sweep(TimestampMs now);
  // session.kicked{reason:"drain"} to every logged-in session not kicked yet (the drain closes
  // them next).
  void NoticeDrain();
  // Kicks up to `max` logged-in sessions whose user `select` accepts (null: any) with
  // session.kicked{reason:"drain"} and close 1001 "server draining"; answers how many.
  size_t KickForDrain(size_t max, const std::function<bool(const UserKey&)>& select);
  // The session on connection `connection_id`, when its client was last told another inbox
  // epoch than `epoch` (the inbox's now: the storage lost writes and gave the inbox a new one,
  // and a push of the new epoch may have been lost): kicked as by a drain (session.kicked
  // {reason:"drain"}, close 1001 "inbox epoch changed"), so that the client reconnects, reads
  // the new epoch at login and syncs from 0. True when it was kicked.
  bool MoveIfEpochStale(uint64_t connection_id, const std::string& epoch);
  // Logged-in sessions not yet kicked by a drain.
  size_t DrainableCount();
  // While set, logins answer 503 `draining` (the client asks /v1/route for another node).
  void SetDraining() { draining_ = true; }
  // Connections open now (registered, not yet closed).
  size_t ConnectionCount() { return conns_.Size(); }
  // The connection and session figures of a metrics scrape.
  void AddToSnapshot(Metrics::Snapshot& s);

 private:
  std::atomic<bool> draining_{false};
  using Handler = void (SocketFront::*)(const std::shared_ptr<ConnState>& state,
                                        const std::shared_ptr<Request>& req);
  struct Command {
    const char* name;
    Handler handler;
    bool needs_login;
    bool chat_limits;     // takes a token of chat_connection, chat_user and chat_tenant first
    bool tenant_command;  // takes a token of the tenant's command bucket first
  };
  static const Command* FindCommand(const std::string& name);
  // A connection's work (ConnState::work): Queue adds a command, or null for the end of its
  // session, and queues a turn if none is; RunTurn runs up to kItemsPerTurn of it in order on
  // a worker and, if more is left, queues the next turn (PostTurn) behind the work already
  // waiting for a worker. 16: a burst of pipelined sends still runs in one turn (smaller turns
  // raised the p99 at half the maximum rate, benchmarks/README.md), and a backlog of 250
  // holds the others up for 16 commands, not 250.
  static constexpr int kItemsPerTurn = 16;
  void Queue(const std::shared_ptr<ConnState>& state, std::shared_ptr<Request> item);
  void PostTurn(const std::shared_ptr<ConnState>& state);
  void RunTurn(const std::shared_ptr<ConnState>& state);
  // No other connection's turn waits for a worker and `state` has no more commands queued: a
  // send may then be stored on this worker (Committer::Submit's store_here).
  bool NothingWaits(ConnState& state);
  void Dispatch(const std::shared_ptr<ConnState>& state, const std::shared_ptr<Request>& req);
  void HandleLogin(const std::shared_ptr<ConnState>& state, const std::shared_ptr<Request>& req);
  void HandleLogout(const std::shared_ptr<ConnState>& state,
                    const std::shared_ptr<Request>& req);
  void HandlePing(const std::shared_ptr<ConnState>& state, const std::shared_ptr<Request>& req);
  void HandleChatSend(const std::shared_ptr<ConnState>& state,
                      const std::shared_ptr<Request>& req);
  void HandleChatSync(const std::shared_ptr<ConnState>& state,
                      const std::shared_ptr<Request>& req);
  void HandleChatAck(const std::shared_ptr<ConnState>& state,
                     const std::shared_ptr<Request>& req);
  // group_handlers.cc
  void HandleGroupCreate(const std::shared_ptr<ConnState>& state,
                         const std::shared_ptr<Request>& req);
  void HandleGroupInfo(const std::shared_ptr<ConnState>& state,
                       const std::shared_ptr<Request>& req);
  void HandleGroupJoin(const std::shared_ptr<ConnState>& state,
                       const std::shared_ptr<Request>& req);
  void HandleGroupQuit(const std::shared_ptr<ConnState>& state,
                       const std::shared_ptr<Request>& req);
  void HandleGroupChange(const std::shared_ptr<ConnState>& state,
                         const std::shared_ptr<Request>& req, bool join);
  void HandleGroupMembers(const std::shared_ptr<ConnState>& state,
                          const std::shared_ptr<Request>& req);

  void ObserveLatency(const Request& req);
  void Reply(ConnState& state, const Request& req, std::string_view body_json);
  void ReplyError(ConnState& state, const Request& req, const Status& status);
  // Whether the tenant of a logged-in connection is suspended now.
  bool TenantSuspended(ConnState& state);
  // Forgets the session of a closed or logged-out connection (in its turn).
  void EndSession(ConnState& state, const char* reason = "closed");
  // Sends a session its client must move on: session.kicked{reason:"drain"} and close 1001
  // `close_reason`, logged as a kick for `event_reason`. The caller has set drain_kicked.
  void MoveSession(ConnState& state, const SessionInfo& session, const char* event_reason,
                   const char* close_reason);

  const Deps deps_;
  const ServerOptions& options_;
  ConnRegistry conns_;
  std::atomic<size_t> open_connections_{0};  // admitted by OnOpen, not yet closed
  std::atomic<int64_t> turns_waiting_{0};     // turns posted to the workers, not yet started
  Frame token_expired_notice_;  // session.kicked{reason:"token_expired"}
  Frame suspended_notice_;      // session.kicked{reason:"tenant_suspended"}
  Frame drain_notice_;          // session.kicked{reason:"drain"}
};

}  // namespace im::internal

#endif  // IM_CORE_SOCKET_FRONT_H_
