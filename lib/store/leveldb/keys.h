// Record layout of the LevelDB OfflineQueue: key builders, key parsers and value codecs.
//
// Every key starts with a one-byte record type and the tenant, so one prefix scan can never
// cross into another tenant's data. String components are length-prefixed (varint32), which
// makes them self-delimiting: ("a", "bc") and ("ab", "c") encode differently, and no user's key
// range is a prefix of another's. Integers that must sort (seqs, timestamps, mids) are big-endian
// 64-bit; signed timestamps get their sign bit flipped so that negative values sort first.
//
//   !format                            -> the record layout's version (fixed64, kFormatVersion)
//   !write-count                       -> batches committed (store/leveldb/inbox_recovery.h)
//   h | tenant | user                  -> InboxHeader (epoch, first_seq, last_seq)
//   i | tenant | user | seq            -> InboxEntryValue (mid, ts)
//   a | tenant | user | device         -> cumulative ack (fixed64)
//   p | tenant | ts | mid              -> the message (payload), stored once for all recipients
//   d | tenant | dedup key             -> DedupValue
//   e | tenant | recorded_ms | dedup key -> (empty) time index of dedup records
//
// `dedup key` is the last component of its keys and so needs no length prefix.
//
// A message key starts with its ts, so the message records of a tenant are their own time index:
// retention deletes from the front of each tenant's range. An inbox entry holds (mid, ts), which
// is the whole message key.
//
// The header is written when the inbox is created, and again only when its last_seq could not be
// read back from the entries (the inbox emptied by retention or max_inbox), never per append: the
// inbox's last_seq is the larger of the header's and the highest entry seq; its first_seq is the
// lowest entry seq (last_seq + 1 when it has none).
//
// Format 1 (no !format record) stored a message under m | tenant | mid, with a time index record
// t | tenant | ts | mid beside it, and rewrote the headers of every inbox an append touched. The
// open migrates it (store/leveldb/migration.h).
//
// Thread-safety: free functions over values; safe from any thread.
#ifndef IM_STORE_LEVELDB_KEYS_H_
#define IM_STORE_LEVELDB_KEYS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "im/types.h"

namespace im::internal::leveldb_queue {

enum RecordType : char {
  kHeaderRecord = 'h',
  kInboxRecord = 'i',
  kAckRecord = 'a',
  kMessageRecord = 'p',
  kDedupRecord = 'd',
  kDedupTimeRecord = 'e',
  // Format 1 only.
  kOldMessageRecord = 'm',
  kOldMessageTimeRecord = 't',
};

// The record layout this code writes; a database without a format record is format 1.
inline constexpr uint64_t kFormatVersion = 2;
const std::string& FormatKey();

// lp(tenant) lp(user): the part shared by a user's header, inbox and ack keys.
std::string UserPart(const UserKey& user);

std::string HeaderKey(const UserKey& user);
// The inbox key prefix of the user whose header key is `header_key` (same components).
std::string InboxPrefixOfHeader(std::string_view header_key);
std::string InboxPrefix(const UserKey& user);
std::string InboxKey(std::string_view inbox_prefix, uint64_t seq);
// The seq of `key` when it is an inbox key under `inbox_prefix`; false otherwise.
bool ParseInboxKey(std::string_view key, std::string_view inbox_prefix, uint64_t* seq);
std::string AckKey(const UserKey& user, std::string_view device);

std::string MessageKey(std::string_view tenant, TimestampMs ts, uint64_t mid);
// Format 1.
std::string OldMessageKey(std::string_view tenant, uint64_t mid);
std::string OldMessageTimeKey(std::string_view tenant, TimestampMs ts, uint64_t mid);
bool ParseOldMessageKey(std::string_view key, std::string_view* tenant, uint64_t* mid);
std::string DedupKey(std::string_view tenant, std::string_view dedup_key);
std::string DedupTimeKey(std::string_view tenant, TimestampMs recorded_ms,
                         std::string_view dedup_key);

// A parsed time-ordered key (type p, e, or t of format 1). `tenant_prefix` is type | lp(tenant):
// every key of that tenant and type starts with it. `rest` is the encoded mid (p, t) or the dedup
// key (e).
struct TimeKey {
  std::string_view tenant_prefix;
  TimestampMs ts = 0;
  std::string_view rest;
};
bool ParseTimeKey(std::string_view key, TimeKey* out);
// The dedup key an `e` entry points to.
std::string DedupKeyOfTimeKey(const TimeKey& key);

// The smallest key greater than every key starting with `prefix` (empty: no such key).
std::string PrefixSuccessor(std::string_view prefix);

// Values.

// An inbox's state. The header record stores it as it was when last written; the state in use
// derives first_seq and last_seq from the entries too (see the layout above).
struct InboxHeader {
  std::string epoch;
  // The oldest retained seq; first_seq == last_seq + 1 when the inbox is empty. Retained seqs are
  // consecutive (appends take last_seq + 1, retention drops only from the front).
  uint64_t first_seq = 1;
  uint64_t last_seq = 0;  // high-water mark, never lowered
  // In memory only: the last_seq of the header record, which an empty inbox's last_seq rests on.
  uint64_t stored_last_seq = 0;

  bool empty() const { return first_seq > last_seq; }
  uint64_t size() const { return last_seq + 1 - first_seq; }
};
std::string EncodeHeader(const InboxHeader& header);
bool DecodeHeader(std::string_view value, InboxHeader* out);

struct InboxEntryValue {
  uint64_t mid = 0;
  TimestampMs ts = 0;  // the message's ts, copied so retention needs no message lookup
};
std::string EncodeEntry(const InboxEntryValue& entry);
bool DecodeEntry(std::string_view value, InboxEntryValue* out);

// Every field but tenant, ts and mid, which the key carries.
std::string EncodeMessage(const Message& message);
std::shared_ptr<Message> DecodeMessage(std::string_view value, std::string_view tenant,
                                       TimestampMs ts, uint64_t mid);
// A format 1 message value, which held the ts too.
std::shared_ptr<Message> DecodeOldMessage(std::string_view value, std::string_view tenant,
                                          uint64_t mid);

struct DedupValue {
  uint64_t mid = 0;
  TimestampMs ts = 0;
  uint64_t sender_seq = 0;
  TimestampMs recorded_ms = 0;  // when the key was recorded: the window starts here
};
std::string EncodeDedup(const DedupValue& value);
bool DecodeDedup(std::string_view value, DedupValue* out);

std::string EncodeFixed64(uint64_t value);
bool DecodeFixed64(std::string_view value, uint64_t* out);

}  // namespace im::internal::leveldb_queue

#endif  // IM_STORE_LEVELDB_KEYS_H_
