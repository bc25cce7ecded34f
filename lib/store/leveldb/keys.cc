#include "store/leveldb/keys.h"

#include <array>

#include "store/leveldb/coding.h"

namespace im::internal::leveldb_queue {
namespace {

using coding::GetBigEndian;
using coding::GetLengthPrefixed;
using coding::GetTimestamp;
using coding::PutBigEndian;
using coding::PutLengthPrefixed;
using coding::PutTimestamp;

// Bumped when a value layout changes, so that a newer reader can tell old records apart.
constexpr char kValueVersion = 1;
// Message values without the ts (format 2), which their key holds.
constexpr char kMessageVersion = 2;
// Headers of format 2, whose seqs are floors (keys.h). The same bytes as version 1, under another
// version so that an older reader, which would take them for the inbox's current seqs and hand
// seqs out again, refuses them as damaged instead.
constexpr char kHeaderVersion = 2;

// The message fields a value holds, in order.
constexpr std::array<std::string Message::*, 6> kMessageFields = {
    &Message::from, &Message::to, &Message::group, &Message::type, &Message::body, &Message::extra};

// Decodes the fields of kMessageFields from `value`, which must hold nothing else.
bool DecodeMessageFields(std::string_view value, Message* message) {
  for (std::string Message::*field : kMessageFields) {
    if (!GetLengthPrefixed(&value, &(message->*field))) return false;
  }
  return value.empty();
}

std::string TenantPrefix(RecordType type, std::string_view tenant) {
  std::string key(1, type);
  PutLengthPrefixed(&key, tenant);
  return key;
}

std::string TypedUserKey(RecordType type, const UserKey& user) {
  std::string key(1, type);
  key.append(UserPart(user));
  return key;
}

}  // namespace

std::string UserPart(const UserKey& user) {
  std::string part;
  part.reserve(2 + user.tenant.size() + user.user.size());
  PutLengthPrefixed(&part, user.tenant);
  PutLengthPrefixed(&part, user.user);
  return part;
}

std::string HeaderKey(const UserKey& user) { return TypedUserKey(kHeaderRecord, user); }

std::string InboxPrefixOfHeader(std::string_view header_key) {
  std::string prefix(header_key);
  if (!prefix.empty()) prefix[0] = kInboxRecord;
  return prefix;
}

std::string InboxPrefix(const UserKey& user) { return TypedUserKey(kInboxRecord, user); }

std::string InboxKey(std::string_view inbox_prefix, uint64_t seq) {
  std::string key;
  key.reserve(inbox_prefix.size() + 8);
  key.append(inbox_prefix);
  PutBigEndian(&key, seq);
  return key;
}

bool ParseInboxKey(std::string_view key, std::string_view inbox_prefix, uint64_t* seq) {
  if (key.size() != inbox_prefix.size() + 8 || key.substr(0, inbox_prefix.size()) != inbox_prefix) {
    return false;
  }
  key.remove_prefix(inbox_prefix.size());
  return GetBigEndian(&key, seq);
}

std::string AckKey(const UserKey& user, std::string_view device) {
  std::string key = TypedUserKey(kAckRecord, user);
  PutLengthPrefixed(&key, device);
  return key;
}

const std::string& FormatKey() {
  static const std::string* key = new std::string("!format");
  return *key;
}

std::string MessageKey(std::string_view tenant, TimestampMs ts, uint64_t mid) {
  std::string key = TenantPrefix(kMessageRecord, tenant);
  PutTimestamp(&key, ts);
  PutBigEndian(&key, mid);
  return key;
}

std::string OldMessageKey(std::string_view tenant, uint64_t mid) {
  std::string key = TenantPrefix(kOldMessageRecord, tenant);
  PutBigEndian(&key, mid);
  return key;
}

std::string OldMessageTimeKey(std::string_view tenant, TimestampMs ts, uint64_t mid) {
  std::string key = TenantPrefix(kOldMessageTimeRecord, tenant);
  PutTimestamp(&key, ts);
  PutBigEndian(&key, mid);
  return key;
}

std::string DedupKey(std::string_view tenant, std::string_view dedup_key) {
  std::string key = TenantPrefix(kDedupRecord, tenant);
  key.append(dedup_key);
  return key;
}

std::string DedupTimeKey(std::string_view tenant, TimestampMs recorded_ms,
                         std::string_view dedup_key) {
  std::string key = TenantPrefix(kDedupTimeRecord, tenant);
  PutTimestamp(&key, recorded_ms);
  key.append(dedup_key);
  return key;
}

bool ParseOldMessageKey(std::string_view key, std::string_view* tenant, uint64_t* mid) {
  if (key.empty() || key[0] != kOldMessageRecord) return false;
  key.remove_prefix(1);
  return GetLengthPrefixed(&key, tenant) && GetBigEndian(&key, mid) && key.empty();
}

bool ParseTimeKey(std::string_view key, TimeKey* out) {
  if (key.empty()) return false;
  std::string_view in = key.substr(1);
  std::string_view tenant;
  if (!GetLengthPrefixed(&in, &tenant)) return false;
  out->tenant_prefix = key.substr(0, key.size() - in.size());
  if (!GetTimestamp(&in, &out->ts)) return false;
  out->rest = in;
  return true;
}

std::string DedupKeyOfTimeKey(const TimeKey& key) {
  std::string dedup_key(key.tenant_prefix);
  dedup_key[0] = kDedupRecord;
  dedup_key.append(key.rest);
  return dedup_key;
}

std::string PrefixSuccessor(std::string_view prefix) {
  std::string next(prefix);
  while (!next.empty()) {
    if (static_cast<uint8_t>(next.back()) != 0xFF) {
      next.back() = static_cast<char>(static_cast<uint8_t>(next.back()) + 1);
      return next;
    }
    next.pop_back();
  }
  return next;
}

std::string EncodeHeader(const InboxHeader& header) {
  std::string value(1, kHeaderVersion);
  PutBigEndian(&value, header.first_seq);
  PutBigEndian(&value, header.last_seq);
  value.append(header.epoch);
  return value;
}

bool DecodeHeader(std::string_view value, InboxHeader* out) {
  // Version 1 (format 1) reads the same way: its seqs were exact, which floors also are.
  if (!(coding::GetVersion(&value, kHeaderVersion) || coding::GetVersion(&value, kValueVersion)) ||
      !GetBigEndian(&value, &out->first_seq) || !GetBigEndian(&value, &out->last_seq)) {
    return false;
  }
  out->epoch.assign(value);
  return !out->epoch.empty() && out->first_seq <= out->last_seq + 1;
}

std::string EncodeEntry(const InboxEntryValue& entry) {
  std::string value;
  value.reserve(16);
  PutBigEndian(&value, entry.mid);
  PutBigEndian(&value, static_cast<uint64_t>(entry.ts));
  return value;
}

bool DecodeEntry(std::string_view value, InboxEntryValue* out) {
  uint64_t ts = 0;
  if (value.size() != 16 || !GetBigEndian(&value, &out->mid) || !GetBigEndian(&value, &ts)) {
    return false;
  }
  out->ts = static_cast<TimestampMs>(ts);
  return true;
}

std::string EncodeMessage(const Message& message) {
  std::string value;
  value.reserve(1 + 6 + message.from.size() + message.to.size() + message.group.size() +
                message.type.size() + message.body.size() + message.extra.size() + 8);
  value.push_back(kMessageVersion);
  for (std::string Message::*field : kMessageFields) PutLengthPrefixed(&value, message.*field);
  return value;
}

std::shared_ptr<Message> DecodeMessage(std::string_view value, std::string_view tenant,
                                       TimestampMs ts, uint64_t mid) {
  auto message = std::make_shared<Message>();
  if (!coding::GetVersion(&value, kMessageVersion) || !DecodeMessageFields(value, message.get())) {
    return nullptr;
  }
  message->mid = mid;
  message->tenant.assign(tenant);
  message->ts = ts;
  return message;
}

std::shared_ptr<Message> DecodeOldMessage(std::string_view value, std::string_view tenant,
                                          uint64_t mid) {
  auto message = std::make_shared<Message>();
  uint64_t ts = 0;
  if (!coding::GetVersion(&value, kValueVersion) || !GetBigEndian(&value, &ts) ||
      !DecodeMessageFields(value, message.get())) {
    return nullptr;
  }
  message->mid = mid;
  message->tenant.assign(tenant);
  message->ts = static_cast<TimestampMs>(ts);
  return message;
}

std::string EncodeDedup(const DedupValue& dedup) {
  std::string value(1, kValueVersion);
  PutBigEndian(&value, dedup.mid);
  PutBigEndian(&value, static_cast<uint64_t>(dedup.ts));
  PutBigEndian(&value, dedup.sender_seq);
  PutBigEndian(&value, static_cast<uint64_t>(dedup.recorded_ms));
  return value;
}

bool DecodeDedup(std::string_view value, DedupValue* out) {
  uint64_t ts = 0;
  uint64_t recorded = 0;
  if (!coding::GetVersion(&value, kValueVersion) || !GetBigEndian(&value, &out->mid) ||
      !GetBigEndian(&value, &ts) || !GetBigEndian(&value, &out->sender_seq) ||
      !GetBigEndian(&value, &recorded) || !value.empty()) {
    return false;
  }
  out->ts = static_cast<TimestampMs>(ts);
  out->recorded_ms = static_cast<TimestampMs>(recorded);
  return true;
}

std::string EncodeFixed64(uint64_t value) {
  std::string out;
  PutBigEndian(&out, value);
  return out;
}

bool DecodeFixed64(std::string_view value, uint64_t* out) {
  return value.size() == 8 && GetBigEndian(&value, out);
}

}  // namespace im::internal::leveldb_queue
