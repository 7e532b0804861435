#include "platform/process.h"

#include <string>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "platform/pipe.h"
#include "platform/spawn.h"
#include "platform/test_support.h"

namespace slate::platform {
namespace {

SpawnRequest Argv(std::vector<std::string> argv) {
  SpawnRequest request;
  request.argv = std::move(argv);
  return request;
}

using testing::ProcessState;
using testing::ReadLine;
using testing::ShellRequest;
using testing::WaitForExit;
using testing::WaitUntil;

class ProcessTest : public testing::PlatformTest {};

pid_t ParsePid(const std::string& line) {
  return static_cast<pid_t>(std::stol(line));
}

// Waits until the pidfd says the process has exited, without reaping it.
bool WaitUntilExited(const Process& process) {
  pollfd p{process.pidfd(), POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(testing::kPatience.count())) == 1;
}

bool GroupIsEmpty(pid_t pgid) {
  return ::kill(-pgid, 0) != 0 && errno == ESRCH;
}

TEST_F(ProcessTest, TryReapReportsTheEndOnce) {
  auto process = Spawn(ShellRequest("exit 3"));
  ASSERT_TRUE(process.ok()) << process.error().message;
  EXPECT_FALSE(process->reaped());
  EXPECT_EQ(WaitForExit(process.value()), ExitStatus::Exited(3));
  EXPECT_TRUE(process->reaped());
  EXPECT_FALSE(TryReap(process.value()).ok());
}

TEST_F(ProcessTest, PeekExitTellsTheEndAndLeavesAZombieForTryReap) {
  auto process = Spawn(ShellRequest("exit 3"));
  ASSERT_TRUE(process.ok()) << process.error().message;
  ASSERT_TRUE(WaitUntilExited(*process));
  for (int i = 0; i < 2; ++i) {  // as often as asked
    auto peeked = PeekExit(*process);
    ASSERT_TRUE(peeked.ok()) << peeked.error().message;
    ASSERT_TRUE(peeked->has_value());
    EXPECT_EQ(**peeked, ExitStatus::Exited(3));
  }
  // Still there: its pid (and group id) is not free for another process.
  EXPECT_EQ(testing::ProcessState(process->pid()), 'Z');
  EXPECT_FALSE(process->reaped());
  auto reaped = TryReap(*process);
  ASSERT_TRUE(reaped.ok());
  ASSERT_TRUE(reaped->has_value());
  EXPECT_EQ(**reaped, ExitStatus::Exited(3));
  EXPECT_FALSE(PeekExit(*process).ok());
}

TEST_F(ProcessTest, PeekExitOfARunningProcessIsNothingYet) {
  auto process = Spawn(Argv({"/bin/sleep", "100"}));
  ASSERT_TRUE(process.ok()) << process.error().message;
  auto peeked = PeekExit(*process);
  ASSERT_TRUE(peeked.ok());
  EXPECT_FALSE(peeked->has_value());
  EXPECT_TRUE(KillTree(*process, SIGKILL).ok());
  EXPECT_EQ(WaitForExit(process.value()), ExitStatus::Killed(SIGKILL, false));
}

TEST_F(ProcessTest, RunningProcessIsNotReaped) {
  auto process = Spawn(Argv({"/bin/sleep", "100"}));
  ASSERT_TRUE(process.ok()) << process.error().message;
  auto status = TryReap(process.value());
  ASSERT_TRUE(status.ok());
  EXPECT_FALSE(status->has_value());
  EXPECT_TRUE(KillTree(*process, SIGTERM).ok());
  EXPECT_EQ(WaitForExit(process.value()), ExitStatus::Killed(SIGTERM, false));
}

TEST_F(ProcessTest, DescribeNamesSignalsAndCores) {
  EXPECT_EQ(ExitStatus::Exited(0).Describe(), "exited with code 0");
  EXPECT_EQ(ExitStatus::Killed(SIGSEGV, true).Describe(), "killed by SIGSEGV (11), core dumped");
  EXPECT_EQ(ExitStatus::Killed(SIGRTMIN + 40, false).Describe(),
            "killed by signal " + std::to_string(SIGRTMIN + 40));
}

TEST_F(ProcessTest, ProcessGroupOf) {
  EXPECT_EQ(ProcessGroupOf(::getpid()).value(), ::getpgrp());
  EXPECT_FALSE(ProcessGroupOf(0x3fffffff).ok());
}

TEST_F(ProcessTest, SetChildSubreaper) {
  ASSERT_TRUE(SetChildSubreaper().ok());
  int on = 0;
  ASSERT_EQ(::prctl(PR_GET_CHILD_SUBREAPER, &on, 0, 0, 0), 0);
  EXPECT_EQ(on, 1);
}

// The leader starts a grandchild that ignores SIGTERM, prints its pid and
// exits. SIGTERM to the tree does not end the grandchild; SIGKILL does, and
// as subreaper we collect it.
TEST_F(ProcessTest, KillTreeEndsAnOrphanedGrandchildThatIgnoresSigterm) {
  ASSERT_TRUE(SetChildSubreaper().ok());
  auto out = MakeOutputPipe();
  ASSERT_TRUE(out.ok());
  // The grandchild prints its pid only once SIGTERM is ignored.
  auto leader = Spawn(ShellRequest(
      "(trap '' TERM; exec /bin/sh -c 'echo $$; exec /bin/sleep 100') &", {{out->write.get(), 1}}));
  ASSERT_TRUE(leader.ok()) << leader.error().message;
  out.value().write.Reset();
  const pid_t grandchild = ParsePid(ReadLine(out->read.get()));
  EXPECT_EQ(WaitForExit(leader.value()), ExitStatus::Exited(0));
  EXPECT_EQ(ProcessGroupOf(grandchild).value(), leader->pid());
  EXPECT_EQ(testing::StatusField(grandchild, "PPid"), std::to_string(::getpid()));

  // SIGTERM (bit 15 of SigIgn) is ignored, so SIGTERM alone would not do.
  const auto ignored = std::stoull(testing::StatusField(grandchild, "SigIgn"), nullptr, 16);
  EXPECT_NE(ignored & (1ULL << (SIGTERM - 1)), 0u);
  ASSERT_TRUE(KillTree(*leader, SIGTERM).ok());
  EXPECT_NE(ProcessState(grandchild), 'Z');
  ASSERT_TRUE(KillTree(*leader, SIGKILL).ok());
  ASSERT_TRUE(WaitUntil([&] { return ProcessState(grandchild) == 'Z'; }));

  auto reaped = ReapOrphans([](pid_t) { return false; });
  ASSERT_TRUE(reaped.ok()) << reaped.error().message;
  ASSERT_EQ(reaped->size(), 1u);
  EXPECT_EQ((*reaped)[0].pid, grandchild);
  EXPECT_EQ((*reaped)[0].status, ExitStatus::Killed(SIGKILL, false));
  EXPECT_EQ(ProcessState(grandchild), 0) << "zombie left behind";
  EXPECT_TRUE(GroupIsEmpty(leader->pid()));
}

// A tracked child that has exited sits first in our list of children; the
// orphan behind it must still be reaped, and the tracked one must not be.
TEST_F(ProcessTest, ReapOrphansGoesAroundTrackedChildrenWithoutTakingTheirStatus) {
  ASSERT_TRUE(SetChildSubreaper().ok());
  auto tracked = Spawn(Argv({"/bin/true"}));
  ASSERT_TRUE(tracked.ok()) << tracked.error().message;

  // The orphan blocks reading `hold` (a blocking pipe) until we close its
  // write end, so it outlives its parent.
  int hold[2];
  ASSERT_EQ(::pipe2(hold, O_CLOEXEC), 0);
  UniqueFd hold_read(hold[0]);
  UniqueFd hold_write(hold[1]);
  auto out = MakeOutputPipe();
  ASSERT_TRUE(out.ok());
  auto parent =
      Spawn(ShellRequest("(read x <&3) & echo $!", {{out->write.get(), 1}, {hold_read.get(), 3}}));
  ASSERT_TRUE(parent.ok()) << parent.error().message;
  out.value().write.Reset();
  hold_read.Reset();
  const pid_t orphan = ParsePid(ReadLine(out->read.get()));
  EXPECT_EQ(WaitForExit(parent.value()), ExitStatus::Exited(0));
  hold_write.Reset();
  ASSERT_TRUE(WaitUntil([&] { return ProcessState(orphan) == 'Z'; }))
      << "orphan " << orphan << " state " << ProcessState(orphan) << " ppid "
      << testing::StatusField(orphan, "PPid") << " (we are " << ::getpid() << ")";
  ASSERT_TRUE(WaitUntilExited(*tracked));

  const auto is_tracked = [&](pid_t pid) { return pid == tracked->pid(); };
  auto reaped = ReapOrphans(is_tracked);
  ASSERT_TRUE(reaped.ok()) << reaped.error().message;
  ASSERT_EQ(reaped->size(), 1u);
  EXPECT_EQ((*reaped)[0].pid, orphan);
  EXPECT_EQ((*reaped)[0].status, ExitStatus::Exited(1));  // `read` at EOF

  // Only the tracked child is waiting now: no spinning, nothing taken.
  reaped = ReapOrphans(is_tracked);
  ASSERT_TRUE(reaped.ok());
  EXPECT_TRUE(reaped->empty());
  EXPECT_EQ(TryReap(tracked.value()).value(), ExitStatus::Exited(0));
}

TEST_F(ProcessTest, ReapOrphansWithoutChildren) {
  auto reaped = ReapOrphans([](pid_t) { return false; });
  ASSERT_TRUE(reaped.ok());
  EXPECT_TRUE(reaped->empty());
}

TEST_F(ProcessTest, DroppedProcessIsCollectedAsAnOrphan) {
  pid_t pid = 0;
  {
    auto process = Spawn(Argv({"/bin/true"}));
    ASSERT_TRUE(process.ok());
    pid = process->pid();
    ASSERT_TRUE(WaitUntilExited(*process));
  }
  auto reaped = ReapOrphans([](pid_t) { return false; });
  ASSERT_TRUE(reaped.ok());
  ASSERT_EQ(reaped->size(), 1u);
  EXPECT_EQ((*reaped)[0].pid, pid);
}

}  // namespace
}  // namespace slate::platform
