#include "spec/units.h"

#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>

namespace slate::spec {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;

TEST(ParseDuration, AcceptsEveryUnit) {
  EXPECT_EQ(*ParseDuration("7ns"), nanoseconds(7));
  EXPECT_EQ(*ParseDuration("3us"), std::chrono::microseconds(3));
  EXPECT_EQ(*ParseDuration("250ms"), milliseconds(250));
  EXPECT_EQ(*ParseDuration("5s"), seconds(5));
  EXPECT_EQ(*ParseDuration("2m"), seconds(120));
  EXPECT_EQ(*ParseDuration("1h"), seconds(3600));
}

TEST(ParseDuration, AcceptsFractions) {
  EXPECT_EQ(*ParseDuration("1.5s"), milliseconds(1500));
  EXPECT_EQ(*ParseDuration("0.25ms"), std::chrono::microseconds(250));
  EXPECT_EQ(*ParseDuration("0s"), nanoseconds(0));
}

TEST(ParseDuration, RejectsMissingOrUnknownUnits) {
  auto r = ParseDuration("250");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "duration '250' has no unit (one of ns, us, ms, s, m, h), like \"250ms\"");
  r = ParseDuration("5sec");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "duration '5sec' has an unknown unit 'sec' (use one of ns, us, "
            "ms, s, m, h)");
}

TEST(ParseDuration, RejectsNonNumbers) {
  for (const char* bad : {"", "ms", "-5s", "+5s", "1e3ms", "inf", "nan", "1..2s", " 5s", "5 s"}) {
    EXPECT_FALSE(ParseDuration(bad).ok()) << bad;
  }
}

TEST(ParseDuration, RejectsOverflow) {
  EXPECT_FALSE(ParseDuration("99999999999999h").ok());
  // More digits than a double holds: too long, not "not a duration".
  std::string huge = std::string(400, '9') + "s";
  auto r = ParseDuration(huge);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, fmt::format("duration '{}' is too long", huge));
}

TEST(ParseDuration, RoundsTooManyDecimalsToZero) {
  EXPECT_EQ(*ParseDuration("0." + std::string(400, '0') + "1s"), nanoseconds(0));
}

TEST(ParseSize, AcceptsEveryUnit) {
  EXPECT_EQ(*ParseSize("256B"), 256u);
  EXPECT_EQ(*ParseSize("4KiB"), 4096u);
  EXPECT_EQ(*ParseSize("64MiB"), 64u << 20);
  EXPECT_EQ(*ParseSize("2GiB"), 2ull << 30);
  EXPECT_EQ(*ParseSize("1.5KiB"), 1536u);
}

TEST(ParseSize, RejectsBadSizes) {
  auto r = ParseSize("4KB");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(
      r.error().message,
      "size '4KB' has an unknown unit 'KB' (use one of B, KiB, MiB, GiB) (did you mean KiB?)");
  EXPECT_FALSE(ParseSize("4096").ok());
  EXPECT_FALSE(ParseSize("0.5B").ok());
  EXPECT_FALSE(ParseSize("-1KiB").ok());
  EXPECT_FALSE(ParseSize("99999999999GiB").ok());
  std::string huge = std::string(400, '9') + "B";
  auto big = ParseSize(huge);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.error().message, fmt::format("size '{}' is too large", huge));
}

TEST(FormatDuration, UsesTheLargestExactUnit) {
  EXPECT_EQ(FormatDuration(milliseconds(1500)), "1500ms");
  EXPECT_EQ(FormatDuration(seconds(10)), "10s");
  EXPECT_EQ(FormatDuration(seconds(120)), "2m");
  EXPECT_EQ(FormatDuration(nanoseconds(0)), "0s");
  EXPECT_EQ(FormatDuration(nanoseconds(3)), "3ns");
}

TEST(FormatSize, UsesTheLargestExactUnit) {
  EXPECT_EQ(FormatSize(4096), "4KiB");
  EXPECT_EQ(FormatSize(64u << 20), "64MiB");
  EXPECT_EQ(FormatSize(1000), "1000B");
}

TEST(RoundTrip, FormatThenParse) {
  for (auto d : {milliseconds(1), milliseconds(999), milliseconds(60000), milliseconds(3600000)}) {
    EXPECT_EQ(*ParseDuration(FormatDuration(d)), d);
  }
  for (std::uint64_t s : {1ull, 1023ull, 1024ull, 5ull << 20, 3ull << 30}) {
    EXPECT_EQ(*ParseSize(FormatSize(s)), s);
  }
}

}  // namespace
}  // namespace slate::spec
