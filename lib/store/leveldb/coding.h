// Byte coding shared by the LevelDB stores' keys and values. Integers are big-endian, so that
// keys holding them sort numerically; string components are length-prefixed (varint32), which
// makes them self-delimiting. An id (at most kMaxIdBytes = 64 bytes) has a one-byte prefix.
//
// The Get functions consume what they read from the front of `in` and return false, consuming
// an unspecified part, when `in` is too short or malformed.
//
// Thread-safety: free functions over values; safe from any thread.
#ifndef IM_STORE_LEVELDB_CODING_H_
#define IM_STORE_LEVELDB_CODING_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "im/types.h"

namespace im::internal::coding {

static_assert(kMaxIdBytes < 0x80, "an id's length prefix must fit one byte");

inline void PutVarint32(std::string* out, uint32_t value) {
  while (value >= 0x80) {
    out->push_back(static_cast<char>((value & 0x7F) | 0x80));
    value >>= 7;
  }
  out->push_back(static_cast<char>(value));
}

inline bool GetVarint32(std::string_view* in, uint32_t* value) {
  uint32_t result = 0;
  for (int shift = 0; shift <= 28 && !in->empty(); shift += 7) {
    const auto byte = static_cast<uint8_t>(in->front());
    in->remove_prefix(1);
    result |= static_cast<uint32_t>(byte & 0x7F) << shift;
    if ((byte & 0x80) == 0) {
      *value = result;
      return true;
    }
  }
  return false;
}

inline void PutLengthPrefixed(std::string* out, std::string_view text) {
  PutVarint32(out, static_cast<uint32_t>(text.size()));
  out->append(text);
}

inline bool GetLengthPrefixed(std::string_view* in, std::string_view* text) {
  uint32_t size = 0;
  if (!GetVarint32(in, &size) || in->size() < size) return false;
  *text = in->substr(0, size);
  in->remove_prefix(size);
  return true;
}

inline bool GetLengthPrefixed(std::string_view* in, std::string* text) {
  std::string_view view;
  if (!GetLengthPrefixed(in, &view)) return false;
  text->assign(view);
  return true;
}

// The low `bytes` bytes of `value` (1..8), most significant first.
inline void PutBigEndian(std::string* out, uint64_t value, int bytes = 8) {
  char buf[8];
  for (int i = 0; i < bytes; ++i) buf[i] = static_cast<char>(value >> (8 * (bytes - 1 - i)));
  out->append(buf, static_cast<size_t>(bytes));
}

inline bool GetBigEndian(std::string_view* in, uint64_t* value, int bytes = 8) {
  if (in->size() < static_cast<size_t>(bytes)) return false;
  uint64_t result = 0;
  for (int i = 0; i < bytes; ++i) result = (result << 8) | static_cast<uint8_t>((*in)[i]);
  in->remove_prefix(static_cast<size_t>(bytes));
  *value = result;
  return true;
}

// A signed timestamp with its sign bit flipped, so that negative values sort first.
inline void PutTimestamp(std::string* out, TimestampMs ts) {
  PutBigEndian(out, static_cast<uint64_t>(ts) ^ (uint64_t{1} << 63));
}

inline bool GetTimestamp(std::string_view* in, TimestampMs* ts) {
  uint64_t raw = 0;
  if (!GetBigEndian(in, &raw)) return false;
  *ts = static_cast<TimestampMs>(raw ^ (uint64_t{1} << 63));
  return true;
}

// A value's leading layout version byte.
inline bool GetVersion(std::string_view* in, char version) {
  if (in->empty() || in->front() != version) return false;
  in->remove_prefix(1);
  return true;
}

}  // namespace im::internal::coding

#endif  // IM_STORE_LEVELDB_CODING_H_
