// Internal: the few file operations the store needs to make a change durable
// (fsync the file, then the directory that names it) and to lock a store
// directory against other users.
#pragma once

#include <cstdint>
#include <string>

#include "platform/unique_fd.h"
#include "store/store_error.h"

namespace slate::store::internal {

// mkdir -p; the last directory, if created here, gets mode 0700.
StoreStatus MakeDirs(const std::string& path);

// fsync(2) of a directory, so that entries created, renamed or removed in it
// survive a power loss.
StoreStatus SyncDir(const std::string& path);

// The directory part of `path` ("/a/b/c" -> "/a/b", "c" -> ".").
std::string ParentOf(const std::string& path);

// Copies `from` to a new file `to` (which must not exist) with
// copy_file_range(2), which lets the file system share extents where it can,
// and fsyncs it. Removes `to` on failure.
StoreStatus CopyFileSynced(const std::string& from, const std::string& to);

// rm -r; a missing path is not an error.
StoreStatus RemoveTree(const std::string& path);

// Size of a regular file in bytes.
StoreResult<std::uint64_t> FileSize(const std::string& path);

// A flock(2) on DIR/slate.lock, the store's own lock file. Every StateStore
// holds it shared for as long as it is open; Restore and Reset take it
// exclusively, so they fail with kBusy instead of pulling a file from under an
// open environment in any process. flock, not fcntl: LMDB uses fcntl locks on
// lock.mdb, which a process drops when it closes any descriptor of that file,
// and LMDB's locks and ours must not interfere. The lock goes with the
// descriptor, so a killed holder never leaves it stale; the descriptor is
// close-on-exec.
class DirLock {
 public:
  enum class Mode { kShared, kExclusive };

  // kShared waits while someone holds it exclusively (a restore is bounded);
  // kExclusive fails at once with kBusy if anyone holds it.
  static StoreResult<DirLock> Acquire(const std::string& dir, Mode mode);

  DirLock() = default;

 private:
  explicit DirLock(platform::UniqueFd fd) : fd_(std::move(fd)) {}
  platform::UniqueFd fd_;
};

}  // namespace slate::store::internal
