// What the attack suite's cases share (tests/integration/attack_test.cc and
// attack_regressions_test.cc): the canary's bounds and check, the "still serving" check, and
// small HTTP, metrics and frame helpers. Call the checks from a doctest case.
#ifndef IM_TESTS_SUPPORT_ATTACK_H_
#define IM_TESTS_SUPPORT_ATTACK_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "support/canary.h"
#include "support/test_server.h"

namespace im::test::attack {

// The canary's worst send-to-push and send-to-ack latency while an attack runs. Unloaded, both
// take about a millisecond on loopback; the bound is a thousand times that, for a shared
// 2-core machine running other builds and tests, the sanitizers' slowdown, and the attack's
// own CPU use. What it must catch is what the attacks used to do: stall chat for seconds
// (under password guessing, 77 of 173 sends took over 5 s).
inline constexpr double kCanaryMaxLatencyMs = 1000;
// Each attack runs at least this long, so that the canary (a message every 50 ms) samples it,
// and the canary must have sent this many messages.
inline constexpr std::chrono::milliseconds kMinAttackTime{1000};
inline constexpr size_t kCanaryMinSent = 10;

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kAsan = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kAsan = true;
#else
inline constexpr bool kAsan = false;
#endif
#else
inline constexpr bool kAsan = false;
#endif

double MsSince(std::chrono::steady_clock::time_point t);

// Checks (doctest CHECKs) that every canary message was acked and pushed, none refused or
// lost, both connections open, and the worst latencies under kCanaryMaxLatencyMs.
void CheckCanary(const CanaryReport& r);

// Checks that the server still serves: a fresh TCP connection logs in (waiting out a rate
// limit the attack left on this address, as a client told retry_after_ms would, up to 10 s)
// and a chat.send is stored.
void CheckStillServing(TestServer& ts);

struct HttpAnswer {
  int status = 0;  // 0: no answer (connection dropped)
  std::string headers;
  std::string body;
  std::string error;            // the JSON body's "error"
  int64_t retry_after_ms = -1;  // the JSON body's "retry_after_ms"
};
// One request on a fresh connection to 127.0.0.1:port (Content-Length set for a body or a
// POST); reads until the server closes. No answer within timeout_ms: status 0.
HttpAnswer Http(uint16_t port, const std::string& method, const std::string& target,
                const std::string& body = "", int timeout_ms = 10000);

// GET /metrics as text ("" on failure); `ms` gets the scrape's wall time.
std::string MetricsText(TestServer& ts, double* ms);
// Sample lines of a Prometheus text exposition (one per series, and per histogram bucket).
size_t SampleLines(const std::string& text);
// One series' value, as "name{labels}"; 0 when absent, -1 when the scrape failed.
double Metric(TestServer& ts, const std::string& series);

// Polls `done` every 20 ms until it holds (true) or `timeout` passes (false).
template <typename Done>
bool WaitFor(Done done, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (done()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// Whether `user` of tenant "default" has a session.
bool Online(TestServer& ts, const std::string& user);

// `s` escaped for the inside of a JSON string (RawClient::Call puts `cmd` between quotes).
std::string Escaped(const std::string& s);
// Bytes outside printable ASCII as \xNN, for failure messages.
std::string Printable(const std::string& s);
// Every byte as %XX.
std::string PercentEncode(const std::string& s);

// Sends `frames` on `c` in batches under max_pending_commands and collects one answer per
// frame (there must be no pushes to `c`): how many answers had each code (-1: no answer).
std::map<int, size_t> Pipeline(RawClient& c, const std::vector<std::string>& frames);

}  // namespace im::test::attack

#endif  // IM_TESTS_SUPPORT_ATTACK_H_
