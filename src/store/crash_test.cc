// The state guarantees with real processes killed by SIGKILL (SPEC section 5):
// committed transactions survive, uncommitted ones vanish, a dead process's
// reader slots and writer lock do not outlive it, and the store can be closed
// and reopened around a sanitize command that may itself be killed.
#include <charconv>
#include <cinttypes>
#include <cstdio>
#include <ostream>
#include <random>
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
using testing::Report;
using testing::TempDir;

constexpr std::uint64_t kCrashStoreSize = std::uint64_t{64} << 20;

std::uint64_t ParseNumber(std::string_view text) {
  std::uint64_t n = 0;
  std::from_chars(text.data(), text.data() + text.size(), n);
  return n;
}

std::string LogKey(std::uint64_t n) {
  char buf[32];
  (void)std::snprintf(buf, sizeof buf, "log/%010" PRIu64, n);
  return buf;
}

// The child of one round: increments "counter" in a transaction that also
// appends "log/<counter>" = "<round>:<n>", n counting this child's commits,
// and reports n on the pipe after each commit returns — what it believes is
// committed. Runs until killed.
int CountForever(const std::string& dir, Durability durability, int round, int report_fd) {
  auto store = StateStore::Open(dir, kCrashStoreSize, durability);
  if (!store) return 10;
  for (std::uint64_t n = 1;; ++n) {
    auto txn = (*store)->Begin();
    if (!txn) return 11;
    auto current = txn->Get("counter");
    if (!current) return 12;
    const std::uint64_t next = (current->has_value() ? ParseNumber(**current) : 0) + 1;
    if (!txn->Put("counter", std::to_string(next)) ||
        !txn->Put(LogKey(next), std::to_string(round) + ":" + std::to_string(n))) {
      return 13;
    }
    if (!txn->Commit()) return 14;
    Report(report_fd, std::to_string(n));
  }
}

std::uint64_t LastReported(const std::string& lines) {
  std::uint64_t last = 0;
  std::size_t start = 0;
  for (std::size_t nl; (nl = lines.find('\n', start)) != std::string::npos; start = nl + 1) {
    last = ParseNumber(std::string_view(lines).substr(start, nl - start));
  }
  return last;
}

class KilledCounter : public ::testing::TestWithParam<Durability> {};

}  // namespace

// For the test names ctest lists.
void PrintTo(Durability d, std::ostream* out) {
  *out << (d == Durability::kProcess ? "process" : "power");
}

namespace {

TEST_P(KilledCounter, NoCommittedIncrementLostOrCountedTwiceOver200Kills) {
  constexpr int kRounds = 200;
  TempDir tmp;
  const std::string dir = tmp / "state/counter";
  // The test keeps the store open throughout, as the runtime does, and reads
  // it between rounds while the children come and go.
  auto observer = StateStore::Open(dir, kCrashStoreSize, GetParam());
  ASSERT_TRUE(observer.ok()) << observer.error().message;

  const unsigned seed = std::random_device{}();
  std::mt19937 random(seed);
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::vector<std::uint64_t> reported(kRounds, 0);
  std::uint64_t total_reported = 0;
  int in_flight_commits = 0;
  for (int round = 0; round < kRounds; ++round) {
    Child child = Child::Fork([&](int fd) { return CountForever(dir, GetParam(), round, fd); });
    ASSERT_GT(child.pid(), 0);
    // Mostly early (during open and the first transactions), sometimes late;
    // later for kPower, whose commits wait for the disk.
    const unsigned scale = GetParam() == Durability::kPower ? 5 : 1;
    const auto delay =
        std::chrono::microseconds(scale * (random() % 8 == 0 ? random() % 30000 : random() % 4000));
    std::this_thread::sleep_for(delay);
    ASSERT_EQ(child.Kill(), -SIGKILL) << "the counter died by itself in round " << round;
    const auto r = static_cast<std::size_t>(round);
    reported[r] = LastReported(child.ReadRest());
    total_reported += reported[r];

    auto counter = (*observer)->Get("counter");
    ASSERT_TRUE(counter.ok()) << counter.error().message;
    const std::uint64_t value = counter->has_value() ? ParseNumber(**counter) : 0;
    ASSERT_GE(value, total_reported) << "a reported commit was lost in round " << round;
    in_flight_commits += static_cast<int>(value - total_reported);
    total_reported = value;  // a commit the child did not live to report is still a commit
  }

  // Every log entry 1..counter exists once; each round's are n = 1..k in
  // order with reported <= k <= reported + 1.
  const std::uint64_t counter = ParseNumber(**(*observer)->Get("counter"));
  std::vector<std::uint64_t> per_round(kRounds, 0);
  std::uint64_t expected_key = 1;
  auto scanned = (*observer)->ForEach("log/", [&](std::string_view key, std::string_view value) {
    EXPECT_EQ(key, LogKey(expected_key));
    ++expected_key;
    const auto colon = value.find(':');
    const auto round = ParseNumber(value.substr(0, colon));
    EXPECT_LT(round, static_cast<std::uint64_t>(kRounds));
    if (round >= static_cast<std::uint64_t>(kRounds)) return false;
    EXPECT_EQ(ParseNumber(value.substr(colon + 1)), per_round[round] + 1) << "round " << round;
    per_round[round] = ParseNumber(value.substr(colon + 1));
    return true;
  });
  ASSERT_TRUE(scanned.ok()) << scanned.error().message;
  EXPECT_EQ(expected_key - 1, counter) << "log entries and counter disagree";
  int rounds_that_committed = 0;
  for (std::size_t r = 0; r < per_round.size(); ++r) {
    EXPECT_GE(per_round[r], reported[r]) << "lost in round " << r;
    EXPECT_LE(per_round[r], reported[r] + 1) << "counted twice in round " << r;
    rounds_that_committed += per_round[r] > 0;
  }
  std::printf("[ counter  ] %d kills, %d of them after commits, %" PRIu64
              " commits, %d committed but not yet reported\n",
              kRounds, rounds_that_committed, counter, in_flight_commits);
  EXPECT_GE(rounds_that_committed, kRounds / 10) << "the children were killed too early";
}

INSTANTIATE_TEST_SUITE_P(Durability, KilledCounter,
                         ::testing::Values(Durability::kProcess, Durability::kPower),
                         [](const auto& p) {
                           return p.param == Durability::kProcess ? "process" : "power";
                         });

TEST(Crash, AnUncommittedTxnVanishesAndItsWriterLockIsRecovered) {
  TempDir tmp;
  auto store = StateStore::Open(tmp.path(), kCrashStoreSize, Durability::kProcess);
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->Put("k", "committed").ok());

  Child child = Child::Fork([&](int fd) {
    auto mine = StateStore::Open(tmp.path(), kCrashStoreSize, Durability::kProcess);
    if (!mine) return 10;
    auto txn = (*mine)->Begin();
    if (!txn || !txn->Put("k", "uncommitted") || !txn->Put("new", "uncommitted")) return 11;
    Report(fd, "in txn");
    for (;;) ::pause();
  });
  ASSERT_EQ(child.ReadLine(), "in txn");
  ASSERT_EQ(child.Kill(), -SIGKILL);

  EXPECT_EQ((*store)->Get("k")->value(), "committed");
  EXPECT_FALSE((*store)->Get("new")->has_value());
  // The child died holding LMDB's writer mutex; a robust mutex hands it on.
  ASSERT_TRUE((*store)->Put("after", "1").ok());
  store->reset();
  auto reopened = StateStore::Open(tmp.path(), kCrashStoreSize, Durability::kProcess);
  ASSERT_TRUE(reopened.ok());
  EXPECT_FALSE((*reopened)->Get("new")->has_value());
  EXPECT_EQ((*reopened)->Get("after")->value(), "1");
}

// A child that opens the store, starts a read transaction and waits.
Child StartReader(const std::string& dir) {
  return Child::Fork([dir](int fd) {
    auto mine = StateStore::Open(dir, kCrashStoreSize, Durability::kProcess);
    if (!mine) return 10;
    auto txn = (*mine)->Begin(TxnMode::kRead);
    if (!txn) return 11;
    Report(fd, "reading");
    for (;;) ::pause();
  });
}

TEST(Crash, AKilledReadersSlotIsClearedOnRequest) {
  TempDir tmp;
  auto store = StateStore::Open(tmp.path(), kCrashStoreSize, Durability::kProcess);
  ASSERT_TRUE(store.ok());
  Child reader = StartReader(tmp.path());
  ASSERT_EQ(reader.ReadLine(), "reading");
  EXPECT_EQ(*(*store)->ClearStaleReaders(), 0) << "a live reader is not stale";
  ASSERT_EQ(reader.Kill(), -SIGKILL);
  EXPECT_EQ(*(*store)->ClearStaleReaders(), 1);
  EXPECT_EQ(*(*store)->ClearStaleReaders(), 0);
}

TEST(Crash, AKilledReadersSlotIsClearedOnOpen) {
  TempDir tmp;
  // A bystander keeps the environment open, so LMDB does not simply rebuild
  // the lock file on the next open.
  Child bystander = Child::Fork([&](int fd) {
    auto mine = StateStore::Open(tmp.path(), kCrashStoreSize, Durability::kProcess);
    if (!mine) return 10;
    Report(fd, "open");
    for (;;) ::pause();
  });
  ASSERT_EQ(bystander.ReadLine(), "open");
  Child reader = StartReader(tmp.path());
  ASSERT_EQ(reader.ReadLine(), "reading");
  ASSERT_EQ(reader.Kill(), -SIGKILL);

  auto store = StateStore::Open(tmp.path(), kCrashStoreSize, Durability::kProcess);
  ASSERT_TRUE(store.ok()) << store.error().message;
  EXPECT_EQ((*store)->stale_readers_at_open(), 1);
}

// The runtime's part in sanitize_state: close every handle, run the command
// on the directory, reopen. Here the "command" is a child that edits the
// store, once to completion and once killed in the middle of its transaction.
TEST(Sanitize, TheStoreClosesAndReopensAroundASanitizer) {
  TempDir tmp;
  auto store = StateStore::Open(tmp.path(), kCrashStoreSize, Durability::kProcess);
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->Put("good", "1").ok());
  ASSERT_TRUE((*store)->Put("poison", "1").ok());
  store->reset();  // the runtime lets go before the sanitizer runs

  auto sanitizer = [&](bool hang) {
    return Child::Fork([&, hang](int fd) {
      auto mine = StateStore::Open(tmp.path(), kCrashStoreSize, Durability::kProcess);
      if (!mine) return 10;
      auto txn = (*mine)->Begin();
      if (!txn || !txn->Del("poison") || !txn->Put("sanitized", "yes")) return 11;
      if (hang) {
        Report(fd, "hung");
        for (;;) ::pause();
      }
      return txn->Commit() ? 0 : 12;
    });
  };
  Child killed = sanitizer(/*hang=*/true);  // timed out, and killed by the runtime
  ASSERT_EQ(killed.ReadLine(), "hung");
  ASSERT_EQ(killed.Kill(), -SIGKILL);
  auto reopened = StateStore::Open(tmp.path(), kCrashStoreSize, Durability::kProcess);
  ASSERT_TRUE(reopened.ok()) << reopened.error().message;
  EXPECT_EQ((*reopened)->Get("poison")->value(), "1") << "half a sanitize must not show";
  reopened->reset();

  Child finished = sanitizer(/*hang=*/false);
  ASSERT_EQ(finished.Wait(), 0);
  reopened = StateStore::Open(tmp.path(), kCrashStoreSize, Durability::kProcess);
  ASSERT_TRUE(reopened.ok());
  EXPECT_FALSE((*reopened)->Get("poison")->has_value());
  EXPECT_EQ((*reopened)->Get("good")->value(), "1");
  EXPECT_EQ((*reopened)->Get("sanitized")->value(), "yes");
}

}  // namespace
}  // namespace slate::store
