#include "store/redis/redis_client.h"

#include <errno.h>
#include <hiredis.h>
#include <sys/time.h>

#include <algorithm>
#include <charconv>
#include <utility>

#include <fmt/format.h>

#include "store/redis/no_sigpipe.h"
#include "store/redis/redis_metrics.h"
#include "store/redis/redis_pipe.h"

namespace im::internal {
namespace {

using Clock = std::chrono::steady_clock;

// Parses all of `text` as a decimal integer in [lo, hi].
bool ParseInt(std::string_view text, int lo, int hi, int* out) {
  int value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end || value < lo || value > hi) return false;
  *out = value;
  return true;
}

timeval ToTimeval(int ms) {
  timeval tv;
  tv.tv_sec = ms / 1000;
  tv.tv_usec = (ms % 1000) * 1000;
  return tv;
}

Status ErrorReply(const RedisReply& reply) { return Status::Internal("redis: " + reply.str); }

}  // namespace

bool IsRedisNotServing(const RedisReply& reply) {
  for (const char* prefix : {"LOADING ", "BUSY ", "MASTERDOWN "}) {
    if (reply.str.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

Result<RedisUrl> ParseRedisUrl(std::string_view url) {
  const std::string quoted = "redis URL \"" + std::string(url) + "\"";
  constexpr std::string_view kScheme = "redis://";
  if (url.substr(0, kScheme.size()) != kScheme) {
    return Status::BadRequest(quoted + ": must start with redis://");
  }
  std::string_view rest = url.substr(kScheme.size());
  RedisUrl out;
  if (size_t at = rest.rfind('@'); at != std::string_view::npos) {
    std::string_view credentials = rest.substr(0, at);
    rest = rest.substr(at + 1);
    size_t colon = credentials.find(':');
    if (colon == std::string_view::npos) {
      return Status::BadRequest(quoted + ": credentials must be [user]:password@");
    }
    out.user = std::string(credentials.substr(0, colon));
    out.password = std::string(credentials.substr(colon + 1));
  }
  std::string_view host_port = rest;
  if (size_t slash = rest.find('/'); slash != std::string_view::npos) {
    host_port = rest.substr(0, slash);
    std::string_view db = rest.substr(slash + 1);
    if (!db.empty() && !ParseInt(db, 0, 1'000'000, &out.db)) {
      return Status::BadRequest(quoted + ": the database after / must be a number");
    }
  }
  if (!host_port.empty() && host_port.front() == '[') {
    return Status::BadRequest(quoted + ": IPv6 addresses are not supported");
  }
  std::string_view host = host_port;
  if (size_t colon = host_port.find(':'); colon != std::string_view::npos) {
    host = host_port.substr(0, colon);
    if (!ParseInt(host_port.substr(colon + 1), 1, 65535, &out.port)) {
      return Status::BadRequest(quoted + ": the port must be a number in 1..65535");
    }
  }
  if (host.empty()) return Status::BadRequest(quoted + ": no host");
  out.host = std::string(host);
  return out;
}

RedisReply ConvertRedisReply(const void* raw) {
  const auto* reply = static_cast<const redisReply*>(raw);
  RedisReply out;
  switch (reply->type) {
    case REDIS_REPLY_STRING:
      out.type = RedisReply::Type::kString;
      out.str.assign(reply->str, reply->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = RedisReply::Type::kStatus;
      out.str.assign(reply->str, reply->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = RedisReply::Type::kError;
      out.str.assign(reply->str, reply->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::kInteger;
      out.integer = reply->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::kArray;
      out.elements.reserve(reply->elements);
      for (size_t i = 0; i < reply->elements; ++i) {
        out.elements.push_back(ConvertRedisReply(reply->element[i]));
      }
      break;
    default:  // REDIS_REPLY_NIL
      break;
  }
  return out;
}

bool AppendRedisCommand(redisContext* context, const RedisArgs& args) {
  bool asked = false;
  return AppendCheckedCommand(context, args, false, &asked);
}

bool RedisCheckPassed(const RedisReply& reply) {
  if (reply.is_error()) return false;
  return !reply.is_array() || reply.elements.empty() ||
         reply.elements[0].str != kRedisCheckFailed;
}

bool AppendCheckedCommand(redisContext* context, const RedisArgs& args, bool checked,
                          bool* asked) {
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  argv.reserve(args.size());
  lengths.reserve(args.size());
  for (const std::string& arg : args) {
    argv.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  return AppendCheckedArgv(context, argv, lengths, checked, asked);
}

bool AppendCheckedArgv(redisContext* context, std::vector<const char*>& argv,
                       std::vector<size_t>& lengths, bool checked, bool* asked) {
  *asked = argv.size() > 1 &&
           std::string_view(argv.back(), lengths.back()) == kRedisConnectionCheck;
  if (*asked) {
    argv.back() = checked ? "0" : "1";
    lengths.back() = 1;
  }
  return redisAppendCommandArgv(context, static_cast<int>(argv.size()), argv.data(),
                                lengths.data()) == REDIS_OK;
}

void CloseRedisContext(redisContext* context) {
  if (context != nullptr) redisFree(context);
}

redisContext* OpenRedisContext(const RedisUrl& url, const RedisOptions& options,
                               const std::vector<RedisArgs>& then, std::string* why) {
  NoSigpipe no_sigpipe;
  redisContext* context =
      redisConnectWithTimeout(url.host.c_str(), url.port, ToTimeval(options.connect_timeout_ms));
  if (context == nullptr) {
    *why = "out of memory";
    return nullptr;
  }
  if (context->err != 0) {
    *why = context->errstr;
    redisFree(context);
    return nullptr;
  }
  // The handshake is bounded by the connect timeout, then every command by the command timeout.
  redisSetTimeout(context, ToTimeval(options.connect_timeout_ms));
  redisEnableKeepAlive(context);
  std::vector<RedisArgs> handshake;
  if (!url.password.empty()) {
    handshake.push_back(url.user.empty() ? RedisArgs{"AUTH", url.password}
                                         : RedisArgs{"AUTH", url.user, url.password});
  }
  handshake.insert(handshake.end(), then.begin(), then.end());
  for (const RedisArgs& args : handshake) {
    void* raw = nullptr;
    if (!AppendRedisCommand(context, args) || redisGetReply(context, &raw) != REDIS_OK ||
        raw == nullptr) {
      *why = context->errstr[0] != '\0' ? context->errstr : "out of memory";
      redisFree(context);
      return nullptr;
    }
    auto* reply = static_cast<redisReply*>(raw);
    const bool error = reply->type == REDIS_REPLY_ERROR;
    if (error) *why = args[0] + " refused: " + std::string(reply->str, reply->len);
    freeReplyObject(reply);
    if (error) {
      redisFree(context);
      return nullptr;
    }
  }
  redisSetTimeout(context, ToTimeval(options.command_timeout_ms));
  return context;
}

void RedisMetrics::RecordLatency(int64_t us) {
  latency_us_sum.fetch_add(static_cast<uint64_t>(std::max<int64_t>(us, 0)),
                           std::memory_order_relaxed);
  const size_t bucket =
      std::lower_bound(kLatencyBoundsUs.begin(), kLatencyBoundsUs.end(), us) -
      kLatencyBoundsUs.begin();
  latency_buckets[bucket].fetch_add(1, std::memory_order_relaxed);
}

std::string RedisScript::sha1() const {
  std::lock_guard<std::mutex> lock(mu_);
  return sha1_;
}

void RedisScript::set_sha1(std::string sha1) const {
  std::lock_guard<std::mutex> lock(mu_);
  sha1_ = std::move(sha1);
}

class RedisClient::Lease {
 public:
  Lease(RedisClient* client, std::unique_ptr<Connection> connection)
      : client_(client), connection_(std::move(connection)) {
    client_->metrics_.in_use.fetch_add(1, std::memory_order_relaxed);
  }
  Lease(Lease&& other) noexcept
      : client_(other.client_), connection_(std::move(other.connection_)),
        broken_(other.broken_), server_gone_(other.server_gone_) {}
  Lease& operator=(Lease&&) = delete;
  ~Lease() {
    if (connection_ == nullptr) return;  // moved from
    client_->metrics_.in_use.fetch_sub(1, std::memory_order_relaxed);
    client_->Release(std::move(connection_), broken_, server_gone_);
  }

  Connection* get() { return connection_.get(); }
  // The connection must not be used again: its state is unknown (a lost or late reply).
  // `server_gone`: refused or reset, so the other idle connections are stale too.
  void MarkBroken(bool server_gone) {
    broken_ = true;
    server_gone_ = server_gone_ || server_gone;
  }

 private:
  RedisClient* client_;
  std::unique_ptr<Connection> connection_;
  bool broken_ = false;
  bool server_gone_ = false;
};

Result<std::shared_ptr<RedisClient>> RedisClient::Create(const RedisOptions& options) {
  Result<RedisUrl> url = ParseRedisUrl(options.url);
  if (!url.ok()) return url.status();
  if (options.pool_size < 1) return Status::BadRequest("redis: pool_size must be at least 1");
  if (options.connect_timeout_ms < 1 || options.command_timeout_ms < 1) {
    return Status::BadRequest("redis: timeouts must be at least 1 ms");
  }
  if (options.reconnect_min_ms < 0 || options.reconnect_max_ms < options.reconnect_min_ms) {
    return Status::BadRequest("redis: need 0 <= reconnect_min_ms <= reconnect_max_ms");
  }
  std::shared_ptr<RedisClient> client(new RedisClient(options, std::move(url).value()));
  RegisterRedisMetrics(options.metrics_label, client);
  return client;
}

RedisClient::RedisClient(const RedisOptions& options, RedisUrl url)
    : options_(options), url_(std::move(url)) {}

RedisClient::~RedisClient() = default;

void RedisClient::EvalAsync(const RedisScript& script, RedisArgs keys, RedisArgs args,
                            RedisDone done) {
  std::call_once(pipe_once_, [this] { pipe_ = std::make_unique<RedisPipe>(this); });
  pipe_->Submit(script, std::move(keys), std::move(args), std::move(done));
}

Result<RedisClient::Lease> RedisClient::Acquire() {
  std::unique_ptr<Connection> connection;
  {
    std::unique_lock<std::mutex> lock(mu_);
    auto available = [this] {
      return !idle_.empty() || open_slots_ < options_.pool_size;
    };
    if (!available()) {
      metrics_.pool_waits.fetch_add(1, std::memory_order_relaxed);
      if (!freed_.wait_for(lock, std::chrono::milliseconds(options_.command_timeout_ms),
                           available)) {
        return Status::Unavailable(fmt::format(
            "redis: all {} connections busy for {} ms", options_.pool_size,
            options_.command_timeout_ms));
      }
    }
    if (!idle_.empty()) {
      connection = std::move(idle_.back());
      idle_.pop_back();
      if (connection->generation != generation_) connection->Close();
    } else {
      connection = std::make_unique<Connection>();
      ++open_slots_;
    }
  }
  Lease lease(this, std::move(connection));
  if (lease.get()->context == nullptr) {
    if (Status s = Connect(lease.get()); !s.ok()) {
      lease.MarkBroken(false);
      return s;
    }
  }
  return lease;
}

void RedisClient::Release(std::unique_ptr<Connection> connection, bool broken,
                          bool server_gone) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (server_gone) ++generation_;
    if (broken) {
      // The slot stays: its connection is reopened on its next use.
      connection->Close();
    }
    idle_.push_back(std::move(connection));
  }
  freed_.notify_one();
}

Status RedisClient::Connect(Connection* connection) {
  const auto now = Clock::now();
  uint64_t generation = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (now < next_connect_) {
      const auto wait =
          std::chrono::duration_cast<std::chrono::milliseconds>(next_connect_ - now).count();
      return Status::Unavailable(fmt::format("redis: {}:{} unreachable, next connect in {} ms",
                                             url_.host, url_.port, wait));
    }
    generation = generation_;
  }
  auto fail = [this](const std::string& why) {
    metrics_.connect_failures.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard<std::mutex> lock(mu_);
    ++connect_failures_;
    int64_t backoff = options_.reconnect_min_ms;
    for (int i = 1; i < connect_failures_ && backoff < options_.reconnect_max_ms; ++i) backoff *= 2;
    backoff = std::min<int64_t>(backoff, options_.reconnect_max_ms);
    next_connect_ = Clock::now() + std::chrono::milliseconds(backoff);
    return Status::Unavailable(
        fmt::format("redis: cannot connect to {}:{}: {}", url_.host, url_.port, why));
  };

  connection->Close();
  std::vector<RedisArgs> select;
  if (url_.db != 0) select.push_back({"SELECT", std::to_string(url_.db)});
  std::string why;
  connection->context = OpenRedisContext(url_, options_, select, &why);
  if (connection->context == nullptr) return fail(why);
  metrics_.connects.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(mu_);
  connect_failures_ = 0;
  next_connect_ = {};
  connection->generation = generation;
  connection->checked = false;
  return Status::OK();
}

Result<std::vector<RedisReply>> RedisClient::RoundTrip(Lease& lease,
                                                      const std::vector<RedisArgs>& commands) {
  Connection* connection = lease.get();
  redisContext* context = connection->context;
  NoSigpipe no_sigpipe;
  std::vector<size_t> asked_check;  // commands sent with kRedisConnectionCheck "1"
  for (size_t i = 0; i < commands.size(); ++i) {
    bool asked = false;
    if (!AppendCheckedCommand(context, commands[i], connection->checked, &asked)) {
      lease.MarkBroken(false);
      return Status::Internal("redis: cannot build a command (out of memory)");
    }
    if (asked && !connection->checked) asked_check.push_back(i);
  }
  metrics_.commands.fetch_add(commands.size(), std::memory_order_relaxed);
  metrics_.round_trips.fetch_add(1, std::memory_order_relaxed);
  std::vector<RedisReply> replies;
  replies.reserve(commands.size());
  for (size_t i = 0; i < commands.size(); ++i) {
    void* raw = nullptr;
    errno = 0;
    const int rc = redisGetReply(context, &raw);
    const int saved_errno = errno;
    if (rc != REDIS_OK || raw == nullptr) {
      const bool timeout = context->err == REDIS_ERR_IO &&
                           (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK);
      lease.MarkBroken(!timeout);
      if (timeout) {
        metrics_.timeouts.fetch_add(1, std::memory_order_relaxed);
        return Status::Unavailable(fmt::format("redis: no reply from {}:{} within {} ms",
                                               url_.host, url_.port, options_.command_timeout_ms));
      }
      return Status::Unavailable(
          fmt::format("redis: connection to {}:{} lost: {}", url_.host, url_.port,
                      context->errstr[0] != '\0' ? context->errstr : "closed"));
    }
    auto* reply = static_cast<redisReply*>(raw);
    replies.push_back(ConvertRedisReply(reply));
    freeReplyObject(reply);
  }
  for (size_t i : asked_check) {
    if (RedisCheckPassed(replies[i])) connection->checked = true;
  }
  return replies;
}

Result<std::vector<RedisReply>> RedisClient::Run(const std::vector<RedisArgs>& commands) {
  if (commands.empty()) return std::vector<RedisReply>();
  Result<Lease> lease = Acquire();
  if (!lease.ok()) {
    metrics_.errors.fetch_add(1, std::memory_order_relaxed);
    return lease.status();
  }
  const auto start = Clock::now();
  Result<std::vector<RedisReply>> replies = RoundTrip(*lease, commands);
  if (!replies.ok()) {
    metrics_.errors.fetch_add(1, std::memory_order_relaxed);
    return replies;
  }
  metrics_.RecordLatency(
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count());
  for (const RedisReply& reply : *replies) {
    if (!reply.is_error()) continue;
    metrics_.errors.fetch_add(1, std::memory_order_relaxed);
    // Redis is up but runs nothing yet: loading its dataset after a restart, a script past its
    // time limit, a replica cut off from its primary. Like an unreachable Redis: 503, retry.
    if (IsRedisNotServing(reply)) return Status::Unavailable("redis: " + reply.str);
  }
  return replies;
}

Result<RedisReply> RedisClient::Command(const RedisArgs& args) {
  Result<std::vector<RedisReply>> replies = Run({args});
  if (!replies.ok()) return replies.status();
  RedisReply& reply = replies->front();
  if (reply.is_error()) return ErrorReply(reply);
  return std::move(reply);
}

Result<std::vector<RedisReply>> RedisClient::Pipeline(const std::vector<RedisArgs>& commands) {
  return RunWithScripts(commands);
}

Result<RedisReply> RedisClient::LoadScript(const RedisScript& script) {
  Result<RedisReply> sha = Command({"SCRIPT", "LOAD", script.source()});
  if (!sha.ok()) return sha;
  if (!sha->is_string()) return Status::Internal("redis: SCRIPT LOAD did not answer a SHA1");
  script.set_sha1(sha->str);
  std::lock_guard<std::mutex> lock(scripts_mu_);
  scripts_.emplace(sha->str, script.source());
  return sha;
}

Result<RedisArgs> RedisClient::EvalCommand(const RedisScript& script, const RedisArgs& keys,
                                           const RedisArgs& args) {
  std::string sha1 = script.sha1();
  bool known = false;
  if (!sha1.empty()) {
    std::lock_guard<std::mutex> lock(scripts_mu_);
    known = scripts_.count(sha1) != 0;
  }
  // Loaded through this client at least once, so a NOSCRIPT can be answered by a reload.
  if (!known) {
    Result<RedisReply> loaded = LoadScript(script);
    if (!loaded.ok()) return loaded.status();
    sha1 = loaded->str;
  }
  RedisArgs command;
  command.reserve(3 + keys.size() + args.size());
  command.push_back("EVALSHA");
  command.push_back(std::move(sha1));
  command.push_back(std::to_string(keys.size()));
  command.insert(command.end(), keys.begin(), keys.end());
  command.insert(command.end(), args.begin(), args.end());
  return command;
}

Result<std::vector<RedisReply>> RedisClient::RunWithScripts(
    const std::vector<RedisArgs>& commands) {
  Result<std::vector<RedisReply>> replies = Run(commands);
  if (!replies.ok()) return replies;
  std::vector<size_t> again;
  for (size_t i = 0; i < commands.size(); ++i) {
    const RedisReply& reply = (*replies)[i];
    if (reply.is_error() && reply.str.rfind("NOSCRIPT", 0) == 0 && commands[i].size() >= 2 &&
        commands[i][0] == "EVALSHA") {
      again.push_back(i);
    }
  }
  if (again.empty()) return replies;
  std::vector<RedisArgs> retry;
  std::vector<size_t> retry_index;
  std::vector<std::string> loaded_sha1s;
  for (size_t i : again) {
    const std::string& sha1 = commands[i][1];
    if (std::find(loaded_sha1s.begin(), loaded_sha1s.end(), sha1) == loaded_sha1s.end()) {
      std::string source;
      {
        std::lock_guard<std::mutex> lock(scripts_mu_);
        auto it = scripts_.find(sha1);
        if (it != scripts_.end()) source = it->second;
      }
      if (source.empty()) continue;  // not loaded by this client: its NOSCRIPT reply stays
      Result<RedisReply> loaded = Command({"SCRIPT", "LOAD", source});
      if (!loaded.ok()) return loaded.status();
      loaded_sha1s.push_back(sha1);
    }
    retry.push_back(commands[i]);
    retry_index.push_back(i);
  }
  if (retry.empty()) return replies;
  // Expected and handled here: not counted as errors.
  metrics_.errors.fetch_sub(retry.size(), std::memory_order_relaxed);
  Result<std::vector<RedisReply>> retried = Run(retry);
  if (!retried.ok()) return retried;
  for (size_t k = 0; k < retry.size(); ++k) (*replies)[retry_index[k]] = std::move((*retried)[k]);
  return replies;
}

Result<RedisReply> RedisClient::Eval(const RedisScript& script, const RedisArgs& keys,
                                     const RedisArgs& args) {
  Result<RedisArgs> command = EvalCommand(script, keys, args);
  if (!command.ok()) return command.status();
  Result<std::vector<RedisReply>> replies = RunWithScripts({std::move(command).value()});
  if (!replies.ok()) return replies.status();
  RedisReply& reply = replies->front();
  if (reply.is_error()) return ErrorReply(reply);
  return std::move(reply);
}

}  // namespace im::internal
