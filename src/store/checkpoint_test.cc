// Checkpoints: consistent copies under a concurrent writer process, keep N,
// newest-before-T, restore and reset with their "store closed" precondition.
#include "store/checkpoint.h"

#include <charconv>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "store/state_store.h"
#include "store/test_util.h"

namespace slate::store {
namespace {

using testing::Child;
using testing::FlipByte;
using testing::Report;
using testing::TempDir;

constexpr std::uint64_t kSize = std::uint64_t{256} << 20;

std::unique_ptr<StateStore> OpenStore(const std::string& dir) {
  auto store = StateStore::Open(dir, kSize, Durability::kProcess);
  EXPECT_TRUE(store.ok()) << store.error().message;
  return store.ok() ? std::move(*store) : nullptr;
}

std::unique_ptr<CheckpointSet> OpenSet(const std::string& dir, int keep,
                                       CopyMode mode = CopyMode::kAsIs) {
  auto set = CheckpointSet::Open(dir, keep, mode);
  EXPECT_TRUE(set.ok()) << set.error().message;
  return set.ok() ? std::move(*set) : nullptr;
}

std::uint64_t ToNumber(std::string_view text) {
  std::uint64_t n = 0;
  std::from_chars(text.data(), text.data() + text.size(), n);
  return n;
}

std::vector<std::uint64_t> Seqs(const CheckpointSet& set) {
  std::vector<std::uint64_t> seqs;
  const auto all = set.List();
  for (const auto& c : *all) seqs.push_back(c.seq);
  return seqs;
}

TEST(Checkpoint, IsConsistentWhileAWriterProcessCommits) {
  TempDir tmp;
  const std::string dir = tmp / "state/w";
  {
    // Enough data that a copy takes a while (several MiB).
    auto store = OpenStore(dir);
    auto txn = store->Begin();
    for (int i = 0; i < 8000; ++i) {
      ASSERT_TRUE(txn->Put("fill/" + std::to_string(i), std::string(1000, 'f')).ok());
    }
    ASSERT_TRUE(txn->Commit().ok());
  }
  // Each transaction adds "k/<n>" and sets "n" to the number of k/ keys.
  Child writer = Child::Fork([&](int fd) {
    auto store = StateStore::Open(dir, kSize, Durability::kProcess);
    if (!store) return 10;
    Report(fd, "writing");
    for (std::uint64_t n = 1;; ++n) {
      auto txn = (*store)->Begin();
      if (!txn) return 11;
      StoreStatus done = txn->Put("k/" + std::to_string(n), std::string(500, 'k'));
      if (done) done = txn->Put("n", std::to_string(n));
      if (done) done = txn->Commit();
      if (!done) {
        Report(fd, done.error().message);
        return 12;
      }
      // Paced, so that the store does not outgrow its map while copies pin
      // old pages.
      std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
  });
  ASSERT_EQ(writer.ReadLine(), "writing");

  auto store = OpenStore(dir);
  auto set = OpenSet(dir, 20);
  std::vector<CheckpointInfo> taken;
  for (int i = 0; i < 8; ++i) {
    auto info = set->Take(*store);
    ASSERT_TRUE(info.ok()) << info.error().message;
    taken.push_back(*info);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(writer.Kill(), -SIGKILL) << "the writer failed: " << writer.ReadRest();

  std::uint64_t first = 0;
  std::uint64_t previous = 0;
  for (const auto& c : taken) {
    auto copy = OpenStore(c.path);
    ASSERT_TRUE(copy);
    const auto n = (*copy->Get("n")).value_or("0");
    std::uint64_t keys = 0;
    ASSERT_TRUE(copy->ForEach("k/",
                              [&](std::string_view, std::string_view) {
                                ++keys;
                                return true;
                              })
                    .ok());
    EXPECT_EQ(keys, ToNumber(n)) << "checkpoint " << c.seq << " holds part of a transaction";
    EXPECT_EQ(copy->GetUsage()->entries, keys + 8000 + (keys > 0 ? 1 : 0));
    EXPECT_GE(ToNumber(n), previous);
    previous = ToNumber(n);
    if (c.seq == taken.front().seq) first = previous;
  }
  EXPECT_GT(previous, first) << "the writer made no progress while checkpoints were taken";
}

TEST(Checkpoint, KeepsTheNewestKeepAndNumbersOnAcrossReopen) {
  TempDir tmp;
  auto store = OpenStore(tmp.path());
  auto set = OpenSet(tmp.path(), 3);
  for (int i = 1; i <= 5; ++i) {
    ASSERT_TRUE(store->Put("i", std::to_string(i)).ok());
    auto info = set->Take(*store);
    ASSERT_TRUE(info.ok()) << info.error().message;
    EXPECT_EQ(info->seq, static_cast<std::uint64_t>(i));
    EXPECT_GT(info->bytes, 0u);
  }
  EXPECT_EQ(Seqs(*set), (std::vector<std::uint64_t>{3, 4, 5}));

  // Leftovers of a crash in the middle of a checkpoint go at Open.
  std::filesystem::create_directories(set->dir() + "/.taking-0000000006.tmp");
  std::filesystem::create_directories(set->dir() + "/.dropping-0000000002");
  set = OpenSet(tmp.path(), 2);
  EXPECT_FALSE(std::filesystem::exists(set->dir() + "/.taking-0000000006.tmp"));
  EXPECT_FALSE(std::filesystem::exists(set->dir() + "/.dropping-0000000002"));
  auto info = set->Take(*store);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->seq, 6u);
  EXPECT_EQ(Seqs(*set), (std::vector<std::uint64_t>{5, 6}));
  EXPECT_EQ(set->Latest()->value().seq, 6u);
  EXPECT_EQ(set->Find(5)->value().seq, 5u);
  EXPECT_FALSE(set->Find(3)->has_value());
}

TEST(Checkpoint, NewestBeforeATime) {
  TempDir tmp;
  auto store = OpenStore(tmp.path());
  auto set = OpenSet(tmp.path(), 5);
  const auto before_all = std::chrono::system_clock::now();
  ASSERT_TRUE(set->Take(*store).ok());
  ASSERT_TRUE(set->Take(*store).ok());
  const auto streak_began = std::chrono::system_clock::now();
  ASSERT_TRUE(set->Take(*store).ok());
  EXPECT_FALSE(set->NewestBefore(before_all)->has_value());
  EXPECT_EQ(set->NewestBefore(streak_began)->value().seq, 2u);
  EXPECT_EQ(set->NewestBefore(std::chrono::system_clock::now())->value().seq, 3u);
  const auto all = set->List();
  for (const auto& c : *all) {
    EXPECT_EQ(c.created < streak_began, c.seq <= 2) << c.path;
  }
}

TEST(Restore, ReplacesTheLiveStoreAndKeepsTheCheckpoint) {
  for (CopyMode mode : {CopyMode::kAsIs, CopyMode::kCompact}) {
    TempDir tmp;
    auto store = OpenStore(tmp.path());
    auto set = OpenSet(tmp.path(), 3, mode);
    ASSERT_TRUE(store->Put("a", "1").ok());
    auto good = set->Take(*store);
    ASSERT_TRUE(good.ok());
    ASSERT_TRUE(store->Put("a", "poison").ok());
    ASSERT_TRUE(store->Put("b", "poison").ok());

    EXPECT_EQ(set->Restore(*good).error().code, StoreErrc::kBusy) << "restored under an open store";
    EXPECT_EQ(store->Get("a")->value(), "poison");
    store.reset();
    ASSERT_TRUE(set->Restore(*good).ok());
    store = OpenStore(tmp.path());
    EXPECT_EQ(store->Get("a")->value(), "1");
    EXPECT_FALSE(store->Get("b")->has_value());
    EXPECT_TRUE(store->Put("c", "after").ok());
    EXPECT_EQ(Seqs(*set), (std::vector<std::uint64_t>{1}));
  }
}

TEST(Restore, IsRefusedWhileAnotherProcessHasTheStoreOpen) {
  TempDir tmp;
  auto set = OpenSet(tmp.path(), 3);
  {
    auto store = OpenStore(tmp.path());
    ASSERT_TRUE(set->Take(*store).ok());
  }
  Child holder = Child::Fork([&](int fd) {
    auto store = StateStore::Open(tmp.path(), kSize, Durability::kProcess);
    if (!store) return 10;
    Report(fd, "open");
    for (;;) ::pause();
  });
  ASSERT_EQ(holder.ReadLine(), "open");
  const auto checkpoint = set->Latest()->value();
  EXPECT_EQ(set->Restore(checkpoint).error().code, StoreErrc::kBusy);
  EXPECT_EQ(set->Reset().error().code, StoreErrc::kBusy);
  ASSERT_EQ(holder.Kill(), -SIGKILL);
  EXPECT_TRUE(set->Restore(checkpoint).ok()) << "a killed holder leaves no lock behind";
}

TEST(Restore, ACheckpointChangedSinceItWasTakenIsMovedAsideAndTheStoreKept) {
  TempDir tmp;
  auto store = OpenStore(tmp.path());
  auto set = OpenSet(tmp.path(), 3);
  ASSERT_TRUE(store->Put("a", "checkpointed").ok());
  auto taken = set->Take(*store);
  ASSERT_TRUE(taken.ok()) << taken.error().message;
  std::ifstream recorded(taken->path + "/data.mdb.sha256");
  std::string digest;
  std::getline(recorded, digest);
  EXPECT_EQ(digest.rfind("sha256-", 0), 0u) << digest;
  EXPECT_EQ(digest.size(), 7u + 64u) << digest;
  ASSERT_TRUE(store->Put("a", "live").ok());
  store.reset();

  // A byte of the checkpoint's data changes on the disk after it was taken.
  FlipByte(taken->path + "/data.mdb", 4096 + 100);
  auto restored = set->Restore(*taken);
  ASSERT_FALSE(restored.ok());
  EXPECT_EQ(restored.error().code, StoreErrc::kCorrupt);
  EXPECT_NE(restored.error().message.find("checkpoint 1: data.mdb is not what was taken"),
            std::string::npos)
      << restored.error().message;
  // The live store is untouched; the checkpoint is out of the list but kept.
  store = OpenStore(tmp.path());
  EXPECT_EQ(store->Get("a")->value(), "live");
  EXPECT_TRUE(Seqs(*set).empty());
  const std::string name = std::filesystem::path(taken->path).filename().string();
  EXPECT_TRUE(std::filesystem::exists(set->dir() + "/corrupt-" + name + "/data.mdb"));
  EXPECT_FALSE(std::filesystem::exists(tmp / ".restore.mdb"));
  // Still there after the set is opened again (for whoever looks into it).
  set = OpenSet(tmp.path(), 3);
  EXPECT_TRUE(std::filesystem::exists(set->dir() + "/corrupt-" + name));
}

TEST(Restore, ACheckpointWithoutADigestIsRestoredUnchecked) {
  TempDir tmp;
  auto store = OpenStore(tmp.path());
  auto set = OpenSet(tmp.path(), 3);
  ASSERT_TRUE(store->Put("a", "1").ok());
  auto taken = set->Take(*store);
  ASSERT_TRUE(taken.ok());
  store.reset();
  // As an earlier version took it.
  ASSERT_TRUE(std::filesystem::remove(taken->path + "/data.mdb.sha256"));
  ASSERT_TRUE(set->Restore(*taken).ok());
  store = OpenStore(tmp.path());
  EXPECT_EQ(store->Get("a")->value(), "1");
}

TEST(Restore, AMissingCheckpointIsNotFound) {
  TempDir tmp;
  auto set = OpenSet(tmp.path(), 3);
  CheckpointInfo gone;
  gone.path = set->dir() + "/ckpt-0000000009-1";
  EXPECT_EQ(set->Restore(gone).error().code, StoreErrc::kNotFound);
}

TEST(Reset, EmptiesTheStoreEvenWhenCorrupt) {
  TempDir tmp;
  auto set = OpenSet(tmp.path(), 3);
  {
    auto store = OpenStore(tmp.path());
    ASSERT_TRUE(store->Put("a", "1").ok());
    ASSERT_TRUE(set->Take(*store).ok());
    EXPECT_EQ(set->Reset().error().code, StoreErrc::kBusy);
  }
  ASSERT_TRUE(set->Reset().ok());
  {
    auto store = OpenStore(tmp.path());
    EXPECT_FALSE(store->Get("a")->has_value());
    EXPECT_EQ(store->GetUsage()->entries, 0u);
  }
  {
    std::ofstream garbage(tmp / "data.mdb", std::ios::binary | std::ios::trunc);
    garbage << std::string(std::size_t{64} << 10, '\x5a');
  }
  EXPECT_EQ(StateStore::Open(tmp.path(), kSize, Durability::kProcess).error().code,
            StoreErrc::kCorrupt);
  ASSERT_TRUE(set->Reset().ok());
  EXPECT_TRUE(OpenStore(tmp.path()));
  EXPECT_EQ(set->List()->size(), 1u) << "reset keeps the checkpoints";
}

TEST(Checkpoint, OfAnotherStoreIsRefused) {
  TempDir tmp;
  auto store = OpenStore(tmp / "a");
  auto set = OpenSet(tmp / "b", 3);
  EXPECT_EQ(set->Take(*store).error().code, StoreErrc::kInvalidArgument);
  EXPECT_EQ(CheckpointSet::Open(tmp / "c", 0).error().code, StoreErrc::kInvalidArgument);
}

}  // namespace
}  // namespace slate::store
