// CheckpointSet: the checkpoints of one store, in STORE_DIR/checkpoints/, and
// the two operations that replace the live store: Restore (rollback_state)
// and Reset (reset_state).
//
// On disk (docs/state.md): checkpoints/ckpt-SEQ-NS/data.mdb, where SEQ is a
// sequence number (10 digits, from 1, never reused while a checkpoint with a
// higher one exists) and NS the creation time in nanoseconds since the Unix
// epoch. A checkpoint is an LMDB data file without a lock file; LMDB makes one
// when it is opened. Beside it, data.mdb.sha256 holds the SHA-256 of the copy
// as it was taken ("sha256-" and 64 hex digits), which Restore checks.
// Entries whose names begin with '.' are work in progress (.taking-SEQ,
// .dropping-SEQ, *.tmp) and are removed by Open; a checkpoint that failed
// its check is moved to corrupt-ckpt-SEQ-NS and kept for inspection.
//
// Thread safety: every method may be called from any thread; Take, Prune,
// Restore and Reset are serialized by an internal mutex, and List and the
// lookups never see a checkpoint half made or half removed (both are a
// rename). One CheckpointSet per store directory in the whole system (the
// runtime's).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "store/state_store.h"
#include "store/store_error.h"

namespace slate::store {

struct CheckpointInfo {
  std::uint64_t seq = 0;
  // When the copy was complete. Its snapshot is of a moment no later than
  // this, so "created before T" means "holds state from before T".
  std::chrono::system_clock::time_point created;
  std::string path;  // the checkpoint's directory
  std::uint64_t bytes = 0;
  // RollbackJob's: the newer checkpoints it passed over because they failed
  // Restore's check (each Restore's message), newest first.
  std::vector<std::string> passed_over;
};

class CheckpointSet {
 public:
  // `store_dir` is the store's directory (state_dir/state/NAME); `keep` >= 1
  // checkpoints are kept. Creates store_dir/checkpoints and removes the
  // leftovers of checkpoints interrupted by a crash.
  static StoreResult<std::unique_ptr<CheckpointSet>> Open(const std::string& store_dir, int keep,
                                                          CopyMode mode = CopyMode::kAsIs);

  CheckpointSet(const CheckpointSet&) = delete;
  CheckpointSet& operator=(const CheckpointSet&) = delete;

  // Copies `store` (open on store_dir(), in this process) into a new
  // checkpoint with the next sequence number, then prunes to `keep`. Blocks
  // for the length of the copy: run it on a CheckpointWorker, not the loop.
  StoreResult<CheckpointInfo> Take(const StateStore& store);

  // Oldest first (by sequence number).
  StoreResult<std::vector<CheckpointInfo>> List() const;
  StoreResult<std::optional<CheckpointInfo>> Latest() const;
  StoreResult<std::optional<CheckpointInfo>> Find(std::uint64_t seq) const;
  // The newest checkpoint created strictly before `t`: for rollback_state,
  // `t` is when the failure streak began. Wall-clock times can jump; a caller
  // that also remembers Latest()->seq at the start of the streak can use
  // Find() instead.
  StoreResult<std::optional<CheckpointInfo>> NewestBefore(
      std::chrono::system_clock::time_point t) const;

  // Removes the oldest checkpoints beyond `keep`.
  StoreStatus Prune();

  // Replaces the live store's data with `checkpoint`'s (a copy: the
  // checkpoint stays). Only while the store is closed everywhere — the
  // component down and every StateStore on it, the runtime's too, destroyed:
  // otherwise kBusy and nothing changes. kNotFound if the checkpoint is gone.
  // The new data.mdb is fsynced and renamed into place, so a crash leaves the
  // old or the new store, never a mix; LMDB rebuilds lock.mdb on next open.
  // Before the rename the copy's SHA-256 is checked against the one recorded
  // when the checkpoint was taken: if they differ (the disk, or a hand,
  // changed it since), the live store is left as it was, the checkpoint is
  // moved aside (corrupt-ckpt-SEQ-NS, out of List) and the result is
  // kCorrupt. A checkpoint taken before digests were recorded is restored
  // unchecked.
  StoreStatus Restore(const CheckpointInfo& checkpoint);

  // Empties the live store (removes data.mdb; the next Open creates an empty
  // one). Same precondition and kBusy as Restore. Works on a corrupt store.
  // Checkpoints are kept.
  StoreStatus Reset();

  const std::string& store_dir() const { return store_dir_; }
  const std::string& dir() const { return dir_; }
  int keep() const { return keep_; }

 private:
  CheckpointSet(std::string store_dir, int keep, CopyMode mode)
      : store_dir_(std::move(store_dir)),
        dir_(store_dir_ + "/checkpoints"),
        keep_(keep),
        mode_(mode) {}
  StoreStatus PruneLocked();

  std::string store_dir_;
  std::string dir_;
  int keep_;
  CopyMode mode_;
  std::mutex mutex_;
};

}  // namespace slate::store
