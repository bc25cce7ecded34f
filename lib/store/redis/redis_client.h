// RedisClient: a small synchronous connection pool over hiredis, shared by the Redis backends
// (lib/store/redis/). No hiredis type leaves redis_client.cc: commands go in as argument
// vectors and replies come back as owned RedisReply values.
//
//   auto client = RedisClient::Create(options);                  // 400 for a bad URL
//   Result<RedisReply> r = (*client)->Command({"GET", key});    // one round trip
//   Result<std::vector<RedisReply>> rs = (*client)->Pipeline({{"GET", a}, {"GET", b}});
//   static RedisScript kScript("return redis.call('GET', KEYS[1])");
//   Result<RedisReply> v = (*client)->Eval(kScript, {key}, {});  // EVALSHA, NOSCRIPT fallback
//   Result<RedisArgs> call = (*client)->EvalCommand(kScript, {key}, {});  // for a Pipeline
//
// Errors (as im::Status, so they reach a client response untranslated):
// - 503 "unavailable": Redis refused or dropped the connection, a connect or command timed out,
//   the pool had no free connection within command_timeout_ms, a reconnect is backing off, or
//   Redis answered that it runs nothing yet (LOADING its dataset after a restart, BUSY with a
//   script past its time limit, MASTERDOWN). The message says which. Nothing is retried here: a write whose reply was lost may or may
//   not have happened, and only the caller knows whether repeating it is safe.
// - 500 "internal": Redis answered with an error reply (its text is in the message), or a reply
//   of an unexpected shape.
//
// Connections: opened on demand, at most pool_size; each gets TCP keepalive, the command
// timeout (SO_RCVTIMEO/SO_SNDTIMEO) and SELECT db. A connection that failed (I/O error or
// timeout) is closed and reopened on its next use. A connection refused or reset also marks
// every other idle connection stale (they most likely point at the same dead server process),
// so a Redis restart costs one 503 per in-flight call, not one per pooled connection.
//
// Thread-safety: every method is safe from any thread; a call holds one pooled connection for
// its round trip.
#ifndef IM_STORE_REDIS_REDIS_CLIENT_H_
#define IM_STORE_REDIS_REDIS_CLIENT_H_

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "im/redis.h"
#include "im/result.h"
#include "im/status.h"

namespace im::internal {

// The parts of a redis:// URL (RedisOptions::url).
struct RedisUrl {
  std::string host;
  int port = 6379;
  int db = 0;
  std::string user;      // empty: AUTH with the password alone (or no AUTH)
  std::string password;  // empty: no AUTH
};

// 400 bad_request naming what is wrong: another scheme, no host, a port outside 1..65535, a db
// that is not a number in 0..1000000, an IPv6 literal (not supported).
Result<RedisUrl> ParseRedisUrl(std::string_view url);

// One reply, owned. `str` holds the bytes of a bulk string, a status line or an error reply.
struct RedisReply {
  enum class Type { kNil, kString, kStatus, kInteger, kArray, kError };
  Type type = Type::kNil;
  std::string str;
  int64_t integer = 0;
  std::vector<RedisReply> elements;

  bool is_nil() const { return type == Type::kNil; }
  bool is_error() const { return type == Type::kError; }
  bool is_string() const { return type == Type::kString; }
  bool is_integer() const { return type == Type::kInteger; }
  bool is_array() const { return type == Type::kArray; }
};

// One command: its name and arguments (binary-safe).
using RedisArgs = std::vector<std::string>;

// A Lua script run with EVALSHA. Its SHA1 is learnt from SCRIPT LOAD at the first use (and again
// after NOSCRIPT: a server restarted or flushed by SCRIPT FLUSH has forgotten it). Declare one
// per script, for example as a function-local static; safe from any thread.
class RedisScript {
 public:
  explicit RedisScript(std::string source) : source_(std::move(source)) {}
  const std::string& source() const { return source_; }
  std::string sha1() const;             // "" until the first SCRIPT LOAD
  void set_sha1(std::string sha1) const;

 private:
  const std::string source_;
  mutable std::mutex mu_;
  mutable std::string sha1_;
};

// Counters for metrics, plain atomics (relaxed), for an exporter to read.
struct RedisMetrics {
  // Upper bounds of the latency buckets, in microseconds; a last bucket holds the rest.
  static constexpr std::array<int64_t, 12> kLatencyBoundsUs = {
      100, 250, 500, 1'000, 2'500, 5'000, 10'000, 25'000, 50'000, 100'000, 250'000, 1'000'000};

  std::atomic<uint64_t> commands{0};     // commands sent (a pipeline of N counts N)
  std::atomic<uint64_t> round_trips{0};  // round trips attempted (a pipeline counts 1)
  std::atomic<uint64_t> errors{0};       // calls that failed (503 or 500), and error replies
  std::atomic<uint64_t> timeouts{0};     // of which: command timeouts
  std::atomic<uint64_t> connects{0};     // connections opened
  std::atomic<uint64_t> connect_failures{0};
  std::atomic<int64_t> in_use{0};        // connections held by a call right now
  std::atomic<uint64_t> pool_waits{0};   // calls that had to wait for a free connection
  // Round-trip latency of completed round trips: sum and counts per bucket (not cumulative;
  // latency_buckets[i] counts latencies <= kLatencyBoundsUs[i] and above the bound before).
  std::atomic<uint64_t> latency_us_sum{0};
  std::array<std::atomic<uint64_t>, kLatencyBoundsUs.size() + 1> latency_buckets{};
};

class RedisClient {
 public:
  // Checks the options (400 for a bad URL, a pool_size below 1 or a timeout below 1 ms);
  // connects nothing yet.
  static Result<std::shared_ptr<RedisClient>> Create(const RedisOptions& options);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // One command, one round trip. An error reply is 500 internal with Redis's text.
  Result<RedisReply> Command(const RedisArgs& args);

  // Every command in one round trip (written together, then the replies read in order). One
  // reply per command, in order; an error reply of one command is returned in its place (type
  // kError), the others are unaffected. Commands run in order but not atomically (use a script
  // for that). A 503 means some, all or none of them may have run. An empty list: no round trip.
  //
  // Scripts in a pipeline: an EVALSHA built by EvalCommand that Redis answers with NOSCRIPT did
  // not run; the script is loaded again and those commands alone are sent once more, in their
  // order, in a second round trip (so they run after the rest of the pipeline). Their replies
  // take their places.
  Result<std::vector<RedisReply>> Pipeline(const std::vector<RedisArgs>& commands);

  // EVALSHA `script` with KEYS and ARGV. When Redis does not know the script (NOSCRIPT: never
  // loaded, restarted, SCRIPT FLUSH), loads it with SCRIPT LOAD and runs it again, once; a
  // script that did not run cannot have written anything. An error reply is 500 internal.
  Result<RedisReply> Eval(const RedisScript& script, const RedisArgs& keys, const RedisArgs& args);

  // The EVALSHA command of `script` with KEYS and ARGV, for a Pipeline. Loads the script first
  // (one round trip, 503 when that fails) when its SHA1 is not known yet.
  Result<RedisArgs> EvalCommand(const RedisScript& script, const RedisArgs& keys,
                                const RedisArgs& args);

  RedisMetrics& metrics() { return metrics_; }
  const RedisUrl& url() const { return url_; }

 private:
  struct Connection;
  // A pooled connection, checked out for one call; returned to the pool when destroyed.
  class Lease;

  RedisClient(const RedisOptions& options, RedisUrl url);

  // Waits up to command_timeout_ms for a free slot and connects it when needed.
  Result<Lease> Acquire();
  void Release(std::unique_ptr<Connection> connection, bool broken, bool server_gone);
  Status Connect(Connection* connection);
  // Sends `commands` on `lease` and reads one reply each.
  Result<std::vector<RedisReply>> RoundTrip(Lease& lease, const std::vector<RedisArgs>& commands);
  Result<std::vector<RedisReply>> Run(const std::vector<RedisArgs>& commands);
  Result<RedisReply> LoadScript(const RedisScript& script);
  // Runs `commands`, then once more those that were an EVALSHA of a known script answered
  // with NOSCRIPT, after loading the script again.
  Result<std::vector<RedisReply>> RunWithScripts(const std::vector<RedisArgs>& commands);

  const RedisOptions options_;
  const RedisUrl url_;
  RedisMetrics metrics_;

  std::mutex mu_;
  std::condition_variable freed_;
  std::vector<std::unique_ptr<Connection>> idle_;  // guarded by mu_
  int open_slots_ = 0;                              // leased or idle; guarded by mu_
  uint64_t generation_ = 0;       // bumped when the server went away; guarded by mu_
  int connect_failures_ = 0;      // in a row; guarded by mu_
  std::chrono::steady_clock::time_point next_connect_{};  // backoff; guarded by mu_

  std::mutex scripts_mu_;
  // SHA1 -> source of every script this client loaded, to load one again on NOSCRIPT.
  std::unordered_map<std::string, std::string> scripts_;  // guarded by scripts_mu_
};

}  // namespace im::internal

#endif  // IM_STORE_REDIS_REDIS_CLIENT_H_
