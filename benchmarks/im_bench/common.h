// im-bench: shared options, clock and small helpers.
#ifndef IM_BENCH_COMMON_H_
#define IM_BENCH_COMMON_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace imbench {

// Every flag of every scenario (unused ones keep their defaults).
struct Options {
  std::string scenario;
  std::string target;  // im-tcp, im-ws, mqtt, ceiling
  std::string host = "127.0.0.1";
  int port = 0;
  // Several servers (the nodes of a cluster): client i connects to ports[i % size]. Empty: port.
  std::vector<int> ports;
  // A redis-server the servers use: its commands and round trips per message (chat, group).
  int redis_port = 0;
  std::string key;    // hex HS256 key of the tenant (im targets)
  std::string tenant = "default";
  // tenant-flood: the probe pair's tenant and its key (empty: --key).
  std::string tenant_b;
  std::string key_b;
  std::string ws_path = "/ws";
  double seconds = 10;
  double warmup = 2;
  std::string json;
  std::string label;
  int threads = 1;
  // login
  std::string login_mode = "churn";  // churn or established
  int concurrency = 64;              // established: 256 unless given
  int login_connections = 5000;      // established: connections per round
  // chat
  int pairs = 50;
  int window = 16;
  int body = 100;
  double rate = 0;  // total messages/s; 0 = window mode
  bool sweep = false;  // a point of the fixed-rate sweep (mode "sweep" instead of "rate")
  // group
  int members = 1000;
  int online = -1;  // -1 = all members
  int senders = 1;
  int qos = 1;
  // fairness and tenant-flood: a separate 1:1 pair sends one message every this many ms
  // during a flood
  int probe_interval_ms = 20;
  // sync
  int backlog = 20000;
  // idle
  int connections = 10000;
  int server_pid = 0;
};

inline int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

inline int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

inline bool Contains(std::string_view text, std::string_view what) {
  return text.find(what) != std::string_view::npos;
}

// The unsigned integer right after `key` (e.g. `"id":`) in a flat JSON text; -1 when absent.
inline int64_t IntAfter(std::string_view text, std::string_view key, size_t from = 0) {
  size_t at = text.find(key, from);
  if (at == std::string_view::npos) return -1;
  at += key.size();
  int64_t v = -1;
  for (; at < text.size() && text[at] >= '0' && text[at] <= '9'; ++at) {
    v = (v < 0 ? 0 : v * 10) + (text[at] - '0');
  }
  return v;
}

// The measured interval and the stop flag of the current run, readable from every thread.
struct RunClock {
  std::atomic<int64_t> measure_start_ns{INT64_MAX};
  std::atomic<int64_t> measure_end_ns{INT64_MAX};
  std::atomic<bool> stopping{false};

  bool InWindow(int64_t now) const {
    return now >= measure_start_ns.load(std::memory_order_relaxed) &&
           now < measure_end_ns.load(std::memory_order_relaxed);
  }
};
extern RunClock g_run;

// A short id unique to this run (base36 milliseconds), prefixed to user ids, group ids and
// cids so repeated runs against one server never collide.
const std::string& RunId();
// `v` in base 36 (digits, then lower-case letters).
std::string Base36(uint64_t v);

// HS256 JWT with sub=user, ten=tenant, exp=now+ttl (key: raw bytes).
std::string MintToken(const std::string& raw_key, const std::string& user,
                      const std::string& tenant, int64_t ttl_s);
// Hex to bytes; false on bad hex.
bool HexDecode(const std::string& hex, std::string* out);

// Test message payloads: "T<send ns>.<sender>.<seq>." then filler up to `size` bytes.
void BuildPayload(std::string* out, int64_t sent_ns, uint32_t sender, uint64_t seq, size_t size);
// Parses what BuildPayload wrote; false when `text` is not a test payload.
bool ParsePayload(std::string_view text, int64_t* sent_ns, uint32_t* sender, uint64_t* seq);

}  // namespace imbench

#endif  // IM_BENCH_COMMON_H_
