// Record layout of the LevelDB OfflineQueue: key builders, key parsers and value codecs.
//
// Every key starts with a one-byte record type and the tenant, so one prefix scan can never
// cross into another tenant's data. String components are length-prefixed (varint32), which
// makes them self-delimiting: ("a", "bc") and ("ab", "c") encode differently, and no user's key
// range is a prefix of another's. Integers that must sort (seqs, timestamps, mids) are big-endian
// 64-bit; signed timestamps get their sign bit flipped so that negative values sort first.
//
//   h | tenant | user                  -> InboxHeader (epoch, first_seq, last_seq)
//   i | tenant | user | seq            -> InboxEntryValue (mid, ts)
//   a | tenant | user | device         -> cumulative ack (fixed64)
//   m | tenant | mid                   -> the message, stored once for all recipients
//   t | tenant | ts | mid              -> (empty) time index of messages, for retention
//   d | tenant | dedup key             -> DedupValue
//   e | tenant | recorded_ms | dedup key -> (empty) time index of dedup records
//
// `dedup key` is the last component of its keys and so needs no length prefix.
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
  kMessageRecord = 'm',
  kMessageTimeRecord = 't',
  kDedupRecord = 'd',
  kDedupTimeRecord = 'e',
};

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

std::string MessageKey(std::string_view tenant, uint64_t mid);
std::string MessageTimeKey(std::string_view tenant, TimestampMs ts, uint64_t mid);
std::string DedupKey(std::string_view tenant, std::string_view dedup_key);
std::string DedupTimeKey(std::string_view tenant, TimestampMs recorded_ms,
                         std::string_view dedup_key);

// A parsed time-index key (type t or e). `tenant_prefix` is type | lp(tenant): every key of that
// tenant and type starts with it. `rest` is the encoded mid (t) or the dedup key (e).
struct TimeKey {
  std::string_view tenant_prefix;
  TimestampMs ts = 0;
  std::string_view rest;
};
bool ParseTimeKey(std::string_view key, TimeKey* out);
// The message key a `t` index entry points to, or the dedup key an `e` entry points to.
bool MessageKeyOfTimeKey(const TimeKey& key, std::string* message_key);
std::string DedupKeyOfTimeKey(const TimeKey& key);

// The smallest key greater than every key starting with `prefix` (empty: no such key).
std::string PrefixSuccessor(std::string_view prefix);

// Values.

struct InboxHeader {
  std::string epoch;
  // The oldest retained seq; first_seq == last_seq + 1 when the inbox is empty. Retained seqs are
  // consecutive (appends take last_seq + 1, retention drops only from the front).
  uint64_t first_seq = 1;
  uint64_t last_seq = 0;  // high-water mark, never lowered

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

// Every field but mid and tenant, which the key and the inbox entry carry.
std::string EncodeMessage(const Message& message);
std::shared_ptr<Message> DecodeMessage(std::string_view value, std::string_view tenant,
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
