// [server], [limits], [log], [auth], [filter], [web] and [http]: the node's own settings.
#include <string>

#include "config_sections.h"
#include "config_toml.h"
#include "im/log.h"

namespace imd::internal {

// [server]: the node's listeners, threads, bounds and event log.
im::Status ApplyServer(const toml::table& t, Config* c) {
  im::ServerOptions& o = c->server;
  Reader r(t, "server.");
  r.Get<std::string>("node_id", &o.node_id);
  r.Get<int64_t>("node_number", &o.node_number);
  r.Get<std::string>("tcp", &o.tcp_listen);
  r.Get<std::string>("http", &o.http_listen);
  r.Get<int64_t>("io_threads", &o.io_threads);
  r.Get<int64_t>("worker_threads", &o.worker_threads);
  int64_t thread_slice_us = o.thread_slice_us;
  r.Get<int64_t>("thread_slice_us", &thread_slice_us);
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
  r.Get<bool>("commit_on_worker", &o.commit_on_worker);
  c->commit_on_worker_set = t.contains("commit_on_worker");
  r.Get<int64_t>("fanout_queue_limit", &o.fanout_queue_limit);
  r.Get<int64_t>("fanout_slice", &o.fanout_slice);
  r.Get<int64_t>("max_pending_commands", &o.max_pending_commands);
  r.Get<int64_t>("max_http_connections", &o.max_http_connections);
  r.Get<int64_t>("max_sync_bytes", &o.max_sync_bytes);
  r.Get<int64_t>("drain_timeout_ms", &c->drain_timeout_ms);
  r.Get<std::string>("event_log", &o.event_log_path);
  c->event_log_set = t.contains("event_log");
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
  im::Status s = r.Finish();
  if (!s.ok()) return s;
  if (o.node_number > 1023) return im::Status::BadRequest("server.node_number must be 0..1023");
  if (o.io_threads < 1 || o.worker_threads < 1) {
    return im::Status::BadRequest("server.io_threads and server.worker_threads must be >= 1");
  }
  if (thread_slice_us != 0 && (thread_slice_us < 100 || thread_slice_us > 100000)) {
    return im::Status::BadRequest("server.thread_slice_us must be 0 or 100..100000");
  }
  o.thread_slice_us = static_cast<uint32_t>(thread_slice_us);
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
  return im::Status::OK();
}

// [limits]: the rate limits and the hashing and commit bounds.
im::Status ApplyLimits(const toml::table& t, Config* c) {
  im::ServerOptions& o = c->server;
  Reader r(t, "limits.");
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
  r.Get<double>("group_user_rate", &o.group_user_rate);
  r.Get<int64_t>("group_user_burst", &o.group_user_burst);
  r.Get<int64_t>("max_keys", &o.rate_limit_max_keys);
  r.Get<int64_t>("hash_threads", &o.hash_threads);
  r.Get<int64_t>("hash_queue", &o.hash_queue);
  r.Get<int64_t>("commit_lane_limit", &o.commit_lane_limit);
  im::Status s = r.Finish();
  if (!s.ok()) return s;
  if (o.login_address_burst < 1 || o.login_account_burst < 1 || o.register_address_burst < 1 ||
      o.chat_connection_burst < 1 || o.chat_user_burst < 1 || o.route_address_burst < 1 ||
      o.group_user_burst < 1) {
    return im::Status::BadRequest("limits: every *_burst must be >= 1");
  }
  if (o.rate_limit_max_keys < 1024) {
    return im::Status::BadRequest("limits.max_keys must be >= 1024");
  }
  if (o.hash_threads < 1) return im::Status::BadRequest("limits.hash_threads must be >= 1");
  if (o.commit_lane_limit < 1) {
    return im::Status::BadRequest("limits.commit_lane_limit must be >= 1");
  }
  return im::Status::OK();
}

// [log]: the program log.
im::Status ApplyLog(const toml::table& t, Config* c) {
  Reader r(t, "log.");
  r.Get<std::string>("level", &c->log_level);
  r.Get<bool>("console", &c->log_console);
  r.Get<std::string>("file", &c->log_file);
  c->log_file_set = t.contains("file");
  r.Get<int64_t>("max_file_bytes", &c->log_max_file_bytes);
  r.Get<int64_t>("max_files", &c->log_max_files);
  im::Status s = r.Finish();
  if (!s.ok()) return s;
  if (!im::ParseLogLevel(c->log_level).ok()) {
    return im::Status::BadRequest("log.level must be trace, debug, info, warn, error or off");
  }
  if (c->log_max_file_bytes < 1024 || c->log_max_files < 1) {
    return im::Status::BadRequest("log.max_file_bytes must be >= 1024 and log.max_files >= 1");
  }
  return im::Status::OK();
}

// [auth]: token checks.
im::Status ApplyAuth(const toml::table& t, Config* c) {
  Reader r(t, "auth.");
  r.Get<int64_t>("token_leeway_s", &c->token_leeway_s);
  im::Status s = r.Finish();
  if (!s.ok()) return s;
  return im::Status::OK();
}

// [filter]: the content filter.
im::Status ApplyFilter(const toml::table& t, Config* c) {
  Reader r(t, "filter.");
  r.Get<std::string>("words_file", &c->filter_words_file);
  r.Get<std::string>("mode", &c->filter_mode);
  im::Status s = r.Finish();
  if (!s.ok()) return s;
  if (c->filter_mode != "reject" && c->filter_mode != "mask") {
    return im::Status::BadRequest("filter.mode must be \"reject\" or \"mask\"");
  }
  return im::Status::OK();
}

// [web]: registration, token lifetimes and the operator key.
im::Status ApplyWeb(const toml::table& t, Config* c) {
  Reader r(t, "web.");
  r.Get<bool>("open_registration", &c->server.open_registration);
  r.Get<int64_t>("default_token_ttl_s", &c->server.default_token_ttl_s);
  r.Get<int64_t>("max_token_ttl_s", &c->server.max_token_ttl_s);
  r.Get<std::string>("operator_key", &c->server.operator_key);
  im::Status s = r.Finish();
  if (!s.ok()) return s;
  if (!c->server.operator_key.empty() && c->server.operator_key.size() < 16) {
    return AtLine(t, "web.", "operator_key", "must be at least 16 characters");
  }
  return im::Status::OK();
}

// [http]: static files.
im::Status ApplyHttp(const toml::table& t, Config* c) {
  Reader r(t, "http.");
  r.Get<std::string>("static_dir", &c->server.static_dir);
  im::Status s = r.Finish();
  if (!s.ok()) return s;
  return im::Status::OK();
}

}  // namespace imd::internal
