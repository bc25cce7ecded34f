// Identities and value types shared by every layer. Every identity is scoped by tenant.
//
// Thread-safety: plain values; distinct objects may be used from distinct threads.
#ifndef IM_TYPES_H_
#define IM_TYPES_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace im {

inline constexpr std::string_view kDefaultTenant = "default";
inline constexpr std::string_view kDefaultDevice = "default";
inline constexpr size_t kMaxIdBytes = 64;

// True when `id` is 1..64 bytes of valid UTF-8 without control characters (C0, DEL, C1).
// Tenants, users, devices and group ids all follow this rule.
bool IsValidId(std::string_view id);

// True when `text` is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
bool IsValidUtf8(std::string_view text);

struct UserKey {
  std::string tenant;
  std::string user;
  bool operator==(const UserKey& o) const { return tenant == o.tenant && user == o.user; }
  bool operator!=(const UserKey& o) const { return !(*this == o); }
  bool operator<(const UserKey& o) const {
    return tenant != o.tenant ? tenant < o.tenant : user < o.user;
  }
};

struct GroupKey {
  std::string tenant;
  std::string gid;
  bool operator==(const GroupKey& o) const { return tenant == o.tenant && gid == o.gid; }
  bool operator<(const GroupKey& o) const {
    return tenant != o.tenant ? tenant < o.tenant : gid < o.gid;
  }
};

struct UserKeyHash {
  size_t operator()(const UserKey& k) const {
    return std::hash<std::string>()(k.tenant) * 31 + std::hash<std::string>()(k.user);
  }
};
struct GroupKeyHash {
  size_t operator()(const GroupKey& k) const {
    return std::hash<std::string>()(k.tenant) * 31 + std::hash<std::string>()(k.gid);
  }
};

// Milliseconds since the Unix epoch.
using TimestampMs = int64_t;

// A source of time, injectable for tests (retention sweeps, token expiry).
// Thread-safety: implementations must be safe from any thread.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimestampMs NowMs() const = 0;
};
// The wall clock. The returned object lives for the whole program; never delete it.
Clock* SystemClock();

enum class TransportKind { kTcp, kWebSocket, kInternal };
std::string_view TransportName(TransportKind kind);  // "tcp", "ws", "internal"

// How a new login displaces existing sessions of the same user.
enum class KickPolicy {
  kPerDevice,   // a login kicks the user's session on the same device id only (default)
  kPerAccount,  // a login kicks every other session of the user
};

// A chat message as stored once and shared by every inbox that indexes it.
struct Message {
  uint64_t mid = 0;          // time-ordered unique id (decimal string on the wire)
  std::string tenant;
  std::string from;          // sender user id ("" for server-side system messages)
  std::string to;            // receiving user for 1:1, empty for group messages
  std::string group;         // group id for group messages, empty for 1:1
  std::string type = "text";
  std::string body;          // UTF-8 text
  std::string extra;         // a serialized JSON object, or empty for none
  TimestampMs ts = 0;        // server time of acceptance
  // Per-group sequence of a group message on sharded Redis inboxes (1, 2, ... per group; the
  // order clients present the group in); 0 otherwise (docs/protocol.md, "gseq").
  uint64_t gseq = 0;
};

// One entry of a user's inbox: the user's seq and the shared message.
struct InboxEntry {
  uint64_t seq = 0;
  std::shared_ptr<const Message> message;
};

// A logged-in session: one connection of one user on one device.
struct SessionInfo {
  UserKey user;
  std::string device;        // "default" when the client gave none
  std::string session_id;    // unique across nodes and restarts
  std::string node;          // the node that holds the connection
  uint64_t connection_id = 0;  // the connection's id on that node
  TimestampMs login_ms = 0;
};

}  // namespace im

#endif  // IM_TYPES_H_
