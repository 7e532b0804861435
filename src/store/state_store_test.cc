// StateStore in one process: the API, transactions, and its error codes.
#include "store/state_store.h"

#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "store/test_util.h"

namespace slate::store {
namespace {

using testing::TempDir;

constexpr std::uint64_t kMiB = std::uint64_t{1} << 20;

std::unique_ptr<StateStore> OpenOrDie(const std::string& dir, std::uint64_t size = 16 * kMiB,
                                      Durability durability = Durability::kProcess) {
  auto store = StateStore::Open(dir, size, durability);
  EXPECT_TRUE(store.ok()) << store.error().message;
  return store.ok() ? std::move(*store) : nullptr;
}

std::map<std::string, std::string> Scan(StateStore& store, std::string_view prefix) {
  std::map<std::string, std::string> seen;
  auto scanned = store.ForEach(prefix, [&](std::string_view k, std::string_view v) {
    seen.emplace(k, v);
    return true;
  });
  EXPECT_TRUE(scanned.ok()) << scanned.error().message;
  return seen;
}

TEST(StateStore, PutGetDel) {
  TempDir tmp;
  auto store = OpenOrDie(tmp / "state/a");
  ASSERT_TRUE(store);
  EXPECT_FALSE(store->Get("k")->has_value());
  ASSERT_TRUE(store->Put("k", "v1").ok());
  EXPECT_EQ(store->Get("k")->value(), "v1");
  ASSERT_TRUE(store->Put("k", std::string("v\0two", 5)).ok());
  EXPECT_EQ(store->Get("k")->value(), std::string("v\0two", 5));
  EXPECT_TRUE(*store->Del("k"));
  EXPECT_FALSE(*store->Del("k"));
  EXPECT_FALSE(store->Get("k")->has_value());
}

TEST(StateStore, GetIntoReportsTheFullSize) {
  TempDir tmp;
  auto store = OpenOrDie(tmp.path());
  ASSERT_TRUE(store->Put("k", "0123456789").ok());
  char buf[4] = {};
  auto got = store->GetInto("k", buf);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->value(), 10u);
  EXPECT_EQ(std::string(buf, 4), "0123");
  EXPECT_FALSE(store->GetInto("missing", buf)->has_value());
}

TEST(StateStore, DataSurvivesCloseAndReopen) {
  TempDir tmp;
  auto store = OpenOrDie(tmp.path(), 16 * kMiB, Durability::kPower);
  ASSERT_TRUE(store->Put("k", "v").ok());
  store.reset();
  store = OpenOrDie(tmp.path(), 16 * kMiB, Durability::kPower);
  EXPECT_EQ(store->Get("k")->value(), "v");
  EXPECT_EQ(store->GetUsage()->entries, 1u);
}

TEST(StateStore, ForEachVisitsAPrefixInOrderAndStops) {
  TempDir tmp;
  auto store = OpenOrDie(tmp.path());
  for (const char* k : {"a", "b/2", "b/1", "b/3", "ba", "c"}) ASSERT_TRUE(store->Put(k, k).ok());
  const auto b = Scan(*store, "b/");
  EXPECT_EQ(b,
            (std::map<std::string, std::string>{{"b/1", "b/1"}, {"b/2", "b/2"}, {"b/3", "b/3"}}));
  EXPECT_EQ(Scan(*store, "").size(), 6u);
  EXPECT_TRUE(Scan(*store, "zz").empty());

  std::vector<std::string> order;
  ASSERT_TRUE(store
                  ->ForEach("b",
                            [&](std::string_view k, std::string_view) {
                              order.emplace_back(k);
                              return order.size() < 2;
                            })
                  .ok());
  EXPECT_EQ(order, (std::vector<std::string>{"b/1", "b/2"}));

  // The visitor may read the store it scans.
  int matches = 0;
  ASSERT_TRUE(store
                  ->ForEach("b/",
                            [&](std::string_view k, std::string_view v) {
                              matches += store->Get(k)->value() == v;
                              return true;
                            })
                  .ok());
  EXPECT_EQ(matches, 3);
}

TEST(Txn, CommitMakesAllChangesVisible) {
  TempDir tmp;
  auto store = OpenOrDie(tmp.path());
  ASSERT_TRUE(store->Put("gone", "x").ok());
  auto txn = store->Begin();
  ASSERT_TRUE(txn.ok());
  ASSERT_TRUE(txn->Put("a", "1").ok());
  ASSERT_TRUE(txn->Put("b", "2").ok());
  EXPECT_TRUE(*txn->Del("gone"));
  EXPECT_EQ(txn->Get("a")->value(), "1");      // its own writes
  EXPECT_FALSE(store->Get("a")->has_value());  // nobody else's yet
  auto prefix = std::map<std::string, std::string>();
  ASSERT_TRUE(txn->ForEach("",
                           [&](std::string_view k, std::string_view v) {
                             prefix.emplace(k, v);
                             return true;
                           })
                  .ok());
  EXPECT_EQ(prefix.size(), 2u);
  ASSERT_TRUE(txn->Commit().ok());
  EXPECT_FALSE(txn->active());
  EXPECT_EQ(store->Get("a")->value(), "1");
  EXPECT_EQ(store->Get("b")->value(), "2");
  EXPECT_FALSE(store->Get("gone")->has_value());
}

TEST(Txn, AbortAndDestructionDiscardEverything) {
  TempDir tmp;
  auto store = OpenOrDie(tmp.path());
  {
    auto txn = store->Begin();
    ASSERT_TRUE(txn->Put("a", "1").ok());
    txn->Abort();
    EXPECT_EQ(txn->Commit().error().code, StoreErrc::kInvalidArgument);
  }
  {
    auto txn = store->Begin();
    ASSERT_TRUE(txn->Put("b", "1").ok());
  }  // destroyed while active
  EXPECT_TRUE(Scan(*store, "").empty());
  EXPECT_TRUE(store->Put("c", "1").ok());  // the writer lock was released
}

TEST(Txn, ReadTxnSeesOneSnapshotAndRefusesWrites) {
  TempDir tmp;
  auto store = OpenOrDie(tmp.path());
  ASSERT_TRUE(store->Put("k", "old").ok());
  auto reader = store->Begin(TxnMode::kRead);
  ASSERT_TRUE(reader.ok());
  ASSERT_TRUE(store->Put("k", "new").ok());
  EXPECT_EQ(reader->Get("k")->value(), "old");
  EXPECT_EQ(reader->Put("k", "x").error().code, StoreErrc::kInvalidArgument);
  EXPECT_EQ(reader->Del("k").error().code, StoreErrc::kInvalidArgument);
  ASSERT_TRUE(reader->Commit().ok());
  EXPECT_EQ(store->Get("k")->value(), "new");
}

TEST(Txn, ASecondWriterFromTheSameStoreIsRefusedNotDeadlocked) {
  TempDir tmp;
  auto store = OpenOrDie(tmp.path());
  auto first = store->Begin();
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(store->Begin().error().code, StoreErrc::kBusy);
  EXPECT_EQ(store->Put("k", "v").error().code, StoreErrc::kBusy);
  Txn moved = std::move(*first);
  ASSERT_TRUE(moved.Put("k", "v").ok());
  ASSERT_TRUE(moved.Commit().ok());
  EXPECT_TRUE(store->Put("k", "w").ok());
}

TEST(Errors, MapFullIsItsOwnCodeAndTheStoreStaysUsable) {
  TempDir tmp;
  auto store = OpenOrDie(tmp.path(), 1 * kMiB);
  const std::string value(4000, 'x');
  StoreStatus put = StoreOk();
  int stored = 0;
  for (; stored < 1000; ++stored) {
    put = store->Put(std::string("k").append(std::to_string(stored)), value);
    if (!put) break;
  }
  ASSERT_FALSE(put.ok()) << "1 MiB held 1000 x 4000 bytes";
  EXPECT_EQ(put.error().code, StoreErrc::kMapFull) << put.error().message;
  EXPECT_NE(put.error().message.find(tmp.path()), std::string::npos) << put.error().message;
  EXPECT_EQ(store->Get("k0")->value(), value);
  for (int i = 0; i < stored; i += 2)
    ASSERT_TRUE(store->Del(std::string("k").append(std::to_string(i))).ok());
  EXPECT_TRUE(store->Put("after", value).ok());
}

TEST(Errors, MapFullInsideATxnFailsItsCommit) {
  TempDir tmp;
  auto store = OpenOrDie(tmp.path(), 1 * kMiB);
  auto txn = store->Begin();
  StoreStatus put = StoreOk();
  for (int i = 0; i < 1000 && put.ok(); ++i)
    put = txn->Put(std::string("k").append(std::to_string(i)), std::string(4000, 'x'));
  EXPECT_EQ(put.error().code, StoreErrc::kMapFull);
  EXPECT_EQ(txn->Commit().error().code, StoreErrc::kTxnFailed);
  EXPECT_FALSE(store->Get("k0")->has_value());
}

TEST(Errors, KeyTooLongAndEmptyKey) {
  TempDir tmp;
  auto store = OpenOrDie(tmp.path());
  EXPECT_TRUE(store->Put(std::string(511, 'k'), "v").ok());
  const std::string too_long(512, 'k');
  EXPECT_EQ(store->Put(too_long, "v").error().code, StoreErrc::kKeyTooLong);
  EXPECT_EQ(store->Get(too_long).error().code, StoreErrc::kKeyTooLong);
  EXPECT_EQ(store->Del(too_long).error().code, StoreErrc::kKeyTooLong);
  EXPECT_EQ(store->Put("", "v").error().code, StoreErrc::kInvalidArgument);
}

TEST(Errors, ACorruptEnvironmentIsReportedAsCorrupt) {
  TempDir tmp;
  {
    std::ofstream garbage(tmp / "data.mdb", std::ios::binary);
    for (int i = 0; i < 64 * 1024; ++i) garbage.put(static_cast<char>((i * 7919) & 0xff));
  }
  auto store = StateStore::Open(tmp.path(), 16 * kMiB, Durability::kProcess);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().code, StoreErrc::kCorrupt) << store.error().message;
}

TEST(Errors, OneStorePerDirectoryPerProcess) {
  TempDir tmp;
  auto store = OpenOrDie(tmp.path());
  auto again = StateStore::Open(tmp.path(), 16 * kMiB, Durability::kProcess);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, StoreErrc::kBusy);
  store.reset();
  EXPECT_TRUE(StateStore::Open(tmp.path(), 16 * kMiB, Durability::kProcess).ok());
}

TEST(Errors, ZeroMapSizeIsInvalid) {
  TempDir tmp;
  EXPECT_EQ(StateStore::Open(tmp.path(), 0, Durability::kProcess).error().code,
            StoreErrc::kInvalidArgument);
}

}  // namespace
}  // namespace slate::store
