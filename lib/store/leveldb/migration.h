// The record layout version of the LevelDB inbox database, and the migration of older layouts at
// open (the layouts: store/leveldb/keys.h).
//
// Format 1 -> 2 rewrites each message record under its new key (m | tenant | mid to
// p | tenant | ts | mid, the value without its ts) and deletes its time index record, in write
// batches of at most a few thousand keys, each moving whole messages: a crash between batches
// leaves every message under exactly one of the two keys, and the next open carries on where it
// stopped. Then every header is rewritten with the format 2 value version (the same fields), which
// an older version refuses as damaged rather than handing out seqs again from headers that are no
// longer rewritten per append. The format record is written last, with fsync, so a database is
// format 2 only once nothing of format 1 is left. Entries, acks and dedup records keep their
// layout.
//
// Thread-safety: runs at open, before the queue is shared.
#ifndef IM_STORE_LEVELDB_MIGRATION_H_
#define IM_STORE_LEVELDB_MIGRATION_H_

#include <leveldb/db.h>

#include <cstddef>
#include <string>

#include "im/status.h"

namespace im::internal::leveldb_queue {

// Brings the database at `dir` to kFormatVersion. *migrated: the message records rewritten (0
// when it was current already, or new). A format newer than this code knows is refused with a
// message naming it: nothing is changed.
Status MigrateToCurrentFormat(leveldb::DB* db, const std::string& dir, size_t* migrated);

}  // namespace im::internal::leveldb_queue

#endif  // IM_STORE_LEVELDB_MIGRATION_H_
