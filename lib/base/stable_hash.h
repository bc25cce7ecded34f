// Hashes whose values are part of a deployment's state (which shard holds a user, which node or
// canary side a user is routed to): fixed forever, the same on every node and version.
#ifndef IM_BASE_STABLE_HASH_H_
#define IM_BASE_STABLE_HASH_H_

#include <cstdint>
#include <string_view>

namespace im::internal {

inline constexpr uint64_t kFnvOffset = 14695981039346656037ull;

// FNV-1a of `text`, continuing from `h`.
inline uint64_t Fnv1a(uint64_t h, std::string_view text) {
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

// The splitmix64 finalizer: FNV-1a alone leaves strings that differ in their last byte close.
inline uint64_t Mix64(uint64_t h) {
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 31;
  return h;
}

}  // namespace im::internal

#endif  // IM_BASE_STABLE_HASH_H_
