// Prometheus metrics of one server, on prometheus-cpp's core registry and text serializer
// (served at GET /metrics). Gauges that describe state (connections, queue depths, process
// memory) are read when scraped.
//
// Thread-safety: every method is safe from any thread.
#ifndef IM_OPS_METRICS_H_
#define IM_OPS_METRICS_H_

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>

namespace im::internal {

// A process-wide source of more exposition text, appended to every Metrics::Scrape of the
// process (the Redis connection pools register their im_redis_* families this way: the core
// library does not know them). A source renders whole families (HELP, TYPE, samples) with
// bounded label sets. Sources are never removed; each must stay callable for the process's life.
void AddScrapeSource(std::function<std::string()> source);

class Metrics {
 public:
  Metrics();

  void Login(bool ok) { (ok ? logins_ok_ : logins_failed_)->Increment(); }
  // `reason` is one the server itself gives (login_elsewhere, admin, token_expired, drain),
  // never client input: the label set stays fixed.
  void Kick(const std::string& reason);
  void MessageIn() { messages_in_->Increment(); }
  void MessageRejected() { messages_rejected_->Increment(); }
  void MessageMasked() { messages_masked_->Increment(); }
  void MessagesSynced(size_t n) { synced_->Increment(static_cast<double>(n)); }
  void SlowConsumer(bool websocket) { (websocket ? slow_ws_ : slow_tcp_)->Increment(); }
  void ConnectionRefused(bool websocket) { (websocket ? refused_ws_ : refused_tcp_)->Increment(); }
  // A request refused (429) by one of the server's rate limits; the labels are this fixed set.
  enum class Limit {
    kLoginAddress,
    kLoginAccount,
    kRegisterAddress,
    kChatConnection,
    kChatUser,
    kChatTenant,
    kRouteAddress,
    kRestTenant,
    kLoginTenant,
    kCommandTenant,
    kGroupUser,
  };
  void RateLimited(Limit limit) { rate_limited_[static_cast<int>(limit)]->Increment(); }
  // The same refusal of a request of a known tenant, counted per tenant too
  // (im_tenant_rate_limited_total), and a send accepted from a tenant (im_tenant_messages_total). Tenant labels are bounded
  // (SetMaxTenantLabels; the rest count as "other").
  void TenantRateLimited(const std::string& tenant, Limit limit);
  void TenantMessage(const std::string& tenant);
  // A GET /v1/route request, answered or not (im_route_requests_total); the refused ones count
  // under im_rate_limited_total{limit="route_address"} too.
  void RouteRequest() { route_requests_->Increment(); }
  void SetMaxTenantLabels(size_t n) { max_tenant_labels_ = n; }
  // Password-hashing pool: requests queued or running (+1 when queued, -1 when done), and
  // requests refused (503) because hash_queue were waiting.
  void HashQueued(int delta) { hash_depth_->Increment(static_cast<double>(delta)); }
  void HashRejected() { hash_rejected_->Increment(); }
  // A business event dropped because the event log's queue was full (or the log stopped).
  void EventLogDropped() { event_log_dropped_->Increment(); }
  // Fan-out stage: pushes waiting to be delivered (+n when handed over, -n when delivered).
  void FanoutQueued(int64_t delta) { fanout_depth_->Increment(static_cast<double>(delta)); }
  // A send refused (503) because its sender already had commit_lane_limit sends waiting.
  void CommitLaneRejected() { lane_rejected_->Increment(); }
  // The latency histogram of one store operation ("inbox.append", "groups.members", ...);
  // created on first use, then stable: callers keep the pointer.
  prometheus::Histogram* StoreOp(const std::string& op);
  // Seconds a command took, from parse to reply. Labelled by the command's name when it is one
  // of the protocol's commands, else by "unknown".
  void CommandLatency(const std::string& cmd, double seconds);

  // im_sessions_online is labelled by tenant for the first this many tenants seen; sessions of
  // any further tenant count under tenant="other".
  static constexpr size_t kMaxTenantLabels = 100;
  static constexpr const char* kOtherTenants = "other";

  // State read at scrape time.
  struct Snapshot {
    double tcp_connections = 0;
    double ws_connections = 0;
    // Logged-in sessions by (tenant, transport "tcp"/"ws").
    std::map<std::pair<std::string, std::string>, double> sessions;
    double commit_queue_depth = 0;
    double send_queue_bytes = 0;      // summed over connections
    double send_queue_max_bytes = 0;  // the fullest connection's
    // Monotonic totals kept elsewhere (committer, transports).
    double deliveries_total = 0;
    double tcp_bytes_in = 0, tcp_bytes_out = 0, ws_bytes_in = 0, ws_bytes_out = 0;
    double http_refused = 0;  // connections closed at accept: max_http_connections
  };
  // The text exposition format, after `snapshot` filled the state gauges.
  std::string Scrape(const std::function<Snapshot()>& snapshot);

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Counter* logins_ok_;
  prometheus::Counter* logins_failed_;
  prometheus::Counter* messages_in_;
  prometheus::Counter* messages_rejected_;
  prometheus::Counter* messages_masked_;
  prometheus::Counter* deliveries_;
  prometheus::Counter* pushed_;  // im_messages_out_total{via="push"}
  prometheus::Counter* synced_;  // im_messages_out_total{via="sync"}
  prometheus::Counter* slow_tcp_;
  prometheus::Counter* slow_ws_;
  prometheus::Counter* refused_tcp_;
  prometheus::Counter* refused_ws_;
  prometheus::Counter* rate_limited_[11];
  prometheus::Counter* route_requests_;
  prometheus::Gauge* hash_depth_;
  prometheus::Counter* hash_rejected_;
  prometheus::Counter* event_log_dropped_;
  prometheus::Gauge* fanout_depth_;
  prometheus::Counter* lane_rejected_;
  struct Monotonic {  // a counter that follows a total kept elsewhere
    prometheus::Counter* counter;
    double seen = 0;
    void Follow(double total);
  };
  Monotonic bytes_in_tcp_, bytes_in_ws_, bytes_out_tcp_, bytes_out_ws_;
  Monotonic refused_http_;
  prometheus::Family<prometheus::Histogram>* store_latency_;
  prometheus::Family<prometheus::Gauge>* sessions_family_;
  std::map<std::pair<std::string, std::string>, prometheus::Gauge*> sessions_by_;
  std::set<std::string> tenant_labels_;  // tenants with a label of their own (guarded by mu_)
  std::atomic<size_t> max_tenant_labels_{kMaxTenantLabels};
  // `tenant`'s label: its own while fewer than max_tenant_labels_ tenants have one, else
  // "other". Called under mu_.
  std::string TenantLabelLocked(const std::string& tenant);
  // im_tenant_rate_limited_total{tenant,limit} and im_tenant_messages_total{tenant} by (label,
  // limit index; -1 for messages), guarded by mu_.
  prometheus::Family<prometheus::Counter>* tenant_limited_;
  prometheus::Family<prometheus::Counter>* tenant_messages_;
  std::map<std::pair<std::string, int>, prometheus::Counter*> tenant_counters_;
  prometheus::Gauge* send_queue_;
  prometheus::Gauge* send_queue_max_;
  prometheus::Family<prometheus::Counter>* kicks_;
  prometheus::Family<prometheus::Histogram>* latency_;
  prometheus::Gauge* tcp_connections_;
  prometheus::Gauge* ws_connections_;
  prometheus::Gauge* commit_queue_;
  prometheus::Gauge* rss_;
  prometheus::Gauge* threads_;
  prometheus::Gauge* fds_;
  std::mutex mu_;  // guards the caches below and the deliveries delta
  std::map<std::string, prometheus::Histogram*> by_cmd_;
  std::map<std::string, prometheus::Counter*> by_reason_;
  std::map<std::string, prometheus::Histogram*> by_store_op_;
  double deliveries_seen_ = 0;
};

}  // namespace im::internal

#endif  // IM_OPS_METRICS_H_
