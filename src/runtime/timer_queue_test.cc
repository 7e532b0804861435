#include "runtime/timer_queue.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace slate::runtime {
namespace {

using std::chrono::milliseconds;
using ::testing::ElementsAre;

TEST(TimerQueue, PopsDueTimersInDeadlineOrder) {
  TimerQueue q;
  q.Add(1, milliseconds(30));
  q.Add(2, milliseconds(10));
  q.Add(3, milliseconds(20));
  EXPECT_EQ(q.Next(), milliseconds(10));
  EXPECT_THAT(q.PopDue(milliseconds(20)), ElementsAre(2, 3));
  EXPECT_EQ(q.Next(), milliseconds(30));
  EXPECT_THAT(q.PopDue(milliseconds(29)), ElementsAre());
}

TEST(TimerQueue, CancelledTimersNeverFire) {
  TimerQueue q;
  q.Add(1, milliseconds(10));
  q.Add(2, milliseconds(20));
  q.Cancel(1);
  EXPECT_EQ(q.Next(), milliseconds(20));
  EXPECT_THAT(q.PopDue(milliseconds(100)), ElementsAre(2));
  EXPECT_FALSE(q.Next());
  EXPECT_EQ(q.size(), 0u);
}

}  // namespace
}  // namespace slate::runtime
