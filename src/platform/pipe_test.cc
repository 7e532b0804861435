#include "platform/pipe.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "platform/spawn.h"
#include "platform/test_support.h"

namespace slate::platform {
namespace {

using testing::ShellRequest;
using testing::WaitForExit;

class PipeTest : public testing::PlatformTest {};

bool HasFlag(int fd, int flag) {
  return (::fcntl(fd, F_GETFL) & flag) != 0;
}
bool IsCloseOnExec(int fd) {
  return (::fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0;
}

// Waits for the read end to have news, then reads.
ReadinessPipe::State ReadWhenReadable(ReadinessPipe& pipe) {
  pollfd p{pipe.read_fd(), POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, static_cast<int>(testing::kPatience.count())), 1);
  return pipe.Read().value();
}

TEST_F(PipeTest, OutputPipeReadEndIsNonBlockingWriteEndIsNot) {
  auto pipe = MakeOutputPipe();
  ASSERT_TRUE(pipe.ok());
  EXPECT_TRUE(HasFlag(pipe->read.get(), O_NONBLOCK));
  EXPECT_FALSE(HasFlag(pipe->write.get(), O_NONBLOCK));
  EXPECT_TRUE(IsCloseOnExec(pipe->read.get()));
  EXPECT_TRUE(IsCloseOnExec(pipe->write.get()));
}

TEST_F(PipeTest, ReadinessNeedsANewline) {
  auto pipe = ReadinessPipe::Create();
  ASSERT_TRUE(pipe.ok());
  EXPECT_EQ(pipe.value().Read().value(), ReadinessPipe::State::kPending);
  ASSERT_EQ(::write(pipe->write_fd(), "almost", 6), 6);
  EXPECT_EQ(ReadWhenReadable(pipe.value()), ReadinessPipe::State::kPending);
  ASSERT_EQ(::write(pipe->write_fd(), "\n", 1), 1);
  EXPECT_EQ(ReadWhenReadable(pipe.value()), ReadinessPipe::State::kReady);
  EXPECT_EQ(pipe.value().Read().value(), ReadinessPipe::State::kReady);
}

TEST_F(PipeTest, ChildSignalsReadinessOnItsDescriptor) {
  auto pipe = ReadinessPipe::Create();
  ASSERT_TRUE(pipe.ok());
  auto process = Spawn(ShellRequest("echo >&5; exec /bin/sleep 100", {{pipe->write_fd(), 5}}));
  ASSERT_TRUE(process.ok()) << process.error().message;
  pipe.value().CloseWriteEnd();
  EXPECT_EQ(ReadWhenReadable(pipe.value()), ReadinessPipe::State::kReady);
  ASSERT_TRUE(KillTree(*process, SIGKILL).ok());
  EXPECT_TRUE(WaitForExit(process.value()).has_value());
}

TEST_F(PipeTest, ChildExitingBeforeANewlineWasNeverReady) {
  auto pipe = ReadinessPipe::Create();
  ASSERT_TRUE(pipe.ok());
  auto process = Spawn(ShellRequest("printf partial >&5", {{pipe->write_fd(), 5}}));
  ASSERT_TRUE(process.ok()) << process.error().message;
  pipe.value().CloseWriteEnd();
  ReadinessPipe::State state = ReadinessPipe::State::kPending;
  while (state == ReadinessPipe::State::kPending) {
    state = ReadWhenReadable(pipe.value());
  }
  EXPECT_EQ(state, ReadinessPipe::State::kNotReady);
  EXPECT_EQ(WaitForExit(process.value()), ExitStatus::Exited(0));
}

}  // namespace
}  // namespace slate::platform
