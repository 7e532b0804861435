// The supervision scenarios of SPEC section 4 that need more than one
// component's life, end to end with real processes.
#include <gtest/gtest.h>

#include "system_under_test.h"

namespace slate::testing {
namespace {

struct TypeCase {
  const char* restart;
  int code;  // 0: a normal exit
  bool restarted;
};

class RestartTypes : public ::testing::TestWithParam<TypeCase> {};

TEST_P(RestartTypes, DecideWhetherAnEndIsRestarted) {
  const TypeCase& t = GetParam();
  SystemUnderTest s(fmt::format(R"(
[supervisor.main]
intensity = 5
children = ["anchor", "x"]
[component.anchor]
exec = ["{{testee}}"]
[component.x]
exec = ["{{testee}}", "--exit-after-ms", "100", "--code", "{}"]
restart = "{}"
)",
                                t.code, t.restart));
  s.StartReady();
  ASSERT_TRUE(s.WaitEvent("child_exited", "x"));
  if (t.restarted) {
    EXPECT_TRUE(s.WaitEvent("child_restarting", "x"));
  } else {
    std::this_thread::sleep_for(milliseconds(100));
    EXPECT_EQ(s.Events("child_restarting", "x").size(), 0u);
    EXPECT_EQ(s.Node("x")["state"], "stopped");
  }
  EXPECT_EQ(s.Cli({"shutdown"}).code, 0);
  EXPECT_EQ(s.Wait(), 0);
}

INSTANTIATE_TEST_SUITE_P(
    Table, RestartTypes,
    ::testing::Values(TypeCase{"permanent", 0, true}, TypeCase{"permanent", 3, true},
                      TypeCase{"transient", 0, false}, TypeCase{"transient", 3, true},
                      TypeCase{"temporary", 0, false}, TypeCase{"temporary", 3, false}),
    [](const auto& p) {
      return fmt::format("{}_{}", p.param.restart, p.param.code == 0 ? "normal" : "exit");
    });

TEST(Strategy, ATemporaryBystanderIsStoppedAndNotStartedAgain) {
  SystemUnderTest s(R"(
[supervisor.main]
strategy = "one_for_all"
intensity = 5
children = ["a", "t", "c"]
[component.a]
exec = ["{testee}"]
[component.t]
exec = ["{testee}"]
restart = "temporary"
[component.c]
exec = ["{testee}"]
)");
  s.StartReady();
  ASSERT_EQ(s.Cli({"kill", "c"}).code, 0);
  ASSERT_TRUE(s.WaitEvent("child_ready", "c", milliseconds(5000), 2));
  EXPECT_EQ(s.Node("t")["state"], "stopped");
  EXPECT_EQ(s.Events("child_terminated", "t").size(), 1u);
  EXPECT_EQ(s.Events("child_started", "t").size(), 1u);
  EXPECT_EQ(s.Cli({"shutdown"}).code, 0);
  EXPECT_EQ(s.Wait(), 0);
}

TEST(Strategy, IntensityZeroGivesUpOnTheFirstFailure) {
  SystemUnderTest s(R"(
[supervisor.main]
intensity = 0
children = ["a"]
[component.a]
exec = ["{testee}"]
)");
  s.StartReady();
  ASSERT_EQ(s.Cli({"kill", "a"}).code, 0);
  EXPECT_EQ(s.Wait(), 3);
  EXPECT_EQ(s.Events("child_restarting").size(), 0u);
}

TEST(Strategy, ARestartThatCannotStartIsRetriedUntilStopped) {
  SystemUnderTest s(R"(
[supervisor.main]
intensity = 1000
period = "1s"
children = ["a"]
[component.a]
exec = ["{testee}", "--ready", "notify", "--fail-start-if", "BROKEN"]
ready = "notify"
backoff = { initial = "20ms", max = "50ms" }
)");
  std::string broken = s.dir() + "/broken";
  s.Replace("BROKEN", broken);
  s.StartReady();
  std::ofstream(broken) << "x";
  ASSERT_EQ(s.Cli({"kill", "a"}).code, 0);
  ASSERT_TRUE(s.WaitEvent("child_restarting", "a", milliseconds(5000), 5));
  // Every attempt counts, and meanwhile the child shows restarting.
  EXPECT_TRUE(SystemUnderTest::WaitUntil([&] { return s.Node("a")["state"] == "restarting"; },
                                         milliseconds(2000)));
  EXPECT_GE(s.Node("a")["restarts"].get<int>(), 5);
  // The fix arrives: the next attempt succeeds.
  fs::remove(broken);
  ASSERT_TRUE(SystemUnderTest::WaitUntil([&] { return s.Node("a")["state"] == "running"; },
                                         milliseconds(2000)));
  // Broken again; this time an operator stops the loop.
  std::ofstream(broken) << "x";
  ASSERT_EQ(s.Cli({"kill", "a"}).code, 0);
  ASSERT_TRUE(s.WaitEvent("child_exited", "a", milliseconds(5000), 8));
  ASSERT_EQ(s.Cli({"stop", "a"}).code, 0);
  ASSERT_TRUE(SystemUnderTest::WaitUntil([&] { return s.Node("a")["state"] == "stopped"; },
                                         milliseconds(2000)));
  std::size_t attempts = s.Events("child_started", "a").size();
  std::this_thread::sleep_for(milliseconds(200));
  EXPECT_EQ(s.Events("child_started", "a").size(), attempts);
  EXPECT_EQ(s.Cli({"shutdown"}).code, 0);
  EXPECT_EQ(s.Wait(), 0);
}

TEST(Strategy, ATransientSubSupervisorThatGivesUpStaysDown) {
  SystemUnderTest s(R"(
[supervisor.main]
intensity = 5
children = ["steady", "sub"]
[supervisor.sub]
restart = "transient"
intensity = 0
children = ["flaky"]
[component.steady]
exec = ["{testee}"]
[component.flaky]
exec = ["{testee}"]
)");
  s.StartReady();
  ASSERT_EQ(s.Cli({"kill", "flaky"}).code, 0);
  ASSERT_TRUE(s.WaitEvent("supervisor_exited", "sub"));
  std::this_thread::sleep_for(milliseconds(100));
  EXPECT_EQ(s.Node("sub")["state"], "stopped");
  EXPECT_EQ(s.Node("steady")["state"], "running");
  EXPECT_EQ(s.Events("child_restarting", "sub").size(), 0u);
  EXPECT_EQ(s.Cli({"shutdown"}).code, 0);
  EXPECT_EQ(s.Wait(), 0);
}

TEST(Strategy, ASignificantChildEndsItsSupervisor) {
  SystemUnderTest s(R"(
[supervisor.main]
children = ["job", "keep"]
[supervisor.job]
restart = "transient"
auto_shutdown = "any_significant"
children = ["helper", "task"]
[component.helper]
exec = ["{testee}"]
[component.task]
exec = ["{testee}", "--exit-after-ms", "200"]
restart = "transient"
significant = true
[component.keep]
exec = ["{testee}"]
)");
  s.StartReady();
  ASSERT_TRUE(s.WaitEvent("supervisor_exited", "job"));
  ASSERT_TRUE(s.WaitEvent("child_terminated", "helper"));
  EXPECT_EQ(s.Node("job")["state"], "stopped");
  EXPECT_EQ(s.Node("keep")["state"], "running");
  EXPECT_EQ(s.Cli({"shutdown"}).code, 0);
  EXPECT_EQ(s.Wait(), 0);
}

TEST(Strategy, RootAutoShutdownEndsTheSystemWithExit0) {
  SystemUnderTest s(R"(
[supervisor.main]
auto_shutdown = "all_significant"
children = ["a", "b"]
[component.a]
exec = ["{testee}", "--exit-after-ms", "100"]
restart = "temporary"
significant = true
[component.b]
exec = ["{testee}", "--exit-after-ms", "200"]
restart = "transient"
significant = true
)");
  s.Start();
  EXPECT_EQ(s.Wait(), 0);
  EXPECT_EQ(s.Events("system_stopped").size(), 1u);
}

TEST(Strategy, BrutalKillAndInfinityAreHonoured) {
  SystemUnderTest s(R"(
[supervisor.main]
children = ["patient", "brutal"]
[component.patient]
exec = ["{testee}", "--sigterm-code", "0"]
shutdown = "infinity"
[component.brutal]
exec = ["{testee}"]
shutdown = "brutal_kill"
)");
  s.StartReady();
  EXPECT_EQ(s.Cli({"shutdown"}).code, 0);
  EXPECT_EQ(s.Wait(), 0);
  auto b = s.Events("child_terminated", "brutal");
  auto p = s.Events("child_terminated", "patient");
  ASSERT_EQ(b.size(), 1u);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_LT(b[0]["seq"], p[0]["seq"]);  // reverse start order
}

}  // namespace
}  // namespace slate::testing
