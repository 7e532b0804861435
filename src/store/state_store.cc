#include "store/state_store.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <system_error>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lmdb.h>

namespace slate::store {
namespace {

// LMDB forbids opening one environment twice in a process: closing the second
// handle's lock file descriptor drops the first one's fcntl locks. The pid
// makes a forked child's inherited copy of the table meaningless to it.
struct OpenStore {
  dev_t dev;
  ino_t ino;
  pid_t pid;
};
std::mutex open_stores_mutex;
std::vector<OpenStore> open_stores;  // NOLINT: process-wide by nature

bool Register(const OpenStore& s) {
  std::lock_guard lock(open_stores_mutex);
  for (const auto& o : open_stores) {
    if (o.dev == s.dev && o.ino == s.ino && o.pid == s.pid) return false;
  }
  open_stores.push_back(s);
  return true;
}

void Unregister(const OpenStore& s) {
  std::lock_guard lock(open_stores_mutex);
  std::erase_if(open_stores, [&](const OpenStore& o) {
    return o.dev == s.dev && o.ino == s.ino && o.pid == s.pid;
  });
}

StoreResult<OpenStore> Identify(const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) return ErrnoStoreError("stat " + dir, errno);
  return OpenStore{st.st_dev, st.st_ino, ::getpid()};
}

MDB_val Val(std::string_view s) {
  return MDB_val{s.size(), const_cast<char*>(s.data())};  // LMDB does not write through it
}

std::string_view View(const MDB_val& v) {
  return {static_cast<const char*>(v.mv_data), v.mv_size};
}

// The cursor of one prefix scan, closed on every path out.
class Cursor {
 public:
  explicit Cursor(MDB_cursor* c) : c_(c) {}
  Cursor(const Cursor&) = delete;
  Cursor& operator=(const Cursor&) = delete;
  ~Cursor() { ::mdb_cursor_close(c_); }
  MDB_cursor* get() const { return c_; }

 private:
  MDB_cursor* c_;
};

StoreStatus Scan(MDB_txn* txn, MDB_dbi dbi, std::string_view prefix, const Visitor& visit,
                 const std::string& dir) {
  MDB_cursor* raw = nullptr;
  int rc = ::mdb_cursor_open(txn, dbi, &raw);
  if (rc != 0) return LmdbError("scan in " + dir, rc);
  const Cursor cursor(raw);
  MDB_val k = Val(prefix);
  MDB_val v{};
  rc = ::mdb_cursor_get(cursor.get(), &k, &v, prefix.empty() ? MDB_FIRST : MDB_SET_RANGE);
  while (rc == 0) {
    const std::string_view key = View(k);
    if (!key.starts_with(prefix) || !visit(key, View(v))) return StoreOk();
    rc = ::mdb_cursor_get(cursor.get(), &k, &v, MDB_NEXT);
  }
  if (rc != MDB_NOTFOUND) return LmdbError("scan in " + dir, rc);
  return StoreOk();
}

}  // namespace

// ---- StateStore ----

StoreResult<std::unique_ptr<StateStore>> StateStore::Open(const std::string& dir,
                                                          std::uint64_t map_size,
                                                          Durability durability) {
  if (map_size == 0) return MakeStoreError(StoreErrc::kInvalidArgument, dir + ": map size 0");
  const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  map_size = (map_size + page - 1) / page * page;

  if (auto made = internal::MakeDirs(dir); !made) return made.error();
  auto id = Identify(dir);
  if (!id) return id.error();
  if (!Register(*id)) {
    return MakeStoreError(StoreErrc::kBusy, dir + " is already open in this process");
  }
  std::unique_ptr<StateStore> store(new StateStore(dir, durability));
  store->registered_ = true;

  auto lock = internal::DirLock::Acquire(dir, internal::DirLock::Mode::kShared);
  if (!lock) return lock.error();  // ~StateStore unregisters
  store->lock_ = std::move(*lock);

  int rc = ::mdb_env_create(&store->env_);
  if (rc != 0) return LmdbError("open " + dir, rc);
  rc = ::mdb_env_set_mapsize(store->env_, map_size);
  // MDB_NOTLS ties a reader slot to its transaction instead of the thread, so
  // Checkpoint() may run on a worker thread beside reads on the caller's.
  unsigned flags = MDB_NOTLS;
  if (durability == Durability::kProcess) flags |= MDB_NOSYNC;
  if (rc == 0) rc = ::mdb_env_open(store->env_, dir.c_str(), flags, 0600);
  if (rc != 0) return LmdbError("open " + dir, rc);  // ~StateStore closes the env

  auto stale = store->ClearStaleReaders();
  if (!stale) return stale.error();
  store->stale_readers_at_open_ = *stale;

  MDB_txn* txn = nullptr;
  rc = ::mdb_txn_begin(store->env_, nullptr, MDB_RDONLY, &txn);
  if (rc == 0) rc = ::mdb_dbi_open(txn, nullptr, 0, &store->dbi_);
  if (rc == 0) {
    rc = ::mdb_txn_commit(txn);  // keeps the dbi handle for the life of the env
  } else if (txn != nullptr) {
    ::mdb_txn_abort(txn);
  }
  if (rc != 0) return LmdbError("open " + dir, rc);
  store->max_key_ = static_cast<std::size_t>(::mdb_env_get_maxkeysize(store->env_));

  if (durability == Durability::kPower) {
    // data.mdb and lock.mdb may have just been created.
    if (auto synced = internal::SyncDir(dir); !synced) return synced.error();
  }
  return store;
}

StateStore::~StateStore() {
  if (reader_ != nullptr) ::mdb_txn_abort(reader_);
  if (env_ != nullptr) ::mdb_env_close(env_);
  if (registered_) {
    if (auto id = Identify(dir_)) Unregister(*id);
  }
}

StoreStatus StateStore::CheckKey(std::string_view key, std::string_view op) const {
  // Cheap on the good path: the message is built only for a bad key.
  if (!key.empty() && key.size() <= max_key_) return StoreOk();
  if (key.empty()) return MakeStoreError(StoreErrc::kInvalidArgument, What(op) + ": empty key");
  return MakeStoreError(StoreErrc::kKeyTooLong,
                        What(op) + ": key of " + std::to_string(key.size()) +
                            " bytes; the most is " + std::to_string(max_key_));
}

StoreResult<MDB_txn*> StateStore::BeginRaw(unsigned flags, std::string_view what) {
  MDB_txn* txn = nullptr;
  const int rc = ::mdb_txn_begin(env_, nullptr, flags, &txn);
  if (rc != 0) return LmdbError(What(what), rc);
  return txn;
}

StoreResult<MDB_txn*> StateStore::RenewReader(std::string_view what) {
  if (reader_ == nullptr) {
    auto txn = BeginRaw(MDB_RDONLY, what);
    if (!txn) return txn.error();
    reader_ = *txn;
    return reader_;
  }
  const int rc = ::mdb_txn_renew(reader_);
  if (rc != 0) {
    ::mdb_txn_abort(reader_);
    reader_ = nullptr;
    return LmdbError(What(what), rc);
  }
  return reader_;
}

void StateStore::ResetReader() {
  ::mdb_txn_reset(reader_);
}

StoreResult<std::optional<std::string>> StateStore::Get(std::string_view key) {
  if (auto ok = CheckKey(key, "get"); !ok) return ok.error();
  auto txn = RenewReader("get");
  if (!txn) return txn.error();
  MDB_val k = Val(key);
  MDB_val v{};
  const int rc = ::mdb_get(*txn, dbi_, &k, &v);
  std::optional<std::string> value;
  if (rc == 0) value.emplace(View(v));
  ResetReader();
  if (rc != 0 && rc != MDB_NOTFOUND) return LmdbError(What("get"), rc);
  return value;
}

StoreResult<std::optional<std::size_t>> StateStore::GetInto(std::string_view key,
                                                            std::span<char> buf) {
  if (auto ok = CheckKey(key, "get"); !ok) return ok.error();
  auto txn = RenewReader("get");
  if (!txn) return txn.error();
  MDB_val k = Val(key);
  MDB_val v{};
  const int rc = ::mdb_get(*txn, dbi_, &k, &v);
  std::optional<std::size_t> size;
  if (rc == 0) {
    std::memcpy(buf.data(), v.mv_data, std::min(buf.size(), v.mv_size));
    size = v.mv_size;
  }
  ResetReader();
  if (rc != 0 && rc != MDB_NOTFOUND) return LmdbError(What("get"), rc);
  return size;
}

StoreStatus StateStore::Put(std::string_view key, std::string_view value) {
  auto txn = Begin(TxnMode::kWrite);
  if (!txn) return txn.error();
  if (auto put = txn->Put(key, value); !put) return put;
  return txn->Commit();
}

StoreResult<bool> StateStore::Del(std::string_view key) {
  auto txn = Begin(TxnMode::kWrite);
  if (!txn) return txn.error();
  auto existed = txn->Del(key);
  if (!existed || !*existed) return existed;  // nothing to commit
  if (auto committed = txn->Commit(); !committed) return committed.error();
  return true;
}

StoreStatus StateStore::ForEach(std::string_view prefix, const Visitor& visit) {
  // Its own snapshot, not the cached reader: the visitor may call Get().
  auto txn = BeginRaw(MDB_RDONLY, "scan");
  if (!txn) return txn.error();
  auto scanned = Scan(*txn, dbi_, prefix, visit, dir_);
  ::mdb_txn_abort(*txn);
  return scanned;
}

StoreResult<Txn> StateStore::Begin(TxnMode mode) {
  if (mode == TxnMode::kWrite && writer_open_) {
    // LMDB's writer mutex is not recursive: this would deadlock.
    return MakeStoreError(StoreErrc::kBusy, What("begin") + ": a write transaction is open");
  }
  auto txn = BeginRaw(mode == TxnMode::kRead ? MDB_RDONLY : 0, "begin");
  if (!txn) return txn.error();
  if (mode == TxnMode::kWrite) writer_open_ = true;
  return Txn(this, *txn, mode);
}

StoreResult<std::uint64_t> StateStore::Checkpoint(const std::string& dest_dir,
                                                  CopyMode mode) const {
  std::error_code ec;
  if (std::filesystem::exists(dest_dir, ec)) {
    return MakeStoreError(StoreErrc::kInvalidArgument, "checkpoint to " + dest_dir + ": exists");
  }
  const std::string tmp = dest_dir + ".tmp";
  if (auto removed = internal::RemoveTree(tmp); !removed) return removed.error();
  if (auto made = internal::MakeDirs(tmp); !made) return made.error();
  const std::string file = tmp + "/data.mdb";
  {
    platform::UniqueFd fd(::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!fd.valid()) return ErrnoStoreError("create " + file, errno);
    const int rc =
        ::mdb_env_copyfd2(env_, fd.get(), mode == CopyMode::kCompact ? MDB_CP_COMPACT : 0);
    if (rc != 0) return LmdbError("checkpoint " + dir_ + " to " + dest_dir, rc);
    if (::fsync(fd.get()) != 0) return ErrnoStoreError("fsync " + file, errno);
  }
  if (auto synced = internal::SyncDir(tmp); !synced) return synced.error();
  if (::rename(tmp.c_str(), dest_dir.c_str()) != 0) {
    return ErrnoStoreError("rename " + tmp + " to " + dest_dir, errno);
  }
  if (auto synced = internal::SyncDir(internal::ParentOf(dest_dir)); !synced) {
    return synced.error();
  }
  return internal::FileSize(dest_dir + "/data.mdb");
}

StoreResult<int> StateStore::ClearStaleReaders() {
  int dead = 0;
  const int rc = ::mdb_reader_check(env_, &dead);
  if (rc != 0) return LmdbError(What("reader check"), rc);
  return dead;
}

StoreStatus StateStore::Sync() {
  const int rc = ::mdb_env_sync(env_, 1);
  if (rc != 0) return LmdbError(What("sync"), rc);
  return StoreOk();
}

StoreResult<StoreUsage> StateStore::GetUsage() const {
  MDB_envinfo info{};
  MDB_stat stat{};
  int rc = ::mdb_env_info(env_, &info);
  if (rc == 0) rc = ::mdb_env_stat(env_, &stat);
  if (rc != 0) return LmdbError(What("usage"), rc);
  return StoreUsage{info.me_mapsize, (info.me_last_pgno + 1) * stat.ms_psize, stat.ms_entries};
}

// ---- Txn ----

Txn::Txn(Txn&& other) noexcept
    : store_(other.store_), txn_(std::exchange(other.txn_, nullptr)), mode_(other.mode_) {}

Txn& Txn::operator=(Txn&& other) noexcept {
  if (this != &other) {
    Abort();
    store_ = other.store_;
    txn_ = std::exchange(other.txn_, nullptr);
    mode_ = other.mode_;
  }
  return *this;
}

Txn::~Txn() {
  Abort();
}

void Txn::End() {
  txn_ = nullptr;
  if (mode_ == TxnMode::kWrite) store_->writer_open_ = false;
}

StoreStatus Txn::CheckWritable(std::string_view what) const {
  if (txn_ == nullptr) {
    return MakeStoreError(StoreErrc::kInvalidArgument,
                          store_->What(what) + ": the transaction has ended");
  }
  if (mode_ == TxnMode::kRead) {
    return MakeStoreError(StoreErrc::kInvalidArgument,
                          store_->What(what) + ": the transaction is read-only");
  }
  return StoreOk();
}

StoreResult<std::optional<std::string_view>> Txn::Get(std::string_view key) {
  if (txn_ == nullptr) {
    return MakeStoreError(StoreErrc::kInvalidArgument,
                          store_->What("get") + ": the transaction has ended");
  }
  if (auto ok = store_->CheckKey(key, "get"); !ok) return ok.error();
  MDB_val k = Val(key);
  MDB_val v{};
  const int rc = ::mdb_get(txn_, store_->dbi_, &k, &v);
  if (rc == MDB_NOTFOUND) return std::optional<std::string_view>();
  if (rc != 0) return LmdbError(store_->What("get"), rc);
  return std::optional<std::string_view>(View(v));
}

StoreStatus Txn::Put(std::string_view key, std::string_view value) {
  if (auto ok = CheckWritable("put"); !ok) return ok;
  if (auto ok = store_->CheckKey(key, "put"); !ok) return ok;
  MDB_val k = Val(key);
  MDB_val v = Val(value);
  const int rc = ::mdb_put(txn_, store_->dbi_, &k, &v, 0);
  if (rc != 0) return LmdbError(store_->What("put"), rc);
  return StoreOk();
}

StoreResult<bool> Txn::Del(std::string_view key) {
  if (auto ok = CheckWritable("del"); !ok) return ok.error();
  if (auto ok = store_->CheckKey(key, "del"); !ok) return ok.error();
  MDB_val k = Val(key);
  const int rc = ::mdb_del(txn_, store_->dbi_, &k, nullptr);
  if (rc == MDB_NOTFOUND) return false;
  if (rc != 0) return LmdbError(store_->What("del"), rc);
  return true;
}

StoreStatus Txn::ForEach(std::string_view prefix, const Visitor& visit) {
  if (txn_ == nullptr) {
    return MakeStoreError(StoreErrc::kInvalidArgument,
                          store_->What("scan") + ": the transaction has ended");
  }
  return Scan(txn_, store_->dbi_, prefix, visit, store_->dir_);
}

StoreStatus Txn::Commit() {
  if (txn_ == nullptr) {
    return MakeStoreError(StoreErrc::kInvalidArgument,
                          store_->What("commit") + ": the transaction has ended");
  }
  const int rc = ::mdb_txn_commit(txn_);  // frees the transaction, failed or not
  End();
  if (rc != 0) return LmdbError(store_->What("commit"), rc);
  return StoreOk();
}

void Txn::Abort() {
  if (txn_ == nullptr) return;
  ::mdb_txn_abort(txn_);
  End();
}

}  // namespace slate::store
