// bench/state, first half: puts, gets and commits per second through
// libslate's C API (slate_state_*, slate_txn_*) against raw LMDB calls doing
// the same work, in the same process, on two stores opened alike (MDB_NOTLS
// | MDB_NOSYNC, durability "process"; read-only map, no MDB_WRITEMAP; same
// map size; see src/store/state_store.cc). Issue 5's goal: within 1.2x.
//
// Both stores hold the same keys (16 bytes) with 100-byte values; every
// workload walks the keys in key order (LMDB's cheapest case, so the
// wrapper's share is at its largest) or in one fixed random order (each put
// then dirties a page of its own). Raw LMDB is the floor:
// it is given each key's length and reuses one reset read transaction per
// get, as StateStore does. Each sample runs the same number of operations
// on both; the samples alternate which side goes first.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace slate::bench::state {

inline constexpr std::size_t kKeyLen = 16;
inline constexpr std::size_t kValueLen = 100;

struct ThroughputOptions {
  std::string slate_dir;  // libslate's store (already in SLATE_STORE)
  std::string raw_dir;    // raw LMDB's
  std::uint64_t map_size = 0;
  int keys = 0;        // keys in each store
  double seconds = 0;  // aimed-at length of one sample (raw LMDB's)
  int reps = 0;        // samples per side
  bool random_order = false;
};

struct ThroughputRow {
  std::string name;                // "puts, 1000 per transaction"
  std::string slate_calls;         // what the libslate side calls per operation
  std::string raw_calls;           // what the raw side calls
  long ops = 0;                    // operations per sample
  std::vector<double> raw_rate;    // ops/s, one per sample
  std::vector<double> slate_rate;  // ops/s, one per sample
  std::vector<bool> raw_first;     // which side ran first in each sample
};

// Fills both stores and measures every workload. slate_init() must have
// succeeded with SLATE_STORE naming options.slate_dir. False with a message
// on stderr if a call failed.
bool MeasureThroughput(const ThroughputOptions& options, std::vector<ThroughputRow>* rows);

}  // namespace slate::bench::state
