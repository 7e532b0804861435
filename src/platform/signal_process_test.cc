#include "platform/signal_process.h"

#include <string>

#include <signal.h>

#include <gtest/gtest.h>

#include "platform/pipe.h"
#include "platform/spawn.h"
#include "platform/test_support.h"

namespace slate::platform {
namespace {

using testing::ProcessState;
using testing::ReadLine;
using testing::ShellRequest;
using testing::WaitForExit;
using testing::WaitUntil;

class SignalProcessTest : public testing::PlatformTest {};

pid_t PidFromLine(const std::string& line) {
  return static_cast<pid_t>(std::stol(line));
}

TEST_F(SignalProcessTest, SignalProcessReachesOnlyTheLeader) {
  ASSERT_TRUE(SetChildSubreaper().ok());
  auto out = MakeOutputPipe();
  ASSERT_TRUE(out.ok());
  auto leader = Spawn(
      ShellRequest("/bin/sh -c 'echo $$; exec /bin/sleep 100' & wait", {{out->write.get(), 1}}));
  ASSERT_TRUE(leader.ok()) << leader.error().message;
  out.value().write.Reset();
  const pid_t child = PidFromLine(ReadLine(out->read.get()));
  ASSERT_TRUE(SignalProcess(*leader, SIGKILL).ok());
  EXPECT_EQ(WaitForExit(leader.value()), ExitStatus::Killed(SIGKILL, false));
  // The child may still be in its exec of sleep (R, or D while the binary is
  // read in); untouched, it settles asleep, while a killed one would end as Z.
  EXPECT_TRUE(WaitUntil([&] { return ProcessState(child) == 'S'; }))
      << "the rest of the tree is untouched: " << ProcessState(child);
  EXPECT_TRUE(SignalProcess(*leader, SIGKILL).ok()) << "a process already gone is no error";

  ASSERT_TRUE(KillTree(*leader, SIGKILL).ok());
  ASSERT_TRUE(WaitUntil([&] { return ProcessState(child) == 'Z'; }));
  auto reaped = ReapOrphans([](pid_t) { return false; });
  ASSERT_TRUE(reaped.ok());
  ASSERT_EQ(reaped->size(), 1u);
  EXPECT_EQ((*reaped)[0].pid, child);
}

}  // namespace
}  // namespace slate::platform
