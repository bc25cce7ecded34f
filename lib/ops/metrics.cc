#include "ops/metrics.h"

#include <prometheus/text_serializer.h>
#include <unistd.h>

#include <filesystem>
#include <iterator>
#include <type_traits>
#include <fstream>
#include <sstream>
#include <vector>

namespace im::internal {
namespace {

// Resident memory and thread count of this process, from /proc/self/status.
void ReadProcStatus(double* rss_bytes, double* threads) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) *rss_bytes = std::stod(line.substr(6)) * 1024;
    if (line.rfind("Threads:", 0) == 0) *threads = std::stod(line.substr(8));
  }
}

double OpenFds() {
  std::error_code ec;
  double n = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++n;
  }
  return n;
}

std::mutex& SourcesMutex() {
  static std::mutex mu;
  return mu;
}

std::vector<std::function<std::string()>>& Sources() {
  static auto* sources = new std::vector<std::function<std::string()>>();  // never destroyed
  return *sources;
}
// The `limit` label of im_rate_limited_total, by Metrics::Limit.
const char* const kLimitNames[] = {"login_address",   "login_account", "register_address",
                                   "chat_connection", "chat_user",     "chat_tenant",
                                   "route_address",   "rest_tenant",   "login_tenant",
                                   "command_tenant",  "group_user"};

}  // namespace

void AddScrapeSource(std::function<std::string()> source) {
  std::lock_guard<std::mutex> lock(SourcesMutex());
  Sources().push_back(std::move(source));
}

Metrics::Metrics() : registry_(std::make_shared<prometheus::Registry>()) {
  using prometheus::BuildCounter;
  using prometheus::BuildGauge;
  auto& logins = BuildCounter().Name("im_logins_total").Help("Login attempts by result").Register(*registry_);
  logins_ok_ = &logins.Add({{"result", "ok"}});
  logins_failed_ = &logins.Add({{"result", "failed"}});
  kicks_ = &BuildCounter().Name("im_kicks_total").Help("Sessions kicked, by reason").Register(*registry_);
  messages_in_ = &BuildCounter()
                      .Name("im_messages_in_total")
                      .Help("Messages accepted for storing (chat.send and server-side sends)")
                      .Register(*registry_)
                      .Add({});
  messages_rejected_ = &BuildCounter()
                            .Name("im_messages_rejected_total")
                            .Help("Messages refused by the content filter")
                            .Register(*registry_)
                            .Add({});
  messages_masked_ = &BuildCounter()
                          .Name("im_messages_masked_total")
                          .Help("Messages stored with words masked by the content filter")
                          .Register(*registry_)
                          .Add({});
  auto& out = BuildCounter()
                  .Name("im_messages_out_total")
                  .Help("Messages delivered to clients: live pushes and chat.sync pages")
                  .Register(*registry_);
  pushed_ = &out.Add({{"via", "push"}});
  synced_ = &out.Add({{"via", "sync"}});
  auto& slow = BuildCounter()
                   .Name("im_slow_consumer_closes_total")
                   .Help("Connections closed (4004) because their send queue passed the bound")
                   .Register(*registry_);
  slow_tcp_ = &slow.Add({{"transport", "tcp"}});
  slow_ws_ = &slow.Add({{"transport", "ws"}});
  auto& refused = BuildCounter()
                      .Name("im_connections_refused_total")
                      .Help("Connections closed at once: 1013 because max_connections were "
                            "open (tcp, ws); closed at accept because max_http_connections were "
                            "(http)")
                      .Register(*registry_);
  refused_tcp_ = &refused.Add({{"transport", "tcp"}});
  refused_ws_ = &refused.Add({{"transport", "ws"}});
  refused_http_.counter = &refused.Add({{"transport", "http"}});
  auto& limited = BuildCounter()
                     .Name("im_rate_limited_total")
                     .Help("Requests refused with 429 rate_limited, by the limit that refused them")
                     .Register(*registry_);
  static_assert(std::size(kLimitNames) == std::extent_v<decltype(rate_limited_)>);
  for (size_t i = 0; i < std::size(kLimitNames); ++i) {
    rate_limited_[i] = &limited.Add({{"limit", kLimitNames[i]}});
  }
  route_requests_ = &BuildCounter()
                         .Name("im_route_requests_total")
                         .Help("GET /v1/route requests, answered or refused")
                         .Register(*registry_)
                         .Add({});
  tenant_limited_ = &BuildCounter()
                         .Name("im_tenant_rate_limited_total")
                         .Help("Tenant requests refused with 429 rate_limited, by tenant and limit")
                         .Register(*registry_);
  tenant_messages_ = &BuildCounter()
                          .Name("im_tenant_messages_total")
                          .Help("Chat sends accepted by the rate limits, by tenant")
                          .Register(*registry_);
  hash_depth_ = &BuildGauge()
                     .Name("im_password_hash_queue_depth")
                     .Help("Password-hashing requests queued or running on the hashing pool")
                     .Register(*registry_)
                     .Add({});
  hash_rejected_ = &BuildCounter()
                        .Name("im_password_hash_rejected_total")
                        .Help("Password-hashing requests refused (503) because the queue was full")
                        .Register(*registry_)
                        .Add({});
  event_log_dropped_ = &BuildCounter()
                            .Name("im_event_log_dropped_total")
                            .Help("Business events dropped because the event log's queue was full")
                            .Register(*registry_)
                            .Add({});
  auto& bytes_in = BuildCounter()
                       .Name("im_bytes_received_total")
                       .Help("Frame bytes read from clients, by transport")
                       .Register(*registry_);
  bytes_in_tcp_.counter = &bytes_in.Add({{"transport", "tcp"}});
  bytes_in_ws_.counter = &bytes_in.Add({{"transport", "ws"}});
  auto& bytes_out = BuildCounter()
                        .Name("im_bytes_sent_total")
                        .Help("Frame bytes sent to clients, by transport")
                        .Register(*registry_);
  bytes_out_tcp_.counter = &bytes_out.Add({{"transport", "tcp"}});
  bytes_out_ws_.counter = &bytes_out.Add({{"transport", "ws"}});
  store_latency_ = &prometheus::BuildHistogram()
                        .Name("im_store_duration_seconds")
                        .Help("Time of one storage call, by operation")
                        .Register(*registry_);
  send_queue_ = &BuildGauge()
                     .Name("im_send_queue_bytes")
                     .Help("Bytes waiting in send queues, summed over connections")
                     .Register(*registry_)
                     .Add({});
  send_queue_max_ = &BuildGauge()
                         .Name("im_send_queue_max_bytes")
                         .Help("Bytes waiting in the fullest connection's send queue")
                         .Register(*registry_)
                         .Add({});
  deliveries_ = &BuildCounter()
                     .Name("im_fanout_deliveries_total")
                     .Help("chat.message pushes handed to connections")
                     .Register(*registry_)
                     .Add({});
  latency_ = &prometheus::BuildHistogram()
                  .Name("im_command_duration_seconds")
                  .Help("Time from a parsed command to its reply, by command")
                  .Register(*registry_);
  auto& conns = BuildGauge().Name("im_connections").Help("Open connections by transport").Register(*registry_);
  tcp_connections_ = &conns.Add({{"transport", "tcp"}});
  ws_connections_ = &conns.Add({{"transport", "ws"}});
  sessions_family_ = &BuildGauge()
                         .Name("im_sessions_online")
                         .Help("Logged-in sessions on this node, by tenant and transport")
                         .Register(*registry_);
  commit_queue_ = &BuildGauge()
                       .Name("im_commit_queue_depth")
                       .Help("Sends and group changes waiting for the committer")
                       .Register(*registry_)
                       .Add({});
  fanout_depth_ = &BuildGauge()
                       .Name("im_fanout_queue_depth")
                       .Help("Pushes of stored messages waiting for the fan-out thread")
                       .Register(*registry_)
                       .Add({});
  lane_rejected_ = &BuildCounter()
                        .Name("im_commit_lane_rejected_total")
                        .Help("Sends refused because their sender had too many waiting")
                        .Register(*registry_)
                        .Add({});
  rss_ = &BuildGauge()
              .Name("process_resident_memory_bytes")
              .Help("Resident memory size in bytes")
              .Register(*registry_)
              .Add({});
  threads_ = &BuildGauge().Name("process_threads").Help("OS threads").Register(*registry_).Add({});
  fds_ = &BuildGauge()
              .Name("process_open_fds")
              .Help("Open file descriptors")
              .Register(*registry_)
              .Add({});
}

void Metrics::Kick(const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_reason_.find(reason);
  if (it == by_reason_.end()) {
    it = by_reason_.emplace(reason, &kicks_->Add({{"reason", reason}})).first;
  }
  it->second->Increment();
}

void Metrics::CommandLatency(const std::string& cmd, double seconds) {
  // Labels come from a fixed set: a client names any command it likes, and every distinct label
  // would be a series kept forever and written on every scrape.
  static const char* const kCommands[] = {"login",        "logout",     "ping",
                                          "chat.send",    "chat.sync",  "chat.ack",
                                          "group.create", "group.info", "group.join",
                                          "group.quit",   "group.members"};
  const char* label = "unknown";
  for (const char* known : kCommands) {
    if (cmd == known) label = known;
  }
  prometheus::Histogram* h;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = by_cmd_.find(label);
    if (it == by_cmd_.end()) {
      // Buckets from 50 us to 2.5 s: a ping is microseconds, a stored group send milliseconds.
      static const prometheus::Histogram::BucketBoundaries kBuckets = {
          0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
          0.025,   0.05,   0.1,     0.25,   0.5,   1,     2.5};
      it = by_cmd_.emplace(label, &latency_->Add({{"cmd", label}}, kBuckets)).first;
    }
    h = it->second;
  }
  h->Observe(seconds);
}

prometheus::Histogram* Metrics::StoreOp(const std::string& op) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_store_op_.find(op);
  if (it == by_store_op_.end()) {
    // Buckets from 5 us (a memory store) to 1 s (a stalled disk).
    static const prometheus::Histogram::BucketBoundaries kBuckets = {
        0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001,
        0.0025,   0.005,   0.01,     0.025,   0.05,   0.1,     0.25,   1};
    it = by_store_op_.emplace(op, &store_latency_->Add({{"op", op}}, kBuckets)).first;
  }
  return it->second;
}

void Metrics::Monotonic::Follow(double total) {
  if (total > seen) {
    counter->Increment(total - seen);
    seen = total;
  }
}

std::string Metrics::Scrape(const std::function<Snapshot()>& snapshot) {
  Snapshot s = snapshot();
  tcp_connections_->Set(s.tcp_connections);
  ws_connections_->Set(s.ws_connections);
  commit_queue_->Set(s.commit_queue_depth);
  send_queue_->Set(s.send_queue_bytes);
  send_queue_max_->Set(s.send_queue_max_bytes);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (s.deliveries_total > deliveries_seen_) {
      deliveries_->Increment(s.deliveries_total - deliveries_seen_);
      pushed_->Increment(s.deliveries_total - deliveries_seen_);
      deliveries_seen_ = s.deliveries_total;
    }
    bytes_in_tcp_.Follow(s.tcp_bytes_in);
    bytes_in_ws_.Follow(s.ws_bytes_in);
    refused_http_.Follow(s.http_refused);
    bytes_out_tcp_.Follow(s.tcp_bytes_out);
    bytes_out_ws_.Follow(s.ws_bytes_out);
    // A tenant that has gone offline reads 0 rather than its last value.
    for (auto& [key, gauge] : sessions_by_) gauge->Set(0);
    // Tenants come from verified tokens, so only from tenants that have a signing key; still,
    // past kMaxTenantLabels tenants the rest count under tenant="other" so that no key store
    // can grow the series without bound. A tenant keeps the label it first got.
    std::map<std::pair<std::string, std::string>, double> folded;
    for (const auto& [key, n] : s.sessions) {
      folded[{TenantLabelLocked(key.first), key.second}] += n;
    }
    for (const auto& [key, n] : folded) {
      auto it = sessions_by_.find(key);
      if (it == sessions_by_.end()) {
        it = sessions_by_
                 .emplace(key, &sessions_family_->Add(
                                   {{"tenant", key.first}, {"transport", key.second}}))
                 .first;
      }
      it->second->Set(n);
    }
  }
  double rss = 0, threads = 0;
  ReadProcStatus(&rss, &threads);
  rss_->Set(rss);
  threads_->Set(threads);
  fds_->Set(OpenFds());
  prometheus::TextSerializer serializer;
  std::ostringstream out;
  serializer.Serialize(out, registry_->Collect());
  std::vector<std::function<std::string()>> sources;
  {
    std::lock_guard<std::mutex> lock(SourcesMutex());
    sources = Sources();
  }
  for (const auto& source : sources) out << source();
  return out.str();
}

std::string Metrics::TenantLabelLocked(const std::string& tenant) {
  if (tenant_labels_.count(tenant) > 0) return tenant;
  if (tenant_labels_.size() < max_tenant_labels_.load()) {
    tenant_labels_.insert(tenant);
    return tenant;
  }
  return kOtherTenants;
}

void Metrics::TenantRateLimited(const std::string& tenant, Limit limit) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string label = TenantLabelLocked(tenant);
  const int index = static_cast<int>(limit);
  auto it = tenant_counters_.find({label, index});
  if (it == tenant_counters_.end()) {
    it = tenant_counters_
             .emplace(std::make_pair(label, index),
                      &tenant_limited_->Add({{"tenant", label}, {"limit", kLimitNames[index]}}))
             .first;
  }
  it->second->Increment();
}

void Metrics::TenantMessage(const std::string& tenant) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string label = TenantLabelLocked(tenant);
  auto it = tenant_counters_.find({label, -1});
  if (it == tenant_counters_.end()) {
    it = tenant_counters_
             .emplace(std::make_pair(label, -1), &tenant_messages_->Add({{"tenant", label}}))
             .first;
  }
  it->second->Increment();
}

}  // namespace im::internal
