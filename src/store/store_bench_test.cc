// Measurements, printed and not asserted (timings depend on the machine):
// puts, gets and commits per second through StateStore against raw LMDB calls
// doing the same work in the same run (issue 5's goal: within 1.2x), the cost
// of each durability, and the time to checkpoint and restore a 100 MiB store.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <lmdb.h>

#include "store/checkpoint.h"
#include "store/state_store.h"
#include "store/test_util.h"

namespace slate::store {
namespace {

using testing::TempDir;
using Clock = std::chrono::steady_clock;

constexpr std::uint64_t kOneMiB = std::uint64_t{1} << 20;
constexpr int kSamples = 5;

double Seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::string Key(int i) {
  char buf[16];
  (void)std::snprintf(buf, sizeof buf, "key%08d", i);
  return buf;
}

// A raw LMDB environment opened the way StateStore opens its own.
struct RawEnv {
  MDB_env* env = nullptr;
  MDB_dbi dbi = 0;
  MDB_txn* reader = nullptr;

  RawEnv(const std::string& dir, unsigned flags) {
    std::filesystem::create_directories(dir);
    EXPECT_EQ(mdb_env_create(&env), 0);
    EXPECT_EQ(mdb_env_set_mapsize(env, 1024 * kOneMiB), 0);
    EXPECT_EQ(mdb_env_open(env, dir.c_str(), MDB_NOTLS | flags, 0600), 0);
    MDB_txn* txn = nullptr;
    EXPECT_EQ(mdb_txn_begin(env, nullptr, 0, &txn), 0);
    EXPECT_EQ(mdb_dbi_open(txn, nullptr, 0, &dbi), 0);
    EXPECT_EQ(mdb_txn_commit(txn), 0);
    EXPECT_EQ(mdb_txn_begin(env, nullptr, MDB_RDONLY, &reader), 0);
    mdb_txn_reset(reader);
  }
  ~RawEnv() {
    mdb_txn_abort(reader);
    mdb_env_close(env);
  }
  RawEnv(const RawEnv&) = delete;
  RawEnv& operator=(const RawEnv&) = delete;

  void Put(MDB_txn* txn, const std::string& k, const std::string& v) const {
    MDB_val key{k.size(), const_cast<char*>(k.data())};
    MDB_val val{v.size(), const_cast<char*>(v.data())};
    if (mdb_put(txn, dbi, &key, &val, 0) != 0) ADD_FAILURE() << "mdb_put";
  }
  void AutoPut(const std::string& k, const std::string& v) const {
    MDB_txn* txn = nullptr;
    mdb_txn_begin(env, nullptr, 0, &txn);
    Put(txn, k, v);
    if (mdb_txn_commit(txn) != 0) ADD_FAILURE() << "mdb_txn_commit";
  }
  std::size_t AutoGet(const std::string& k, char* buf, std::size_t cap) const {
    mdb_txn_renew(reader);
    MDB_val key{k.size(), const_cast<char*>(k.data())};
    MDB_val val{};
    std::size_t size = 0;
    if (mdb_get(reader, dbi, &key, &val) == 0) {
      std::memcpy(buf, val.mv_data, std::min(cap, val.mv_size));
      size = val.mv_size;
    }
    mdb_txn_reset(reader);
    return size;
  }
};

// Runs each (raw, store) pair kSamples times, interleaved so that drift in
// the machine hits both alike; prints medians of ops/s and their ratio.
void Compare(const char* what, int ops, const std::function<void()>& raw,
             const std::function<void()>& store) {
  std::vector<double> raw_rate;
  std::vector<double> store_rate;
  for (int s = 0; s < kSamples; ++s) {
    auto t0 = Clock::now();
    raw();
    auto t1 = Clock::now();
    store();
    auto t2 = Clock::now();
    raw_rate.push_back(ops / Seconds(t1 - t0));
    store_rate.push_back(ops / Seconds(t2 - t1));
  }
  const double r = Median(raw_rate);
  const double m = Median(store_rate);
  std::printf("[ measure  ] %-28s raw %12.0f/s  StateStore %12.0f/s  raw/store %.2fx\n", what, r, m,
              r / m);
}

TEST(Measure, StateStoreAgainstRawLmdb) {
  TempDir tmp;
  RawEnv raw(tmp.path() + "/raw", MDB_NOSYNC);  // the flags of kProcess
  auto store_or = StateStore::Open(tmp / "store", 1024 * kOneMiB, Durability::kProcess);
  ASSERT_TRUE(store_or.ok());
  StateStore& store = **store_or;
  const std::string value(100, 'v');

  constexpr int kPuts = 100000;
  Compare(
      "puts (1000 per txn)", kPuts,
      [&] {
        for (int i = 0; i < kPuts; i += 1000) {
          MDB_txn* txn = nullptr;
          mdb_txn_begin(raw.env, nullptr, 0, &txn);
          for (int j = i; j < i + 1000; ++j) raw.Put(txn, Key(j), value);
          mdb_txn_commit(txn);
        }
      },
      [&] {
        for (int i = 0; i < kPuts; i += 1000) {
          auto txn = store.Begin();
          for (int j = i; j < i + 1000; ++j) (void)txn->Put(Key(j), value);
          (void)txn->Commit();
        }
      });

  constexpr int kGets = 200000;
  char buf[256];
  std::size_t sink = 0;
  Compare(
      "gets (auto-commit, copy out)", kGets,
      [&] {
        for (int i = 0; i < kGets; ++i) sink += raw.AutoGet(Key(i % kPuts), buf, sizeof buf);
      },
      [&] {
        for (int i = 0; i < kGets; ++i) {
          sink += store.GetInto(Key(i % kPuts), buf)->value_or(0);
        }
      });
  Compare(
      "gets (as std::string)", kGets,
      [&] {
        for (int i = 0; i < kGets; ++i) sink += raw.AutoGet(Key(i % kPuts), buf, sizeof buf);
      },
      [&] {
        for (int i = 0; i < kGets; ++i) sink += store.Get(Key(i % kPuts))->value_or("").size();
      });
  EXPECT_GT(sink, 0u);

  constexpr int kCommits = 20000;
  Compare(
      "commits (1 put per txn)", kCommits,
      [&] {
        for (int i = 0; i < kCommits; ++i) raw.AutoPut(Key(i), value);
      },
      [&] {
        for (int i = 0; i < kCommits; ++i) (void)store.Put(Key(i), value);
      });
}

// What each durability costs per commit, raw LMDB, so the choice for
// "process" (MDB_NOSYNC) can be checked against MDB_NOMETASYNC.
TEST(Measure, CommitsPerDurability) {
  TempDir tmp;
  const std::string value(100, 'v');
  struct Mode {
    const char* name;
    unsigned flags;
    int commits;
  };
  for (const Mode& mode :
       {Mode{"MDB_NOSYNC (process)", MDB_NOSYNC, 20000},
        Mode{"MDB_NOMETASYNC", MDB_NOMETASYNC, 200}, Mode{"full sync (power)", 0, 200}}) {
    RawEnv raw(tmp.path() + std::string("/").append(std::to_string(mode.flags)), mode.flags);
    std::vector<double> rates;
    for (int s = 0; s < kSamples; ++s) {
      const auto t0 = Clock::now();
      for (int i = 0; i < mode.commits; ++i) raw.AutoPut(Key(i), value);
      rates.push_back(mode.commits / Seconds(Clock::now() - t0));
    }
    std::printf("[ measure  ] commits/s with %-22s %12.0f\n", mode.name, Median(rates));
  }
}

TEST(Measure, CheckpointAndRestoreOf100MiB) {
  TempDir tmp;
  const std::string dir = tmp / "state/big";
  auto store_or = StateStore::Open(dir, 1024 * kOneMiB, Durability::kProcess);
  ASSERT_TRUE(store_or.ok());
  std::shared_ptr<StateStore> store = std::move(*store_or);
  const std::string value(1000, 'x');
  for (int i = 0; store->GetUsage()->used_bytes < 100 * kOneMiB; i += 1000) {
    auto txn = store->Begin();
    for (int j = i; j < i + 1000; ++j) ASSERT_TRUE(txn->Put(Key(j), value).ok());
    ASSERT_TRUE(txn->Commit().ok());
  }
  const auto usage = *store->GetUsage();
  std::printf("[ measure  ] store: %.1f MiB in use, %llu keys\n",
              static_cast<double>(usage.used_bytes) / kOneMiB,
              static_cast<unsigned long long>(usage.entries));

  // Alone first, the two modes alternating, after the fill is on disk (the
  // kernel writing it back would otherwise slow whichever copy came first).
  ASSERT_TRUE(store->Sync().ok());
  std::map<CopyMode, std::vector<double>> alone_ms;
  std::map<CopyMode, std::uint64_t> copy_bytes;
  for (int s = 0; s < kSamples; ++s) {
    for (CopyMode mode : {CopyMode::kAsIs, CopyMode::kCompact}) {
      auto set = CheckpointSet::Open(dir, 1, mode);
      ASSERT_TRUE(set.ok());
      const auto t0 = Clock::now();
      auto taken = (*set)->Take(*store);
      alone_ms[mode].push_back(Seconds(Clock::now() - t0) * 1000);
      ASSERT_TRUE(taken.ok()) << taken.error().message;
      copy_bytes[mode] = taken->bytes;
    }
  }
  // Then beside a writer thread that commits a small transaction every
  // 100 us: its slowest commit is how long the copy held writers up. (An
  // unpaced writer would also bloat the file, as the copy's snapshot keeps
  // freed pages from reuse; an as-is copy then copies the free pages too.)
  for (CopyMode mode : {CopyMode::kAsIs, CopyMode::kCompact}) {
    const char* name = mode == CopyMode::kAsIs ? "as-is" : "compact";
    auto set = CheckpointSet::Open(dir, 1, mode);
    ASSERT_TRUE(set.ok());
    std::printf("[ measure  ] checkpoint %-8s %8.1f ms (median of %d), copy %.1f MiB\n", name,
                Median(alone_ms[mode]), kSamples, static_cast<double>(copy_bytes[mode]) / kOneMiB);

    std::atomic<bool> copying{true};
    std::vector<double> commit_ms;
    auto writer = std::thread([&] {
      for (int n = 0; copying; ++n) {
        const auto t0 = Clock::now();
        (void)store->Put(std::string("w").append(std::to_string(n % 100)), "x");
        commit_ms.push_back(Seconds(Clock::now() - t0) * 1000);
        std::this_thread::sleep_for(std::chrono::microseconds(100));
      }
    });
    const auto t0 = Clock::now();
    auto taken = (*set)->Take(*store);
    const double took = Seconds(Clock::now() - t0) * 1000;
    copying = false;
    writer.join();
    ASSERT_TRUE(taken.ok()) << taken.error().message;
    std::sort(commit_ms.begin(), commit_ms.end());
    std::printf(
        "[ measure  ] checkpoint %-8s %8.1f ms beside a writer: %zu commits, median %.3f ms, "
        "slowest %.3f ms\n",
        name, took, commit_ms.size(), Median(commit_ms), commit_ms.back());
  }

  auto set = CheckpointSet::Open(dir, 1);
  ASSERT_TRUE(set.ok());
  const auto latest = (*set)->Latest()->value();
  store.reset();
  std::vector<double> restore_ms;
  std::vector<double> reopen_ms;
  for (int s = 0; s < kSamples; ++s) {
    const auto t0 = Clock::now();
    ASSERT_TRUE((*set)->Restore(latest).ok());
    const auto t1 = Clock::now();
    auto reopened = StateStore::Open(dir, 1024 * kOneMiB, Durability::kProcess);
    const auto t2 = Clock::now();
    ASSERT_TRUE(reopened.ok());
    ASSERT_TRUE((*reopened)->Get(Key(0))->has_value());
    restore_ms.push_back(Seconds(t1 - t0) * 1000);
    reopen_ms.push_back(Seconds(t2 - t1) * 1000);
  }
  std::printf("[ measure  ] restore %.1f MiB: %8.1f ms (median of %d), reopen after it %.2f ms\n",
              static_cast<double>(latest.bytes) / kOneMiB, Median(restore_ms), kSamples,
              Median(reopen_ms));
}

}  // namespace
}  // namespace slate::store
