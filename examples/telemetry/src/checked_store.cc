#include "checked_store.h"

#include <cstdint>
#include <cstdlib>
#include <map>
#include <utility>

#include "common.h"

namespace telemetry {
namespace {

constexpr std::string_view kMirrorSuffix = "#m";
constexpr std::size_t kCrcSize = 4;

std::string MirrorOf(std::string_view key) {
  return std::string(key) + std::string(kMirrorSuffix);
}

std::string Sealed(std::string_view key, std::string_view payload) {
  std::uint32_t crc = Crc32c(payload, Crc32c(key));
  std::string value(payload);
  for (std::size_t i = 0; i < kCrcSize; ++i) value.push_back(static_cast<char>(crc >> (8 * i)));
  return value;
}

// The payload of a stored half, if its CRC holds for `key`.
std::optional<std::string_view> Unsealed(std::string_view key, std::string_view value) {
  if (value.size() < kCrcSize) return std::nullopt;
  std::string_view payload = value.substr(0, value.size() - kCrcSize);
  std::uint32_t stored = 0;
  for (std::size_t i = 0; i < kCrcSize; ++i) {
    stored |= std::uint32_t{static_cast<unsigned char>(value[payload.size() + i])} << (8 * i);
  }
  if (stored != Crc32c(payload, Crc32c(key))) return std::nullopt;
  return payload;
}

[[noreturn]] void Corrupt(std::string_view key, const char* why) {
  Log("corrupt state: key '%.*s': %s; exiting with code %d (the ladder's sanitize_state repairs "
      "the store)",
      static_cast<int>(key.size()), key.data(), why, kExitCorruptState);
  std::exit(kExitCorruptState);
}

// A half as read: its value, or nullopt if the key does not exist. A store
// that cannot be read is as good as corrupt.
std::optional<std::string> Half(slate::Result<std::string> read, std::string_view key) {
  if (read) return std::move(read).value();
  if (read.code() == SLATE_ENOTFOUND) return std::nullopt;
  Log("reading key '%.*s': %s", static_cast<int>(key.size()), key.data(),
      read.error().text.c_str());
  Corrupt(key, "the store cannot be read");
}

std::optional<std::string> CheckedPair(std::string_view key,
                                       const std::optional<std::string>& primary,
                                       const std::optional<std::string>& mirror, std::size_t size) {
  if (!primary && !mirror) return std::nullopt;
  if (!primary) Corrupt(key, "missing, though its mirror exists");
  if (!mirror) Corrupt(MirrorOf(key), "missing, though its primary exists");
  auto p = Unsealed(key, *primary);
  if (!p) Corrupt(key, "bad checksum");
  auto m = Unsealed(key, *mirror);
  if (!m) Corrupt(MirrorOf(key), "bad checksum");
  if (*p != *m) Corrupt(key, "differs from its mirror");
  if (p->size() != size) Corrupt(key, "has the wrong size");
  return std::string(*p);
}

}  // namespace

slate::Txn BeginOrExit() {
  return OrExit(slate::Txn::Begin(), "state transaction");
}

void CommitOrExit(slate::Txn& txn) {
  if (auto st = txn.Commit(); !st) Fail("state commit", st.error());
}

std::optional<std::string> LoadPayload(slate::Txn& txn, std::string_view key, std::size_t size) {
  std::string mirror = MirrorOf(key);
  return CheckedPair(key, Half(txn.Get(key), key), Half(txn.Get(mirror), mirror), size);
}

std::optional<std::string> LoadPayload(std::string_view key, std::size_t size) {
  std::string mirror = MirrorOf(key);
  return CheckedPair(key, Half(slate::State::Get(key), key),
                     Half(slate::State::Get(mirror), mirror), size);
}

void StorePayload(slate::Txn& txn, std::string_view key, std::string_view payload) {
  std::string value = Sealed(key, payload);
  if (auto st = txn.Put(key, value); !st) Fail("state put", st.error());
  if (auto st = txn.Put(MirrorOf(key), value); !st) Fail("state put", st.error());
}

void ErasePair(slate::Txn& txn, std::string_view key) {
  for (const std::string& k : {std::string(key), MirrorOf(key)}) {
    if (auto st = txn.Del(k); !st && st.code() != SLATE_ENOTFOUND) Fail("state del", st.error());
  }
}

std::size_t ScrubOrExit() {
  // Keys come in byte order, so KEY#m comes right after KEY (no key of ours
  // continues KEY with a byte below '#').
  std::string pending_key;
  std::string pending_value;
  bool pending = false;
  std::size_t pairs = 0;
  auto visit = [&](std::string_view key, std::string_view value) {
    if (key.ends_with(kMirrorSuffix)) {
      std::string_view base = key.substr(0, key.size() - kMirrorSuffix.size());
      if (!pending || pending_key != base) Corrupt(key, "a mirror without its primary");
      auto p = Unsealed(base, pending_value);
      if (!p) Corrupt(base, "bad checksum");
      auto m = Unsealed(base, value);
      if (!m) Corrupt(key, "bad checksum");
      if (*p != *m) Corrupt(base, "differs from its mirror");
      pending = false;
      ++pairs;
      return true;
    }
    if (pending) Corrupt(pending_key, "its mirror is missing");
    pending_key.assign(key);
    pending_value.assign(value);
    pending = true;
    return true;
  };
  if (auto st = slate::State::ForEach("", visit); !st) {
    Log("scrub: %s", st.error().text.c_str());
    Corrupt("*", "the store cannot be read");
  }
  if (pending) Corrupt(pending_key, "its mirror is missing");
  return pairs;
}

int Sanitize() {
  // Read everything first (the store of a component is small), then repair
  // in one transaction: all of the repair, or none of it.
  struct Pair {
    std::optional<std::string> primary;
    std::optional<std::string> mirror;
  };
  std::map<std::string, Pair, std::less<>> pairs;
  auto collect = [&](std::string_view key, std::string_view value) {
    if (key.ends_with(kMirrorSuffix)) {
      pairs[std::string(key.substr(0, key.size() - kMirrorSuffix.size()))].mirror =
          std::string(value);
    } else {
      pairs[std::string(key)].primary = std::string(value);
    }
    return true;
  };
  if (auto st = slate::State::ForEach("", collect); !st) {
    Log("sanitize: cannot read the store: %s", st.error().text.c_str());
    return kExitError;
  }
  auto txn = slate::Txn::Begin();
  if (!txn) {
    Log("sanitize: %s", txn.error().text.c_str());
    return kExitError;
  }
  std::size_t repaired = 0;
  std::size_t dropped = 0;
  bool ok = true;
  auto put = [&](const std::string& key, const std::string& value) {
    if (auto st = txn->Put(key, value); !st) {
      Log("sanitize: writing '%s': %s", key.c_str(), st.error().text.c_str());
      ok = false;
    }
  };
  for (const auto& [key, pair] : pairs) {
    std::string mirror = MirrorOf(key);
    std::optional<std::string_view> p;
    std::optional<std::string_view> m;
    if (pair.primary) p = Unsealed(key, *pair.primary);
    if (pair.mirror) m = Unsealed(key, *pair.mirror);
    if (p && m && *p == *m) continue;
    if (p) {
      put(mirror, *pair.primary);
      Log("sanitize: %s: rewrote %s from %s (it was %s)", key.c_str(), mirror.c_str(), key.c_str(),
          !pair.mirror ? "missing" : (m ? "different" : "damaged"));
      ++repaired;
    } else if (m) {
      put(key, *pair.mirror);
      Log("sanitize: %s: rewrote it from %s (it was %s)", key.c_str(), mirror.c_str(),
          pair.primary ? "damaged" : "missing");
      ++repaired;
    } else {
      // Nothing intact to go back to: the value is lost, and saying so is
      // all a repair can do. The component treats the key as never written.
      for (const std::string& k : {key, mirror}) {
        if (auto st = txn->Del(k); !st && st.code() != SLATE_ENOTFOUND) ok = false;
      }
      Log("sanitize: %s: DROPPED, no intact half (primary %s, mirror %s)", key.c_str(),
          pair.primary ? "damaged" : "missing", pair.mirror ? "damaged" : "missing");
      ++dropped;
    }
  }
  if (!ok) return kExitError;
  if (auto st = txn->Commit(); !st) {
    Log("sanitize: commit: %s", st.error().text.c_str());
    return kExitError;
  }
  Log("sanitize: %zu keys (each with its mirror) checked, %zu repaired, %zu dropped", pairs.size(),
      repaired, dropped);
  return 0;
}

}  // namespace telemetry
