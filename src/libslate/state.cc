// The state calls of the C API over src/store's StateStore: the component's
// own LMDB store, whose directory the runtime names in SLATE_STORE.
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <string_view>

#include <fmt/format.h>

#include "libslate/internal.h"
#include "store/state_store.h"

struct slate_txn {
  slate::store::Txn txn;
};

namespace slate::lib {
namespace {

std::mutex store_mutex;
// Leaked on purpose, like the process state: it must outlive every static
// destructor (the store's own registry among them), and the kernel closes
// the environment at exit (every commit is already in the file).
store::StateStore* the_store = nullptr;
bool txn_open = false;

int FailStore(std::string_view what, const store::StoreError& e) {
  int code = SLATE_ESYSTEM;
  switch (e.code) {
    case store::StoreErrc::kInvalidArgument:
    case store::StoreErrc::kKeyTooLong: code = SLATE_EINVAL; break;
    case store::StoreErrc::kNotFound: code = SLATE_ENOTFOUND; break;
    case store::StoreErrc::kMapFull:
    case store::StoreErrc::kTxnTooBig: code = SLATE_ENOSPC; break;
    case store::StoreErrc::kTxnFailed:
    case store::StoreErrc::kBusy: code = SLATE_ETXN; break;
    default: code = SLATE_ESYSTEM; break;
  }
  return Fail(code, fmt::format("{}: {}", what, e.ToError().message));
}

// The store, opened on first use; nullptr with the error recorded.
store::StateStore* Store(std::string_view what) {
  Process* p = Attached();
  if (p == nullptr) {
    Fail(SLATE_ENOTINIT, fmt::format("{}: call slate_init first", what));
    return nullptr;
  }
  if (p->store_dir.empty()) {
    Fail(SLATE_ENOSTATE,
         fmt::format("{}: component {} has no state; give it one in the system file "
                     "([component.{}] state = {{ size = \"64MiB\" }})",
                     what, p->component, p->component));
    return nullptr;
  }
  std::lock_guard lock(store_mutex);
  if (!the_store) {
    auto opened = store::StateStore::Open(
        p->store_dir, p->store_size,
        p->store_power ? store::Durability::kPower : store::Durability::kProcess);
    if (!opened) {
      FailStore(what, opened.error());
      return nullptr;
    }
    the_store = std::move(opened).value().release();
  }
  return the_store;
}

bool BadKey(const char* key, std::string_view what) {
  if (key != nullptr && *key != '\0') return false;
  Fail(SLATE_EINVAL, fmt::format("{}: empty or NULL key", what));
  return true;
}

long CopyValue(std::string_view value, void* buf, std::size_t cap) {
  if (buf != nullptr && cap > 0) std::memcpy(buf, value.data(), std::min(cap, value.size()));
  return static_cast<long>(value.size());
}

}  // namespace
}  // namespace slate::lib

using slate::lib::Fail;
using slate::lib::FailStore;

extern "C" {

int slate_state_put(const char* key, const void* val, size_t len) {
  if (slate::lib::BadKey(key, "slate_state_put")) return SLATE_EINVAL;
  if (val == nullptr && len > 0) return Fail(SLATE_EINVAL, "slate_state_put: NULL value");
  auto* store = slate::lib::Store("slate_state_put");
  if (store == nullptr) return slate::lib::LastCode();
  auto st = store->Put(key, std::string_view(static_cast<const char*>(val), len));
  if (!st) return FailStore("slate_state_put", st.error());
  return SLATE_OK;
}

long slate_state_get(const char* key, void* buf, size_t cap) {
  if (slate::lib::BadKey(key, "slate_state_get")) return SLATE_EINVAL;
  if (buf == nullptr && cap > 0) return Fail(SLATE_EINVAL, "slate_state_get: NULL buffer");
  auto* store = slate::lib::Store("slate_state_get");
  if (store == nullptr) return slate::lib::LastCode();
  auto got = store->GetInto(key, std::span(static_cast<char*>(buf), cap));
  if (!got) return FailStore("slate_state_get", got.error());
  if (!got->has_value()) {
    return Fail(SLATE_ENOTFOUND, fmt::format("slate_state_get: no key '{}'", key));
  }
  return static_cast<long>(**got);
}

int slate_state_del(const char* key) {
  if (slate::lib::BadKey(key, "slate_state_del")) return SLATE_EINVAL;
  auto* store = slate::lib::Store("slate_state_del");
  if (store == nullptr) return slate::lib::LastCode();
  auto existed = store->Del(key);
  if (!existed) return FailStore("slate_state_del", existed.error());
  if (!*existed) return Fail(SLATE_ENOTFOUND, fmt::format("slate_state_del: no key '{}'", key));
  return SLATE_OK;
}

int slate_state_foreach(const char* prefix, slate_visit_fn fn, void* arg) {
  if (fn == nullptr) return Fail(SLATE_EINVAL, "slate_state_foreach: NULL function");
  auto* store = slate::lib::Store("slate_state_foreach");
  if (store == nullptr) return slate::lib::LastCode();
  std::string key;  // NUL-terminated for the callback
  auto st =
      store->ForEach(prefix != nullptr ? prefix : "", [&](std::string_view k, std::string_view v) {
        key.assign(k);
        return fn(key.c_str(), k.size(), v.data(), v.size(), arg) == 0;
      });
  if (!st) return FailStore("slate_state_foreach", st.error());
  return SLATE_OK;
}

slate_txn* slate_txn_begin(void) {
  auto* store = slate::lib::Store("slate_txn_begin");
  if (store == nullptr) return nullptr;
  if (slate::lib::txn_open) {
    Fail(SLATE_ETXN, "slate_txn_begin: a transaction is already open in this process");
    return nullptr;
  }
  auto txn = store->Begin(slate::store::TxnMode::kWrite);
  if (!txn) {
    FailStore("slate_txn_begin", txn.error());
    return nullptr;
  }
  auto* t = new (std::nothrow) slate_txn{std::move(txn).value()};
  if (t == nullptr) {
    Fail(SLATE_ESYSTEM, "slate_txn_begin: out of memory");
    return nullptr;
  }
  slate::lib::txn_open = true;
  return t;
}

int slate_txn_put(slate_txn* txn, const char* key, const void* val, size_t len) {
  if (txn == nullptr) return Fail(SLATE_EINVAL, "slate_txn_put: NULL transaction");
  if (slate::lib::BadKey(key, "slate_txn_put")) return SLATE_EINVAL;
  if (val == nullptr && len > 0) return Fail(SLATE_EINVAL, "slate_txn_put: NULL value");
  auto st = txn->txn.Put(key, std::string_view(static_cast<const char*>(val), len));
  if (!st) return FailStore("slate_txn_put", st.error());
  return SLATE_OK;
}

long slate_txn_get(slate_txn* txn, const char* key, void* buf, size_t cap) {
  if (txn == nullptr) return Fail(SLATE_EINVAL, "slate_txn_get: NULL transaction");
  if (slate::lib::BadKey(key, "slate_txn_get")) return SLATE_EINVAL;
  if (buf == nullptr && cap > 0) return Fail(SLATE_EINVAL, "slate_txn_get: NULL buffer");
  auto got = txn->txn.Get(key);
  if (!got) return FailStore("slate_txn_get", got.error());
  if (!got->has_value()) {
    return Fail(SLATE_ENOTFOUND, fmt::format("slate_txn_get: no key '{}'", key));
  }
  return slate::lib::CopyValue(**got, buf, cap);
}

int slate_txn_del(slate_txn* txn, const char* key) {
  if (txn == nullptr) return Fail(SLATE_EINVAL, "slate_txn_del: NULL transaction");
  if (slate::lib::BadKey(key, "slate_txn_del")) return SLATE_EINVAL;
  auto existed = txn->txn.Del(key);
  if (!existed) return FailStore("slate_txn_del", existed.error());
  if (!*existed) return Fail(SLATE_ENOTFOUND, fmt::format("slate_txn_del: no key '{}'", key));
  return SLATE_OK;
}

int slate_txn_commit(slate_txn* txn) {
  if (txn == nullptr) return Fail(SLATE_EINVAL, "slate_txn_commit: NULL transaction");
  auto st = txn->txn.Commit();
  delete txn;
  slate::lib::txn_open = false;
  if (!st) return FailStore("slate_txn_commit", st.error());
  return SLATE_OK;
}

void slate_txn_abort(slate_txn* txn) {
  if (txn == nullptr) return;
  txn->txn.Abort();
  delete txn;
  slate::lib::txn_open = false;
}

}  // extern "C"
