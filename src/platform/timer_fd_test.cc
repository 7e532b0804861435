#include "platform/timer_fd.h"

#include <gtest/gtest.h>

#include "platform/clock.h"
#include "platform/event_loop.h"
#include "platform/test_support.h"

namespace slate::platform {
namespace {

using namespace std::chrono_literals;

class TimerFdTest : public testing::PlatformTest {};

TEST_F(TimerFdTest, TimerFiresAtItsDeadlineNotBefore) {
  auto loop = EventLoop::Create();
  auto timer = TimerFd::Create();
  ASSERT_TRUE(loop.ok() && timer.ok());
  std::chrono::nanoseconds fired_at{0};
  ASSERT_TRUE(loop.value()
                  .Add(timer.value().fd(), EPOLLIN,
                       [&](std::uint32_t) {
                         fired_at = MonotonicNow();
                         EXPECT_TRUE(timer.value().Acknowledge().value());
                       })
                  .ok());
  const auto deadline = MonotonicNow() + 20ms;
  ASSERT_TRUE(timer.value().ArmAt(deadline).ok());
  EXPECT_EQ(loop.value().RunOnce(EventLoop::kForever).value(), 1);
  EXPECT_GE(fired_at, deadline);
  EXPECT_LT(fired_at, deadline + 1s);
  EXPECT_FALSE(timer.value().Acknowledge().value()) << "one-shot";
  ASSERT_TRUE(loop.value().Remove(timer.value().fd()).ok());
}

TEST_F(TimerFdTest, TimerInThePastFiresAtOnceAndDisarmCancels) {
  auto timer = TimerFd::Create();
  ASSERT_TRUE(timer.ok());
  ASSERT_TRUE(timer.value().ArmAt(std::chrono::nanoseconds(0)).ok());
  ASSERT_TRUE(testing::WaitUntil([&] { return timer.value().Acknowledge().value(); }, 1s));

  ASSERT_TRUE(timer.value().ArmAt(MonotonicNow() - 1s).ok());
  ASSERT_TRUE(timer.value().Disarm().ok());
  auto loop = EventLoop::Create();
  ASSERT_TRUE(loop.ok());
  ASSERT_TRUE(timer.value().ArmAt(MonotonicNow() + 5ms).ok());
  ASSERT_TRUE(timer.value().Disarm().ok());
  ASSERT_TRUE(loop.value().Add(timer.value().fd(), EPOLLIN, [](std::uint32_t) {}).ok());
  EXPECT_EQ(loop.value().RunOnce(20ms).value(), 0);
  ASSERT_TRUE(loop.value().Remove(timer.value().fd()).ok());
}

TEST_F(TimerFdTest, MonotonicNowNeverGoesBack) {
  auto last = MonotonicNow();
  for (int i = 0; i < 1000; ++i) {
    const auto now = MonotonicNow();
    ASSERT_GE(now, last);
    last = now;
  }
}

}  // namespace
}  // namespace slate::platform
