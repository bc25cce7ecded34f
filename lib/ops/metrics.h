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

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace im::internal {

class Metrics {
 public:
  Metrics();

  void Login(bool ok) { (ok ? logins_ok_ : logins_failed_)->Increment(); }
  void Kick(const std::string& reason);
  void MessageIn() { messages_in_->Increment(); }
  void MessageRejected() { messages_rejected_->Increment(); }
  // Seconds a command took, from parse to reply.
  void CommandLatency(const std::string& cmd, double seconds);

  // State read at scrape time.
  struct Snapshot {
    double tcp_connections = 0;
    double ws_connections = 0;
    double sessions_online = 0;
    double commit_queue_depth = 0;
    double deliveries_total = 0;  // monotonic, from the committer
  };
  // The text exposition format, after `snapshot` filled the state gauges.
  std::string Scrape(const std::function<Snapshot()>& snapshot);

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Counter* logins_ok_;
  prometheus::Counter* logins_failed_;
  prometheus::Counter* messages_in_;
  prometheus::Counter* messages_rejected_;
  prometheus::Counter* deliveries_;
  prometheus::Family<prometheus::Counter>* kicks_;
  prometheus::Family<prometheus::Histogram>* latency_;
  prometheus::Gauge* tcp_connections_;
  prometheus::Gauge* ws_connections_;
  prometheus::Gauge* sessions_online_;
  prometheus::Gauge* commit_queue_;
  prometheus::Gauge* rss_;
  prometheus::Gauge* threads_;
  prometheus::Gauge* fds_;
  std::mutex mu_;  // guards the caches below and the deliveries delta
  std::map<std::string, prometheus::Histogram*> by_cmd_;
  std::map<std::string, prometheus::Counter*> by_reason_;
  double deliveries_seen_ = 0;
};

}  // namespace im::internal

#endif  // IM_OPS_METRICS_H_
