// RedisClient: a small synchronous connection pool over hiredis, shared by the Redis backends
// (lib/store/redis/), plus one pipelined connection for calls that do not wait (EvalAsync).
// Commands go in as argument vectors and replies come back as owned RedisReply values; the only
// hiredis type named here is the opaque redisContext of the connection helpers at the end, for
// the code in lib/store/redis and lib/route that reads a connection itself (pub/sub).
//
//   auto client = RedisClient::Create(options);                  // 400 for a bad URL
//   Result<RedisReply> r = (*client)->Command({"GET", key});    // one round trip
//   Result<std::vector<RedisReply>> rs = (*client)->Pipeline({{"GET", a}, {"GET", b}});
//   static RedisScript kScript("return redis.call('GET', KEYS[1])");
//   Result<RedisReply> v = (*client)->Eval(kScript, {key}, {});  // EVALSHA, NOSCRIPT fallback
//   Result<RedisArgs> call = (*client)->EvalCommand(kScript, {key}, {});  // for a Pipeline
//   (*client)->EvalAsync(kScript, {key}, {}, [](Result<RedisReply> r) { ... });  // pipelined
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
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "im/redis.h"
#include "im/result.h"
#include "im/status.h"

struct redisContext;  // hiredis

namespace im::internal {

class RedisPipe;

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
  // EvalAsync calls written again because they did not run (NOSCRIPT, or behind one).
  std::atomic<uint64_t> resends{0};
  // Round-trip latency of completed round trips: sum and counts per bucket (not cumulative;
  // latency_buckets[i] counts latencies <= kLatencyBoundsUs[i] and above the bound before).
  std::atomic<uint64_t> latency_us_sum{0};
  std::array<std::atomic<uint64_t>, kLatencyBoundsUs.size() + 1> latency_buckets{};

  // Counts one completed round trip (or pipelined call) of `us` microseconds.
  void RecordLatency(int64_t us);
};

// Checks once per connection. A script may end its ARGV with kRedisConnectionCheck: the client
// sends "1" in its place on a connection that has not passed the check since it was opened, and
// "0" on one that has. A call sent with "1" passes it when its reply is neither an error reply
// nor an array that starts with kRedisCheckFailed. The script does its check (an INFO, say) on
// "1" only: for a property of the server process that cannot change while a connection lives.
inline constexpr std::string_view kRedisConnectionCheck = "\x01im:connection-check";
inline constexpr std::string_view kRedisCheckFailed = "restarted";
bool RedisCheckPassed(const RedisReply& reply);

// An error reply of a Redis that runs nothing yet (LOADING, BUSY, MASTERDOWN): the command did
// not run, and the caller gets 503 as for an unreachable Redis.
bool IsRedisNotServing(const RedisReply& reply);

// The answer of an EvalAsync call.
using RedisDone = std::function<void(Result<RedisReply>)>;

// Connection helpers, shared by the pool, the pipelined connection and the router's subscriber.
//
// Opens a blocking connection to `url` within connect_timeout_ms, with TCP keepalive, sends
// AUTH when the URL has a password, then each of `then` (SELECT, SUBSCRIBE, ...), every reply
// read before the next command (bounded by the connect timeout too); leaves the command timeout
// (SO_RCVTIMEO/SO_SNDTIMEO) set. nullptr and the reason in `why` on failure.
redisContext* OpenRedisContext(const RedisUrl& url, const RedisOptions& options,
                               const std::vector<RedisArgs>& then, std::string* why);
void CloseRedisContext(redisContext* context);
// Appends one command to the context's output buffer (redisAppendCommandArgv); false when out
// of memory.
bool AppendRedisCommand(redisContext* context, const RedisArgs& args);
// The same, with a last argument kRedisConnectionCheck sent as "0" when `checked`, else "1";
// `*asked` says whether the command had one.
bool AppendCheckedCommand(redisContext* context, const RedisArgs& args, bool checked,
                          bool* asked);
// The same for a command given as its arguments' pointers and lengths (no copy of the strings);
// rewrites a last kRedisConnectionCheck in place.
bool AppendCheckedArgv(redisContext* context, std::vector<const char*>& argv,
                       std::vector<size_t>& lengths, bool checked, bool* asked);
// Converts a hiredis reply (redisReply*) into an owned RedisReply.
RedisReply ConvertRedisReply(const void* reply);

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

  // Eval without waiting, on this client's one pipelined connection (opened at the first call,
  // with its own I/O thread `im-redis-pipe`): the call is written at once behind the calls
  // still unanswered, and `done` gets what Eval would return, once, on that I/O thread. Calls
  // run in Redis in call order and their `done`s run in call order (one caller thread's order;
  // calls from several threads are ordered as they enter). A `done` must not block for long:
  // the replies behind it wait for it.
  //
  // Order across a NOSCRIPT (a script flushed or Redis replaced mid-pipeline): every script on
  // this connection is run in a wrapper that first checks and advances a fence key of the
  // connection (im:fence:<token>, PX 1 hour, one more command per call). A call whose
  // predecessor did not run finds the fence behind and does nothing (IMFENCED), so after a
  // NOSCRIPT the scripts are loaded again and that call and every later one are sent again, in
  // order, under a new fence key: none of them ran twice or out of order. A call sent three
  // times without running answers 500.
  //
  // Errors, as Eval: 503 when the connection breaks or Redis sends no reply for
  // command_timeout_ms while a call is due (the connection is closed; every call written to it
  // and unanswered gets 503, in order: it may or may not have run; the next call opens a new
  // connection, with the pool's reconnect backoff rules), 500 for an error reply. At most
  // kMaxPipelined calls are pending (queued or unanswered); a caller beyond that waits up to
  // command_timeout_ms for room, and then its call is answered 503 (after the calls before it)
  // without being sent. The first call of a script loads it through the pool (one blocking round
  // trip; 503 then answers that call, in order).
  static constexpr size_t kMaxPipelined = 128;
  void EvalAsync(const RedisScript& script, RedisArgs keys, RedisArgs args, RedisDone done);

  RedisMetrics& metrics() { return metrics_; }
  const RedisUrl& url() const { return url_; }
  const RedisOptions& options() const { return options_; }

 private:
  friend class RedisPipe;  // connects through Connect (the backoff is shared) and loads scripts
  struct Connection {
    ~Connection() { Close(); }
    void Close() {
      CloseRedisContext(context);
      context = nullptr;
    }
    redisContext* context = nullptr;
    uint64_t generation = 0;  // the pool's generation when it connected
    bool checked = false;     // passed kRedisConnectionCheck since it connected
  };
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

  std::once_flag pipe_once_;
  std::unique_ptr<RedisPipe> pipe_;  // EvalAsync's connection; created once
};


}  // namespace im::internal

#endif  // IM_STORE_REDIS_REDIS_CLIENT_H_
