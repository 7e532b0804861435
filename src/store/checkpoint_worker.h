// CheckpointWorker: one background thread that runs store jobs (checkpoint,
// rollback, reset) in submission order, so that the runtime's event loop
// never waits for a copy. Completions come back through an eventfd the loop
// polls; the loop stays the only thread that acts on them.
//
// Thread safety: Submit() and Collect() may be called from any thread; the
// loop is the intended caller of both. A job runs on the worker thread and
// must only touch objects that are safe there: StateStore::Checkpoint() and
// everything in CheckpointSet are; the jobs below hold shared_ptrs, so a
// store the loop lets go of stays open until the job that uses it is done.
//
// One worker per component: an as-is checkpoint waits for the component's
// write transaction in progress (CopyMode), so a component hung inside one
// would otherwise hold up every other component's checkpoints and rollbacks.
//
// Ordering is the tool for the "component down" precondition of Restore and
// Reset: a rollback submitted after the runtime dropped its own StateStore
// runs after every checkpoint job that still held it, and by then the store
// is closed (or the job fails with kBusy, naming the holder's mistake).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "platform/unique_fd.h"
#include "store/checkpoint.h"
#include "store/state_store.h"
#include "store/store_error.h"

namespace slate::store {

// A job returns the checkpoint it made or restored, or nullopt (reset).
using JobOutcome = StoreResult<std::optional<CheckpointInfo>>;
using Job = std::function<JobOutcome()>;

struct Completion {
  std::uint64_t id;
  JobOutcome outcome;
};

class CheckpointWorker {
 public:
  // Creates the eventfd and starts the thread. kIo if either fails.
  static StoreResult<std::unique_ptr<CheckpointWorker>> Start();

  CheckpointWorker(const CheckpointWorker&) = delete;
  CheckpointWorker& operator=(const CheckpointWorker&) = delete;
  // Lets the running job finish, drops the queued ones (their completions
  // never arrive) and joins the thread: at most one job's length.
  ~CheckpointWorker();

  // Queues `job`; returns its id (from 1), which its Completion carries.
  std::uint64_t Submit(Job job);

  // Readable (EPOLLIN) while completions wait to be collected. Non-blocking.
  int fd() const { return event_.get(); }

  // The completions so far, in completion order; empty if none. Never blocks.
  std::vector<Completion> Collect();

 private:
  explicit CheckpointWorker(platform::UniqueFd event) : event_(std::move(event)) {}
  void Run();

  platform::UniqueFd event_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::pair<std::uint64_t, Job>> queue_;
  std::vector<Completion> done_;
  std::uint64_t next_id_ = 1;
  bool stopping_ = false;
  std::thread thread_;
};

// Take a checkpoint of `store` into `set` and prune it to `keep`.
Job CheckpointJob(std::shared_ptr<const StateStore> store, std::shared_ptr<CheckpointSet> set);

// The same for a runtime that keeps no store open: opens set->store_dir()
// on the worker (which also clears stale reader slots), checkpoints, closes.
// Opening costs well under a millisecond; nothing is left to close before a
// rollback.
Job OpenAndCheckpointJob(std::uint64_t map_size, std::shared_ptr<CheckpointSet> set);

// rollback_state: restore the newest checkpoint created before `streak_began`;
// with none, reset the store (SPEC section 6). nullopt in the outcome means
// it was reset.
Job RollbackJob(std::shared_ptr<CheckpointSet> set,
                std::chrono::system_clock::time_point streak_began);

// reset_state.
Job ResetJob(std::shared_ptr<CheckpointSet> set);

// Opens the store at `dir` and reads every key and every byte of every value
// in one read transaction: an error (kCorrupt, kIo, ...) when LMDB cannot
// read it whole. For the check after a sanitize command, which the runtime
// runs in a process of its own (`slate __read-store`): a store damaged past
// what LMDB checks can make its reader follow a wild page reference and
// fault, and that reader must not be the runtime.
StoreStatus ReadWholeStore(const std::string& dir, std::uint64_t map_size);

// `slate chaos`: flips bits in the value of one key of set->store_dir(),
// chosen at random from `seed`, in a committed transaction, as a bug in the
// component might; `*what` says which key. kNotFound for an empty store.
Job CorruptJob(std::uint64_t map_size, std::shared_ptr<CheckpointSet> set, std::uint64_t seed,
               std::shared_ptr<std::string> what);

}  // namespace slate::store
