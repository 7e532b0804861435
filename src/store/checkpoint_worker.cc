#include "store/checkpoint_worker.h"

#include <cerrno>
#include <cstdint>
#include <random>
#include <string>
#include <system_error>
#include <utility>

#include <sys/eventfd.h>
#include <unistd.h>

namespace slate::store {

StoreResult<std::unique_ptr<CheckpointWorker>> CheckpointWorker::Start() {
  platform::UniqueFd event(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!event.valid()) return ErrnoStoreError("eventfd", errno);
  std::unique_ptr<CheckpointWorker> worker(new CheckpointWorker(std::move(event)));
  try {
    worker->thread_ = std::thread([w = worker.get()] { w->Run(); });
  } catch (const std::system_error& e) {
    return ErrnoStoreError("start checkpoint worker", e.code().value());
  }
  return worker;
}

CheckpointWorker::~CheckpointWorker() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

std::uint64_t CheckpointWorker::Submit(Job job) {
  std::uint64_t id = 0;
  {
    std::lock_guard lock(mutex_);
    id = next_id_++;
    queue_.emplace_back(id, std::move(job));
  }
  wake_.notify_one();
  return id;
}

std::vector<Completion> CheckpointWorker::Collect() {
  // Drain the counter before taking the list: a completion pushed after the
  // read re-arms the descriptor, so none waits unannounced.
  std::uint64_t count = 0;
  (void)::read(event_.get(), &count, sizeof count);
  std::vector<Completion> out;
  std::lock_guard lock(mutex_);
  out.swap(done_);
  return out;
}

void CheckpointWorker::Run() {
  for (;;) {
    std::pair<std::uint64_t, Job> next;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) {
        queue_.clear();  // destroys the queued jobs here, releasing what they hold
        return;
      }
      next = std::move(queue_.front());
      queue_.pop_front();
    }
    JobOutcome outcome = next.second();
    next.second = nullptr;  // release the job's store before announcing it done
    {
      std::lock_guard lock(mutex_);
      done_.push_back(Completion{next.first, std::move(outcome)});
    }
    const std::uint64_t one = 1;
    (void)::write(event_.get(), &one, sizeof one);
  }
}

Job CheckpointJob(std::shared_ptr<const StateStore> store, std::shared_ptr<CheckpointSet> set) {
  return [store = std::move(store), set = std::move(set)]() -> JobOutcome {
    auto taken = set->Take(*store);
    if (!taken) return taken.error();
    return std::optional<CheckpointInfo>(std::move(*taken));
  };
}

Job OpenAndCheckpointJob(std::uint64_t map_size, std::shared_ptr<CheckpointSet> set) {
  return [map_size, set = std::move(set)]() -> JobOutcome {
    // Durability only governs this handle's own commits; it makes none.
    auto store = StateStore::Open(set->store_dir(), map_size, Durability::kProcess);
    if (!store) return store.error();
    auto taken = set->Take(**store);
    if (!taken) return taken.error();
    return std::optional<CheckpointInfo>(std::move(*taken));
  };
}

StoreStatus ReadWholeStore(const std::string& dir, std::uint64_t map_size) {
  auto store = StateStore::Open(dir, map_size, Durability::kProcess);
  if (!store) return store.error();
  // Every byte of every value, so that a page LMDB hands out but the disk
  // cannot give back shows too.
  volatile unsigned char sum = 0;
  return (*store)->ForEach("", [&](std::string_view key, std::string_view value) {
    for (char c : key) sum = static_cast<unsigned char>(sum + static_cast<unsigned char>(c));
    for (char c : value) sum = static_cast<unsigned char>(sum + static_cast<unsigned char>(c));
    return true;
  });
}

Job RollbackJob(std::shared_ptr<CheckpointSet> set,
                std::chrono::system_clock::time_point streak_began) {
  return [set = std::move(set), streak_began]() -> JobOutcome {
    // A checkpoint that fails Restore's check is moved aside by it, so the
    // next NewestBefore is an older one.
    std::vector<std::string> passed_over;
    for (;;) {
      auto chosen = set->NewestBefore(streak_began);
      if (!chosen) return chosen.error();
      if (!*chosen && !passed_over.empty()) {
        std::string all;
        for (const std::string& p : passed_over) all += (all.empty() ? "" : "; ") + p;
        return MakeStoreError(StoreErrc::kCorrupt,
                              "no intact checkpoint from before the streak: " + all);
      }
      if (!*chosen) {
        if (auto reset = set->Reset(); !reset) return reset.error();
        return std::optional<CheckpointInfo>();
      }
      auto restored = set->Restore(**chosen);
      if (restored) {
        (*chosen)->passed_over = std::move(passed_over);
        return std::move(*chosen);
      }
      if (restored.error().code != StoreErrc::kCorrupt) return restored.error();
      passed_over.push_back(restored.error().message);
    }
  };
}

Job ResetJob(std::shared_ptr<CheckpointSet> set) {
  return [set = std::move(set)]() -> JobOutcome {
    if (auto reset = set->Reset(); !reset) return reset.error();
    return std::optional<CheckpointInfo>();
  };
}

Job CorruptJob(std::uint64_t map_size, std::shared_ptr<CheckpointSet> set, std::uint64_t seed,
               std::shared_ptr<std::string> what) {
  return [map_size, set = std::move(set), seed, what = std::move(what)]() -> JobOutcome {
    auto store = StateStore::Open(set->store_dir(), map_size, Durability::kProcess);
    if (!store) return store.error();
    auto txn = (*store)->Begin(TxnMode::kWrite);
    if (!txn) return txn.error();
    // One key, chosen uniformly in one pass (reservoir sampling).
    std::mt19937_64 rng(seed);
    std::uint64_t seen = 0;
    std::string key;
    std::string value;
    auto scanned = txn->ForEach("", [&](std::string_view k, std::string_view v) {
      if (std::uniform_int_distribution<std::uint64_t>(0, seen)(rng) == 0) {
        key.assign(k);
        value.assign(v);
      }
      ++seen;
      return true;
    });
    if (!scanned) return scanned.error();
    if (seen == 0) return MakeStoreError(StoreErrc::kNotFound, "the store is empty");
    // Four random bytes XORed with four patterns of which no combination
    // cancels out (two may hit the same byte): the value always changes but
    // keeps its length, as a stray write would leave it.
    if (value.empty()) {
      value.assign(1, '\xff');  // not = "\xff": a false -Wrestrict of GCC 12 at -O3
    } else {
      for (char pattern : {'\x5a', '\x01', '\x80', '\x24'}) {
        std::size_t at = std::uniform_int_distribution<std::size_t>(0, value.size() - 1)(rng);
        value[at] = static_cast<char>(value[at] ^ pattern);
      }
    }
    if (auto st = txn->Put(key, value); !st) return st.error();
    if (auto st = txn->Commit(); !st) return st.error();
    std::string said = "key '";
    said.append(key).append("' (one of ").append(std::to_string(seen)).append(" keys)");
    *what = std::move(said);
    return std::optional<CheckpointInfo>();
  };
}

}  // namespace slate::store
