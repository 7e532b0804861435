#include "platform/signal_fd.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "platform/event_loop.h"
#include "platform/spawn.h"
#include "platform/test_support.h"

namespace slate::platform {
namespace {

class SignalFdTest : public testing::PlatformTest {};

bool IsBlocked(int sig) {
  sigset_t mask;
  pthread_sigmask(SIG_BLOCK, nullptr, &mask);
  return sigismember(&mask, sig) == 1;
}

TEST_F(SignalFdTest, SignalFdDeliversSignalsAndRestoresTheMask) {
  ASSERT_FALSE(IsBlocked(SIGHUP));
  {
    auto signals = SignalFd::Create({SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGPIPE});
    ASSERT_TRUE(signals.ok()) << signals.error().message;
    EXPECT_TRUE(IsBlocked(SIGHUP));
    EXPECT_FALSE(signals.value().Read().value().has_value());

    ASSERT_EQ(::kill(::getpid(), SIGHUP), 0);
    auto hup = signals.value().Read();
    ASSERT_TRUE(hup.ok() && hup->has_value());
    EXPECT_EQ((*hup)->signo, SIGHUP);
    EXPECT_EQ((*hup)->pid, ::getpid());

    auto loop = EventLoop::Create();
    ASSERT_TRUE(loop.ok());
    std::optional<SignalInfo> child;
    ASSERT_TRUE(loop.value()
                    .Add(signals.value().fd(), EPOLLIN,
                         [&](std::uint32_t) { child = signals.value().Read().value(); })
                    .ok());
    auto process = Spawn(testing::ShellRequest("exit 4"));
    ASSERT_TRUE(process.ok());
    EXPECT_EQ(loop.value().RunOnce(EventLoop::kForever).value(), 1);
    ASSERT_TRUE(child.has_value());
    EXPECT_EQ(child->signo, SIGCHLD);
    EXPECT_EQ(child->pid, process->pid());
    EXPECT_EQ(child->code, CLD_EXITED);
    EXPECT_EQ(child->status, 4);
    EXPECT_EQ(TryReap(process.value()).value(), ExitStatus::Exited(4));
    ASSERT_TRUE(loop.value().Remove(signals.value().fd()).ok());
  }
  EXPECT_FALSE(IsBlocked(SIGHUP));
}

TEST_F(SignalFdTest, SignalFdRefusesUncatchableSignals) {
  EXPECT_FALSE(SignalFd::Create({SIGKILL}).ok());
  EXPECT_FALSE(SignalFd::Create({0}).ok());
  EXPECT_FALSE(SignalFd::Create({1000}).ok());
}

}  // namespace
}  // namespace slate::platform
