// ServerOptions: every knob of im::Server, with its default.
#ifndef IM_OPTIONS_H_
#define IM_OPTIONS_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "im/types.h"

namespace im {

struct ServerOptions {
  // Node identity. `node_id` "" = "node-<node_number>". node_number (0..1023) goes into every
  // message id, so nodes sharing storage need distinct numbers.
  std::string node_id = "";
  uint16_t node_number = 0;

  // Listen addresses "host:port"; port 0 lets the OS choose (see Server::tcp_port()).
  // An empty string disables that listener.
  std::string tcp_listen = "127.0.0.1:7001";   // length-prefixed JSON frames
  std::string http_listen = "127.0.0.1:7000";  // WebSocket at /ws, HTTP endpoints

  int io_threads = 1;      // threads running the network event loop
  int worker_threads = 2;  // threads running command handlers (they call storage)
  // The scheduler slice, in microseconds, that the threads on a message's path ask for (im-io,
  // im-worker, im-commit, im-fanout). On Linux 6.12 and later a short slice lets a thread that
  // wakes to pass a message on run sooner on a busy CPU, with the same CPU share; older
  // kernels ignore it. 0 (the default) leaves the kernel's; else clamped to 100..100000.
  // Measured (benchmarks/README.md, "Thread slices"): 100 lowers the p99 at low rates and
  // costs about 5% of the maximum rate, so it is off unless asked for.
  uint32_t thread_slice_us = 0;

  size_t max_frame_bytes = 65536;      // larger frame: close (TCP before buffering; WS 1009)
  int64_t login_timeout_ms = 10000;    // a socket not logged in by then is closed (4002)
  int heartbeat_s = 30;                // told to clients; no traffic for 3x closes the session
  size_t send_queue_bytes = 1 << 20;   // per connection; over it: close 4004
  // Open connections (TCP and WebSocket, logged in or not); one more is closed at once with
  // 1013 "server full" (the client backs off and retries, or goes to another node).
  size_t max_connections = 50000;
  KickPolicy kick_policy = KickPolicy::kPerDevice;
  // Sessions one user may have online at once (one per device under the per-device kick
  // policy); a login on one more device gets 429 too_many_devices (a login on a device already
  // online replaces that session as usual). 0 = no bound. Checked per node, before the
  // session is stored: concurrent logins on new devices may pass it together.
  size_t max_devices_per_user = 16;
  // A session is closed (session.kicked "token_expired", 4002) this long after its token's exp
  // unless the client logged in again with a fresh token. Match the verifier's leeway.
  int64_t token_grace_ms = 30000;

  size_t max_body_bytes = 16384;    // chat body (UTF-8 bytes); larger: 413 too_large
  size_t max_extra_bytes = 4096;    // serialized `extra`; larger: 413 too_large
  size_t max_type_bytes = 32;       // message `type`; larger: 400
  size_t max_cid_bytes = 64;        // client message id (at most 64); larger: 400
  // A chat.sync page stops before this many bytes (with more=true); keep it well under
  // send_queue_bytes and the clients' frame limit.
  size_t max_sync_bytes = 256 * 1024;

  // Pending chat sends waiting for the storage committer; beyond it sends get 503
  // unavailable (the client retries under the same cid).
  size_t commit_queue_limit = 65536;
  // At most this many sends are appended as one storage batch.
  size_t commit_batch_max = 512;
  // Fairness. Sends queue per sender (a user's own sends; server-side sends per `from`) and are
  // stored round-robin, one per sender per turn. At most this many sends of one sender wait;
  // one more gets 503 unavailable with retry_after_ms, and no other sender is affected.
  size_t commit_lane_limit = 128;
  // Inbox entries (recipients) one storage batch carries at most; a send with more (a large
  // group) is stored in a batch of its own, after the smaller sends taken with it.
  size_t commit_batch_recipients = 4096;
  // Storage batches handed to OfflineQueue::AppendBatchAsync and not yet answered. A backend
  // with a network round trip pipelines them (the bundled LevelDB and memory ones answer each
  // batch before taking the next, so for them this changes nothing). At the bound the committer
  // waits for the oldest batch's answer before storing more; membership changes wait for every
  // batch in flight.
  size_t commit_inflight = 4;
  // A socket `chat.send` (1:1) with nothing waiting behind it (no other connection's commands
  // waiting for a worker, none more of its own) is stored on its worker thread in the
  // committer's place when the committer is idle: one thread hand-over fewer, a lower latency
  // at low rates. The worker is busy for the whole storage write meanwhile, so set this to
  // false when a write can take long (LevelDbOptions::sync_writes, a host backend whose
  // AppendBatch blocks on a slow store): every send is then stored on the committer thread.
  bool commit_on_worker = true;
  // Pushes of stored messages waiting for the fan-out thread. When full, the committer waits
  // for room before storing more (its queue then fills and senders get 503); nothing is
  // dropped.
  size_t fanout_queue_limit = 65536;
  // A fan-out to more recipients than this is delivered this many at a time, with the pushes
  // of smaller messages in between.
  size_t fanout_slice = 512;
  // Per-connection commands waiting for a worker; beyond it the command gets 429 rate_limited.
  size_t max_pending_commands = 256;
  // Connections to the HTTP port that are not (yet) an open WebSocket: HTTP requests and
  // WebSocket handshakes under way. One more is closed at once, before anything is read. With
  // max_connections this bounds the sockets (file descriptors) the server holds.
  size_t max_http_connections = 1024;

  // Rate limits, as token buckets: a bucket holds up to `*_burst` tokens and gains `*_rate`
  // tokens a second; `*_rate` = 0 turns that limit off. Over a limit the request is answered
  // 429 rate_limited with retry_after_ms (REST: also Retry-After) and the connection stays open.
  // Failed logins, per remote address (IPv4 address, IPv6 /64), socket `login` and
  // POST /v1/tokens alike: each attempt holds a token and a successful one gives it back.
  double login_address_rate = 0.2;
  size_t login_address_burst = 20;
  // Failed passwords per account (tenant and user named in POST /v1/tokens), from any address;
  // while the bucket is empty even the right password is refused.
  double login_account_rate = 1.0 / 60;
  size_t login_account_burst = 5;
  // POST /v1/users without an admin key (open registration), per remote address.
  double register_address_rate = 0.1;
  size_t register_address_burst = 30;
  // GET /v1/route per remote address: it needs no credential and reads the node registry.
  double route_address_rate = 20;
  size_t route_address_burst = 40;
  // chat.send per connection, and per user over all of the user's connections. A flood bound,
  // not a pace for people: one connection gets a few percent of what the server can store.
  double chat_connection_rate = 1000;
  size_t chat_connection_burst = 2000;
  double chat_user_rate = 2000;
  size_t chat_user_burst = 4000;
  // Group changes per user (group.create, group.join, group.quit, POST /v1/groups), weighted
  // by the inbox entries each one stores: a create costs its members (the owner and the listed
  // users, each gets the "created" event), a join or quit the group's members (the event goes
  // to every member). A flood bound: 2 creates of 5,000 members a second. A change costing
  // more than the burst costs the burst.
  double group_user_rate = 10000;
  size_t group_user_burst = 20000;
  // Keys each limit above tracks at most (about 150 bytes each plus the key); at the bound,
  // new keys share a few overflow buckets (ops/rate_limit.h) instead of growing the table.
  size_t rate_limit_max_keys = 65536;

  // Password hashing (POST /v1/users, POST /v1/tokens) runs on its own threads, so that a
  // flood of it never delays chat on the workers. Each hash holds the UserStore's Argon2 memory
  // (64 MiB at the default cost) while it runs.
  int hash_threads = 1;
  // Requests waiting for a hashing thread (not counting the ones running); one more is
  // answered 503 unavailable with retry_after_ms.
  size_t hash_queue = 32;

  // Business event log (JSON lines: login, logout, kick, login_failed, group_*,
  // message_rejected, slow_consumer_closed); "" = off. Size-rotated: past
  // event_log_max_file_bytes, events.log becomes events.1.log (events.1.log becomes
  // events.2.log, ...), and at most event_log_max_files old files are kept.
  std::string event_log_path = "";
  size_t event_log_max_file_bytes = 64 << 20;
  size_t event_log_max_files = 8;
  // Events waiting for the event log's writer thread; one more is dropped and counted
  // (im_event_log_dropped_total), so a stalled disk never holds up a network thread.
  size_t event_log_queue = 8192;

  // A drain (Server::Drain, Server::DrainSessions) kicks the sessions with
  // session.kicked{reason:"drain"} in small batches, at most this many a second, so their
  // clients do not all reconnect at once. 0 = all at once.
  int64_t drain_kicks_per_second = 500;

  int64_t sweep_interval_ms = 1000;      // timer for login/heartbeat deadlines
  int64_t retention_sweep_ms = 60000;    // how often OfflineQueue::Expire runs (0 = never)
  // The inbox store's own retention and max_inbox (its OfflineQueueOptions): the most a
  // tenant's own may be (TenantQuotas; a larger one is refused with 400). 0 = not checked.
  int64_t inbox_retention_s = 0;
  size_t inbox_max = 0;

  // Web service (REST on the HTTP port).
  bool open_registration = true;  // POST /v1/users without an admin key
  // tenant -> admin key (sent as "Authorization: Bearer <key>"); admins mint tokens, read any
  // user or group of their tenant and send server-side messages. Empty: no admin access.
  std::map<std::string, std::string> admin_keys;
  // The operator's credential (at least 16 characters; "" = none): the only one that reads
  // and writes the tenant registry (GET/PUT /v1/admin/tenants/<name>) and the routing rules,
  // drains nodes and, when set, reloads the word filter (POST /v1/admin/filter/reload, which
  // any admin key may call while this is ""). Tenant admin keys and user tokens get 403 there.
  std::string operator_key = "";
  // How often the tenant registry is read again (changes made on another node take effect
  // here within this; a PUT on this node at once). A suspended tenant's sessions on this node
  // are kicked by the next sweep after that.
  int64_t tenant_refresh_ms = 1000;
  // Per-tenant metrics are labelled by tenant for the first this many tenants seen; the rest
  // count under tenant="other".
  size_t metrics_max_tenants = 100;
  int64_t default_token_ttl_s = 3600;     // POST /v1/tokens without ttl_s
  int64_t max_token_ttl_s = 30LL * 86400;  // larger ttl_s: 400
  // A directory of files served by GET and HEAD on the HTTP port (the web demo); "" = none.
  // It never hides /ws, /v1/..., /metrics, /healthz or /readyz (docs/operations.md).
  std::string static_dir = "";

  Clock* clock = nullptr;  // nullptr = SystemClock()
};

}  // namespace im

#endif  // IM_OPTIONS_H_
