#include "core/backoff.h"

#include <gtest/gtest.h>

namespace slate::core {
namespace {

using std::chrono::milliseconds;

TEST(Backoff, FirstRestartOfAStreakIsImmediate) {
  spec::Backoff b{milliseconds(10), milliseconds(5000), 2.0};
  EXPECT_EQ(BackoffDelay(b, 1, 0.5), Time(0));
  EXPECT_EQ(BackoffDelay(b, 0, 0.5), Time(0));
}

TEST(Backoff, GrowsByFactorUpToMax) {
  spec::Backoff b{milliseconds(10), milliseconds(50), 2.0};
  // unit 0.5 is the middle of the jitter range: no jitter.
  EXPECT_EQ(BackoffDelay(b, 2, 0.5), milliseconds(10));
  EXPECT_EQ(BackoffDelay(b, 3, 0.5), milliseconds(20));
  EXPECT_EQ(BackoffDelay(b, 4, 0.5), milliseconds(40));
  EXPECT_EQ(BackoffDelay(b, 5, 0.5), milliseconds(50));
  EXPECT_EQ(BackoffDelay(b, 60, 0.5), milliseconds(50));
}

TEST(Backoff, JitterIsTenPercent) {
  spec::Backoff b{milliseconds(100), milliseconds(5000), 2.0};
  EXPECT_EQ(BackoffDelay(b, 2, 0.0), milliseconds(90));
  EXPECT_NEAR(static_cast<double>(BackoffDelay(b, 2, 0.999999).count()), 110e6, 1e3);
}

}  // namespace
}  // namespace slate::core
