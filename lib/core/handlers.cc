// SocketFront's command table and its handlers. They run in the connection's turns on the
// worker pool, parse the body, call a service (which may call storage synchronously) and
// answer. Checks run in the protocol's order: envelope (already done by the io thread),
// authentication, field validation, then permission and existence.
#include <asio/post.hpp>

#include "core/receipt_json.h"
#include "core/socket_front.h"
#include "ops/log.h"
#include "protocol/json.h"

namespace im::internal {


void SocketFront::ObserveLatency(const Request& req) {
  deps_.metrics->CommandLatency(
      req.cmd, std::chrono::duration<double>(std::chrono::steady_clock::now() - req.received)
                   .count());
}

void SocketFront::Reply(ConnState& state, const Request& req, std::string_view body_json) {
  ObserveLatency(req);
  state.conn->Send(Frame::FromString(EncodeResponse(req, body_json)));
}

void SocketFront::ReplyError(ConnState& state, const Request& req, const Status& status) {
  ObserveLatency(req);
  // Client errors are the client's business (the reply says it all); server errors are ours.
  // 503 is expected under load (overload, draining) and is counted, not logged. 501 (a command
  // name the server does not know) is the client's error too. A client can repeat a failing
  // command at will, so the line is rate-limited.
  const Code code = status.code();
  if (static_cast<int>(code) >= 500 && code != Code::kUnavailable &&
      code != Code::kUnknownCommand) {
    IM_LOG_CLIENT_ERROR("{} on connection {} failed: {}", req.cmd, state.conn->id(),
                        status.ToString());
  }
  state.conn->Send(Frame::FromString(EncodeError(req, status)));
}

// The socket commands. Unknown commands answer 501 unknown_command; a command that needs a
// login answers 401 unauthenticated before a login and closes with 4002 (checked before the
// command name: an unknown command of a client that has not logged in is refused the same).
const SocketFront::Command* SocketFront::FindCommand(const std::string& name) {
  static const Command kCommands[] = {
      {"login", &SocketFront::HandleLogin, false, false, false},
      {"ping", &SocketFront::HandlePing, false, false, false},
      {"logout", &SocketFront::HandleLogout, true, false, false},
      {"chat.send", &SocketFront::HandleChatSend, true, true, false},
      {"chat.sync", &SocketFront::HandleChatSync, true, false, true},
      {"chat.ack", &SocketFront::HandleChatAck, true, false, true},
      {"group.create", &SocketFront::HandleGroupCreate, true, false, true},
      {"group.info", &SocketFront::HandleGroupInfo, true, false, true},
      {"group.join", &SocketFront::HandleGroupJoin, true, false, true},
      {"group.quit", &SocketFront::HandleGroupQuit, true, false, true},
      {"group.members", &SocketFront::HandleGroupMembers, true, false, true},
  };
  for (const Command& c : kCommands) {
    if (name == c.name) return &c;
  }
  return nullptr;
}

void SocketFront::Dispatch(const std::shared_ptr<ConnState>& state,
                            const std::shared_ptr<Request>& req) {
  if (state->closed.load()) return;
  const Command* command = FindCommand(req->cmd);
  // Authentication comes before everything but the envelope, unknown commands included.
  if ((command == nullptr || command->needs_login) && !state->logged_in.load()) {
    ReplyError(*state, *req,
               Status::Unauthenticated("unauthenticated", "log in before '" + req->cmd + "'"));
    state->conn->Close(close_code::kUnauthenticated, "not authenticated");
    return;
  }
  if (command == nullptr) {
    IM_LOG_DEBUG("connection {} sent unknown command '{}'", state->conn->id(), req->cmd);
    return ReplyError(*state, *req,
                      Status::Error(Code::kUnknownCommand, "unknown_command",
                                    "unknown command '" + req->cmd + "'"));
  }
  if (command->chat_limits || command->tenant_command) {
    // Every attempt counts, well-formed or not: a flood costs the server either way.
    UserKey user;
    {
      std::lock_guard<std::mutex> lock(state->mu);
      user = state->session.user;
    }
    Status s = command->chat_limits ? deps_.chat->TakeSendLimits(state->chat_bucket, user)
                                    : deps_.limits->TakeCommand(user.tenant);
    if (!s.ok()) return ReplyError(*state, *req, s);
  }
  (this->*command->handler)(state, req);
}

void SocketFront::HandleLogin(const std::shared_ptr<ConnState>& state,
                               const std::shared_ptr<Request>& req) {
  Fields f(req->body);
  SessionService::LoginRequest login;
  login.device = std::string(kDefaultDevice);
  Status s = f.RequiredString("token", &login.token);
  if (s.ok()) s = f.OptionalString("device", &login.device);
  if (!s.ok()) return ReplyError(*state, *req, s);
  if (draining_.load()) {
    return ReplyError(*state, *req,
                      Status::Error(Code::kUnavailable, "draining",
                                    "this node is draining: connect to another one (/v1/route)")
                          .WithRetryAfter(1000));
  }
  login.remote_address = state->conn->remote_address();
  login.connection = state->conn;
  SessionInfo current;
  if (state->logged_in.load()) {
    std::lock_guard<std::mutex> lock(state->mu);
    current = state->session;
    login.current = &current;
  }
  Result<SessionService::LoginResult> r = deps_.sessions->Login(login);
  if (!r.ok()) return ReplyError(*state, *req, r.status());  // stays open for a retry
  state->token_expires_ms = r->token_expires_ms;
  state->epoch_told = EpochTag(r->inbox.epoch);
  if (r->refreshed) return Reply(*state, *req, deps_.sessions->LoginJson(*r));
  {
    std::lock_guard<std::mutex> lock(state->mu);
    state->session = r->session;
  }
  state->logged_in = true;
  Reply(*state, *req, deps_.sessions->LoginJson(*r));
  deps_.sessions->Welcome(r->session, login.remote_address);
}

void SocketFront::HandleLogout(const std::shared_ptr<ConnState>& state,
                                const std::shared_ptr<Request>& req) {
  Reply(*state, *req, "");
  EndSession(*state, "logout");
  state->conn->Close(close_code::kNormal, "logout");
}

void SocketFront::HandlePing(const std::shared_ptr<ConnState>& state,
                              const std::shared_ptr<Request>& req) {
  JsonWriter w;
  w.StartObject();
  w.Field("server_ms", static_cast<int64_t>(deps_.clock->NowMs()));
  w.EndObject();
  Reply(*state, *req, w.view());
}

void SocketFront::HandleChatSend(const std::shared_ptr<ConnState>& state,
                                  const std::shared_ptr<Request>& req) {
  Fields f(req->body);
  auto message = std::make_shared<Message>();
  std::string cid;
  Status s = f.OptionalString("to", &message->to);
  if (s.ok()) s = f.OptionalString("group", &message->group);
  if (s.ok()) s = f.RequiredString("cid", &cid);
  if (s.ok()) s = f.OptionalString("type", &message->type);
  if (s.ok()) s = f.RequiredString("body", &message->body);
  if (s.ok()) s = f.OptionalObject("extra", &message->extra);
  if (s.ok() && cid.empty()) s = Status::BadRequest("'cid' must not be empty");
  if (s.ok() && message->to.empty() == message->group.empty()) {
    s = Status::BadRequest("give exactly one of 'to' and 'group'");
  }
  if (!s.ok()) return ReplyError(*state, *req, s);
  SessionInfo sender;
  {
    std::lock_guard<std::mutex> lock(state->mu);
    sender = state->session;
  }
  s = deps_.chat->Send(&sender, std::move(message), cid,
                  [this, state, req](const Result<SendReceipt>& r) {
                    ObserveLatency(*req);
                    if (!r.ok()) {
                      state->conn->Send(
                          Frame::FromString(EncodeError(*req, r.status())));
                      return;
                    }
                    state->conn->Send(Frame::FromString(EncodeResponse(
                        *req, ReceiptJson(*r, /*with_duplicate=*/false))));
                  },
                  options_.commit_on_worker && NothingWaits(*state));
  if (!s.ok()) ReplyError(*state, *req, s);
}

void SocketFront::HandleChatSync(const std::shared_ptr<ConnState>& state,
                                  const std::shared_ptr<Request>& req) {
  Fields f(req->body);
  uint64_t after = 0;
  uint64_t limit = 100;
  Status s = f.OptionalUint64("after", &after);
  if (s.ok()) s = f.OptionalUint64("limit", &limit);
  if (s.ok() && (limit < 1 || limit > 500)) s = Status::BadRequest("'limit' must be 1..500");
  if (!s.ok()) return ReplyError(*state, *req, s);
  UserKey user;
  {
    std::lock_guard<std::mutex> lock(state->mu);
    user = state->session.user;
  }
  Result<ChatService::SyncPage> page =
      deps_.chat->Sync(user, after, static_cast<size_t>(limit));
  if (!page.ok()) return ReplyError(*state, *req, page.status());
  state->epoch_told = EpochTag(page->epoch);
  Reply(*state, *req, page->json);
}

void SocketFront::HandleChatAck(const std::shared_ptr<ConnState>& state,
                                 const std::shared_ptr<Request>& req) {
  Fields f(req->body);
  uint64_t seq = 0;
  Status s = f.RequiredUint64("seq", &seq);
  if (!s.ok()) return ReplyError(*state, *req, s);
  SessionInfo session;
  {
    std::lock_guard<std::mutex> lock(state->mu);
    session = state->session;
  }
  s = deps_.chat->Ack(session, seq);
  if (!s.ok()) return ReplyError(*state, *req, s);
  Reply(*state, *req, "");
}

}  // namespace im::internal
