// StoreError and StoreResult<T>: what the state store returns instead of
// throwing. Unlike base/result.h's Error, a StoreError carries a code, because
// callers act on it: libslate maps it to a SLATE_E* value, and the runtime
// treats kCorrupt as a reason to roll back or reset the store.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "base/result.h"

namespace slate::store {

enum class StoreErrc {
  kInvalidArgument,  // empty key, a finished transaction, a write in a read-only one
  kBusy,             // the store is open where the operation needs it closed, or twice
  kNotFound,         // a checkpoint or store directory that does not exist
  kMapFull,          // MDB_MAP_FULL: the store reached its size (state.size)
  kKeyTooLong,       // MDB_BAD_VALSIZE: key over the maximum (511 bytes)
  kCorrupt,          // not an LMDB environment, or its pages are damaged
  kReadersFull,      // MDB_READERS_FULL: every reader slot taken
  kTxnTooBig,        // MDB_TXN_FULL and friends: too many changes in one transaction
  kTxnFailed,        // an earlier error left the transaction unusable; abort it
  kIo,               // the system said no: errno is in `sys_errno`
};

std::string_view ToString(StoreErrc code);

struct StoreError {
  StoreErrc code = StoreErrc::kIo;
  std::string message;  // "what: reason", e.g. "put in /s/state/a: store full (map size 1 MiB)"
  int sys_errno = 0;    // set for kIo when the cause was an errno

  // For callers that only report: the message, with the code's name prefixed.
  Error ToError() const { return MakeError(std::string(ToString(code)) + ": " + message); }
};

// [[nodiscard]] (from Result): an unchecked store error is a lost write.
template <typename T>
using StoreResult = Result<T, StoreError>;

using StoreStatus = StoreResult<std::monostate>;

inline StoreStatus StoreOk() {
  return std::monostate{};
}

inline StoreError MakeStoreError(StoreErrc code, std::string message) {
  return StoreError{code, std::move(message), 0};
}

// "what: strerror(err)", code kIo (kNotFound for ENOENT, kBusy for EAGAIN and
// EWOULDBLOCK, kInvalidArgument for EINVAL).
StoreError ErrnoStoreError(std::string_view what, int err);

// "what: mdb_strerror(rc)", with rc (an LMDB or errno value) mapped to a code.
StoreError LmdbError(std::string_view what, int rc);

}  // namespace slate::store
