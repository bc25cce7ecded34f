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
#include "im/tenant.h"
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
// I/O error at open. The queue closes the database when the last reference is dropped. Every
// append batch is one LevelDB write (see LevelDbOptions::sync_writes for what survives a crash).
//
// Damage is never silent. Every LevelDB database of this header is opened with paranoid checks
// and read with block checksums verified. The open fails with 500 and the error name "damaged"
// (a message naming `dir` and saying to repair it) when LevelDB reports corruption (a damaged
// log record, MANIFEST or CURRENT), when `dir` holds table files or a non-empty log but no
// CURRENT (LevelDB would start an empty database over them), or, for the inbox database, when
// an inbox header does not read back. Damage found later, by a read or a compaction, fails that
// operation with 500 internal (LevelDB then refuses writes). A log cut short at its end opens
// in LevelDB as an older database without any error; the inbox database notices it (a count of
// committed writes kept in the database and in the file WRITE-COUNT beside it) and gives every
// inbox a new epoch, logging a warning: seqs are never handed out twice in one epoch. A
// directory written before WRITE-COUNT existed opens as before and gains the file.
// A directory of an older record format is migrated in place at open (resumable when the open is
// killed; operations.md, the inbox database's records); a format newer than this version reads is
// refused with 500 internal, unchanged. Older versions refuse a migrated directory as damaged.
// Other open failures (a missing dir without create_if_missing) are 500 internal.
// Thread-safety: the returned queue is safe from any thread.
Result<std::shared_ptr<OfflineQueue>> OpenLevelDbOfflineQueue(const std::string& dir,
                                                              OfflineQueueOptions options = {},
                                                              LevelDbOptions db = {});

// Runs LevelDB's RepairDB on the database at `dir` (any of the LevelDB backends): it keeps what
// the table and log files still hold and moves unreadable files to `dir`/lost. Refused with 503
// unavailable while any process, this one included, has the database open; 404 when `dir` is
// not a directory. Recovered data may be older than what was committed.
Status RepairLevelDb(const std::string& dir);

// RepairLevelDb on an inbox database, then every inbox gets a new epoch (clients that held the
// old one resync from 0), each last_seq is raised to at least the highest seq still present
// (an inbox whose header was lost gets one), and the acks of the old epochs are dropped.
// Returns the number of inboxes given a new epoch.
Result<size_t> RepairLevelDbOfflineQueue(const std::string& dir, LevelDbOptions db = {});

// In-memory accounts. Passwords are hashed with Argon2id (libsodium crypto_pwhash).
std::shared_ptr<UserStore> NewMemoryUserStore(PasswordHashOptions hash = {});

// Durable accounts in a LevelDB database at `dir` (one process at a time). Damage at open: as
// for OpenLevelDbOfflineQueue (500 "damaged"); a log cut short at its end is not detected here.
Result<std::shared_ptr<UserStore>> OpenLevelDbUserStore(const std::string& dir,
                                                        PasswordHashOptions hash = {},
                                                        LevelDbOptions db = {});

// Durable tenant records in a LevelDB database at `dir` (one process at a time). Damage at
// open: as for OpenLevelDbOfflineQueue (500 "damaged").
Result<std::shared_ptr<TenantStore>> OpenLevelDbTenantStore(const std::string& dir,
                                                            LevelDbOptions db = {});

// In-memory groups.
std::shared_ptr<GroupService> NewMemoryGroupService(GroupLimits limits = {});

// Durable groups in a LevelDB database at `dir` (created when missing; one process at a time).
// Damage at open: as for OpenLevelDbOfflineQueue (500 "damaged"); a log cut short at its end is
// not detected here.
Result<std::shared_ptr<GroupService>> OpenLevelDbGroupService(const std::string& dir,
                                                              GroupLimits limits = {},
                                                              LevelDbOptions db = {});

}  // namespace im

#endif  // IM_BACKENDS_H_
