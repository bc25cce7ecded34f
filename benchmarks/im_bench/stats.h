// im-bench: latency histograms, per-thread counters and the result of one run.
#ifndef IM_BENCH_STATS_H_
#define IM_BENCH_STATS_H_

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace imbench {

// Log-linear histogram of nanosecond values: 128 buckets per power of two (under 0.8% error),
// values up to about 2^42 ns (73 minutes). Fixed size, no allocation when recording.
class Histogram {
 public:
  Histogram();
  void Record(int64_t ns);
  void Merge(const Histogram& other);
  uint64_t count() const { return count_; }
  // The value at quantile q (0..1) in nanoseconds; 0 when empty.
  int64_t Quantile(double q) const;
  int64_t max() const { return max_; }

 private:
  static constexpr int kSubBits = 7;
  static constexpr int kBuckets = (42 - kSubBits + 2) << kSubBits;
  static int Index(uint64_t v);
  static int64_t Midpoint(int index);
  std::vector<uint64_t> buckets_;
  uint64_t count_ = 0;
  int64_t max_ = 0;
};

// Counters of one client thread. Plain fields are written by that thread only and read after
// it stopped; the atomics are progress readable from the main thread meanwhile.
struct ThreadStats {
  Histogram delivery;  // send -> receiver got it (measured interval only)
  Histogram ack;       // send -> the server's ack (chat.send response, PUBACK, 'a')
  Histogram login;     // connect start -> login response
  uint64_t delivered = 0;  // in the measured interval
  uint64_t acked = 0;      // in the measured interval
  uint64_t logins = 0;     // in the measured interval
  uint64_t sent_total = 0;
  uint64_t acked_total = 0;
  std::atomic<uint64_t> delivered_total{0};
  std::atomic<uint64_t> ready{0};      // clients logged in (setup progress)
  std::atomic<uint64_t> failed{0};     // clients that failed to log in
  std::atomic<uint64_t> errors{0};     // error responses, unexpected closes, lost messages
  std::atomic<uint64_t> sync_done{0};  // sync scenario: the pull finished
  void Error(const std::string& what) {
    errors.fetch_add(1, std::memory_order_relaxed);
    if (has_error_.exchange(true, std::memory_order_relaxed)) return;
    std::lock_guard<std::mutex> lock(mu_);
    first_error_ = what;
  }
  // The first error's text, for the note ("" when none); from any thread.
  std::string FirstError() {
    std::lock_guard<std::mutex> lock(mu_);
    return first_error_;
  }

 private:
  std::atomic<bool> has_error_{false};
  std::mutex mu_;
  std::string first_error_;
};

// One row of the table and one JSON line.
struct RunResult {
  std::string target;    // im-tcp, im-ws, mqtt, ceiling
  std::string scenario;  // login, chat, group, sync, idle
  std::string variant;   // "qos0"/"qos1" for mqtt, "" otherwise
  std::string mode;      // chat: "window" or "rate"; login: "churn" or "established"
  std::string label;
  // Parameters as (name, JSON value) and their short text for the table.
  std::vector<std::pair<std::string, std::string>> params;
  std::string params_text;
  double rate = 0;   // the headline figure
  std::string unit;  // "logins/s", "deliveries/s", "messages/s", "KiB/conn"
  double seconds = 0;
  bool has_latency = false;
  Histogram latency;  // delivery or login latency
  std::string latency_name;  // "delivery" or "login"
  bool has_ack = false;
  Histogram ack;
  uint64_t errors = 0;
  std::string note;
  std::vector<std::pair<std::string, double>> extra;  // scenario-specific numbers

  void Param(const std::string& name, double v);
  void Param(const std::string& name, const std::string& v);
};

// A rate or size as the tables print it: no decimals from 100 up, two below.
std::string Figure(double v);

void PrintTableHeader();
void PrintTableRow(const RunResult& r);
// Appends `r` as one JSON line to `path`; false (with a message) on failure.
bool AppendJson(const std::string& path, const RunResult& r);

}  // namespace imbench

#endif  // IM_BENCH_STATS_H_
