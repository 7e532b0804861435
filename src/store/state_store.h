// StateStore: a component's persistent key-value state (SPEC section 5), one
// LMDB environment in a directory the runtime gives, state_dir/state/NAME/.
//
// Guarantees (docs/state.md has the full statement):
// - A committed transaction survives kill -9 of any process that has the store
//   open, in either durability; an uncommitted one vanishes. kPower also syncs
//   every commit to disk, so it survives a power loss or kernel crash too.
// - Reader slots left by a killed process are cleared when a store is opened
//   and by ClearStaleReaders(); a write lock left by a killed writer is
//   recovered by LMDB's robust mutex on the next write.
// - The memory map is read-only (no MDB_WRITEMAP): a wild pointer in the
//   component faults instead of corrupting the store.
//
// Files in the directory: data.mdb and lock.mdb (LMDB's), slate.lock (ours,
// see files.h), checkpoints/ (CheckpointSet's).
//
// Thread safety: Checkpoint(), ClearStaleReaders(), Sync() and GetUsage() may
// be called from any thread, concurrently with each other and with data
// operations on another thread. Data operations (Get, GetInto, Put, Del,
// ForEach, Begin) are thread-compatible: one thread at a time per StateStore.
// A Txn is used by the thread that began it and must not outlive its store.
//
// Process rules (LMDB's): one StateStore per directory per process (a second
// Open fails with kBusy); a StateStore is not used after fork() in the child,
// which opens its own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "store/files.h"
#include "store/store_error.h"

struct MDB_env;
struct MDB_txn;

namespace slate::store {

// What a committed transaction survives besides kill -9 of the processes
// using the store (which both survive).
enum class Durability {
  kProcess,  // MDB_NOSYNC: commits are not synced; a power loss may lose the
             // latest ones or damage the store (kCorrupt on open)
  kPower,    // every commit is synced (data, then meta page) before it returns
};

// How Checkpoint() copies (docs/state.md has the figures and the choice).
// kAsIs copies the file's pages byte for byte up to the last used one, free
// ones included, never interpreting them; it takes LMDB's writer lock while it
// copies the two meta pages, so it first waits for a write transaction in
// progress. kCompact walks the B-tree and writes live pages only; it takes no
// lock, but it must trust the tree it walks.
enum class CopyMode { kAsIs, kCompact };

enum class TxnMode { kRead, kWrite };

// Called for each key of a prefix scan in key order (bytewise); the views are
// valid during the call only. Returning false stops the scan. The visitor may
// read the store (StateStore::ForEach scans a snapshot of its own).
using Visitor = std::function<bool(std::string_view key, std::string_view value)>;

struct StoreUsage {
  std::uint64_t map_size = 0;    // bytes the store may grow to
  std::uint64_t used_bytes = 0;  // pages in use, the free list included
  std::uint64_t entries = 0;     // keys
  unsigned readers = 0;          // reader slots in use, all processes
};

class StateStore;

// A transaction. Reads see one snapshot; a write transaction's own changes
// are visible to its reads. Destroying an active Txn aborts it. After an
// error in a write Txn, Commit() fails with kTxnFailed: abort and retry.
class Txn {
 public:
  Txn(Txn&& other) noexcept;
  Txn& operator=(Txn&& other) noexcept;
  Txn(const Txn&) = delete;
  Txn& operator=(const Txn&) = delete;
  ~Txn();

  // The view points into the store's map and is valid until this Txn ends or
  // its next Put/Del.
  StoreResult<std::optional<std::string_view>> Get(std::string_view key);
  StoreStatus Put(std::string_view key, std::string_view value);
  // true if the key existed.
  StoreResult<bool> Del(std::string_view key);
  StoreStatus ForEach(std::string_view prefix, const Visitor& visit);

  // Ends the transaction either way; on failure nothing of it was applied.
  StoreStatus Commit();
  void Abort();

  bool active() const { return txn_ != nullptr; }
  bool read_only() const { return mode_ == TxnMode::kRead; }

 private:
  friend class StateStore;
  Txn(StateStore* store, MDB_txn* txn, TxnMode mode) : store_(store), txn_(txn), mode_(mode) {}
  StoreStatus CheckWritable(std::string_view what) const;
  void End();

  StateStore* store_ = nullptr;
  MDB_txn* txn_ = nullptr;
  TxnMode mode_ = TxnMode::kRead;
};

class StateStore {
 public:
  // Opens (creating if needed, mode 0700/0600) the store in `dir`. `map_size`
  // is the most the store may hold, rounded up to a page; an existing store
  // with more data than that keeps it but cannot grow. Clears stale reader
  // slots. Errors: kBusy (already open in this process), kCorrupt (not an
  // LMDB environment, or damaged meta pages), kIo, kInvalidArgument.
  static StoreResult<std::unique_ptr<StateStore>> Open(const std::string& dir,
                                                       std::uint64_t map_size,
                                                       Durability durability);

  StateStore(const StateStore&) = delete;
  StateStore& operator=(const StateStore&) = delete;
  // Aborts nothing: every Txn must have ended. Releases slate.lock.
  ~StateStore();

  // Each of these is its own transaction. Keys are 1..511 bytes (kKeyTooLong
  // above, kInvalidArgument when empty); values any length that fits.
  StoreResult<std::optional<std::string>> Get(std::string_view key);
  // Copies min(size, buf.size()) bytes and returns the value's full size, so
  // a caller can tell a truncated read (libslate's slate_state_get).
  StoreResult<std::optional<std::size_t>> GetInto(std::string_view key, std::span<char> buf);
  StoreStatus Put(std::string_view key, std::string_view value);  // kMapFull when full
  StoreResult<bool> Del(std::string_view key);                    // true if it existed
  StoreStatus ForEach(std::string_view prefix, const Visitor& visit);

  // Only one write Txn at a time per store (kBusy for a second one from this
  // StateStore; another process's writer makes this wait, as LMDB does).
  StoreResult<Txn> Begin(TxnMode mode = TxnMode::kWrite);

  // Writes a consistent copy of the last committed state to `dest_dir`/data.mdb
  // (dest_dir must not exist): copied into dest_dir.tmp, fsynced, renamed into
  // place and the parent directory fsynced, so dest_dir is either absent or
  // complete. A leftover dest_dir.tmp is removed first. Runs concurrently with
  // writers in any process (see CopyMode for the one short wait), off the
  // caller's event loop. Returns the copy's size in bytes.
  StoreResult<std::uint64_t> Checkpoint(const std::string& dest_dir,
                                        CopyMode mode = CopyMode::kAsIs) const;

  // Frees reader slots whose process is gone (mdb_reader_check); returns how
  // many. A stale slot pins an old snapshot, so the store grows until it is
  // cleared. The runtime calls this periodically and after a component dies.
  StoreResult<int> ClearStaleReaders();

  // Forces committed data to disk (mdb_env_sync). With kProcess, the runtime
  // may call this to bound what a power loss takes.
  StoreStatus Sync();

  StoreResult<StoreUsage> GetUsage() const;

  const std::string& dir() const { return dir_; }
  Durability durability() const { return durability_; }
  int stale_readers_at_open() const { return stale_readers_at_open_; }

 private:
  friend class Txn;
  StateStore(std::string dir, Durability durability)
      : dir_(std::move(dir)), durability_(durability) {}
  StoreResult<MDB_txn*> BeginRaw(unsigned flags, std::string_view what);
  StoreResult<MDB_txn*> RenewReader(std::string_view what);
  void ResetReader();
  StoreStatus CheckKey(std::string_view key, std::string_view op) const;
  std::string What(std::string_view op) const { return std::string(op) + " in " + dir_; }

  std::string dir_;
  Durability durability_;
  internal::DirLock lock_;
  MDB_env* env_ = nullptr;
  unsigned dbi_ = 0;
  std::size_t max_key_ = 0;
  // A read transaction kept reset between Gets (mdb_txn_reset/renew), so a
  // read costs no reader-table search. Reset, it pins no snapshot.
  MDB_txn* reader_ = nullptr;
  bool writer_open_ = false;
  bool registered_ = false;
  int stale_readers_at_open_ = 0;
};

}  // namespace slate::store
