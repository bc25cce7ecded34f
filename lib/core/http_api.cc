// The web service on the HTTP port: accounts, tokens, groups, server-side sends, health.
// Requests are parsed on the io thread and handled on the worker pool, but for the two that
// hash a password (tens of milliseconds each), which run on the hashing pool (HandleHttp).
// JSON errors use the protocol's codes and names; the HTTP status is the code (200/201 for
// success).
#include <asio/post.hpp>
#include <sodium.h>

#include <future>

#include "base/thread_name.h"
#include "core/server_impl.h"
#include "core/group_json.h"
#include "core/http_path.h"
#include "core/receipt_json.h"
#include "core/static_files.h"
#include "ops/log.h"
#include "protocol/json.h"

namespace im {

using internal::Fields;
using internal::GroupJson;
using internal::HttpRequest;
using internal::HttpResponse;
using internal::JsonWriter;
using internal::PathParts;
using internal::QueryParam;

namespace {

HttpResponse Error(const Status& s) {
  if (static_cast<int>(s.code()) >= 500 && s.code() != Code::kUnavailable) {
    IM_LOG_CLIENT_ERROR("http: {}", s.ToString());  // any client can repeat the request
  }
  HttpResponse r;
  r.status = static_cast<int>(s.code());
  JsonWriter w;
  w.StartObject();
  w.Field("code", static_cast<int>(s.code()));
  w.Field("error", s.error());
  w.Field("message", s.message());
  if (s.retry_after_ms() > 0) {
    w.Field("retry_after_ms", s.retry_after_ms());
    // HTTP's Retry-After counts whole seconds: round up, so a client that honours it is not
    // refused again for being early.
    r.headers.emplace_back("Retry-After", std::to_string((s.retry_after_ms() + 999) / 1000));
  }
  w.EndObject();
  r.body = w.str();
  return r;
}

HttpResponse Ok(std::string body, int status = 200) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

bool ConstantTimeEquals(const std::string& a, const std::string& b) {
  return a.size() == b.size() && sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string UserJson(const UserRecord& u) {
  JsonWriter w;
  w.StartObject();
  w.Field("user", u.key.user);
  w.Field("tenant", u.key.tenant);
  w.Field("display_name", u.display_name);
  w.Field("created_ms", static_cast<int64_t>(u.created_ms));
  w.EndObject();
  return w.str();
}

// The /v1 endpoints. Each has one method; its path decides it alone.
enum class RouteKind {
  kNone,
  kCreateUser,
  kGetUser,
  kCreateToken,
  kCreateGroup,
  kGetGroup,
  kGroupMembers,
  kFilterReload,
  kSendMessage,
};
struct Route {
  RouteKind kind = RouteKind::kNone;
  const char* method = "";
};

// The endpoint of a decoded path ({"v1","groups","g1"}), from the path alone.
Route RouteOf(const std::vector<std::string>& p) {
  const size_t n = p.size();
  if (n < 2 || p[0] != "v1") return {};
  const std::string& what = p[1];
  if (what == "users" && n == 2) return {RouteKind::kCreateUser, "POST"};
  if (what == "users" && n == 3) return {RouteKind::kGetUser, "GET"};
  if (what == "tokens" && n == 2) return {RouteKind::kCreateToken, "POST"};
  if (what == "groups" && n == 2) return {RouteKind::kCreateGroup, "POST"};
  if (what == "groups" && n == 3) return {RouteKind::kGetGroup, "GET"};
  if (what == "groups" && n == 4 && p[3] == "members") return {RouteKind::kGroupMembers, "GET"};
  if (what == "admin" && n == 4 && p[2] == "filter" && p[3] == "reload") {
    return {RouteKind::kFilterReload, "POST"};
  }
  if (what == "messages" && n == 2) return {RouteKind::kSendMessage, "POST"};
  return {};
}

// A request body of an endpoint that takes one: a JSON object (`{}` at least). An empty body is
// 400 bad_json like any other text that is not an object.
Status ParseHttpBody(const std::string& body, rapidjson::Document* doc) {
  if (body.find_first_not_of(" \t\r\n") == std::string::npos) {
    return Status::Error(Code::kBadRequest, "bad_json",
                         "the body is empty; it must be a JSON object ({} at least)");
  }
  if (Status s = internal::ParseJson(body, doc); !s.ok()) return s;
  if (!doc->IsObject()) {
    return Status::Error(Code::kBadRequest, "bad_json", "the body must be a JSON object");
  }
  return Status::OK();
}

}  // namespace

// Who is calling: a user (bearer JWT) or a tenant admin (bearer admin key).
struct Server::Impl::HttpCaller {
  bool admin = false;
  UserKey user;  // for an admin, only the tenant
};

Result<Server::Impl::HttpCaller> Server::Impl::Authenticate(const HttpRequest& req) {
  std::string auth = req.header ? req.header("Authorization") : "";
  const std::string kBearer = "Bearer ";
  if (auth.compare(0, kBearer.size(), kBearer) != 0) {
    return Status::Unauthenticated("unauthenticated", "send Authorization: Bearer <token>");
  }
  std::string credential = auth.substr(kBearer.size());
  for (const auto& [tenant, key] : options_.admin_keys) {
    if (!key.empty() && ConstantTimeEquals(credential, key)) {
      HttpCaller c;
      c.admin = true;
      c.user.tenant = tenant;
      return c;
    }
  }
  Result<TokenClaims> claims = deps_.tokens->Verify(credential);
  if (!claims.ok()) return claims.status();
  HttpCaller c;
  c.user = claims->user;
  return c;
}

void Server::Impl::HandleHttp(HttpRequest request, std::function<void(HttpResponse)> respond) {
  // The two requests that hash a password (tens of milliseconds of CPU and Argon2's memory
  // each) run on their own small pool, so a flood of them never delays chat on the workers.
  // Decided from the method and the decoded path alone, before any body is parsed.
  std::vector<std::string> p;
  const bool hashing =
      request.method == "POST" &&
      PathParts(request.target.substr(0, request.target.find('?')), &p).ok() && p.size() == 2 &&
      p[0] == "v1" && (p[1] == "users" || p[1] == "tokens");
  if (!hashing) {
    // Off the io thread: handlers call storage.
    asio::post(*workers_, [this, request = std::move(request), respond = std::move(respond)] {
      HttpResponse r = RouteHttp(request);
      if (r.content_type.empty()) r.content_type = "application/json";
      respond(std::move(r));
    });
    return;
  }
  // A client already over its address limit is refused here, without taking a queue slot.
  // (Admins creating accounts are not limited.)
  const bool register_limited =
      p[1] == "users" && options_.open_registration &&
      (!request.header || request.header("Authorization").empty());
  if (p[1] == "tokens" || register_limited) {
    Status limited = PeekLimit(p[1] == "tokens" ? LoginAddress(request.remote_address)
                                                : RegisterAddress(request.remote_address));
    if (!limited.ok()) return respond(Error(limited));
  }
  if (hash_pending_.fetch_add(1) >= static_cast<size_t>(options_.hash_threads) +
                                        options_.hash_queue) {
    hash_pending_.fetch_sub(1);
    metrics_.HashRejected();
    return respond(Error(Status::Unavailable("too many password requests waiting; retry later")
                             .WithRetryAfter(1000)));
  }
  metrics_.HashQueued(1);
  asio::post(*hash_pool_, [this, request = std::move(request), respond = std::move(respond)] {
    internal::NameThisThreadOnce("im-hash");
    HttpResponse r = RouteHttp(request);
    if (r.content_type.empty()) r.content_type = "application/json";
    hash_pending_.fetch_sub(1);
    metrics_.HashQueued(-1);
    respond(std::move(r));
  });
}

HttpResponse Server::Impl::RouteHttp(const HttpRequest& req) {
  if (auto file = ServeStaticFile(options_.static_dir, req)) return std::move(*file);
  const std::string path = req.target.substr(0, req.target.find('?'));
  std::vector<std::string> p;
  const Status parsed = PathParts(path, &p);
  auto method_is = [&](const char* m) { return req.method == m; };
  auto wrong_method = [] {
    return Error(Status::Error(Code::kMethodNotAllowed, "method_not_allowed",
                               "method not allowed on this path"));
  };
  if (path == "/healthz") {
    if (!method_is("GET")) return wrong_method();
    if (!running_) return Error(Status::Unavailable("stopping"));
    return Ok(R"({"status":"ok"})");
  }
  if (path == "/metrics") {
    if (!method_is("GET")) return wrong_method();
    HttpResponse r = Ok(metrics_.Scrape([this] {
      internal::Metrics::Snapshot s;
      conns_.ForEach([&s](const std::shared_ptr<ConnState>& c) {
        const bool tcp = c->conn->transport() == TransportKind::kTcp;
        (tcp ? s.tcp_connections : s.ws_connections) += 1;
        const double queued = static_cast<double>(c->conn->queued_bytes());
        s.send_queue_bytes += queued;
        s.send_queue_max_bytes = std::max(s.send_queue_max_bytes, queued);
        if (c->logged_in.load()) {
          std::lock_guard<std::mutex> lock(c->mu);
          s.sessions[{c->session.user.tenant, tcp ? "tcp" : "ws"}] += 1;
        }
      });
      s.commit_queue_depth = static_cast<double>(committer_->depth());
      s.deliveries_total = static_cast<double>(committer_->deliveries());
      s.tcp_bytes_in = static_cast<double>(tcp_counters_.bytes_in.load());
      s.tcp_bytes_out = static_cast<double>(tcp_counters_.bytes_out.load());
      s.ws_bytes_in = static_cast<double>(ws_counters_.bytes_in.load());
      s.ws_bytes_out = static_cast<double>(ws_counters_.bytes_out.load());
      return s;
    }));
    r.content_type = "text/plain; version=0.0.4";
    return r;
  }
  if (path == "/readyz") {
    if (!method_is("GET")) return wrong_method();
    // Ready: serving, and the storage answers.
    if (!running_) return Error(Status::Unavailable("draining"));
    Result<InboxInfo> probe = deps_.inbox->Info(UserKey{"_", "_readyz"});
    if (!probe.ok()) return Error(Status::Unavailable("storage: " + probe.status().ToString()));
    return Ok(R"({"status":"ready"})");
  }
  if (!parsed.ok()) return Error(parsed);

  // Route first: an unknown path is 404 and a wrong method 405 before anything else is read.
  const Route route = RouteOf(p);
  if (route.kind == RouteKind::kNone) return Error(Status::NotFound("no such path: " + path));
  if (!method_is(route.method)) return wrong_method();

  // The body is parsed only for an endpoint that reads one, and after what can be checked
  // without it (the credential, where it does not depend on the body).
  rapidjson::Document doc;
  auto read_body = [&](Fields* f) {
    Status s = ParseHttpBody(req.body, &doc);
    if (s.ok()) *f = Fields(&doc);
    return s;
  };
  Fields f(nullptr);
  switch (route.kind) {
    case RouteKind::kCreateUser:
    case RouteKind::kCreateToken: {
      // Whether a credential is needed depends on the body (open registration, a password).
      if (Status s = read_body(&f); !s.ok()) return Error(s);
      return route.kind == RouteKind::kCreateUser ? HttpCreateUser(req, f)
                                                  : HttpCreateToken(req, f);
    }
    case RouteKind::kGetUser: {
      Result<HttpCaller> caller = Authenticate(req);
      if (!caller.ok()) return Error(caller.status());
      if (!deps_.users) return Error(Status::Unavailable("accounts are not enabled"));
      if (!IsValidId(p[2])) return Error(Status::BadRequest("bad user id"));
      Result<UserRecord> u = deps_.users->Get(UserKey{caller->user.tenant, p[2]});
      if (!u.ok()) return Error(u.status());
      return Ok(UserJson(*u));
    }
    case RouteKind::kCreateGroup:
    case RouteKind::kGetGroup:
    case RouteKind::kGroupMembers: {
      Result<HttpCaller> caller = Authenticate(req);
      if (!caller.ok()) return Error(caller.status());
      if (route.kind == RouteKind::kCreateGroup) {
        if (Status s = read_body(&f); !s.ok()) return Error(s);
      }
      if (!deps_.groups) return Error(Status::Unavailable("groups are not enabled"));
      if (route.kind == RouteKind::kCreateGroup) return HttpCreateGroup(*caller, f);
      if (!IsValidId(p[2])) return Error(Status::BadRequest("bad gid"));
      GroupKey key{caller->user.tenant, p[2]};
      if (route.kind == RouteKind::kGetGroup) {
        Result<GroupInfo> g = deps_.groups->Get(key);
        return g.ok() ? Ok(GroupJson(*g)) : Error(g.status());
      }
      return HttpGroupMembers(*caller, key, req.target);
    }
    case RouteKind::kFilterReload: {
      // Takes no body: whatever is sent is ignored, unread.
      Result<HttpCaller> caller = Authenticate(req);
      if (!caller.ok()) return Error(caller.status());
      if (!caller->admin) return Error(Status::Forbidden("admin_only", "needs an admin key"));
      if (!deps_.reload_filter) return Error(Status::Unavailable("no reloadable filter"));
      Status s = deps_.reload_filter();
      IM_LOG_INFO("filter reload by admin of tenant '{}': {}", caller->user.tenant,
                  s.ToString());
      return s.ok() ? Ok(R"({"reloaded":true})") : Error(s);
    }
    case RouteKind::kSendMessage: {
      Result<HttpCaller> caller = Authenticate(req);
      if (!caller.ok()) return Error(caller.status());
      if (!caller->admin) {
        return Error(Status::Forbidden("admin_only", "server-side sends need an admin key"));
      }
      if (Status s = read_body(&f); !s.ok()) return Error(s);
      return HttpSendMessage(*caller, f);
    }
    case RouteKind::kNone:
      break;
  }
  return Error(Status::NotFound("no such path: " + path));
}

HttpResponse Server::Impl::HttpGroupMembers(const HttpCaller& caller, const GroupKey& key,
                                            const std::string& target) {
  if (!caller.admin) {
    Result<bool> member = deps_.groups->IsMember(key, caller.user.user);
    if (!member.ok() && member.status().code() != Code::kNotFound) {
      return Error(member.status());
    }
    if (!member.ok() || !*member) {
      return Error(Status::Forbidden("not_member", "only members may list the members"));
    }
  }
  uint64_t limit = 100;
  std::string l, after;
  Status q = QueryParam(target, "limit", &l);
  if (q.ok()) q = QueryParam(target, "after", &after);
  if (!q.ok()) return Error(q);
  if (!l.empty()) {
    char* end = nullptr;
    limit = std::strtoull(l.c_str(), &end, 10);
    if (*end != '\0' || limit < 1 || limit > 500) {
      return Error(Status::BadRequest("'limit' must be 1..500"));
    }
  }
  Result<MemberPage> page = deps_.groups->Members(key, after, static_cast<size_t>(limit));
  if (!page.ok()) return Error(page.status());
  return Ok(internal::MemberPageJson(*page, /*with_next=*/true));
}

HttpResponse Server::Impl::HttpCreateUser(const HttpRequest& req, const Fields& f) {
  std::string user, password, display_name, tenant(kDefaultTenant);
  Status s = f.RequiredString("user", &user);
  if (s.ok()) s = f.RequiredString("password", &password);
  if (s.ok()) s = f.OptionalString("display_name", &display_name);
  if (s.ok()) s = f.OptionalString("tenant", &tenant);
  if (!s.ok()) return Error(s);
  if (!deps_.users) return Error(Status::Unavailable("accounts are not enabled"));
  if (!options_.open_registration || (req.header && !req.header("Authorization").empty())) {
    // Closed registration (or an explicit credential): only the tenant's admin creates users.
    Result<HttpCaller> caller = Authenticate(req);
    if (!caller.ok()) return Error(caller.status());
    if (!caller->admin) {
      return Error(Status::Forbidden("admin_only", "registration needs an admin key"));
    }
    if (f.Has("tenant") && tenant != caller->user.tenant) {
      return Error(Status::Forbidden("forbidden", "an admin key creates users of its tenant"));
    }
    tenant = caller->user.tenant;
  } else {
    // Open registration: every attempt from an address counts.
    s = TakeLimits({RegisterAddress(req.remote_address)});
    if (!s.ok()) return Error(s);
  }
  if (!IsValidId(tenant)) return Error(Status::BadRequest("bad tenant id"));
  Result<UserRecord> u = deps_.users->Create(UserKey{tenant, user}, password, display_name,
                                             clock_->NowMs());
  sodium_memzero(password.data(), password.size());
  if (!u.ok()) return Error(u.status());
  return Ok(UserJson(*u), 201);
}

HttpResponse Server::Impl::HttpCreateToken(const HttpRequest& req, const Fields& f) {
  std::string user, password, tenant(kDefaultTenant);
  uint64_t ttl = static_cast<uint64_t>(options_.default_token_ttl_s);
  Status s = f.RequiredString("user", &user);
  if (s.ok()) s = f.OptionalString("tenant", &tenant);
  if (s.ok()) s = f.OptionalUint64("ttl_s", &ttl);
  if (s.ok() && (ttl < 1 || ttl > static_cast<uint64_t>(options_.max_token_ttl_s))) {
    s = Status::BadRequest("'ttl_s' must be 1.." + std::to_string(options_.max_token_ttl_s));
  }
  if (!s.ok()) return Error(s);
  if (!deps_.token_keys) return Error(Status::Unavailable("token minting is not enabled"));
  if (f.Has("password")) {
    s = f.RequiredString("password", &password);
    if (!s.ok()) return Error(s);
    if (!deps_.users) return Error(Status::Unavailable("accounts are not enabled"));
    if (!IsValidId(tenant) || !IsValidId(user)) return Error(Status::BadRequest("bad id"));
    // Failed passwords per address and per account: each attempt holds a token of both, a
    // right password gives them back. While either bucket is empty the password is not even
    // checked, so the right one is refused too until the wait is over.
    const LimitKey address = LoginAddress(req.remote_address);
    const LimitKey account = LoginAccount(tenant, user);
    s = TakeLimits({address, account});
    if (!s.ok()) {
      sodium_memzero(password.data(), password.size());
      return Error(s);
    }
    Result<UserRecord> u = deps_.users->VerifyPassword(UserKey{tenant, user}, password);
    sodium_memzero(password.data(), password.size());
    // Only a wrong password is the caller's failure; a storage error costs nothing.
    if (u.ok() || u.status().code() != Code::kUnauthenticated) RefundLimits({address, account});
    if (!u.ok()) return Error(u.status());
  } else {
    // No password: an admin mints a token for any user of its tenant. A refused credential
    // counts as a failed login of the address.
    const LimitKey address = LoginAddress(req.remote_address);
    s = TakeLimits({address});
    if (!s.ok()) return Error(s);
    Result<HttpCaller> caller = Authenticate(req);
    if (caller.ok()) RefundLimits({address});
    if (!caller.ok()) return Error(caller.status());
    if (!caller->admin) {
      return Error(Status::Forbidden("admin_only", "give a password or use an admin key"));
    }
    if (f.Has("tenant") && tenant != caller->user.tenant) {
      return Error(Status::Forbidden("forbidden", "an admin key mints tokens of its tenant"));
    }
    tenant = caller->user.tenant;
    if (!IsValidId(user)) return Error(Status::BadRequest("bad user id"));
  }
  TimestampMs now = clock_->NowMs();
  Result<std::string> token = SignHs256Token(*deps_.token_keys, UserKey{tenant, user},
                                             static_cast<int64_t>(ttl), now);
  if (!token.ok()) return Error(token.status());
  JsonWriter w;
  w.StartObject();
  w.Field("token", *token);
  w.Field("user", user);
  w.Field("tenant", tenant);
  w.Field("expires_ms", static_cast<int64_t>((now / 1000 + static_cast<int64_t>(ttl)) * 1000));
  w.EndObject();
  return Ok(w.str(), 201);
}

HttpResponse Server::Impl::HttpCreateGroup(const HttpCaller& caller, const Fields& f) {
  if (caller.admin) {
    return Error(Status::Forbidden("user_only", "a group is created by its owner's token"));
  }
  std::string name, gid;
  std::vector<std::string> members;
  Status s = f.RequiredString("name", &name);
  if (s.ok()) s = f.OptionalString("gid", &gid);
  if (s.ok() && f.Has("gid") && !IsValidId(gid)) s = Status::BadRequest("bad gid");
  if (s.ok()) {
    const rapidjson::Value* list = f.Get("members");
    if (list != nullptr && !list->IsArray()) s = Status::BadRequest("'members' must be an array");
    for (size_t i = 0; s.ok() && list != nullptr && i < list->Size(); ++i) {
      const auto& v = (*list)[static_cast<rapidjson::SizeType>(i)];
      if (!v.IsString() || !IsValidId(std::string_view(v.GetString(), v.GetStringLength()))) {
        s = Status::BadRequest("'members' must be an array of user ids");
      } else {
        members.emplace_back(v.GetString(), v.GetStringLength());
      }
    }
  }
  if (s.ok()) {
    FilterDecision d = deps_.filter->Check(caller.user.tenant, name);
    if (d.action == FilterAction::kReject) {
      s = Status::Error(Code::kContentRejected, "content_rejected",
                        "the group name contains words that are not allowed");
    } else if (d.action == FilterAction::kMask) {
      name = std::move(d.text);
    }
  }
  if (!s.ok()) return Error(s);
  if (gid.empty()) gid = "g" + std::to_string(group_ids_.Next(clock_->NowMs()));
  auto promise = std::make_shared<std::promise<Result<GroupInfo>>>();
  auto future = promise->get_future();
  s = committer_->SubmitOp([this, promise, caller, gid, name, members](internal::Committer& c) {
    GroupKey key{caller.user.tenant, gid};
    Result<GroupInfo> g =
        deps_.groups->Create(key, name, caller.user.user, members, clock_->NowMs());
    if (g.ok()) {
      auto all = deps_.groups->AllMembers(key);
      if (all.ok()) AppendGroupEvent(c, key, caller.user.user, "created", *all);
    }
    promise->set_value(std::move(g));
  });
  if (!s.ok()) return Error(s);
  Result<GroupInfo> g = future.get();
  return g.ok() ? Ok(GroupJson(*g), 201) : Error(g.status());
}

HttpResponse Server::Impl::HttpSendMessage(const HttpCaller& caller, const Fields& f) {
  auto message = std::make_shared<Message>();
  std::string cid;
  Status s = f.OptionalString("to", &message->to);
  if (s.ok()) s = f.OptionalString("group", &message->group);
  if (s.ok()) s = f.OptionalString("from", &message->from);
  if (s.ok()) s = f.OptionalString("cid", &cid);
  if (s.ok()) s = f.OptionalString("type", &message->type);
  if (s.ok()) s = f.RequiredString("body", &message->body);
  if (s.ok()) s = f.OptionalObject("extra", &message->extra);
  if (s.ok() && message->to.empty() == message->group.empty()) {
    s = Status::BadRequest("give exactly one of 'to' and 'group'");
  }
  if (s.ok() && !message->from.empty() && !IsValidId(message->from)) {
    s = Status::BadRequest("bad 'from' id");
  }
  if (!s.ok()) return Error(s);
  message->tenant = caller.user.tenant;
  auto promise = std::make_shared<std::promise<Result<SendReceipt>>>();
  auto future = promise->get_future();
  SessionInfo sender;
  sender.user = UserKey{caller.user.tenant, message->from};
  // From a user (1:1): that user's inbox gets it too, as if sent from one of their devices.
  const bool as_user = !message->from.empty() && message->group.empty();
  s = SubmitDirect(as_user ? &sender : nullptr, std::move(message), cid,
                   [promise](const Result<SendReceipt>& r) { promise->set_value(r); });
  if (!s.ok()) return Error(s);
  Result<SendReceipt> r = future.get();
  if (!r.ok()) return Error(r.status());
  return Ok(internal::ReceiptJson(*r, /*with_duplicate=*/true));
}

}  // namespace im
