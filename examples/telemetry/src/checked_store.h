// The telemetry components' state, kept so that damage is found, not used.
//
// Every value is stored twice, under KEY and under KEY#m (its mirror), each
// as the payload followed by the 4-byte CRC-32C of KEY and the payload
// (little-endian), so a value copied under another key fails its check too.
// Both halves are written in the same transaction, so a store the component
// wrote itself always has equal, intact halves.
//
// A read that finds a half damaged, missing or unequal to the other does not
// try to carry on: it logs the key and exits with code 4. So does the scrub
// that the components run over the whole store every second, and at start.
// Corrupt state is a persistent failure, which a restart cannot cure: the
// next process exits 4 again, and the runtime's ladder (system.toml) runs the
// component's `--sanitize` command, Sanitize() below, which rebuilds each
// pair from its intact half.
//
// Keys are 1 to 500 bytes without '#'. One thread uses these calls, as
// libslate's state calls require.
#ifndef SLATE_EXAMPLES_TELEMETRY_CHECKED_STORE_H_
#define SLATE_EXAMPLES_TELEMETRY_CHECKED_STORE_H_

#include <cstddef>
#include <optional>
#include <slate/slate.hpp>
#include <string>
#include <string_view>

#include "telemetry.h"

namespace telemetry {

// A write transaction, or exit 1.
slate::Txn BeginOrExit();
// Commits `txn`, or exits 1 (nothing of it is kept).
void CommitOrExit(slate::Txn& txn);

// The payload under `key`: nullopt if neither half exists; exit 4 if the
// pair is damaged or its payload is not `size` bytes.
std::optional<std::string> LoadPayload(slate::Txn& txn, std::string_view key, std::size_t size);
// The same, each half in its own read (outside any transaction).
std::optional<std::string> LoadPayload(std::string_view key, std::size_t size);
// Writes both halves in `txn`, or exits 1.
void StorePayload(slate::Txn& txn, std::string_view key, std::string_view payload);
// Deletes both halves in `txn` (a missing half is fine), or exits 1.
void ErasePair(slate::Txn& txn, std::string_view key);

template <typename T>
std::optional<T> Load(slate::Txn& txn, std::string_view key) {
  std::optional<std::string> payload = LoadPayload(txn, key, sizeof(T));
  if (!payload) return std::nullopt;
  return RecordFrom<T>(std::string_view(*payload));
}
template <typename T>
std::optional<T> Load(std::string_view key) {
  std::optional<std::string> payload = LoadPayload(key, sizeof(T));
  if (!payload) return std::nullopt;
  return RecordFrom<T>(std::string_view(*payload));
}
template <typename T>
void Store(slate::Txn& txn, std::string_view key, const T& record) {
  auto bytes = BytesOf(record);
  StorePayload(txn, key,
               std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

// Checks every key of the store (one snapshot): each is half of an intact,
// equal pair. Exits 4 at the first that is not. Returns the number of pairs.
std::size_t ScrubOrExit();

// The `--sanitize` command: run by the runtime while the component is down.
// Repairs each damaged or incomplete pair from its intact half and deletes
// a pair with no intact half, logging each. Returns the
// exit code: 0 when the store is consistent again, 1 when the store could
// not be read or written (the runtime then empties it).
int Sanitize();

}  // namespace telemetry

#endif  // SLATE_EXAMPLES_TELEMETRY_CHECKED_STORE_H_
