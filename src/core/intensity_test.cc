#include "core/intensity.h"

#include <gtest/gtest.h>

namespace slate::core {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(RestartIntensity, TheIntensityThRestartIsAllowedTheNextIsNot) {
  RestartIntensity r(3, seconds(5));
  EXPECT_TRUE(r.Allow(milliseconds(0)));
  EXPECT_TRUE(r.Allow(milliseconds(1)));
  EXPECT_TRUE(r.Allow(milliseconds(2)));
  EXPECT_FALSE(r.Allow(milliseconds(3)));
}

TEST(RestartIntensity, ZeroAllowsNone) {
  RestartIntensity r(0, seconds(5));
  EXPECT_FALSE(r.Allow(milliseconds(0)));
}

TEST(RestartIntensity, WindowSlidesByTheMillisecond) {
  RestartIntensity r(2, seconds(1));
  EXPECT_TRUE(r.Allow(milliseconds(0)));
  EXPECT_TRUE(r.Allow(milliseconds(500)));
  // 999 ms after the first: both still in the window.
  EXPECT_FALSE(r.Allow(milliseconds(999)));
  RestartIntensity s(2, seconds(1));
  EXPECT_TRUE(s.Allow(milliseconds(0)));
  EXPECT_TRUE(s.Allow(milliseconds(500)));
  // Exactly one period after the first, it has left the window.
  EXPECT_TRUE(s.Allow(milliseconds(1000)));
  EXPECT_EQ(s.InWindow(milliseconds(1000)), 2);
}

TEST(RestartIntensity, SpacedRestartsNeverExceed) {
  RestartIntensity r(1, seconds(1));
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(r.Allow(seconds(i)));
}

}  // namespace
}  // namespace slate::core
