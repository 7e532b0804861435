#include "store/store_error.h"

#include <cerrno>

#include <lmdb.h>

#include "platform/status.h"

namespace slate::store {

std::string_view ToString(StoreErrc code) {
  switch (code) {
    case StoreErrc::kInvalidArgument: return "invalid_argument";
    case StoreErrc::kBusy: return "busy";
    case StoreErrc::kNotFound: return "not_found";
    case StoreErrc::kMapFull: return "map_full";
    case StoreErrc::kKeyTooLong: return "key_too_long";
    case StoreErrc::kCorrupt: return "corrupt";
    case StoreErrc::kReadersFull: return "readers_full";
    case StoreErrc::kTxnTooBig: return "txn_too_big";
    case StoreErrc::kTxnFailed: return "txn_failed";
    case StoreErrc::kIo: return "io";
  }
  return "unknown";
}

namespace {

StoreErrc CodeOfErrno(int err) {
  switch (err) {
    case ENOENT: return StoreErrc::kNotFound;
    case EAGAIN: return StoreErrc::kBusy;
    case EINVAL: return StoreErrc::kInvalidArgument;
    default: return StoreErrc::kIo;
  }
}

StoreErrc CodeOfLmdb(int rc) {
  switch (rc) {
    case MDB_MAP_FULL: return StoreErrc::kMapFull;
    case MDB_BAD_VALSIZE: return StoreErrc::kKeyTooLong;
    case MDB_INVALID:
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_VERSION_MISMATCH: return StoreErrc::kCorrupt;
    case MDB_READERS_FULL: return StoreErrc::kReadersFull;
    case MDB_TXN_FULL:
    case MDB_CURSOR_FULL:
    case MDB_PAGE_FULL: return StoreErrc::kTxnTooBig;
    case MDB_BAD_TXN:
    case MDB_BAD_RSLOT: return StoreErrc::kTxnFailed;
    // MDB_PANIC (a failed meta page write), MDB_MAP_RESIZED that a retry did
    // not cure, and the rest: the environment must be closed and reopened.
    default: return StoreErrc::kIo;
  }
}

}  // namespace

StoreError ErrnoStoreError(std::string_view what, int err) {
  return StoreError{CodeOfErrno(err), platform::ErrnoError(what, err).message, err};
}

StoreError LmdbError(std::string_view what, int rc) {
  if (rc > 0) return ErrnoStoreError(what, rc);
  std::string message(what);
  message += ": ";
  message += ::mdb_strerror(rc);
  return StoreError{CodeOfLmdb(rc), std::move(message), 0};
}

}  // namespace slate::store
