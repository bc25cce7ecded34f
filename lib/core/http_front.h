// HttpFront: the web service on the HTTP port (every path but /ws): accounts, tokens, groups,
// server-side sends, the filter reload, health, readiness and metrics. A thin front: it
// routes, authenticates, parses and calls the services the socket commands and the host API
// call too (ChatService, GroupOps); nothing is written twice.
//
// Requests are routed on the worker pool, but for the two that hash a password (tens of
// milliseconds each), which run on the hashing pool (at most hash_threads + hash_queue; over
// it 503 with retry). No request waits for the committer: the two that store (POST
// /v1/messages, POST /v1/groups) answer from its callback.
//
// Thread-safety: HandleHttp is safe from any thread (the transport calls it on io threads).
#ifndef IM_CORE_HTTP_FRONT_H_
#define IM_CORE_HTTP_FRONT_H_

#include <asio/thread_pool.hpp>

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>

#include "core/chat_service.h"
#include "core/group_ops.h"
#include "core/rate_limits.h"
#include "im/server.h"
#include "ops/metrics.h"
#include "protocol/json.h"
#include "tenant/tenant_directory.h"
#include "transport/handler.h"

namespace im::internal {

class HttpFront {
 public:
  struct Deps {
    const ServerOptions* options;
    const ServerDeps* deps;  // users, tokens, token_keys, reload_filter, inbox (readiness)
    Clock* clock;
    asio::thread_pool* workers;
    asio::thread_pool* hash_pool;
    ChatService* chat;
    GroupOps* groups;
    RateLimits* limits;
    Metrics* metrics;
    const std::atomic<bool>* running;  // false: health and readiness answer 503
    const std::atomic<bool>* draining;  // true: readiness answers 503
    TenantDirectory* tenants;          // the registry behind /v1/admin/tenants
    std::function<Metrics::Snapshot()> snapshot;  // the gauges of a metrics scrape
  };
  using Respond = std::function<void(HttpResponse)>;

  explicit HttpFront(Deps deps) : deps_(std::move(deps)), options_(*deps_.options) {}

  // Answers `request` through `respond`, exactly once, from any thread.
  void HandleHttp(HttpRequest request, Respond respond);

 private:
  struct HttpCaller;
  void RouteHttp(const HttpRequest& req, Respond respond);
  // The synchronous part of RouteHttp: the answer, or status 0 when `respond` was handed on.
  HttpResponse RouteHttpNow(const HttpRequest& req, Respond& respond);
  Result<HttpCaller> Authenticate(const HttpRequest& req);
  Status ProbeStores();
  HttpResponse HttpMetrics();
  HttpResponse HttpCreateUser(const HttpRequest& req, const Fields& f);
  HttpResponse HttpCreateToken(const HttpRequest& req, const Fields& f);
  void HttpCreateGroup(const HttpCaller& caller, const Fields& f, Respond respond);
  // GET /v1/groups/{gid}/members: the caller's permission, the query, one page.
  HttpResponse HttpGroupMembers(const HttpCaller& caller, const GroupKey& key,
                                const std::string& target);
  HttpResponse HttpRoute(const HttpRequest& req);
  // GET and PUT /v1/admin/routing: the operator key only.
  HttpResponse HttpRoutingRules(const HttpRequest& req);
  void HttpSendMessage(const HttpCaller& caller, const Fields& f, Respond respond);
  // GET and PUT /v1/admin/tenants/<name>: the operator key only.
  Status CheckOperator(const HttpRequest& req) const;
  HttpResponse HttpTenant(const HttpRequest& req, const std::string& name);

  const Deps deps_;
  const ServerOptions& options_;
  // Password requests queued or running on the hashing pool.
  std::atomic<size_t> hash_pending_{0};
  // POST /v1/tokens with a password, by account (tenant, user), queued or running: at most
  // kHashPerAccount each, so one account's flood leaves the pool to the others.
  static constexpr size_t kHashPerAccount = 2;
  std::mutex hash_accounts_mu_;
  std::unordered_map<std::string, size_t> hash_accounts_;  // guarded by hash_accounts_mu_
  // The account a POST /v1/tokens body names when it carries a password, else "".
  static std::string PasswordAccount(const std::string& body);
};

}  // namespace im::internal

#endif  // IM_CORE_HTTP_FRONT_H_
