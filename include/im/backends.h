// Factory functions of the bundled backends. Each returns an interface; the implementation
// types stay private.
#ifndef IM_BACKENDS_H_
#define IM_BACKENDS_H_

#include <memory>
#include <string>

#include "im/group_service.h"
#include "im/offline_queue.h"
#include "im/result.h"
#include "im/router.h"
#include "im/session_store.h"
#include "im/user_store.h"

namespace im {

// In-memory sessions, sharded by user.
std::shared_ptr<SessionStore> NewMemorySessionStore();

// This node's connections only.
std::shared_ptr<Router> NewLocalRouter();

// In-memory inboxes with the full seq/sync/ack/retention/dedup semantics; lost on exit (each
// start is a new epoch).
std::shared_ptr<OfflineQueue> NewMemoryOfflineQueue(OfflineQueueOptions options = {});

struct LevelDbOptions {
  // fsync every write batch. Off: an acked message survives a crash of the process (kill -9)
  // but not of the machine (the OS may lose its last writes). On: it survives both, at the
  // cost of one fsync per batch.
  bool sync_writes = false;
  size_t block_cache_bytes = 8 << 20;   // LevelDB block cache
  // LevelDB memtable size. A busy database holds up to two (one being written to level 0),
  // and a restart replays at most about this much log. Larger than LevelDB's 4 MiB default:
  // fewer, larger level-0 files cost a third less compaction CPU under a steady stream of
  // messages (benchmarks/README.md).
  size_t write_buffer_bytes = 32 << 20;
  size_t max_file_bytes = 2 << 20;      // LevelDB table file size
  bool compression = true;              // Snappy-compress table blocks
  bool create_if_missing = true;
};

// Durable inboxes in a LevelDB database at `dir` (created, with its parents, when missing and
// db.create_if_missing). One process may open a directory at a time (LevelDB's lock): a second
// open, also from the same process, fails with 503 unavailable and LevelDB's message; so does an
// I/O error at open. Other open failures (corruption, a missing dir without create_if_missing)
// are 500. The queue closes the database when the last reference is dropped. Every append batch
// is one LevelDB write (see LevelDbOptions::sync_writes for what survives a crash).
// Thread-safety: the returned queue is safe from any thread.
Result<std::shared_ptr<OfflineQueue>> OpenLevelDbOfflineQueue(const std::string& dir,
                                                              OfflineQueueOptions options = {},
                                                              LevelDbOptions db = {});

// In-memory accounts. Passwords are hashed with Argon2id (libsodium crypto_pwhash).
std::shared_ptr<UserStore> NewMemoryUserStore(PasswordHashOptions hash = {});

// Durable accounts in a LevelDB database at `dir` (one process at a time).
Result<std::shared_ptr<UserStore>> OpenLevelDbUserStore(const std::string& dir,
                                                        PasswordHashOptions hash = {},
                                                        LevelDbOptions db = {});

// In-memory groups.
std::shared_ptr<GroupService> NewMemoryGroupService(GroupLimits limits = {});

// Durable groups in a LevelDB database at `dir` (created when missing; one process at a time).
Result<std::shared_ptr<GroupService>> OpenLevelDbGroupService(const std::string& dir,
                                                              GroupLimits limits = {},
                                                              LevelDbOptions db = {});

}  // namespace im

#endif  // IM_BACKENDS_H_
