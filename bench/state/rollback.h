// bench/state, second half: what rolling back a ~100 MiB store costs, with
// src/store's own code (the runtime's, not libslate's):
//   checkpoint  CheckpointSet::Take (as-is copy, fsync, rename, prune to 1);
//   restore     CheckpointSet::Restore of that checkpoint, the store closed;
//   rollback    RollbackJob on a CheckpointWorker (what rollback_state runs),
//               Submit -> its completion collected through the worker's fd;
//   reopen      StateStore::Open after a restore, and the first get.
// The baseline, in the same run and interleaved: the same bytes copied by
// hand (copy_file_range, fsync, rename over the previous copy, fsync of the
// directory), the least a durable copy of the file costs on this disk.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace slate::bench::state {

struct RollbackOptions {
  std::string dir;  // an empty directory of its own
  std::uint64_t map_size = 0;
  std::uint64_t store_bytes = 0;  // fill until this much of the store is in use
  int reps = 0;
};

struct RollbackResult {
  std::uint64_t entries = 0;
  std::uint64_t used_bytes = 0;
  std::uint64_t checkpoint_bytes = 0;
  double fill_s = 0;
  // Milliseconds, one per sample.
  std::vector<double> take_ms, take_copy_ms;  // checkpoint, and its baseline
  std::vector<double> restore_ms, rollback_ms, restore_copy_ms, reopen_ms;
};

// False with a message on stderr if a step failed.
bool MeasureRollback(const RollbackOptions& options, RollbackResult* result);

}  // namespace slate::bench::state
