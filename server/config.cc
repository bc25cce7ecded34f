#include "config.h"

#include <sodium.h>
#include <toml++/toml.h>

#include "im/auth.h"
#include "im/log.h"
#if IM_WITH_REDIS
#include "store/redis/redis_client.h"
#include "store/redis/redis_shards.h"
#endif

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <iterator>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <type_traits>
#include <sstream>
#include <vector>

namespace imd {
namespace {

class Reader {
 public:
  Reader(const toml::table& table, std::string section) : t_(table), section_(std::move(section)) {}

  template <typename T, typename Out>
  void Get(const char* key, Out* out) {
    seen_.insert(key);
    const toml::node* n = t_.get(key);
    if (n == nullptr || !status_.ok()) return;
    // Exact types only: toml++'s value<T>() would also turn 1 into true and 2.0 into 2.
    bool exact = true;
    if constexpr (std::is_same_v<T, bool>) exact = n->is_boolean();
    if constexpr (std::is_same_v<T, int64_t>) exact = n->is_integer();
    // A rate may be written 2 or 0.5.
    if constexpr (std::is_same_v<T, double>) exact = n->is_floating_point() || n->is_integer();
    if constexpr (std::is_same_v<T, std::string>) exact = n->is_string();
    // Converted only when exact: toml++ turns a float too large for int64 into one by a cast
    // that is undefined behaviour.
    std::optional<T> v;
    if (exact) v = n->value<T>();
    if constexpr (std::is_same_v<T, double>) {
      if (v && !std::isfinite(*v)) v.reset();
    }
    if (!v) {
      const char* expected = std::is_same_v<T, bool>      ? "a boolean (true or false)"
                             : std::is_same_v<T, int64_t> ? "an integer"
                             : std::is_same_v<T, double>  ? "a number"
                                                          : "a string";
      status_ = Error(*n, key, std::string("expected ") + expected + ", not " + TypeName(*n));
      return;
    }
    if constexpr (std::is_arithmetic_v<Out> && !std::is_same_v<Out, bool>) {
      if (*v < 0) {
        status_ = Error(*n, key, "must not be negative");
        return;
      }
    }
    *out = static_cast<Out>(*v);
  }

  im::Status Finish() {
    if (!status_.ok()) return status_;
    for (auto& [k, v] : t_) {
      const std::string key(k.str());
      if (seen_.count(key) == 0) {
        std::string closest = Closest(key);
        return Error(v, key, "unknown key" + (closest.empty() ? std::string()
                                                             : "; did you mean " + section_ +
                                                                   closest + "?"));
      }
    }
    return im::Status::OK();
  }
  void Skip(const char* key) { seen_.insert(key); }

 private:
  // "LINE: section.key: what"; LoadConfigText puts the file name in front.
  im::Status Error(const toml::node& n, const std::string& key, const std::string& what) const {
    return im::Status::BadRequest(std::to_string(n.source().begin.line) + ": " + section_ + key +
                                  ": " + what);
  }

  static const char* TypeName(const toml::node& n) {
    switch (n.type()) {
      case toml::node_type::string: return "a string";
      case toml::node_type::integer: return "an integer";
      case toml::node_type::floating_point: return "a float";
      case toml::node_type::boolean: return "a boolean";
      case toml::node_type::table: return "a table";
      case toml::node_type::array: return "an array";
      default: return "a date or time";
    }
  }

  // The known key nearest to `key` by edit distance, when near enough to be a typo ("").
  std::string Closest(const std::string& key) const {
    std::string best;
    size_t best_distance = std::max<size_t>(2, key.size() / 3) + 1;
    for (const std::string& known : seen_) {
      std::vector<size_t> row(known.size() + 1);
      for (size_t j = 0; j <= known.size(); ++j) row[j] = j;
      for (size_t i = 1; i <= key.size(); ++i) {
        size_t diagonal = row[0];
        row[0] = i;
        for (size_t j = 1; j <= known.size(); ++j) {
          size_t up = row[j];
          row[j] = std::min({row[j] + 1, row[j - 1] + 1,
                             diagonal + (key[i - 1] == known[j - 1] ? 0 : 1)});
          diagonal = up;
        }
      }
      if (row[known.size()] < best_distance) {
        best_distance = row[known.size()];
        best = known;
      }
    }
    return best;
  }

  const toml::table& t_;
  std::string section_;
  std::set<std::string> seen_;
  im::Status status_;
};

// toml++ bounds nested arrays and inline tables (256 levels) but not dotted keys, and it
// recurses once per key part: a key of 50,000 parts ("a.a.a...", also inside an inline table)
// overflows the stack. A key and an inline table sit on one line, so a line may hold at most
// kMaxDots dots outside strings and comments (as many as toml++'s own nesting bound; imd's keys
// have two parts, a float one dot).
constexpr int kMaxDots = 256;

// [storage] redis_*: a timeout past ten minutes or a pool past 1024 connections per backend is
// a typo, not a setting (hiredis takes the timeouts as int milliseconds).
constexpr int64_t kMaxRedisTimeoutMs = 600'000;
constexpr int64_t kMaxRedisPoolSize = 1024;

im::Status CheckDots(const std::string& text, const std::string& path) {
  enum { kNormal, kBasic, kLiteral, kMultiBasic, kMultiLiteral, kComment } state = kNormal;
  int dots = 0, line = 1;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n') {
      ++line;
      dots = 0;
      if (state == kComment || state == kBasic || state == kLiteral) state = kNormal;
      continue;
    }
    switch (state) {
      case kNormal:
        if (text.compare(i, 3, "\"\"\"") == 0) {
          state = kMultiBasic;
          i += 2;
        } else if (text.compare(i, 3, "'''") == 0) {
          state = kMultiLiteral;
          i += 2;
        } else if (c == '"') {
          state = kBasic;
        } else if (c == '\'') {
          state = kLiteral;
        } else if (c == '#') {
          state = kComment;
        } else if (c == '.' && ++dots > kMaxDots) {
          return im::Status::BadRequest(path + ": more than " + std::to_string(kMaxDots) +
                                        " dots outside strings on line " + std::to_string(line) +
                                        " (a key nested that deep is refused)");
        }
        break;
      case kBasic:
      case kMultiBasic:
        if (c == '\\') {
          ++i;  // an escaped character (a newline after '\\' only continues a multi-line one)
          if (i < text.size() && text[i] == '\n') ++line;
        } else if (state == kBasic && c == '"') {
          state = kNormal;
        } else if (state == kMultiBasic && text.compare(i, 3, "\"\"\"") == 0) {
          state = kNormal;
          i += 2;
        }
        break;
      case kLiteral:
        if (c == '\'') state = kNormal;
        break;
      case kMultiLiteral:
        if (text.compare(i, 3, "'''") == 0) {
          state = kNormal;
          i += 2;
        }
        break;
      case kComment:
        break;
    }
  }
  return im::Status::OK();
}

// A TOML syntax error, naming the source and the line.
im::Status ParseError(std::string_view source, const toml::parse_error& e) {
  std::ostringstream msg;
  msg << source << ": " << e.description() << " (line " << e.source().begin.line << ")";
  return im::Status::BadRequest(msg.str());
}

im::Status ApplyConfig(const toml::table& root, Config* c);

// "LINE: section.key: what" for the key's line in `t`.
im::Status AtLine(const toml::table& t, const std::string& section, const char* key,
                  const std::string& what) {
  const toml::node* n = t.get(key);
  const std::string line = n ? std::to_string(n->source().begin.line) + ": " : std::string();
  return im::Status::BadRequest(line + section + key + ": " + what);
}

// A redis:// value of `key` must parse (and this imd must have the Redis backends). With
// `list`, it may be a comma list of URLs (the backends shard over them): each must parse.
im::Status CheckRedisUrl(const toml::table& t, const std::string& section, const char* key,
                         bool list = false) {
  const toml::node* n = t.get(key);
  if (n == nullptr || !n->is_string()) return im::Status::OK();
  const std::string url = *n->value<std::string>();
  if (!IsRedisUrl(url)) return im::Status::OK();
#if IM_WITH_REDIS
  if (!list && im::internal::IsShardedRedisUrl(url)) {
    return AtLine(t, section, key, "must be one redis:// URL, not a list");
  }
  auto parsed = im::internal::SplitRedisUrls(url);
  if (!parsed.ok()) return AtLine(t, section, key, std::string(parsed.status().message()));
  return im::Status::OK();
#else
  (void)list;
  return AtLine(t, section, key, "this imd was built without the Redis backends (hiredis)");
#endif
}

// One [tenants.<name>] section.
im::Status ReadTenant(const toml::table& t, const std::string& name, im::TenantRecord* out) {
  const std::string section = "tenants." + name + ".";
  out->name = name;
  Reader r(t, section);
  std::string status = "active";
  r.Get<std::string>("status", &status);
  im::TenantQuotas& q = out->quotas;
  r.Get<int64_t>("max_online_sessions", &q.max_online_sessions);
  r.Get<int64_t>("max_devices_per_user", &q.max_devices_per_user);
  r.Get<double>("user_send_rate", &q.user_send_rate);
  r.Get<int64_t>("user_send_burst", &q.user_send_burst);
  r.Get<double>("tenant_send_rate", &q.tenant_send_rate);
  r.Get<int64_t>("tenant_send_burst", &q.tenant_send_burst);
  r.Get<int64_t>("max_group_members", &q.max_group_members);
  r.Get<int64_t>("max_groups_per_user", &q.max_groups_per_user);
  r.Get<double>("rest_request_rate", &q.rest_request_rate);
  r.Get<int64_t>("rest_request_burst", &q.rest_request_burst);
  r.Get<int64_t>("retention_s", &q.retention_s);
  r.Get<int64_t>("max_inbox", &q.max_inbox);
  r.Skip("words");
  if (im::Status s = r.Finish(); !s.ok()) return s;
  if (status == "suspended") {
    out->status = im::TenantStatus::kSuspended;
  } else if (status != "active") {
    return AtLine(t, section, "status", "must be \"active\" or \"suspended\"");
  }
  if (const toml::node* words = t.get("words")) {
    const toml::array* list = words->as_array();
    if (list == nullptr || list->size() > im::kMaxTenantWords) {
      return AtLine(t, section, "words", "must be an array of at most " +
                                             std::to_string(im::kMaxTenantWords) + " strings");
    }
    for (const toml::node& w : *list) {
      auto word = w.value<std::string>();
      if (!w.is_string() || !word || word->empty() || word->size() > 64) {
        return AtLine(t, section, "words", "each word must be a string of 1-64 bytes");
      }
      out->words.push_back(*word);
    }
  }
  return im::Status::OK();
}

// A tenant's keys: "hex" (one unnamed key) or [{kid = "...", key = "hex"}, ...], the signing
// key first. The hex itself is checked where the keys are opened.
im::Status ReadTenantKeys(const toml::node& v, const std::string& name,
                          std::vector<Config::KeyEntry>* out) {
  const std::string line = std::to_string(v.source().begin.line) + ": ";
  out->clear();
  if (auto hex = v.value<std::string>(); hex && v.is_string()) {
    out->push_back({"", *hex});
    return im::Status::OK();
  }
  const toml::array* list = v.as_array();
  if (list == nullptr || list->empty()) {
    return im::Status::BadRequest(line + name + ": must be a hex string or a non-empty array "
                                  "of {kid = \"...\", key = \"hex\"}");
  }
  for (const toml::node& item : *list) {
    const toml::table* t = item.as_table();
    if (t == nullptr) {
      return im::Status::BadRequest(line + name + ": each key must be {kid = \"...\", key = "
                                    "\"hex\"}");
    }
    Config::KeyEntry e;
    Reader r(*t, name + ".");
    r.Get<std::string>("kid", &e.kid);
    r.Get<std::string>("key", &e.hex);
    if (im::Status s = r.Finish(); !s.ok()) return s;
    if (!im::IsValidId(e.kid)) {
      return im::Status::BadRequest(line + name + ": each key needs a kid (1-64 bytes)");
    }
    for (const Config::KeyEntry& seen : *out) {
      if (seen.kid == e.kid) {
        return im::Status::BadRequest(line + name + ": two keys with kid '" + e.kid + "'");
      }
    }
    out->push_back(std::move(e));
  }
  if (out->size() > im::kMaxKeysPerTenant) {
    return im::Status::BadRequest(line + name + ": at most " +
                                  std::to_string(im::kMaxKeysPerTenant) + " keys");
  }
  return im::Status::OK();
}

}  // namespace

std::optional<std::string> HexKey(std::string_view hex) {
  std::string bin(hex.size() / 2, '\0');
  size_t len = 0;
  if (hex.size() < 32 ||
      sodium_hex2bin(reinterpret_cast<unsigned char*>(bin.data()), bin.size(), hex.data(),
                     hex.size(), nullptr, &len, nullptr) != 0) {
    return std::nullopt;
  }
  bin.resize(len);
  return bin;
}

im::Status LoadConfigFile(const std::string& path, Config* c) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return im::Status::BadRequest(path + ": cannot be read");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return LoadConfigText(text, path, c);
}

im::Status LoadConfigText(std::string_view text, std::string_view source, Config* c) {
  if (im::Status s = CheckDots(std::string(text), std::string(source)); !s.ok()) return s;
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    return ParseError(source, e);
  }
  im::Status s = ApplyConfig(root, c);
  if (s.ok()) return s;
  // "FILE:LINE: key: what" when the error knows its line, else "FILE: what".
  const std::string what(s.message());
  const bool has_line = !what.empty() && what[0] >= '0' && what[0] <= '9';
  return im::Status::BadRequest(std::string(source) + (has_line ? ":" : ": ") + what);
}

namespace {

// An array of strings at `key` ("" when absent), each checked by `check` ("" = fine).
im::Status StringArray(const toml::table& t, const std::string& section, const char* key,
                       const std::function<std::string(const std::string&)>& check,
                       std::vector<std::string>* out) {
  const toml::node* n = t.get(key);
  if (n == nullptr) return im::Status::OK();
  const toml::array* a = n->as_array();
  if (a == nullptr) return AtLine(t, section, key, "expected an array of strings");
  for (const toml::node& e : *a) {
    if (!e.is_string()) return AtLine(t, section, key, "expected an array of strings");
    const std::string v = *e.value<std::string>();
    if (std::string what = check ? check(v) : ""; !what.empty()) {
      return AtLine(t, section, key, "'" + v + "': " + what);
    }
    out->push_back(v);
  }
  return im::Status::OK();
}

im::Status ApplyRouting(const toml::table& t, Config* c) {
  im::internal::RouteRules& rules = c->routing;
  Reader r(t, "routing.");
  r.Get<std::string>("canary_tag", &rules.canary_tag);
  r.Get<double>("canary_percent", &rules.canary_percent);
  r.Get<int64_t>("max_load", &rules.max_load);
  r.Get<int64_t>("max_answers", &rules.max_answers);
  r.Get<int64_t>("rebalance_interval_ms", &c->rebalance_interval_ms);
  r.Get<int64_t>("cache_ms", &c->route_cache_ms);
  r.Skip("canary_tenants");
  r.Skip("canary_users");
  r.Skip("tenant_pools");
  r.Skip("regions");
  if (im::Status s = r.Finish(); !s.ok()) return s;
  if (rules.canary_percent > 100) {
    return AtLine(t, "routing.", "canary_percent", "must be in 0..100");
  }
  if (rules.max_answers < 1 || rules.max_answers > 64) {
    return AtLine(t, "routing.", "max_answers", "must be in 1..64");
  }
  if (c->rebalance_interval_ms < 100) {
    return AtLine(t, "routing.", "rebalance_interval_ms", "must be at least 100");
  }
  if (c->route_cache_ms < 0 || c->route_cache_ms > 60000) {
    return AtLine(t, "routing.", "cache_ms", "must be in 0..60000");
  }
  auto id = [](const std::string& v) {
    return im::IsValidId(v) ? std::string() : std::string("not a valid tenant id");
  };
  std::vector<std::string> list;
  if (im::Status s = StringArray(t, "routing.", "canary_tenants", id, &list); !s.ok()) return s;
  rules.canary_tenants = std::set<std::string>(list.begin(), list.end());
  list.clear();
  auto user = [](const std::string& v) {
    const size_t slash = v.find('/');
    return slash != std::string::npos && im::IsValidId(v.substr(0, slash)) &&
                   im::IsValidId(v.substr(slash + 1))
               ? std::string()
               : std::string("expected \"tenant/user\"");
  };
  if (im::Status s = StringArray(t, "routing.", "canary_users", user, &list); !s.ok()) return s;
  rules.canary_users = std::set<std::string>(list.begin(), list.end());
  if (const toml::node* n = t.get("tenant_pools")) {
    if (!n->is_table()) return AtLine(t, "routing.", "tenant_pools", "expected a table");
    for (auto& [k, v] : *n->as_table()) {
      if (!v.is_string() || v.value<std::string>()->empty()) {
        return im::Status::BadRequest("routing.tenant_pools." + std::string(k.str()) +
                                      ": expected a pool name (a string)");
      }
      rules.tenant_pools[std::string(k.str())] = *v.value<std::string>();
    }
  }
  if (const toml::node* n = t.get("regions")) {
    if (!n->is_table()) return AtLine(t, "routing.", "regions", "expected a table");
    const toml::table& regions = *n->as_table();
    for (auto& [k, v] : regions) {
      const std::string name(k.str());
      std::vector<std::string> cidrs;
      auto cidr = [](const std::string& text) {
        auto parsed = im::internal::ParseCidr(text);
        return parsed.ok() ? std::string() : std::string(parsed.status().message());
      };
      if (im::Status s = StringArray(regions, "routing.regions.", name.c_str(), cidr, &cidrs);
          !s.ok()) {
        return s;
      }
      std::vector<im::internal::Cidr> nets;
      for (const std::string& text : cidrs) nets.push_back(*im::internal::ParseCidr(text));
      rules.region_cidrs.emplace_back(name, std::move(nets));
    }
  }
  return im::Status::OK();
}

im::Status ApplyConfig(const toml::table& root, Config* c) {
  Reader top(root, "");
  top.Get<std::string>("data", &c->data_dir);
  top.Skip("server");
  top.Skip("storage");
  top.Skip("keys");
  top.Skip("auth");
  top.Skip("web");
  top.Skip("http");
  top.Skip("filter");
  top.Skip("admin_keys");
  top.Skip("log");
  top.Skip("limits");
  top.Skip("cluster");
  top.Skip("routing");
  top.Skip("tenants");
  im::Status s = top.Finish();
  if (!s.ok()) return s;

  if (auto* t = root["server"].as_table()) {
    im::ServerOptions& o = c->server;
    Reader r(*t, "server.");
    r.Get<std::string>("node_id", &o.node_id);
    r.Get<int64_t>("node_number", &o.node_number);
    r.Get<std::string>("tcp", &o.tcp_listen);
    r.Get<std::string>("http", &o.http_listen);
    r.Get<int64_t>("io_threads", &o.io_threads);
    r.Get<int64_t>("worker_threads", &o.worker_threads);
    r.Get<int64_t>("max_frame_bytes", &o.max_frame_bytes);
    r.Get<int64_t>("login_timeout_ms", &o.login_timeout_ms);
    r.Get<int64_t>("heartbeat_s", &o.heartbeat_s);
    r.Get<int64_t>("send_queue_bytes", &o.send_queue_bytes);
    r.Get<int64_t>("max_connections", &o.max_connections);
    r.Get<int64_t>("max_devices_per_user", &o.max_devices_per_user);
    r.Get<int64_t>("max_body_bytes", &o.max_body_bytes);
    r.Get<int64_t>("max_extra_bytes", &o.max_extra_bytes);
    r.Get<int64_t>("commit_queue_limit", &o.commit_queue_limit);
    r.Get<int64_t>("commit_batch_max", &o.commit_batch_max);
    r.Get<int64_t>("commit_batch_recipients", &o.commit_batch_recipients);
    r.Get<int64_t>("commit_inflight", &o.commit_inflight);
    r.Get<int64_t>("fanout_queue_limit", &o.fanout_queue_limit);
    r.Get<int64_t>("fanout_slice", &o.fanout_slice);
    r.Get<int64_t>("max_pending_commands", &o.max_pending_commands);
    r.Get<int64_t>("max_sync_bytes", &o.max_sync_bytes);
    r.Get<int64_t>("drain_timeout_ms", &c->drain_timeout_ms);
    r.Get<std::string>("event_log", &o.event_log_path);
    c->event_log_set = t->contains("event_log");
    r.Get<int64_t>("event_log_max_file_bytes", &o.event_log_max_file_bytes);
    r.Get<int64_t>("event_log_max_files", &o.event_log_max_files);
    r.Get<int64_t>("event_log_queue", &o.event_log_queue);
    r.Get<int64_t>("sweep_interval_ms", &o.sweep_interval_ms);
    r.Get<int64_t>("retention_sweep_ms", &o.retention_sweep_ms);
    r.Get<int64_t>("tenant_refresh_ms", &o.tenant_refresh_ms);
    r.Get<int64_t>("metrics_max_tenants", &o.metrics_max_tenants);
    std::string policy;
    r.Get<std::string>("kick_policy", &policy);
    if (policy == "account") {
      o.kick_policy = im::KickPolicy::kPerAccount;
    } else if (policy == "device" || policy.empty()) {
      o.kick_policy = im::KickPolicy::kPerDevice;
    } else {
      return im::Status::BadRequest("server.kick_policy must be \"device\" or \"account\"");
    }
    s = r.Finish();
    if (!s.ok()) return s;
    if (o.node_number > 1023) return im::Status::BadRequest("server.node_number must be 0..1023");
    if (o.io_threads < 1 || o.worker_threads < 1) {
      return im::Status::BadRequest("server.io_threads and server.worker_threads must be >= 1");
    }
    if (o.max_connections < 1) return im::Status::BadRequest("server.max_connections must be >= 1");
    if (o.commit_batch_recipients < 1 || o.commit_inflight < 1 || o.fanout_queue_limit < 1 ||
        o.fanout_slice < 1) {
      return im::Status::BadRequest(
          "server.commit_batch_recipients, commit_inflight, fanout_queue_limit and fanout_slice "
          "must be >= 1");
    }
    if (o.event_log_max_file_bytes < 1024 || o.event_log_max_files < 1) {
      return im::Status::BadRequest(
          "server.event_log_max_file_bytes must be >= 1024 and event_log_max_files >= 1");
    }
    if (o.event_log_queue < 1) return im::Status::BadRequest("server.event_log_queue must be >= 1");
    if (o.tenant_refresh_ms < 1) {
      return im::Status::BadRequest("server.tenant_refresh_ms must be >= 1");
    }
  }
  if (auto* t = root["limits"].as_table()) {
    im::ServerOptions& o = c->server;
    Reader r(*t, "limits.");
    r.Get<double>("login_address_rate", &o.login_address_rate);
    r.Get<int64_t>("login_address_burst", &o.login_address_burst);
    r.Get<double>("login_account_rate", &o.login_account_rate);
    r.Get<int64_t>("login_account_burst", &o.login_account_burst);
    r.Get<double>("register_address_rate", &o.register_address_rate);
    r.Get<int64_t>("register_address_burst", &o.register_address_burst);
    r.Get<double>("route_address_rate", &o.route_address_rate);
    r.Get<int64_t>("route_address_burst", &o.route_address_burst);
    r.Get<double>("chat_connection_rate", &o.chat_connection_rate);
    r.Get<int64_t>("chat_connection_burst", &o.chat_connection_burst);
    r.Get<double>("chat_user_rate", &o.chat_user_rate);
    r.Get<int64_t>("chat_user_burst", &o.chat_user_burst);
    r.Get<int64_t>("max_keys", &o.rate_limit_max_keys);
    r.Get<int64_t>("hash_threads", &o.hash_threads);
    r.Get<int64_t>("hash_queue", &o.hash_queue);
    r.Get<int64_t>("commit_lane_limit", &o.commit_lane_limit);
    s = r.Finish();
    if (!s.ok()) return s;
    if (o.login_address_burst < 1 || o.login_account_burst < 1 || o.register_address_burst < 1 ||
        o.chat_connection_burst < 1 || o.chat_user_burst < 1 || o.route_address_burst < 1) {
      return im::Status::BadRequest("limits: every *_burst must be >= 1");
    }
    if (o.rate_limit_max_keys < 1024) {
      return im::Status::BadRequest("limits.max_keys must be >= 1024");
    }
    if (o.hash_threads < 1) return im::Status::BadRequest("limits.hash_threads must be >= 1");
    if (o.commit_lane_limit < 1) {
      return im::Status::BadRequest("limits.commit_lane_limit must be >= 1");
    }
  }
  if (auto* t = root["log"].as_table()) {
    Reader r(*t, "log.");
    r.Get<std::string>("level", &c->log_level);
    r.Get<bool>("console", &c->log_console);
    r.Get<std::string>("file", &c->log_file);
    c->log_file_set = t->contains("file");
    r.Get<int64_t>("max_file_bytes", &c->log_max_file_bytes);
    r.Get<int64_t>("max_files", &c->log_max_files);
    s = r.Finish();
    if (!s.ok()) return s;
    if (!im::ParseLogLevel(c->log_level).ok()) {
      return im::Status::BadRequest("log.level must be trace, debug, info, warn, error or off");
    }
    if (c->log_max_file_bytes < 1024 || c->log_max_files < 1) {
      return im::Status::BadRequest("log.max_file_bytes must be >= 1024 and log.max_files >= 1");
    }
  }
  if (auto* t = root["storage"].as_table()) {
    Reader r(*t, "storage.");
    r.Get<std::string>("inbox", &c->inbox);
    r.Get<bool>("sync_writes", &c->leveldb.sync_writes);
    r.Get<bool>("compression", &c->leveldb.compression);
    r.Get<int64_t>("write_buffer_bytes", &c->leveldb.write_buffer_bytes);
    r.Get<int64_t>("max_file_bytes", &c->leveldb.max_file_bytes);
    r.Get<int64_t>("block_cache_bytes", &c->leveldb.block_cache_bytes);
    r.Get<std::string>("groups", &c->groups);
    r.Get<int64_t>("max_group_members", &c->max_group_members);
    r.Get<std::string>("users", &c->users);
    r.Get<int64_t>("retention_s", &c->retention_s);
    r.Get<int64_t>("max_inbox", &c->max_inbox);
    r.Get<int64_t>("dedup_window_s", &c->dedup_window_s);
    r.Get<std::string>("sessions", &c->sessions);
    r.Get<std::string>("tenants", &c->tenants_store);
    r.Get<int64_t>("redis_connect_timeout_ms", &c->redis_connect_timeout_ms);
    r.Get<int64_t>("redis_command_timeout_ms", &c->redis_command_timeout_ms);
    r.Get<int64_t>("redis_pool_size", &c->redis_pool_size);
    s = r.Finish();
    if (!s.ok()) return s;
    for (const auto& [key, value, max] :
         {std::tuple{"redis_connect_timeout_ms", c->redis_connect_timeout_ms, kMaxRedisTimeoutMs},
          std::tuple{"redis_command_timeout_ms", c->redis_command_timeout_ms, kMaxRedisTimeoutMs},
          std::tuple{"redis_pool_size", c->redis_pool_size, kMaxRedisPoolSize}}) {
      if (value < 1 || value > max) {
        return AtLine(*t, "storage.", key, "must be in 1.." + std::to_string(max));
      }
    }
    for (const char* key : {"inbox", "groups", "users", "sessions"}) {
      if (s = CheckRedisUrl(*t, "storage.", key, /*list=*/true); !s.ok()) return s;
    }
    if (s = CheckRedisUrl(*t, "storage.", "tenants"); !s.ok()) return s;
    if (!c->sessions.empty() && c->sessions != "memory:" && !IsRedisUrl(c->sessions)) {
      return AtLine(*t, "storage.", "sessions", "must be \"memory:\" or a redis:// URL");
    }
  }
  if (auto* t = root["cluster"].as_table()) {
    Reader r(*t, "cluster.");
    r.Get<std::string>("node_id", &c->server.node_id);
    r.Get<std::string>("redis", &c->cluster_redis);
    r.Get<std::string>("advertise_tcp", &c->advertise_tcp);
    r.Get<std::string>("advertise_ws", &c->advertise_ws);
    r.Get<int64_t>("heartbeat_ms", &c->cluster_heartbeat_ms);
    r.Get<int64_t>("node_ttl_ms", &c->cluster_node_ttl_ms);
    r.Get<int64_t>("session_ttl_ms", &c->session_ttl_ms);
    r.Get<std::string>("version_tag", &c->version_tag);
    r.Get<std::string>("region", &c->region);
    r.Get<std::string>("pool", &c->pool);
    r.Get<int64_t>("weight", &c->weight);
    r.Get<int64_t>("drain_kicks_per_second", &c->server.drain_kicks_per_second);
    r.Get<bool>("drain_exit", &c->drain_exit);
    s = r.Finish();
    if (!s.ok()) return s;
    if (s = CheckRedisUrl(*t, "cluster.", "redis"); !s.ok()) return s;
    if (!c->cluster_redis.empty() && !IsRedisUrl(c->cluster_redis)) {
      return AtLine(*t, "cluster.", "redis", "must be a redis:// URL");
    }
    if (c->cluster_heartbeat_ms < 1 || c->cluster_heartbeat_ms >= c->cluster_node_ttl_ms) {
      return im::Status::BadRequest("cluster.heartbeat_ms must be in 1..node_ttl_ms-1");
    }
    if (c->session_ttl_ms < 3) return im::Status::BadRequest("cluster.session_ttl_ms must be >= 3");
    if (c->weight < 1 || c->weight > 10000) {
      return AtLine(*t, "cluster.", "weight", "must be in 1..10000");
    }
    if (c->version_tag.empty()) return AtLine(*t, "cluster.", "version_tag", "must not be empty");
  }
  if (auto* t = root["routing"].as_table()) {
    if (s = ApplyRouting(*t, c); !s.ok()) return s;
  }
  if (auto* t = root["auth"].as_table()) {
    Reader r(*t, "auth.");
    r.Get<int64_t>("token_leeway_s", &c->token_leeway_s);
    s = r.Finish();
    if (!s.ok()) return s;
  }
  if (auto* t = root["filter"].as_table()) {
    Reader r(*t, "filter.");
    r.Get<std::string>("words_file", &c->filter_words_file);
    r.Get<std::string>("mode", &c->filter_mode);
    s = r.Finish();
    if (!s.ok()) return s;
    if (c->filter_mode != "reject" && c->filter_mode != "mask") {
      return im::Status::BadRequest("filter.mode must be \"reject\" or \"mask\"");
    }
  }
  if (auto* t = root["web"].as_table()) {
    Reader r(*t, "web.");
    r.Get<bool>("open_registration", &c->server.open_registration);
    r.Get<int64_t>("default_token_ttl_s", &c->server.default_token_ttl_s);
    r.Get<int64_t>("max_token_ttl_s", &c->server.max_token_ttl_s);
    r.Get<std::string>("operator_key", &c->server.operator_key);
    s = r.Finish();
    if (!s.ok()) return s;
    if (!c->server.operator_key.empty() && c->server.operator_key.size() < 16) {
      return AtLine(*t, "web.", "operator_key", "must be at least 16 characters");
    }
  }
  if (auto* t = root["http"].as_table()) {
    Reader r(*t, "http.");
    r.Get<std::string>("static_dir", &c->server.static_dir);
    s = r.Finish();
    if (!s.ok()) return s;
  }
  if (auto* t = root["admin_keys"].as_table()) {
    for (auto& [k, v] : *t) {
      auto key = v.value<std::string>();
      if (!key || key->size() < 16) {
        return im::Status::BadRequest("admin_keys." + std::string(k.str()) +
                                      " must be a string of at least 16 characters");
      }
      c->server.admin_keys[std::string(k.str())] = *key;
    }
  }
  if (auto* t = root["tenants"].as_table()) {
    for (auto& [k, v] : *t) {
      const std::string name(k.str());
      const toml::table* section = v.as_table();
      if (section == nullptr || !im::IsValidId(name)) {
        return im::Status::BadRequest(std::to_string(v.source().begin.line) + ": tenants." +
                                      name + ": must be a table named by a tenant id");
      }
      im::TenantRecord record;
      if (s = ReadTenant(*section, name, &record); !s.ok()) return s;
      // A tenant's inbox bounds only shorten the store's ([storage] comes before [tenants]).
      const im::TenantQuotas& q = record.quotas;
      if (q.retention_s > static_cast<uint64_t>(c->retention_s)) {
        return AtLine(*section, "tenants." + name + ".", "retention_s",
                      "must be at most [storage] retention_s (" +
                          std::to_string(c->retention_s) + ")");
      }
      if (q.max_inbox > c->max_inbox) {
        return AtLine(*section, "tenants." + name + ".", "max_inbox",
                      "must be at most [storage] max_inbox (" + std::to_string(c->max_inbox) +
                          ")");
      }
      c->tenants.push_back(std::move(record));
    }
  }
  if (auto* t = root["keys"].as_table()) {
    for (auto& [k, v] : *t) {
      const std::string tenant(k.str());
      if (s = ReadTenantKeys(v, "keys." + tenant, &c->keys[tenant]); !s.ok()) return s;
    }
  }
  return im::Status::OK();
}

}  // namespace
}  // namespace imd
