#include "spec/diagnostics.h"

#include <gtest/gtest.h>

namespace slate::spec {
namespace {

TEST(Diagnostics, FormatsLikeACompiler) {
  EXPECT_EQ(FormatDiagnostic({Severity::kError, 3, 7, "bad"}, "a.toml"), "a.toml:3:7: bad");
  EXPECT_EQ(FormatDiagnostic({Severity::kWarning, 3, 7, "hm"}, "a.toml"),
            "a.toml:3:7: warning: hm");
  EXPECT_EQ(FormatDiagnostic({Severity::kError, 0, 0, "cannot read"}, "a.toml"),
            "a.toml: cannot read");
}

TEST(Diagnostics, SortsByPositionAndDropsDuplicates) {
  std::vector<Diagnostic> ds{{Severity::kError, 5, 1, "b"},
                             {Severity::kWarning, 2, 3, "w"},
                             {Severity::kError, 2, 3, "a"},
                             {Severity::kError, 5, 1, "b"}};
  SortDiagnostics(ds);
  ASSERT_EQ(ds.size(), 3u);
  EXPECT_EQ(ds[0].message, "a");
  EXPECT_EQ(ds[1].message, "w");
  EXPECT_EQ(ds[2].message, "b");
  EXPECT_TRUE(HasErrors(ds));
}

TEST(Diagnostics, SuggestsCloseNames) {
  std::vector<std::string> keys{"restart", "shutdown", "heartbeat", "ready_timeout"};
  EXPECT_EQ(ClosestMatch("restrat", keys), "restart");
  EXPECT_EQ(ClosestMatch("hartbeat", keys), "heartbeat");
  EXPECT_EQ(ClosestMatch("zzz", keys), "");
  EXPECT_EQ(DidYouMean("shutdwn", keys), " (did you mean 'shutdown'?)");
}

}  // namespace
}  // namespace slate::spec
