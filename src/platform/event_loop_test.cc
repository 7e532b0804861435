#include "platform/event_loop.h"

#include <vector>

#include <unistd.h>

#include <gtest/gtest.h>

#include "platform/clock.h"
#include "platform/pipe.h"
#include "platform/test_support.h"

namespace slate::platform {
namespace {

using namespace std::chrono_literals;

class EventLoopTest : public testing::PlatformTest {};

TEST_F(EventLoopTest, DispatchesReadinessToTheRightCallback) {
  auto loop = EventLoop::Create();
  auto a = MakeOutputPipe();
  auto b = MakeOutputPipe();
  ASSERT_TRUE(loop.ok() && a.ok() && b.ok());
  std::vector<char> seen;
  ASSERT_TRUE(
      loop.value().Add(a->read.get(), EPOLLIN, [&](std::uint32_t) { seen.push_back('a'); }).ok());
  ASSERT_TRUE(
      loop.value().Add(b->read.get(), EPOLLIN, [&](std::uint32_t) { seen.push_back('b'); }).ok());
  EXPECT_FALSE(loop.value().Add(a->read.get(), EPOLLIN, [](std::uint32_t) {}).ok()) << "twice";
  ASSERT_EQ(::write(b->write.get(), "x", 1), 1);
  EXPECT_EQ(loop.value().RunOnce(EventLoop::kForever).value(), 1);
  EXPECT_EQ(seen, std::vector<char>{'b'});
  EXPECT_EQ(loop.value().RunOnce(0ms).value(), 1) << "level-triggered: still readable";
  ASSERT_TRUE(loop.value().Modify(b->read.get(), 0).ok());
  EXPECT_EQ(loop.value().RunOnce(0ms).value(), 0);
  ASSERT_TRUE(loop.value().Remove(a->read.get()).ok());
  ASSERT_TRUE(loop.value().Remove(b->read.get()).ok());
  EXPECT_FALSE(loop.value().Remove(b->read.get()).ok());
  EXPECT_EQ(loop.value().size(), 0u);
}

TEST_F(EventLoopTest, CallbackMayRemoveAnotherRegistrationOfTheSameRound) {
  auto loop = EventLoop::Create();
  auto a = MakeOutputPipe();
  auto b = MakeOutputPipe();
  ASSERT_TRUE(loop.ok() && a.ok() && b.ok());
  int calls = 0;
  const int fa = a->read.get();
  const int fb = b->read.get();
  ASSERT_TRUE(loop.value()
                  .Add(fa, EPOLLIN,
                       [&](std::uint32_t) {
                         ++calls;
                         (void)loop.value().Remove(fa);
                         (void)loop.value().Remove(fb);
                       })
                  .ok());
  ASSERT_TRUE(loop.value()
                  .Add(fb, EPOLLIN,
                       [&](std::uint32_t) {
                         ++calls;
                         (void)loop.value().Remove(fa);
                         (void)loop.value().Remove(fb);
                       })
                  .ok());
  ASSERT_EQ(::write(a->write.get(), "x", 1), 1);
  ASSERT_EQ(::write(b->write.get(), "x", 1), 1);
  EXPECT_EQ(loop.value().RunOnce(EventLoop::kForever).value(), 1);
  EXPECT_EQ(calls, 1);
}

TEST_F(EventLoopTest, TimeoutWithNothingReady) {
  auto loop = EventLoop::Create();
  ASSERT_TRUE(loop.ok());
  const auto start = MonotonicNow();
  EXPECT_EQ(loop.value().RunOnce(5ms).value(), 0);
  EXPECT_GE(MonotonicNow() - start, 4ms);
}

}  // namespace
}  // namespace slate::platform
