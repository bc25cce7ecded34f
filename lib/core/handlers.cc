// Command handlers. They run on the connection's strand in the worker pool and may call the
// storage interfaces synchronously. Checks run in the protocol's order: envelope (already done
// by the io thread), authentication, field validation, then permission and existence.
#include <asio/post.hpp>

#include "core/receipt_json.h"
#include "core/server_impl.h"
#include "ops/log.h"
#include "protocol/json.h"

namespace im {

using internal::ConnState;
using internal::Fields;
using internal::JsonWriter;
using internal::Request;

void Server::Impl::ObserveLatency(const Request& req) {
  metrics_.CommandLatency(
      req.cmd, std::chrono::duration<double>(std::chrono::steady_clock::now() - req.received)
                   .count());
}

void Server::Impl::Reply(ConnState& state, const Request& req, std::string_view body_json) {
  ObserveLatency(req);
  state.conn->Send(Frame::FromString(internal::EncodeResponse(req, body_json)));
}

void Server::Impl::ReplyError(ConnState& state, const Request& req, const Status& status) {
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
  state.conn->Send(Frame::FromString(internal::EncodeError(req, status)));
}

void Server::Impl::Dispatch(const std::shared_ptr<ConnState>& state,
                            const std::shared_ptr<Request>& req) {
  if (state->closed.load()) return;
  const std::string& cmd = req->cmd;
  using Handler = void (Server::Impl::*)(const std::shared_ptr<ConnState>&, const Request&);
  Handler handler = nullptr;
  bool needs_login = true;
  if (cmd == "login") {
    handler = &Impl::HandleLogin;
    needs_login = false;
  } else if (cmd == "ping") {
    handler = &Impl::HandlePing;
    needs_login = false;
  } else if (cmd == "logout") {
    handler = &Impl::HandleLogout;
  } else if (cmd == "chat.sync") {
    handler = &Impl::HandleChatSync;
  } else if (cmd == "chat.ack") {
    handler = &Impl::HandleChatAck;
  } else if (cmd == "group.info") {
    handler = &Impl::HandleGroupInfo;
  } else if (cmd == "group.members") {
    handler = &Impl::HandleGroupMembers;
  }
  // Authentication comes before everything but the envelope, unknown commands included.
  if (needs_login && !state->logged_in.load()) {
    ReplyError(*state, *req,
               Status::Unauthenticated("unauthenticated", "log in before '" + cmd + "'"));
    state->conn->Close(close_code::kUnauthenticated, "not authenticated");
    return;
  }
  if (handler == nullptr) {
    if (cmd == "chat.send") return HandleChatSend(state, req);
    if (cmd == "group.create") return HandleGroupCreate(state, req);
    if (cmd == "group.join") return HandleGroupJoinQuit(state, req, true);
    if (cmd == "group.quit") return HandleGroupJoinQuit(state, req, false);
    IM_LOG_DEBUG("connection {} sent unknown command '{}'", state->conn->id(), cmd);
    return ReplyError(*state, *req,
                      Status::Error(Code::kUnknownCommand, "unknown_command",
                                    "unknown command '" + cmd + "'"));
  }
  (this->*handler)(state, *req);
}

void Server::Impl::HandleLogin(const std::shared_ptr<ConnState>& state, const Request& req) {
  Fields f(req.body);
  std::string token;
  std::string device(kDefaultDevice);
  Status s = f.RequiredString("token", &token);
  if (s.ok()) s = f.OptionalString("device", &device);
  if (s.ok() && !IsValidId(device)) {
    s = Status::BadRequest("'device' must be 1-64 bytes of UTF-8 without control characters");
  }
  if (!s.ok()) return ReplyError(*state, req, s);

  // Failed logins per address: every attempt holds a token, a good token gives it back. There
  // is no per-account limit here: a refused token names no account that can be trusted (anyone
  // can write any `sub`), and keying by it would let anyone lock a user out.
  const LimitKey address = LoginAddress(state->conn->remote_address());
  s = TakeLimits({address});
  if (!s.ok()) return ReplyError(*state, req, s);
  Result<TokenClaims> claims = deps_.tokens->Verify(token);
  if (claims.ok()) RefundLimits({address});
  if (!claims.ok()) {
    internal::BusinessEvent e;
    e.event = "login_failed";
    e.device = device;
    e.remote = state->conn->remote_address();
    e.reason = std::string(claims.status().error());  // never the token itself
    events_->Emit(e);
    metrics_.Login(false);
    return ReplyError(*state, req, claims.status());  // stays open for a retry
  }

  if (state->logged_in.load()) {
    // A login on a logged-in connection refreshes its token (so the session outlives the old
    // token's expiry); it cannot switch user or device.
    SessionInfo current;
    {
      std::lock_guard<std::mutex> lock(state->mu);
      current = state->session;
    }
    if (claims->user != current.user || device != current.device) {
      return ReplyError(*state, req, Status::Error(Code::kConflict, "already_logged_in",
                                                   "this connection is logged in as another "
                                                   "user or device"));
    }
    state->token_expires_ms = claims->expires_ms;
    Result<InboxInfo> inbox = deps_.inbox->Info(current.user);
    Result<uint64_t> acked = inbox.ok() ? deps_.inbox->Acked(current.user, device)
                                        : Result<uint64_t>(inbox.status());
    if (!acked.ok()) return ReplyError(*state, req, acked.status());
    return Reply(*state, req, LoginBody(current, *inbox, *acked));
  }

  SessionInfo session;
  session.user = claims->user;
  session.device = device;
  session.session_id = session_prefix_ + std::to_string(session_counter_.fetch_add(1) + 1);
  session.node = node_id_;
  session.connection_id = state->conn->id();
  session.login_ms = clock_->NowMs();

  if (options_.max_devices_per_user > 0 && options_.kick_policy == KickPolicy::kPerDevice) {
    Result<std::vector<SessionInfo>> online = deps_.sessions->Find(session.user);
    if (!online.ok()) return ReplyError(*state, req, online.status());
    size_t others = 0;
    for (const SessionInfo& s : *online) others += s.device != device ? 1 : 0;
    if (others >= options_.max_devices_per_user) {
      return ReplyError(*state, req,
                        Status::Error(Code::kRateLimited, "too_many_devices",
                                      "this user is online on " + std::to_string(others) +
                                          " devices, the most allowed; log out of one first"));
    }
  }
  Result<std::vector<SessionInfo>> displaced = deps_.sessions->Put(session, options_.kick_policy);
  if (!displaced.ok()) return ReplyError(*state, req, displaced.status());
  {
    std::lock_guard<std::mutex> lock(state->mu);
    state->session = session;
  }
  deps_.router->Attach(session, state->conn);
  state->token_expires_ms = claims->expires_ms;
  state->logged_in = true;
  if (!displaced->empty()) {
    JsonWriter w;
    w.StartObject();
    w.Field("reason", "login_elsewhere");
    w.EndObject();
    Frame notice = Frame::FromString(internal::EncodePush("session.kicked", w.view()));
    for (const SessionInfo& old : *displaced) {
      LogSession("kick", old, "", "login_elsewhere");
      deps_.router->Close(old, notice, close_code::kKicked, "logged in elsewhere");
    }
  }

  // Read the inbox position only now that the session is reachable: every message with a seq
  // above the reported last_seq is pushed to this connection (pushes may precede this response).
  Result<InboxInfo> inbox = deps_.inbox->Info(session.user);
  Result<uint64_t> acked = inbox.ok() ? deps_.inbox->Acked(session.user, device)
                                      : Result<uint64_t>(inbox.status());
  if (!acked.ok()) {
    EndSession(*state);
    return ReplyError(*state, req, acked.status());
  }

  Reply(*state, req, LoginBody(session, *inbox, *acked));
  LogSession("login", session, state->conn->remote_address(), "");
  metrics_.Login(true);
  if (on_login_) on_login_(session);
}

std::string Server::Impl::LoginBody(const SessionInfo& session, const InboxInfo& inbox,
                                    uint64_t acked) {
  JsonWriter w;
  w.StartObject();
  w.Field("user", session.user.user);
  w.Field("tenant", session.user.tenant);
  w.Field("session", session.session_id);
  w.Field("node", node_id_);
  w.Field("epoch", inbox.epoch);
  w.Field("last_seq", inbox.last_seq);
  w.Field("acked_seq", acked);
  w.Field("heartbeat_s", options_.heartbeat_s);
  w.Field("server_ms", static_cast<int64_t>(clock_->NowMs()));
  w.EndObject();
  return w.str();
}

void Server::Impl::HandleLogout(const std::shared_ptr<ConnState>& state, const Request& req) {
  Reply(*state, req, "");
  EndSession(*state, "logout");
  state->conn->Close(close_code::kNormal, "logout");
}

void Server::Impl::HandlePing(const std::shared_ptr<ConnState>& state, const Request& req) {
  JsonWriter w;
  w.StartObject();
  w.Field("server_ms", static_cast<int64_t>(clock_->NowMs()));
  w.EndObject();
  Reply(*state, req, w.view());
}

void Server::Impl::HandleChatSend(const std::shared_ptr<ConnState>& state,
                                  const std::shared_ptr<Request>& req) {
  SessionInfo sender;
  {
    std::lock_guard<std::mutex> lock(state->mu);
    sender = state->session;
  }
  // Every send attempt counts, well-formed or not: a flood costs the server either way.
  Status s = TakeLimits(
      {{chat_connection_limit_.get(), internal::Metrics::Limit::kChatConnection,
        std::to_string(state->conn->id())},
       {chat_user_limit_.get(), internal::Metrics::Limit::kChatUser,
        sender.user.tenant + '\x1f' + sender.user.user}});
  if (!s.ok()) return ReplyError(*state, *req, s);
  Fields f(req->body);
  auto message = std::make_shared<Message>();
  std::string cid;
  s = f.OptionalString("to", &message->to);
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
  s = SubmitDirect(&sender, std::move(message), cid,
                   [this, state, req](const Result<SendReceipt>& r) {
                     ObserveLatency(*req);
                     if (!r.ok()) {
                       state->conn->Send(Frame::FromString(internal::EncodeError(*req, r.status())));
                       return;
                     }
                     state->conn->Send(Frame::FromString(internal::EncodeResponse(
                         *req, internal::ReceiptJson(*r, /*with_duplicate=*/false))));
                   });
  if (!s.ok()) ReplyError(*state, *req, s);
}

Status Server::Impl::SubmitDirect(const SessionInfo* sender, std::shared_ptr<Message> message,
                                  const std::string& cid,
                                  std::function<void(const Result<SendReceipt>&)> done) {
  const std::string tenant = sender ? sender->user.tenant : message->tenant;
  message->tenant = tenant;
  message->from = sender ? sender->user.user : message->from;
  const bool to_group = !message->group.empty();
  if (to_group ? !IsValidId(message->group) : !IsValidId(message->to)) {
    return Status::BadRequest(std::string(to_group ? "'group'" : "'to'") +
                              " must be an id of 1-64 bytes without control characters");
  }
  if (!cid.empty() && (cid.size() > options_.max_cid_bytes || !IsValidId(cid))) {
    return Status::BadRequest("'cid' must be 1-" + std::to_string(options_.max_cid_bytes) +
                              " bytes without control characters");
  }
  auto check_content = [this](const Message& m) -> Status {
    if (m.type.empty() || m.type.size() > options_.max_type_bytes || !IsValidId(m.type)) {
      return Status::BadRequest("'type' must be 1-" + std::to_string(options_.max_type_bytes) +
                                " bytes without control characters");
    }
    if (m.body.size() > options_.max_body_bytes) {
      return Status::Error(Code::kTooLarge, "too_large",
                           "'body' is over " + std::to_string(options_.max_body_bytes) + " bytes");
    }
    if (!IsValidUtf8(m.body)) return Status::BadRequest("'body' is not valid UTF-8");
    if (m.extra.size() > options_.max_extra_bytes) {
      return Status::Error(Code::kTooLarge, "too_large",
                           "'extra' is over " + std::to_string(options_.max_extra_bytes) +
                               " bytes");
    }
    return Status::OK();
  };
  Status s = check_content(*message);
  if (!s.ok()) return s;
  FilterDecision decision = deps_.filter->Check(tenant, message->body);
  if (decision.action == FilterAction::kReject) {
    internal::BusinessEvent e;
    e.event = "message_rejected";
    e.tenant = tenant;
    e.user = message->from;
    e.group = message->group;
    e.reason = "content_rejected: " + decision.matched;
    events_->Emit(e);
    metrics_.MessageRejected();
    return Status::Error(Code::kContentRejected, "content_rejected",
                         "the message contains words that are not allowed");
  }
  if (decision.action == FilterAction::kMask) {
    message->body = std::move(decision.text);
    metrics_.MessageMasked();
  }
  if (before_send_) {
    // The hook may veto or rewrite the content, not the addressing; what it wrote is checked
    // like what a client sent.
    const std::string to = message->to, group = message->group, from = message->from;
    Status veto = before_send_(*message);
    if (!veto.ok()) return veto;
    message->to = to;
    message->group = group;
    message->from = from;
    message->tenant = tenant;
    s = check_content(*message);
    if (!s.ok()) return s;
  }

  internal::PendingSend p;
  if (sender) {
    p.sender = sender->user.user;
    p.origin_session = sender->session_id;
    if (!cid.empty()) p.dedup_key = tenant + '\x1f' + sender->user.user + '\x1f' + cid;
  } else {
    p.sender = message->from;
    if (!cid.empty()) p.dedup_key = tenant + "\x1f\x1f" + cid;  // server-side sends' own space
  }
  if (!to_group) {
    // 1:1: the sender's inbox (when there is a sender) and the receiver's.
    if (!p.sender.empty()) {
      p.recipients.push_back(UserKey{tenant, p.sender});
      p.sender_index = 0;
    }
    UserKey to{tenant, message->to};
    if (p.sender != message->to) p.recipients.push_back(std::move(to));
  } else if (!deps_.groups) {
    return Status::Unavailable("group chat is not enabled on this server");
  }
  p.message = std::move(message);
  p.done = std::move(done);
  Status submitted = committer_->Submit(std::move(p));
  if (submitted.ok()) metrics_.MessageIn();
  return submitted;
}

void Server::Impl::HandleChatSync(const std::shared_ptr<ConnState>& state, const Request& req) {
  Fields f(req.body);
  uint64_t after = 0;
  uint64_t limit = 100;
  Status s = f.OptionalUint64("after", &after);
  if (s.ok()) s = f.OptionalUint64("limit", &limit);
  if (s.ok() && (limit < 1 || limit > 500)) s = Status::BadRequest("'limit' must be 1..500");
  if (!s.ok()) return ReplyError(*state, req, s);
  UserKey user;
  {
    std::lock_guard<std::mutex> lock(state->mu);
    user = state->session.user;
  }
  Result<FetchResult> r = deps_.inbox->Fetch(user, after, static_cast<size_t>(limit));
  if (!r.ok()) return ReplyError(*state, req, r.status());
  JsonWriter w;
  w.StartObject();
  w.Key("messages");
  w.StartArray();
  bool more = r->more;
  size_t n = 0;
  for (const InboxEntry& e : r->entries) {
    // Keep a page under max_sync_bytes (at least one entry), so no response outgrows the
    // client's frame limit or the send queue; the rest comes with the next page.
    if (n > 0 && w.view().size() + e.message->body.size() + e.message->extra.size() + 256 >
                     options_.max_sync_bytes) {
      more = true;
      break;
    }
    w.StartObject();
    internal::WriteMessageFields(w, e.seq, *e.message);
    w.EndObject();
    ++n;
  }
  w.EndArray();
  w.Field("epoch", r->epoch);
  w.Field("last_seq", r->last_seq);
  w.Field("first_seq", r->first_seq);
  w.Field("more", more);
  w.Field("gap", r->gap);
  w.EndObject();
  metrics_.MessagesSynced(n);
  Reply(*state, req, w.view());
}

void Server::Impl::HandleChatAck(const std::shared_ptr<ConnState>& state, const Request& req) {
  Fields f(req.body);
  uint64_t seq = 0;
  Status s = f.RequiredUint64("seq", &seq);
  if (!s.ok()) return ReplyError(*state, req, s);
  SessionInfo session;
  {
    std::lock_guard<std::mutex> lock(state->mu);
    session = state->session;
  }
  s = deps_.inbox->Ack(session.user, session.device, seq);
  if (!s.ok()) return ReplyError(*state, req, s);
  Reply(*state, req, "");
}

}  // namespace im
