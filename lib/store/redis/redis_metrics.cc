#include "store/redis/redis_metrics.h"

#include <cstdint>
#include <map>
#include <mutex>
#include <sstream>
#include <utility>
#include <vector>

#include "ops/metrics.h"
#include "store/redis/redis_client.h"

namespace im::internal {
namespace {

struct Registered {
  std::mutex mu;
  std::vector<std::pair<std::string, std::weak_ptr<RedisClient>>> clients;  // guarded by mu
  bool source_added = false;                                                 // guarded by mu
};

Registered& Registry() {
  static auto* registered = new Registered();  // never destroyed: scraped until exit
  return *registered;
}

// One label's figures, summed over its pools.
struct Totals {
  uint64_t commands = 0, round_trips = 0, errors = 0, timeouts = 0, connects = 0,
           connect_failures = 0, pool_waits = 0, latency_us_sum = 0;
  int64_t in_use = 0;
  uint64_t buckets[RedisMetrics::kLatencyBoundsUs.size() + 1] = {};
};

void Add(const RedisMetrics& m, Totals* t) {
  constexpr auto kRelaxed = std::memory_order_relaxed;
  t->commands += m.commands.load(kRelaxed);
  t->round_trips += m.round_trips.load(kRelaxed);
  t->errors += m.errors.load(kRelaxed);
  t->timeouts += m.timeouts.load(kRelaxed);
  t->connects += m.connects.load(kRelaxed);
  t->connect_failures += m.connect_failures.load(kRelaxed);
  t->pool_waits += m.pool_waits.load(kRelaxed);
  t->in_use += m.in_use.load(kRelaxed);
  t->latency_us_sum += m.latency_us_sum.load(kRelaxed);
  for (size_t i = 0; i < m.latency_buckets.size(); ++i) {
    t->buckets[i] += m.latency_buckets[i].load(kRelaxed);
  }
}

// A label value as the text format wants it (backslash, quote and newline escaped).
std::string Escaped(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') out += '\\';
    out += c == '\n' ? std::string("\\n") : std::string(1, c);
  }
  return out;
}

}  // namespace

void RegisterRedisMetrics(const std::string& label, const std::shared_ptr<RedisClient>& client) {
  Registered& r = Registry();
  bool add_source = false;
  {
    std::lock_guard<std::mutex> lock(r.mu);
    // Drop the pools that are gone, so a process that opens and closes many stays bounded.
    auto& v = r.clients;
    for (size_t i = 0; i < v.size();) {
      if (v[i].second.expired()) {
        v[i] = std::move(v.back());
        v.pop_back();
      } else {
        ++i;
      }
    }
    v.emplace_back(label, client);
    add_source = !r.source_added;
    r.source_added = true;
  }
  if (add_source) AddScrapeSource(RedisMetricsText);
}

std::string RedisMetricsText() {
  std::map<std::string, Totals> by_label;
  {
    Registered& r = Registry();
    std::lock_guard<std::mutex> lock(r.mu);
    for (const auto& [label, weak] : r.clients) {
      if (auto client = weak.lock()) Add(client->metrics(), &by_label[Escaped(label)]);
    }
  }
  if (by_label.empty()) return "";
  std::ostringstream out;
  auto family = [&](const char* name, const char* type, const char* help, auto value) {
    out << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
    for (const auto& [label, t] : by_label) {
      out << name << "{backend=\"" << label << "\"} " << value(t) << "\n";
    }
  };
  family("im_redis_commands_total", "counter",
         "Redis commands sent (a pipeline of N commands counts N)",
         [](const Totals& t) { return t.commands; });
  family("im_redis_round_trips_total", "counter",
         "Redis round trips attempted (a pipeline counts one)",
         [](const Totals& t) { return t.round_trips; });
  family("im_redis_errors_total", "counter",
         "Redis calls that failed (503 unavailable or 500 internal) and error replies",
         [](const Totals& t) { return t.errors; });
  family("im_redis_timeouts_total", "counter",
         "Redis round trips that got no reply within command_timeout_ms",
         [](const Totals& t) { return t.timeouts; });
  family("im_redis_connects_total", "counter", "Redis connections opened",
         [](const Totals& t) { return t.connects; });
  family("im_redis_connect_failures_total", "counter",
         "Redis connects that failed (refused, timed out, AUTH or SELECT refused)",
         [](const Totals& t) { return t.connect_failures; });
  family("im_redis_pool_in_use", "gauge", "Pooled Redis connections held by a call right now",
         [](const Totals& t) { return t.in_use; });
  family("im_redis_pool_waits_total", "counter",
         "Redis calls that had to wait for a free pooled connection",
         [](const Totals& t) { return t.pool_waits; });
  constexpr const char* kLatency = "im_redis_round_trip_seconds";
  out << "# HELP " << kLatency << " Latency of completed Redis round trips\n# TYPE " << kLatency
      << " histogram\n";
  for (const auto& [label, t] : by_label) {
    uint64_t cumulative = 0;
    for (size_t i = 0; i < RedisMetrics::kLatencyBoundsUs.size(); ++i) {
      cumulative += t.buckets[i];
      out << kLatency << "_bucket{backend=\"" << label << "\",le=\""
          << static_cast<double>(RedisMetrics::kLatencyBoundsUs[i]) / 1e6 << "\"} " << cumulative
          << "\n";
    }
    cumulative += t.buckets[RedisMetrics::kLatencyBoundsUs.size()];
    out << kLatency << "_bucket{backend=\"" << label << "\",le=\"+Inf\"} " << cumulative << "\n";
    out << kLatency << "_sum{backend=\"" << label << "\"} "
        << static_cast<double>(t.latency_us_sum) / 1e6 << "\n";
    out << kLatency << "_count{backend=\"" << label << "\"} " << cumulative << "\n";
  }
  return out.str();
}

}  // namespace im::internal
