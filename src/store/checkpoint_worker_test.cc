// CheckpointWorker: jobs off the loop, completions through the eventfd, and
// the runtime's flows (checkpoint while healthy; rollback after a streak).
#include "store/checkpoint_worker.h"

#include <chrono>
#include <fstream>
#include <string>
#include <thread>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "platform/event_loop.h"
#include "store/test_util.h"

namespace slate::store {
namespace {

using testing::Child;
using testing::kPatience;
using testing::Report;
using testing::TempDir;

constexpr std::uint64_t kWorkerStoreSize = std::uint64_t{64} << 20;

std::shared_ptr<StateStore> OpenSharedStore(const std::string& dir) {
  auto store = StateStore::Open(dir, kWorkerStoreSize, Durability::kProcess);
  EXPECT_TRUE(store.ok()) << store.error().message;
  return store.ok() ? std::shared_ptr<StateStore>(std::move(*store)) : nullptr;
}

std::shared_ptr<CheckpointSet> OpenSharedSet(const std::string& dir, int keep) {
  auto set = CheckpointSet::Open(dir, keep);
  EXPECT_TRUE(set.ok()) << set.error().message;
  return set.ok() ? std::shared_ptr<CheckpointSet>(std::move(*set)) : nullptr;
}

std::unique_ptr<CheckpointWorker> StartWorker() {
  auto worker = CheckpointWorker::Start();
  EXPECT_TRUE(worker.ok()) << worker.error().message;
  return worker.ok() ? std::move(*worker) : nullptr;
}

// Waits on the eventfd (as the loop would) until `count` completions are in.
std::vector<Completion> AwaitCompletions(CheckpointWorker& worker, std::size_t count) {
  std::vector<Completion> all;
  const auto deadline = std::chrono::steady_clock::now() + kPatience;
  while (all.size() < count && std::chrono::steady_clock::now() < deadline) {
    pollfd p{worker.fd(), POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    for (auto& c : worker.Collect()) all.push_back(std::move(c));
  }
  return all;
}

TEST(CheckpointWorker, DeliversCompletionsThroughTheEventLoop) {
  TempDir tmp;
  auto store = OpenSharedStore(tmp.path());
  auto set = OpenSharedSet(tmp.path(), 2);
  auto worker = StartWorker();
  ASSERT_TRUE(store->Put("a", "1").ok());

  auto loop = platform::EventLoop::Create();
  ASSERT_TRUE(loop.ok());
  std::vector<Completion> done;
  ASSERT_TRUE(loop->Add(worker->fd(), EPOLLIN,
                        [&](std::uint32_t) {
                          for (auto& c : worker->Collect()) done.push_back(std::move(c));
                        })
                  .ok());
  const auto first = worker->Submit(CheckpointJob(store, set));
  const auto second = worker->Submit(CheckpointJob(store, set));
  const auto third = worker->Submit(CheckpointJob(store, set));
  EXPECT_EQ(second, first + 1);
  const auto deadline = std::chrono::steady_clock::now() + kPatience;
  while (done.size() < 3 && std::chrono::steady_clock::now() < deadline) {
    ASSERT_TRUE(loop->RunOnce(std::chrono::milliseconds(100)).ok());
  }
  ASSERT_EQ(done.size(), 3u);
  EXPECT_EQ(done[0].id, first);
  EXPECT_EQ(done[2].id, third);
  for (std::size_t i = 0; i < done.size(); ++i) {
    ASSERT_TRUE(done[i].outcome.ok()) << done[i].outcome.error().message;
    EXPECT_EQ(done[i].outcome->value().seq, i + 1);
  }
  EXPECT_EQ(set->List()->size(), 2u) << "the job prunes to keep";
  // Collected: the descriptor is quiet again.
  EXPECT_EQ(*loop->RunOnce(std::chrono::milliseconds(0)), 0);
  ASSERT_TRUE(loop->Remove(worker->fd()).ok());
}

TEST(CheckpointWorker, RollbackRestoresTheNewestCheckpointBeforeTheStreak) {
  TempDir tmp;
  auto store = OpenSharedStore(tmp.path());
  auto set = OpenSharedSet(tmp.path(), 3);
  auto worker = StartWorker();
  ASSERT_TRUE(store->Put("state", "good").ok());
  worker->Submit(CheckpointJob(store, set));
  ASSERT_EQ(AwaitCompletions(*worker, 1).size(), 1u);
  const auto streak_began = std::chrono::system_clock::now();
  ASSERT_TRUE(store->Put("state", "poison").ok());
  worker->Submit(CheckpointJob(store, set));  // queued before the runtime lets go

  // The component is down; the runtime drops its handle and asks for a
  // rollback. The queued checkpoint still holds the store; the rollback,
  // behind it, finds the store closed.
  store.reset();
  worker->Submit(RollbackJob(set, streak_began));
  const auto done = AwaitCompletions(*worker, 2);
  ASSERT_EQ(done.size(), 2u);
  ASSERT_TRUE(done[1].outcome.ok()) << done[1].outcome.error().message;
  ASSERT_TRUE(done[1].outcome->has_value());
  EXPECT_EQ(done[1].outcome->value().seq, 1u);
  store = OpenSharedStore(tmp.path());
  EXPECT_EQ(store->Get("state")->value(), "good");
}

TEST(CheckpointWorker, RollbackPassesOverACheckpointThatFailsItsCheck) {
  TempDir tmp;
  auto store = OpenSharedStore(tmp.path());
  auto set = OpenSharedSet(tmp.path(), 3);
  auto worker = StartWorker();
  for (const char* value : {"older", "newer"}) {
    ASSERT_TRUE(store->Put("state", value).ok());
    worker->Submit(CheckpointJob(store, set));
    ASSERT_EQ(AwaitCompletions(*worker, 1).size(), 1u);
  }
  const auto streak_began = std::chrono::system_clock::now();
  ASSERT_TRUE(store->Put("state", "poison").ok());
  store.reset();
  // The newer checkpoint rots on the disk.
  const auto newest = set->Latest()->value();
  testing::FlipByte(newest.path + "/data.mdb", 4096 + 64);

  worker->Submit(RollbackJob(set, streak_began));
  const auto done = AwaitCompletions(*worker, 1);
  ASSERT_EQ(done.size(), 1u);
  ASSERT_TRUE(done[0].outcome.ok()) << done[0].outcome.error().message;
  ASSERT_TRUE(done[0].outcome->has_value());
  const CheckpointInfo& used = done[0].outcome->value();
  EXPECT_EQ(used.seq, 1u);
  ASSERT_EQ(used.passed_over.size(), 1u);
  EXPECT_NE(used.passed_over[0].find("checkpoint 2:"), std::string::npos) << used.passed_over[0];
  store = OpenSharedStore(tmp.path());
  EXPECT_EQ(store->Get("state")->value(), "older");

  // With none intact left, the rollback fails as corrupt (the runtime then
  // resets the store) instead of restoring what it cannot vouch for.
  store.reset();
  testing::FlipByte(set->Latest()->value().path + "/data.mdb", 4096 + 64);
  worker->Submit(RollbackJob(set, streak_began));
  const auto failed = AwaitCompletions(*worker, 1);
  ASSERT_EQ(failed.size(), 1u);
  ASSERT_FALSE(failed[0].outcome.ok());
  EXPECT_EQ(failed[0].outcome.error().code, StoreErrc::kCorrupt);
  EXPECT_NE(failed[0].outcome.error().message.find("no intact checkpoint from before the streak"),
            std::string::npos)
      << failed[0].outcome.error().message;
}

// The runtime's whole cycle without holding the store: checkpoint while the
// component (a child process) runs and writes, then after it is killed, roll
// back to the checkpoint taken before its failure streak.
TEST(CheckpointWorker, CheckpointsALiveComponentAndRollsBackAfterItDies) {
  TempDir tmp;
  auto set = OpenSharedSet(tmp.path(), 3);
  auto worker = StartWorker();
  Child component = Child::Fork([&](int fd, int commands) {
    auto store = StateStore::Open(tmp.path(), kWorkerStoreSize, Durability::kProcess);
    if (!store || !(*store)->Put("state", "good")) return 10;
    Report(fd, "good");
    if (testing::AwaitLine(commands) != "go") return 12;
    if (!(*store)->Put("state", "poison")) return 11;
    Report(fd, "poisoned");
    for (;;) ::pause();
  });
  ASSERT_EQ(component.ReadLine(), "good");
  worker->Submit(OpenAndCheckpointJob(kWorkerStoreSize, set));
  auto done = AwaitCompletions(*worker, 1);
  ASSERT_EQ(done.size(), 1u);
  ASSERT_TRUE(done[0].outcome.ok()) << done[0].outcome.error().message;
  const auto streak_began = std::chrono::system_clock::now();
  component.Tell("go");
  ASSERT_EQ(component.ReadLine(), "poisoned");
  ASSERT_EQ(component.Kill(), -SIGKILL);

  worker->Submit(RollbackJob(set, streak_began));
  done = AwaitCompletions(*worker, 1);
  ASSERT_EQ(done.size(), 1u);
  ASSERT_TRUE(done[0].outcome.ok()) << done[0].outcome.error().message;
  EXPECT_EQ(done[0].outcome->value().seq, 1u);
  EXPECT_EQ(OpenSharedStore(tmp.path())->Get("state")->value(), "good");
}

TEST(CheckpointWorker, RollbackWithoutACheckpointResets) {
  TempDir tmp;
  auto set = OpenSharedSet(tmp.path(), 3);
  OpenSharedStore(tmp.path())->Put("state", "poison").ok();  // the handle closes at once
  auto worker = StartWorker();
  worker->Submit(RollbackJob(set, std::chrono::system_clock::now()));
  const auto done = AwaitCompletions(*worker, 1);
  ASSERT_EQ(done.size(), 1u);
  ASSERT_TRUE(done[0].outcome.ok());
  EXPECT_FALSE(done[0].outcome->has_value()) << "no checkpoint: reset";
  EXPECT_FALSE(OpenSharedStore(tmp.path())->Get("state")->has_value());
}

TEST(CheckpointWorker, ARollbackUnderAnOpenStoreFailsAsBusy) {
  TempDir tmp;
  auto store = OpenSharedStore(tmp.path());
  auto set = OpenSharedSet(tmp.path(), 3);
  auto worker = StartWorker();
  worker->Submit(ResetJob(set));
  const auto done = AwaitCompletions(*worker, 1);
  ASSERT_EQ(done.size(), 1u);
  ASSERT_FALSE(done[0].outcome.ok());
  EXPECT_EQ(done[0].outcome.error().code, StoreErrc::kBusy);
}

// After a sanitize command the runtime has the whole store read, in a
// process apart (as here: a damaged store may fault its reader).
TEST(ReadWholeStore, TellsAStoreThatReadsWholeFromOneThatDoesNot) {
  TempDir tmp;
  {
    auto store = OpenSharedStore(tmp.path());
    for (int i = 0; i < 400; ++i) {
      ASSERT_TRUE(
          store->Put(std::string("k").append(std::to_string(i)), std::string(300, 'v')).ok());
    }
  }
  // The code of the outcome, or 100 when it read; its message on the pipe.
  auto read_apart = [&](std::string* message) {
    Child child = Child::Fork([&](int report_fd) {
      StoreStatus read = ReadWholeStore(tmp.path(), kWorkerStoreSize);
      if (read.ok()) return 100;
      Report(report_fd, read.error().message);
      return static_cast<int>(read.error().code);
    });
    *message = child.ReadRest();
    return child.Wait();
  };
  std::string message;
  EXPECT_EQ(read_apart(&message), 100) << message;

  // Its B-tree pages overwritten, the meta pages (the first two) left: LMDB
  // follows page references it cannot all check.
  const std::string data = tmp / "data.mdb";
  const long page = ::sysconf(_SC_PAGESIZE);
  {
    const int fd = ::open(data.c_str(), O_WRONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    const off_t size = ::lseek(fd, 0, SEEK_END);
    ASSERT_GT(size, 3 * page);
    std::string junk(static_cast<std::size_t>(size - 2 * page), '\xa5');
    ASSERT_EQ(::pwrite(fd, junk.data(), junk.size(), 2 * page), static_cast<ssize_t>(junk.size()));
    ::close(fd);
  }
  auto code = read_apart(&message);
  EXPECT_TRUE(code == static_cast<int>(StoreErrc::kCorrupt) || (code && *code < 0))
      << (code ? *code : 999) << " " << message;

  // Not a store at all.
  {
    std::ofstream out(data, std::ios::trunc);
    out << std::string(static_cast<std::size_t>(4 * page), 'x');
  }
  EXPECT_EQ(read_apart(&message), static_cast<int>(StoreErrc::kCorrupt)) << message;
  EXPECT_NE(message.find(tmp.path()), std::string::npos) << message;  // where
}

TEST(CheckpointWorker, StopsAfterTheRunningJobAndDropsTheQueue) {
  auto worker = StartWorker();
  std::atomic<int> ran{0};
  auto slow = [&]() -> JobOutcome {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ++ran;
    return std::optional<CheckpointInfo>();
  };
  worker->Submit(slow);
  std::this_thread::sleep_for(std::chrono::milliseconds(10));  // let it start
  for (int i = 0; i < 10; ++i) worker->Submit(slow);
  const auto begin = std::chrono::steady_clock::now();
  worker.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - begin, std::chrono::milliseconds(500));
  EXPECT_EQ(ran.load(), 1);
}

}  // namespace
}  // namespace slate::store
