// HttpFront (core/http_front.h): the web service on the HTTP port: accounts, tokens, groups,
// server-side sends, health.
// A thin front: it parses, authenticates and calls the services (ChatService, GroupOps) that the
// socket commands and the host API call too. Requests are parsed on the io thread and routed on
// the worker pool, but for the two that hash a password (tens of milliseconds each), which run
// on the hashing pool (HandleHttp). No handler waits for the committer: the two that store
// answer from its callback.
// JSON errors use the protocol's codes and names; the HTTP status is the code (200/201 for
// success).
#include <asio/post.hpp>
#include <sodium.h>

#include <string_view>


#include "base/thread_name.h"
#include "core/http_front.h"
#include "core/group_json.h"
#include "core/http_path.h"
#include "core/receipt_json.h"
#include "core/static_files.h"
#include "ops/log.h"
#include "protocol/json.h"

namespace im::internal {


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

// RouteHttpNow's "the answer comes later, through `respond`".
HttpResponse Handed() {
  HttpResponse r;
  r.status = 0;
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
  kRoute,
  kDrainNode,
  kSendMessage,
  kTenant,
  kRoutingRules,
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
  if (what == "route" && n == 2) return {RouteKind::kRoute, "GET"};
  // GET or PUT: the handler checks the method.
  if (what == "admin" && n == 3 && p[2] == "routing") return {RouteKind::kRoutingRules, ""};
  if (what == "admin" && n == 5 && p[2] == "nodes" && p[4] == "drain") {
    return {RouteKind::kDrainNode, "POST"};
  }
  // GET or PUT: the handler checks the method.
  if (what == "admin" && n == 4 && p[2] == "tenants") return {RouteKind::kTenant, ""};
  return {};
}

// A request body of an endpoint that takes one: a JSON object (`{}` at least). An empty body is
// 400 bad_json like any other text that is not an object.
Status ParseHttpBody(const std::string& body, rapidjson::Document* doc) {
  if (body.find_first_not_of(" \t\r\n") == std::string::npos) {
    return Status::Error(Code::kBadRequest, "bad_json",
                         "the body is empty; it must be a JSON object ({} at least)");
  }
  if (Status s = ParseJson(body, doc); !s.ok()) return s;
  if (!doc->IsObject()) {
    return Status::Error(Code::kBadRequest, "bad_json", "the body must be a JSON object");
  }
  return Status::OK();
}

// The credential of an `Authorization: Bearer <credential>` header; false without one. The
// scheme's name is case-insensitive (RFC 9110, section 11.1): "bearer" and "BEARER" work too.
bool BearerCredential(const std::string& auth, std::string* credential) {
  static constexpr std::string_view kBearer = "bearer ";
  if (auth.size() < kBearer.size()) return false;
  for (size_t i = 0; i < kBearer.size(); ++i) {
    const char c = auth[i];
    if ((c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c) != kBearer[i]) return false;
  }
  *credential = auth.substr(kBearer.size());
  return true;
}

}  // namespace

// Who is calling: a user (bearer JWT) or a tenant admin (bearer admin key).
struct HttpFront::HttpCaller {
  bool admin = false;
  UserKey user;  // for an admin, only the tenant
};

Result<HttpFront::HttpCaller> HttpFront::Authenticate(const HttpRequest& req) {
  std::string credential;
  if (!BearerCredential(req.header ? req.header("Authorization") : "", &credential)) {
    return Status::Unauthenticated("unauthenticated", "send Authorization: Bearer <token>");
  }
  HttpCaller c;
  for (const auto& [tenant, key] : options_.admin_keys) {
    if (!key.empty() && ConstantTimeEquals(credential, key)) {
      c.admin = true;
      c.user.tenant = tenant;
      break;
    }
  }
  if (!c.admin) {
    // The operator key is the registry's alone: it is no tenant's admin and no user.
    if (!options_.operator_key.empty() && ConstantTimeEquals(credential, options_.operator_key)) {
      return Status::Forbidden("operator_only",
                               "the operator key serves /v1/admin/tenants, /v1/admin/routing, "
                               "node drains and the filter reload only");
    }
    Result<TokenClaims> claims = deps_.deps->tokens->Verify(credential);
    if (!claims.ok()) return claims.status();
    c.user = claims->user;
  }
  if (auto tenant = deps_.tenants->Find(c.user.tenant); tenant && tenant->suspended()) {
    return Status::Forbidden("tenant_suspended", "this tenant is suspended");
  }
  // Every authenticated request names its tenant: it takes a token of the tenant's REST bucket.
  if (Status s = deps_.limits->TakeRest(c.user.tenant); !s.ok()) return s;
  return c;
}

void HttpFront::HandleHttp(HttpRequest request, std::function<void(HttpResponse)> respond) {
  // The two requests that hash a password (tens of milliseconds of CPU and Argon2's memory
  // each) run on their own small pool, so a flood of them never delays chat on the workers.
  // Decided from the method and the decoded path alone, before any body is parsed.
  std::vector<std::string> p;
  const bool hashing =
      request.method == "POST" &&
      PathParts(request.target.substr(0, request.target.find('?')), &p).ok() && p.size() == 2 &&
      p[0] == "v1" && (p[1] == "users" || p[1] == "tokens");
  // Every answer gets a content type; `respond` may run on the committer thread (the endpoints
  // that store something answer from there, so no worker waits for the committer).
  auto finish = [respond = std::move(respond)](HttpResponse r) {
    if (r.content_type.empty()) r.content_type = "application/json";
    respond(std::move(r));
  };
  if (!hashing) {
    // Off the io thread: handlers call storage.
    asio::post(*deps_.workers, [this, request = std::move(request), finish = std::move(finish)] {
      RouteHttp(request, finish);
    });
    return;
  }
  // A client already over its address limit is refused here, without taking a queue slot.
  // (Admins creating accounts are not limited.)
  const bool register_limited =
      p[1] == "users" && options_.open_registration &&
      (!request.header || request.header("Authorization").empty());
  if (p[1] == "tokens" || register_limited) {
    Status limited = deps_.limits->Peek(p[1] == "tokens"
                                       ? deps_.limits->LoginAddress(request.remote_address)
                                       : deps_.limits->RegisterAddress(request.remote_address));
    if (!limited.ok()) return finish(Error(limited));
  }
  // One account's password requests take at most kHashPerAccount places of the pool: a client
  // that floods with its own right password (a right one costs no rate-limit token) does not
  // shut everyone else out.
  std::string account = p[1] == "tokens" ? PasswordAccount(request.body) : std::string();
  if (!account.empty()) {
    std::lock_guard<std::mutex> lock(hash_accounts_mu_);
    size_t& waiting = hash_accounts_[account];
    if (waiting >= kHashPerAccount) {
      deps_.metrics->HashRejected();
      return finish(Error(
          Status::Unavailable("too many password requests of this account waiting; retry later")
              .WithRetryAfter(1000)));
    }
    ++waiting;
  }
  auto release_account = [this, account] {
    if (account.empty()) return;
    std::lock_guard<std::mutex> lock(hash_accounts_mu_);
    auto it = hash_accounts_.find(account);
    if (it != hash_accounts_.end() && --it->second == 0) hash_accounts_.erase(it);
  };
  if (hash_pending_.fetch_add(1) >= static_cast<size_t>(options_.hash_threads) +
                                        options_.hash_queue) {
    hash_pending_.fetch_sub(1);
    release_account();
    deps_.metrics->HashRejected();
    return finish(Error(Status::Unavailable("too many password requests waiting; retry later")
                            .WithRetryAfter(1000)));
  }
  deps_.metrics->HashQueued(1);
  asio::post(*deps_.hash_pool, [this, request = std::move(request), finish = std::move(finish),
                                release_account] {
    SetUpThisThreadOnce("im-hash");
    RouteHttp(request, [this, finish, release_account](HttpResponse r) {
      hash_pending_.fetch_sub(1);
      release_account();
      deps_.metrics->HashQueued(-1);
      finish(std::move(r));
    });
  });
}

std::string HttpFront::PasswordAccount(const std::string& body) {
  rapidjson::Document doc;
  if (!ParseJson(body, &doc).ok() || !doc.IsObject()) return "";
  auto text = [&](const char* name) -> const rapidjson::Value* {
    auto it = doc.FindMember(name);
    return it != doc.MemberEnd() && it->value.IsString() ? &it->value : nullptr;
  };
  const rapidjson::Value* user = text("user");
  if (user == nullptr || !doc.HasMember("password")) return "";
  const rapidjson::Value* tenant = text("tenant");
  std::string key = tenant ? std::string(tenant->GetString(), tenant->GetStringLength())
                           : std::string(kDefaultTenant);
  key += '\x1f';
  key.append(user->GetString(), user->GetStringLength());
  return key;
}

// One read of each store, of a key that is never written: 404 is an answer, any other error
// (503 from an unreachable Redis, 500) is not. The first failure is named ("sessions: ...").
Status HttpFront::ProbeStores() {
  const ServerDeps& d = *deps_.deps;
  const UserKey nobody{"_", "_readyz"};
  auto answered = [](const char* store, const Status& s) {
    return s.ok() || s.code() == Code::kNotFound ? Status::OK()
                                                 : Status::Unavailable(std::string(store) + ": " +
                                                                       s.ToString());
  };
  if (Status s = answered("inbox", d.inbox->Info(nobody).status()); !s.ok()) return s;
  if (Status s = answered("sessions", d.sessions->Find(nobody).status()); !s.ok()) return s;
  if (d.users) {
    if (Status s = answered("users", d.users->Get(nobody).status()); !s.ok()) return s;
  }
  if (d.groups) {
    if (Status s = answered("groups", d.groups->Get(GroupKey{"_", "_readyz"}).status());
        !s.ok()) {
      return s;
    }
  }
  return Status::OK();
}

HttpResponse HttpFront::HttpMetrics() {
  HttpResponse r = Ok(deps_.metrics->Scrape(deps_.snapshot));
  r.content_type = "text/plain; version=0.0.4";
  return r;
}

// Routes one request and answers through `respond`, exactly once: at once for most endpoints,
// from the committer thread for the two that store (POST /v1/groups, POST /v1/messages).
void HttpFront::RouteHttp(const HttpRequest& req, Respond respond) {
  const HttpResponse r = RouteHttpNow(req, respond);
  if (r.status != 0) respond(r);
}

// The synchronous part of RouteHttp: the answer, or status 0 when `respond` was handed on.
HttpResponse HttpFront::RouteHttpNow(const HttpRequest& req, Respond& respond) {
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
    if (!deps_.running->load()) return Error(Status::Unavailable("stopping"));
    return Ok(R"({"status":"ok"})");
  }
  if (path == "/metrics") {
    if (!method_is("GET")) return wrong_method();
    return HttpMetrics();
  }
  if (path == "/readyz") {
    if (!method_is("GET")) return wrong_method();
    // Ready: serving, and every store answers a read (each may be on another Redis).
    if (!deps_.running->load() || deps_.draining->load()) {
      return Error(Status::Unavailable("draining"));
    }
    if (Status s = ProbeStores(); !s.ok()) {
      return Error(Status::Unavailable("storage: " + std::string(s.message())));
    }
    return Ok(R"({"status":"ready"})");
  }
  if (!parsed.ok()) return Error(parsed);

  // Route first: an unknown path is 404 and a wrong method 405 before anything else is read.
  const Route route = RouteOf(p);
  if (route.kind == RouteKind::kNone) return Error(Status::NotFound("no such path: " + path));
  if (route.kind == RouteKind::kTenant) {
    if (!method_is("GET") && !method_is("PUT")) return wrong_method();
    return HttpTenant(req, p[3]);
  }
  if (route.kind == RouteKind::kRoutingRules) {
    if (!method_is("GET") && !method_is("PUT")) return wrong_method();
    return HttpRoutingRules(req);
  }
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
      if (!deps_.deps->users) return Error(Status::Unavailable("accounts are not enabled"));
      if (!IsValidId(p[2])) return Error(Status::BadRequest("bad user id"));
      Result<UserRecord> u = deps_.deps->users->Get(UserKey{caller->user.tenant, p[2]});
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
      if (!deps_.deps->groups) return Error(Status::Unavailable("groups are not enabled"));
      if (route.kind == RouteKind::kCreateGroup) {
        HttpCreateGroup(*caller, f, std::move(respond));
        return Handed();
      }
      if (!IsValidId(p[2])) return Error(Status::BadRequest("bad gid"));
      GroupKey key{caller->user.tenant, p[2]};
      if (route.kind == RouteKind::kGetGroup) {
        Result<GroupInfo> g = deps_.groups->Info(key);
        return g.ok() ? Ok(GroupJson(*g)) : Error(g.status());
      }
      return HttpGroupMembers(*caller, key, req.target);
    }
    case RouteKind::kFilterReload: {
      // Takes no body: whatever is sent is ignored, unread. The word list is the server's,
      // applied to every tenant: with an operator key configured it is the operator's alone
      // (a tenant's admin key gets 403 operator_only, as for drains); without one (a
      // single-tenant deployment) any admin key reloads it.
      std::string by = "the operator";
      if (!options_.operator_key.empty()) {
        if (Status s = CheckOperator(req); !s.ok()) return Error(s);
      } else {
        Result<HttpCaller> caller = Authenticate(req);
        if (!caller.ok()) return Error(caller.status());
        if (!caller->admin) return Error(Status::Forbidden("admin_only", "needs an admin key"));
        by = "admin of tenant '" + caller->user.tenant + "'";
      }
      if (!deps_.deps->reload_filter) return Error(Status::Unavailable("no reloadable filter"));
      Status s = deps_.deps->reload_filter();
      IM_LOG_INFO("filter reload by {}: {}", by, s.ToString());
      return s.ok() ? Ok(R"({"reloaded":true})") : Error(s);
    }
    case RouteKind::kRoute:
      // No credential: the answer holds public gateway addresses only.
      return HttpRoute(req);
    case RouteKind::kDrainNode: {
      // Takes no body. The operator key alone: a node serves every tenant, so no tenant's
      // admin may take it away from the others.
      if (Status s = CheckOperator(req); !s.ok()) return Error(s);
      if (!IsValidId(p[3])) return Error(Status::BadRequest("bad node id"));
      if (!deps_.deps->drain_node) return Error(Status::Unavailable("draining by command is off"));
      Status s = deps_.deps->drain_node(p[3]);
      IM_LOG_INFO("drain of node '{}' by the operator: {}", p[3], s.ToString());
      if (!s.ok()) return Error(s);
      JsonWriter w;
      w.StartObject();
      w.Field("node", p[3]);
      w.Field("draining", true);
      w.EndObject();
      return Ok(w.str());
    }
    case RouteKind::kSendMessage: {
      Result<HttpCaller> caller = Authenticate(req);
      if (!caller.ok()) return Error(caller.status());
      if (!caller->admin) {
        return Error(Status::Forbidden("admin_only", "server-side sends need an admin key"));
      }
      if (Status s = read_body(&f); !s.ok()) return Error(s);
      HttpSendMessage(*caller, f, std::move(respond));
      return Handed();
    }
    case RouteKind::kTenant:  // answered before the method check
    case RouteKind::kRoutingRules:
    case RouteKind::kNone:
      break;
  }
  return Error(Status::NotFound("no such path: " + path));
}

HttpResponse HttpFront::HttpRoute(const HttpRequest& req) {
  // Before anything is read: a flood from one address costs a bucket lookup each, no more.
  deps_.metrics->RouteRequest();
  if (Status s = deps_.limits->Take({deps_.limits->RouteAddress(req.remote_address)}); !s.ok()) {
    return Error(s);
  }
  RouteRequest q;
  q.remote_address = req.remote_address;
  Status s = QueryParam(req.target, "tenant", &q.tenant);
  if (s.ok()) s = QueryParam(req.target, "user", &q.user);
  if (s.ok()) s = QueryParam(req.target, "region", &q.region);
  if (!s.ok()) return Error(s);
  if (q.tenant.empty()) q.tenant = std::string(kDefaultTenant);
  if (!IsValidId(q.tenant)) {
    return Error(Status::BadRequest("'tenant' must be 1-64 bytes of UTF-8 without control "
                                    "characters"));
  }
  if (!IsValidId(q.user)) {
    return Error(Status::BadRequest("'user' is required: 1-64 bytes of UTF-8 without control "
                                    "characters"));
  }
  if (!deps_.deps->route) return Error(Status::NotFound("routing is not configured here"));
  Result<std::string> answer = deps_.deps->route(q);
  return answer.ok() ? Ok(std::move(*answer)) : Error(answer.status());
}

HttpResponse HttpFront::HttpRoutingRules(const HttpRequest& req) {
  // The operator key alone, as for node drains: the rules place every tenant's users.
  if (Status s = CheckOperator(req); !s.ok()) return Error(s);
  if (!deps_.deps->routing_rules) return Error(Status::NotFound("routing is not configured here"));
  const bool put = req.method == "PUT";
  if (put) {
    rapidjson::Document doc;
    if (Status s = ParseHttpBody(req.body, &doc); !s.ok()) return Error(s);
  }
  Result<std::string> rules = deps_.deps->routing_rules(put ? &req.body : nullptr);
  return rules.ok() ? Ok(std::move(*rules)) : Error(rules.status());
}

HttpResponse HttpFront::HttpGroupMembers(const HttpCaller& caller, const GroupKey& key,
                                            const std::string& target) {
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
  Result<MemberPage> page = deps_.groups->Members(key, caller.admin ? nullptr : &caller.user.user,
                                             after, static_cast<size_t>(limit));
  if (!page.ok()) return Error(page.status());
  return Ok(MemberPageJson(*page, /*with_next=*/true));
}

HttpResponse HttpFront::HttpCreateUser(const HttpRequest& req, const Fields& f) {
  std::string user, password, display_name, tenant(kDefaultTenant);
  Status s = f.RequiredString("user", &user);
  if (s.ok()) s = f.RequiredString("password", &password);
  if (s.ok()) s = f.OptionalString("display_name", &display_name);
  if (s.ok()) s = f.OptionalString("tenant", &tenant);
  if (!s.ok()) return Error(s);
  if (!deps_.deps->users) return Error(Status::Unavailable("accounts are not enabled"));
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
    if (IsValidId(tenant) && (s = deps_.limits->TakeRest(tenant), !s.ok())) return Error(s);
    s = deps_.limits->Take({deps_.limits->RegisterAddress(req.remote_address)});
    if (!s.ok()) return Error(s);
  }
  if (!IsValidId(tenant)) return Error(Status::BadRequest("bad tenant id"));
  Result<UserRecord> u = deps_.deps->users->Create(UserKey{tenant, user}, password, display_name,
                                             deps_.clock->NowMs());
  sodium_memzero(password.data(), password.size());
  if (!u.ok()) return Error(u.status());
  return Ok(UserJson(*u), 201);
}

HttpResponse HttpFront::HttpCreateToken(const HttpRequest& req, const Fields& f) {
  std::string user, password, tenant(kDefaultTenant);
  uint64_t ttl = static_cast<uint64_t>(options_.default_token_ttl_s);
  Status s = f.RequiredString("user", &user);
  if (s.ok()) s = f.OptionalString("tenant", &tenant);
  if (s.ok()) s = f.OptionalUint64("ttl_s", &ttl);
  if (s.ok() && (ttl < 1 || ttl > static_cast<uint64_t>(options_.max_token_ttl_s))) {
    s = Status::BadRequest("'ttl_s' must be 1.." + std::to_string(options_.max_token_ttl_s));
  }
  if (!s.ok()) return Error(s);
  if (!deps_.deps->token_keys) return Error(Status::Unavailable("token minting is not enabled"));
  if (f.Has("password")) {
    s = f.RequiredString("password", &password);
    if (!s.ok()) return Error(s);
    if (!deps_.deps->users) return Error(Status::Unavailable("accounts are not enabled"));
    if (!IsValidId(tenant) || !IsValidId(user)) return Error(Status::BadRequest("bad id"));
    // Before the password is checked: a tenant over its REST rate costs no hashing.
    if (s = deps_.limits->TakeRest(tenant); !s.ok()) return Error(s);
    // Failed passwords per address and per account: each attempt holds a token of both, a
    // right password gives them back. While either bucket is empty the password is not even
    // checked, so the right one is refused too until the wait is over.
    const RateLimits::Key address = deps_.limits->LoginAddress(req.remote_address);
    const RateLimits::Key account = deps_.limits->LoginAccount(tenant, user);
    s = deps_.limits->Take({address, account});
    if (!s.ok()) {
      sodium_memzero(password.data(), password.size());
      return Error(s);
    }
    Result<UserRecord> u = deps_.deps->users->VerifyPassword(UserKey{tenant, user}, password);
    sodium_memzero(password.data(), password.size());
    // Only a wrong password is the caller's failure; a storage error costs nothing.
    if (u.ok() || u.status().code() != Code::kUnauthenticated) {
      deps_.limits->Refund({address, account});
    }
    if (!u.ok()) return Error(u.status());
  } else {
    // No password: an admin mints a token for any user of its tenant. A refused credential
    // counts as a failed login of the address.
    const RateLimits::Key address = deps_.limits->LoginAddress(req.remote_address);
    s = deps_.limits->Take({address});
    if (!s.ok()) return Error(s);
    Result<HttpCaller> caller = Authenticate(req);
    if (caller.ok()) deps_.limits->Refund({address});
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
  if (auto policy = deps_.tenants->Find(tenant); policy && policy->suspended()) {
    return Error(Status::Forbidden("tenant_suspended", "this tenant is suspended"));
  }
  TimestampMs now = deps_.clock->NowMs();
  Result<std::string> token = SignHs256Token(*deps_.deps->token_keys, UserKey{tenant, user},
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

void HttpFront::HttpCreateGroup(const HttpCaller& caller, const Fields& f, Respond respond) {
  if (caller.admin) {
    return respond(
        Error(Status::Forbidden("user_only", "a group is created by its owner's token")));
  }
  GroupOps::CreateArgs args;
  Status s = GroupOps::ParseCreate(f, /*members_required=*/false, &args);
  if (s.ok()) {
    // Answered from the committer thread once the group and its event are stored.
    s = deps_.groups->Create(caller.user, std::move(args), [respond](const Result<GroupInfo>& g) {
      respond(g.ok() ? Ok(GroupJson(*g), 201) : Error(g.status()));
    });
  }
  if (!s.ok()) respond(Error(s));
}

void HttpFront::HttpSendMessage(const HttpCaller& caller, const Fields& f, Respond respond) {
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
  if (!s.ok()) return respond(Error(s));
  message->tenant = caller.user.tenant;
  SessionInfo sender;
  sender.user = UserKey{caller.user.tenant, message->from};
  // From a user (1:1): that user's inbox gets it too, as if sent from one of their devices.
  const bool as_user = !message->from.empty() && message->group.empty();
  s = deps_.chat->Send(as_user ? &sender : nullptr, std::move(message), cid,
                  [respond](const Result<SendReceipt>& r) {
                    respond(r.ok() ? Ok(ReceiptJson(*r, /*with_duplicate=*/true))
                                   : Error(r.status()));
                  });
  if (!s.ok()) respond(Error(s));
}

// OK when the request carries the operator key; 401 without a credential, 403 operator_only
// for any other credential, valid or not (it learns nothing about what the key guards).
Status HttpFront::CheckOperator(const HttpRequest& req) const {
  std::string credential;
  if (!BearerCredential(req.header ? req.header("Authorization") : "", &credential)) {
    return Status::Unauthenticated("unauthenticated", "send Authorization: Bearer <operator key>");
  }
  const std::string& key = options_.operator_key;
  if (key.empty() || !ConstantTimeEquals(credential, key)) {
    return Status::Forbidden("operator_only", "needs the operator key");
  }
  return Status::OK();
}

// GET and PUT /v1/admin/tenants/<name>, for the operator key alone. A tenant admin key or a
// user token is 403 operator_only, whatever the tenant named: the registry says what every
// tenant may do, so no tenant reads or writes it.
HttpResponse HttpFront::HttpTenant(const HttpRequest& req, const std::string& name) {
  if (Status s = CheckOperator(req); !s.ok()) return Error(s);
  if (!IsValidId(name)) return Error(Status::BadRequest("bad tenant id"));
  if (req.method == "GET") {
    Result<TenantRecord> r = deps_.tenants->Get(name);
    if (!r.ok()) return Error(r.status());
    return Ok(TenantRecordJson(*r, /*with_secrets=*/false));
  }
  bool keys_given = false;
  Result<TenantRecord> r = ParseTenantRecord(name, req.body, &keys_given);
  if (!r.ok()) return Error(r.status());
  // A tenant's inbox bounds only shorten the store's own.
  const TenantQuotas& q = r->quotas;
  if (options_.inbox_retention_s > 0 &&
      q.retention_s > static_cast<uint64_t>(options_.inbox_retention_s)) {
    return Error(Status::BadRequest("tenant record: 'retention_s' must be at most the inbox "
                                    "store's retention (" +
                                    std::to_string(options_.inbox_retention_s) + " s)"));
  }
  if (options_.inbox_max > 0 && q.max_inbox > options_.inbox_max) {
    return Error(Status::BadRequest("tenant record: 'max_inbox' must be at most the inbox "
                                    "store's (" + std::to_string(options_.inbox_max) + ")"));
  }
  if (!keys_given) {
    // A PUT without `keys` keeps the stored ones: changing a quota must not drop a key.
    Result<TenantRecord> stored = deps_.tenants->Get(name);
    if (stored.ok()) {
      r->keys = std::move(stored->keys);
    } else if (stored.status().code() != Code::kNotFound) {
      return Error(stored.status());
    }
  }
  r->updated_ms = deps_.clock->NowMs();
  if (Status s = deps_.tenants->Put(*r); !s.ok()) return Error(s);
  IM_LOG_INFO("tenant '{}' set by the operator: {}", name,
              r->status == TenantStatus::kSuspended ? "suspended" : "active");
  return Ok(TenantRecordJson(*r, /*with_secrets=*/false));
}

}  // namespace im::internal
