#include "core/session_service.h"

#include "protocol/codec.h"
#include "protocol/json.h"

namespace im::internal {

namespace {

Frame KickNotice(const std::string& reason) {
  JsonWriter w;
  w.StartObject();
  w.Field("reason", reason);
  w.EndObject();
  return Frame::FromString(EncodePush("session.kicked", w.view()));
}

}  // namespace

Result<SessionService::LoginResult> SessionService::Login(const LoginRequest& request) {
  if (!IsValidId(request.device)) {
    return Status::BadRequest("'device' must be 1-64 bytes of UTF-8 without control characters");
  }
  // Failed logins per address: every attempt holds a token, a good token gives it back. There
  // is no per-account limit here: a refused token names no account that can be trusted (anyone
  // can write any `sub`), and keying by it would let anyone lock a user out.
  const RateLimits::Key address = deps_.limits->LoginAddress(request.remote_address);
  if (Status s = deps_.limits->Take({address}); !s.ok()) return s;
  Result<TokenClaims> claims = deps_.tokens->Verify(request.token);
  if (!claims.ok()) {
    BusinessEvent e;
    e.event = "login_failed";
    e.device = request.device;
    e.remote = request.remote_address;
    e.reason = std::string(claims.status().error());  // never the token itself
    deps_.events->Emit(e);
    deps_.metrics->Login(false);
    return claims.status();
  }
  deps_.limits->Refund({address});
  std::shared_ptr<const TenantDirectory::Policy> tenant =
      deps_.tenants->Find(claims->user.tenant);
  if (tenant && tenant->suspended()) {
    return Status::Forbidden("tenant_suspended", "this tenant is suspended");
  }
  // Logins per tenant, counted only once the token is verified: a forged token cannot spend
  // another tenant's logins.
  if (Status s = deps_.limits->TakeLogin(claims->user.tenant); !s.ok()) return s;

  LoginResult r;
  r.token_expires_ms = claims->expires_ms;
  if (request.current != nullptr) {
    // A refresh keeps the session alive past the old token's expiry; it cannot switch user or
    // device.
    if (claims->user != request.current->user || request.device != request.current->device) {
      return Status::Error(Code::kConflict, "already_logged_in",
                           "this connection is logged in as another user or device");
    }
    r.session = *request.current;
    r.refreshed = true;
    return ReadPosition(std::move(r));
  }

  SessionInfo& session = r.session;
  session.user = claims->user;
  session.device = request.device;
  session.session_id = deps_.session_prefix + std::to_string(counter_.fetch_add(1) + 1);
  session.node = deps_.node_id;
  session.connection_id = request.connection ? request.connection->id() : 0;
  session.login_ms = deps_.clock->NowMs();

  const ServerOptions& o = *deps_.options;
  const TenantQuotas no_quotas;
  const TenantQuotas& quotas = tenant ? tenant->record.quotas : no_quotas;
  const size_t max_devices = quotas.max_devices_per_user > 0 ? quotas.max_devices_per_user
                                                             : o.max_devices_per_user;
  if (max_devices > 0 && o.kick_policy == KickPolicy::kPerDevice) {
    Result<std::vector<SessionInfo>> online = deps_.sessions->Find(session.user);
    if (!online.ok()) return online.status();
    size_t others = 0;
    for (const SessionInfo& s : *online) others += s.device != request.device ? 1 : 0;
    if (others >= max_devices) {
      return Status::Error(Code::kRateLimited, "too_many_devices",
                           "this user is online on " + std::to_string(others) +
                               " devices, the most allowed; log out of one first");
    }
  }
  if (!deps_.tenants->AddSession(session.user.tenant, quotas.max_online_sessions)) {
    // At the bound, a login that replaces a session of this node (a reconnect while the old
    // connection lingers) still passes: the old one is kicked below and frees its place.
    if (!ReplacesLocalSession(session, o.kick_policy)) {
      return Status::Error(Code::kRateLimited, "too_many_sessions",
                           "this tenant has " + std::to_string(quotas.max_online_sessions) +
                               " sessions online on this node, the most allowed");
    }
    deps_.tenants->AddSession(session.user.tenant, /*max=*/0);
  }
  Result<std::vector<SessionInfo>> displaced = deps_.sessions->Put(session, o.kick_policy);
  if (!displaced.ok()) {
    deps_.tenants->RemoveSession(session.user.tenant);
    return displaced.status();
  }
  deps_.router->Attach(session, request.connection);
  if (!displaced->empty()) {
    Frame notice = KickNotice("login_elsewhere");
    for (const SessionInfo& old : *displaced) {
      LogSession("kick", old, "", "login_elsewhere");
      deps_.router->Close(old, notice, close_code::kKicked, "logged in elsewhere");
    }
  }
  // Read the inbox position only now that the session is reachable: every message with a seq
  // above the reported last_seq is pushed to this connection (pushes may precede the answer).
  Result<LoginResult> done = ReadPosition(std::move(r));
  if (!done.ok()) End(session, request.remote_address, "closed");
  return done;
}

bool SessionService::ReplacesLocalSession(const SessionInfo& session, KickPolicy policy) {
  Result<std::vector<SessionInfo>> online = deps_.sessions->Find(session.user);
  if (!online.ok()) return false;
  for (const SessionInfo& s : *online) {
    if (s.node == deps_.node_id &&
        (policy == KickPolicy::kPerAccount || s.device == session.device)) {
      return true;
    }
  }
  return false;
}

Result<SessionService::LoginResult> SessionService::ReadPosition(LoginResult r) {
  Result<InboxInfo> inbox = deps_.inbox->Info(r.session.user);
  if (!inbox.ok()) return inbox.status();
  Result<uint64_t> acked = deps_.inbox->Acked(r.session.user, r.session.device);
  if (!acked.ok()) return acked.status();
  r.inbox = *inbox;
  r.acked_seq = *acked;
  return r;
}

void SessionService::Welcome(const SessionInfo& session, const std::string& remote_address) {
  LogSession("login", session, remote_address, "");
  deps_.metrics->Login(true);
  if (deps_.hooks->on_login) deps_.hooks->on_login(session);
}

void SessionService::End(const SessionInfo& session, const std::string& remote_address,
                         const char* reason) {
  deps_.router->Detach(session);
  (void)deps_.sessions->Remove(session);
  deps_.tenants->RemoveSession(session.user.tenant);
  LogSession("logout", session, remote_address, reason);
  if (deps_.hooks->on_logout) deps_.hooks->on_logout(session);
}

Status SessionService::Kick(const UserKey& user, const std::string& reason) {
  Result<std::vector<SessionInfo>> found = deps_.sessions->Find(user);
  if (!found.ok()) return found.status();
  Frame notice = KickNotice(reason);
  for (const SessionInfo& s : *found) {
    LogSession("kick", s, "", reason);
    deps_.router->Close(s, notice, close_code::kKicked,
                        reason == "admin" ? "kicked by admin" : reason);
  }
  return Status::OK();
}

void SessionService::LogKick(const SessionInfo& session, const std::string& remote_address,
                             const std::string& reason) {
  LogSession("kick", session, remote_address, reason);
}

void SessionService::LogSession(const char* event, const SessionInfo& s,
                                const std::string& remote, const std::string& reason) {
  BusinessEvent e;
  e.event = event;
  e.tenant = s.user.tenant;
  e.user = s.user.user;
  e.device = s.device;
  e.session = s.session_id;
  e.remote = remote;
  e.reason = reason;
  deps_.events->Emit(e);
  if (std::string_view(event) == "kick") deps_.metrics->Kick(reason);
}

std::string SessionService::LoginJson(const LoginResult& r) const {
  JsonWriter w;
  w.StartObject();
  w.Field("user", r.session.user.user);
  w.Field("tenant", r.session.user.tenant);
  w.Field("session", r.session.session_id);
  w.Field("node", deps_.node_id);
  w.Field("epoch", r.inbox.epoch);
  w.Field("last_seq", r.inbox.last_seq);
  w.Field("acked_seq", r.acked_seq);
  w.Field("heartbeat_s", deps_.options->heartbeat_s);
  w.Field("server_ms", static_cast<int64_t>(deps_.clock->NowMs()));
  w.EndObject();
  return w.str();
}

}  // namespace im::internal
