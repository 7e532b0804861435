#include "state/rollback.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <fmt/format.h>

#include "common/bench_util.h"
#include "state/throughput.h"
#include "store/checkpoint.h"
#include "store/checkpoint_worker.h"
#include "store/state_store.h"

namespace slate::bench::state {
namespace {

namespace fs = std::filesystem;
using store::CheckpointSet;
using store::Durability;
using store::StateStore;

constexpr int kFillPerTxn = 10000;

double MsSince(std::int64_t t0) {
  return static_cast<double>(MonoNs() - t0) / 1e6;
}

bool Failed(const std::string& what, const store::StoreError& e) {
  fmt::print(stderr, "{}: {}\n", what, e.ToError().message);
  return false;
}

std::string Key(int i) {
  char buf[kKeyLen + 1];
  (void)std::snprintf(buf, sizeof buf, "k%015d", i);
  return buf;
}

// The baseline: `from` copied durably to dir/copy.mdb, replacing the
// previous copy, as Restore replaces data.mdb.
bool PlainCopy(const std::string& from, const std::string& dir) {
  const std::string tmp = dir + "/copy.tmp";
  const int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
  const int out = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  bool ok = in >= 0 && out >= 0;
  ssize_t n = 0;
  while (ok && (n = ::copy_file_range(in, nullptr, out, nullptr, 1 << 30, 0)) != 0) {
    ok = n > 0 || errno == EINTR;
  }
  ok = ok && ::fsync(out) == 0;
  if (in >= 0) ::close(in);
  if (out >= 0) ::close(out);
  ok = ok && ::rename(tmp.c_str(), (dir + "/copy.mdb").c_str()) == 0;
  const int d = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ok = ok && d >= 0 && ::fsync(d) == 0;
  if (d >= 0) ::close(d);
  if (!ok) fmt::print(stderr, "copy {} to {}: {}\n", from, dir, std::strerror(errno));
  return ok;
}

// Runs the steps of one sample in an order rotated by `rep`, so no step
// always follows the same one; false as soon as one fails.
bool Rotated(int rep, const std::vector<std::function<bool()>>& steps) {
  for (std::size_t i = 0; i < steps.size(); ++i) {
    if (!steps[(i + static_cast<std::size_t>(rep)) % steps.size()]()) return false;
  }
  return true;
}

bool Fill(StateStore& s, const RollbackOptions& o, RollbackResult* r) {
  const std::string value(kValueLen, 'v');
  const std::int64_t t0 = MonoNs();
  for (int i = 0;; i += kFillPerTxn) {
    auto usage = s.GetUsage();
    if (!usage) return Failed("usage", usage.error());
    r->used_bytes = usage->used_bytes;
    r->entries = usage->entries;
    if (usage->used_bytes >= o.store_bytes) break;
    auto txn = s.Begin();
    if (!txn) return Failed("begin", txn.error());
    for (int j = i; j < i + kFillPerTxn; ++j) {
      if (auto put = txn->Put(Key(j), value); !put) return Failed("put", put.error());
    }
    if (auto done = txn->Commit(); !done) return Failed("commit", done.error());
  }
  // On disk before any copy is timed: the kernel writing the fill back
  // would slow whichever copy came first.
  if (auto synced = s.Sync(); !synced) return Failed("sync", synced.error());
  r->fill_s = MsSince(t0) / 1e3;
  return true;
}

// Submit -> completion of a RollbackJob, through the worker's eventfd.
bool Rollback(store::CheckpointWorker& worker, const std::shared_ptr<CheckpointSet>& set,
              double* ms) {
  const std::int64_t t0 = MonoNs();
  const std::uint64_t id = worker.Submit(store::RollbackJob(set, std::chrono::system_clock::now()));
  for (;;) {
    pollfd p{worker.fd(), POLLIN, 0};
    if (::poll(&p, 1, 60'000) <= 0) {
      fmt::print(stderr, "rollback: no completion within 60 s\n");
      return false;
    }
    for (auto& c : worker.Collect()) {
      if (c.id != id) continue;
      *ms = MsSince(t0);
      if (!c.outcome) return Failed("rollback", c.outcome.error());
      if (!c.outcome->has_value()) {
        fmt::print(stderr, "rollback: found no checkpoint and reset the store\n");
        return false;
      }
      return true;
    }
  }
}

}  // namespace

bool MeasureRollback(const RollbackOptions& o, RollbackResult* r) {
  const std::string dir = o.dir + "/store";
  const std::string plain = o.dir + "/plain";
  std::error_code ec;
  fs::create_directories(plain, ec);
  auto opened = StateStore::Open(dir, o.map_size, Durability::kProcess);
  if (!opened) return Failed("open " + dir, opened.error());
  std::shared_ptr<StateStore> live = std::move(opened).value();
  if (!Fill(*live, o, r)) return false;

  auto made = CheckpointSet::Open(dir, 1, store::CopyMode::kAsIs);
  if (!made) return Failed("checkpoints of " + dir, made.error());
  std::shared_ptr<CheckpointSet> set = std::move(made).value();
  // Untimed once each, so that every timed checkpoint also prunes the one
  // before it and every timed copy replaces the copy before it.
  if (auto first = set->Take(*live); !first) return Failed("checkpoint", first.error());
  if (!PlainCopy(dir + "/data.mdb", plain)) return false;
  for (int rep = 0; rep < o.reps; ++rep) {
    bool ok = Rotated(rep, {[&] {
                              const std::int64_t t0 = MonoNs();
                              auto taken = set->Take(*live);
                              r->take_ms.push_back(MsSince(t0));
                              if (!taken) return Failed("checkpoint", taken.error());
                              r->checkpoint_bytes = taken->bytes;
                              return true;
                            },
                            [&] {
                              const std::int64_t t0 = MonoNs();
                              if (!PlainCopy(dir + "/data.mdb", plain)) return false;
                              r->take_copy_ms.push_back(MsSince(t0));
                              return true;
                            }});
    if (!ok) return false;
  }
  live.reset();  // Restore needs the store closed everywhere

  auto worker = store::CheckpointWorker::Start();
  if (!worker) return Failed("checkpoint worker", worker.error());
  auto latest = set->Latest();
  if (!latest || !*latest) {
    fmt::print(stderr, "no checkpoint to restore\n");
    return false;
  }
  const store::CheckpointInfo info = **latest;
  const std::string probe_key = Key(0);
  for (int rep = 0; rep < o.reps; ++rep) {
    bool ok = Rotated(rep, {[&] {
                              const std::int64_t t0 = MonoNs();
                              auto restored = set->Restore(info);
                              r->restore_ms.push_back(MsSince(t0));
                              return restored ? true : Failed("restore", restored.error());
                            },
                            [&] {
                              double ms = 0;
                              if (!Rollback(**worker, set, &ms)) return false;
                              r->rollback_ms.push_back(ms);
                              return true;
                            },
                            [&] {
                              const std::int64_t t0 = MonoNs();
                              if (!PlainCopy(info.path + "/data.mdb", plain)) return false;
                              r->restore_copy_ms.push_back(MsSince(t0));
                              return true;
                            }});
    if (!ok) return false;
    // The component's first state call after the rollback.
    const std::int64_t t0 = MonoNs();
    auto reopened = StateStore::Open(dir, o.map_size, Durability::kProcess);
    if (!reopened) return Failed("reopen", reopened.error());
    std::array<char, 256> buf{};
    auto got = (*reopened)->GetInto(probe_key, buf);
    r->reopen_ms.push_back(MsSince(t0));
    if (!got || !got->has_value()) {
      fmt::print(stderr, "reopen: key {} is not in the restored store\n", probe_key);
      return false;
    }
  }
  return true;
}

}  // namespace slate::bench::state
