// Tenants as a first-class thing: a registry of per-tenant settings (status, quotas, an extra
// sensitive-word list), kept in a TenantStore that every node of a cluster reads.
//
// A tenant without a record is active with no quota of its own (the server-wide settings
// apply), so a server without a registry behaves as before.
//
// Thread-safety: TenantStore implementations are safe from any thread; calls may block on
// storage.
#ifndef IM_TENANT_H_
#define IM_TENANT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "im/auth.h"
#include "im/result.h"

namespace im {

enum class TenantStatus {
  kActive,
  // Logins are refused (403 tenant_suspended) and the tenant's sessions are kicked
  // (session.kicked{reason:"tenant_suspended"}, close 4001).
  kSuspended,
};

// Per-tenant quotas. 0 = none of the tenant's own (the server-wide setting applies).
struct TenantQuotas {
  uint64_t max_online_sessions = 0;   // sessions of the tenant online on one node
  uint64_t max_devices_per_user = 0;  // replaces ServerOptions::max_devices_per_user
  double user_send_rate = 0;          // chat sends per second per user (replaces chat_user_*)
  uint64_t user_send_burst = 0;       // 0 = twice the rate (at least 1)
  double tenant_send_rate = 0;        // chat sends per second of the whole tenant
  uint64_t tenant_send_burst = 0;     // 0 = twice the rate (at least 1)
  uint64_t max_group_members = 0;     // a group of the tenant has at most this many members
  uint64_t max_groups_per_user = 0;   // groups a user of the tenant is a member of, at most
  double rest_request_rate = 0;       // REST requests per second of the whole tenant
  uint64_t rest_request_burst = 0;    // 0 = twice the rate (at least 1)
  // Socket logins (with a valid token, refreshes too) per second of the whole tenant.
  double login_rate = 0;
  uint64_t login_burst = 0;           // 0 = twice the rate (at least 1)
  // Socket commands other than login, ping, logout and chat.send (chat.sync, chat.ack,
  // group.*) per second of the whole tenant.
  double command_rate = 0;
  uint64_t command_burst = 0;         // 0 = twice the rate (at least 1)
  double connection_send_rate = 0;    // chat sends per second per connection (replaces
  uint64_t connection_send_burst = 0; // chat_connection_*); burst 0 = twice the rate
  double login_account_rate = 0;      // failed password logins per second per account
  uint64_t login_account_burst = 0;   // (replaces login_account_*); 0 = twice the rate
  // A user's group changes, in the inbox entries they store per second (replaces
  // group_user_*); burst 0 = twice the rate.
  double user_group_rate = 0;
  uint64_t user_group_burst = 0;
  // Inbox bounds below the inbox store's own (ServerOptions::inbox_retention_s, inbox_max):
  // a sync hides the tenant's entries older than retention_s; an append keeps max_inbox.
  uint64_t retention_s = 0;
  uint64_t max_inbox = 0;
};

struct TenantRecord {
  std::string name;  // the tenant id (id rule)
  TenantStatus status = TenantStatus::kActive;
  TenantQuotas quotas;
  // Sensitive words added to the server's list for this tenant's messages and group names
  // (refused with 422 content_rejected). At most kMaxTenantWords, each 1-64 bytes of UTF-8.
  std::vector<std::string> words;
  // Signing keys kept in the registry (key rotation by kid, the signing key first; at most
  // kMaxKeysPerTenant, each a kid and at least 16 raw bytes). Empty: the host's KeyStore's.
  std::vector<SigningKey> keys;
  int64_t updated_ms = 0;  // set by the writer
};

inline constexpr size_t kMaxTenantWords = 1000;
// A registry holds at most this many tenants (Put of one more is 429 too_many_tenants).
inline constexpr size_t kMaxTenants = 10000;

class TenantStore {
 public:
  virtual ~TenantStore() = default;
  // 404 not_found when the tenant has no record.
  virtual Result<TenantRecord> Get(std::string_view name) = 0;
  // Creates or replaces the record of `record.name`.
  virtual Status Put(const TenantRecord& record) = 0;
  // Every record (at most kMaxTenants).
  virtual Result<std::vector<TenantRecord>> List() = 0;
};

// In-memory records (this process only).
std::shared_ptr<TenantStore> NewMemoryTenantStore();

// The record's JSON form (with_secrets: the storage format of the LevelDB and Redis stores, keys
// in hex; without: the body of GET /v1/admin/tenants/<name>, keys by kid alone), and its
// parser: 400 bad_request naming the field that breaks a rule (the name comes from `name`, not
// from the JSON). `keys_given`, when not null, tells whether the JSON had a `keys` member.
std::string TenantRecordJson(const TenantRecord& record, bool with_secrets = true);
Result<TenantRecord> ParseTenantRecord(std::string_view name, std::string_view json,
                                       bool* keys_given = nullptr);

// A KeyStore over the registry: a tenant whose record has keys signs and verifies with those,
// any other tenant with `fallback`'s. Records are read through a cache of `cache_ms` (a key
// added or removed through any node takes effect here within that); a failing registry read
// answers from `fallback` only for tenants never seen, else from the last view.
std::shared_ptr<KeyStore> NewTenantKeyStore(std::shared_ptr<TenantStore> tenants,
                                            std::shared_ptr<KeyStore> fallback,
                                            int64_t cache_ms, Clock* clock = nullptr);

}  // namespace im

#endif  // IM_TENANT_H_
