// The ladder of persistent failures (SPEC section 6): the streak, the steps
// in order, the count starting again after each, healthy_after rewinding it,
// and the steps the core carries out itself (escalate, give_up).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/harness_test.h"

namespace slate::core {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::ElementsAre;
using testing::Harness;
using ::testing::Pair;

constexpr const char* kLadder = R"(
[system]
root = "main"
[supervisor.main]
intensity = 100
period = "1s"
children = ["a", "b"]
[component.a]
exec = ["/bin/true"]
healthy_after = "10s"
state = { size = "1MiB" }
on_persistent_failure = { after = 2, steps = ["rollback_state", "reset_state", "give_up"] }
[component.b]
exec = ["/bin/true"]
)";

TEST(Ladder, EachStepComesAfterTheStreakReachesAfterAndTheCountStartsAgain) {
  Harness h(kLadder);
  h.Start();
  EXPECT_EQ(h.StatusOf("a").next_step, "rollback_state");
  const Time began = h.now;
  h.Crash("a");  // streak 1: a plain restart
  EXPECT_TRUE(h.steps.empty());
  h.now += milliseconds(100);
  h.Crash("a");  // streak 2: rollback_state, then the restart
  ASSERT_THAT(h.steps, ElementsAre(Pair("a", "rollback_state")));
  EXPECT_EQ(h.step_began.at(0), began);  // the episode's first failure
  EXPECT_EQ(h.State("a"), "running");
  EXPECT_EQ(h.StatusOf("a").streak, 0);
  EXPECT_EQ(h.StatusOf("a").next_step, "reset_state");
  const Event& step = h.Last("persistent_failure_step");
  EXPECT_EQ(step.node, "a");
  EXPECT_EQ(step.step, "rollback_state");
  EXPECT_EQ(step.streak, 2);

  h.Crash("a");
  EXPECT_EQ(h.steps.size(), 1u);
  h.Crash("a");
  ASSERT_EQ(h.steps.size(), 2u);
  EXPECT_EQ(h.steps.back().second, "reset_state");
  EXPECT_EQ(h.step_began.at(1), began);  // the same episode
}

TEST(Ladder, TheJournalPutsTheStepBetweenTheFailureAndTheRestart) {
  Harness h(kLadder);
  h.Start();
  h.Crash("a");
  h.Journal();
  h.Crash("a");
  EXPECT_THAT(h.Journal(), ElementsAre("child_exited a exit", "persistent_failure_step a",
                                       "child_restarting a", "child_started a", "child_ready a"));
}

TEST(Ladder, TheChildStaysDownWhileTheRuntimeCarriesOutAStep) {
  Harness h(kLadder);
  h.hold_steps = true;
  h.Start();
  h.Crash("a");
  h.Crash("a");
  EXPECT_EQ(h.State("a"), "restarting");
  // Its siblings are supervised meanwhile.
  h.Crash("b");
  EXPECT_EQ(h.State("b"), "running");
  h.FinishStep();
  EXPECT_EQ(h.State("a"), "running");
}

TEST(Ladder, AStopDuringAStepWins) {
  Harness h(kLadder);
  h.hold_steps = true;
  h.Start();
  h.Crash("a");
  h.Crash("a");
  h.Stop("a");
  h.FinishStep();
  EXPECT_EQ(h.State("a"), "stopped");
}

TEST(Ladder, HealthyAfterRewindsTheLadder) {
  Harness h(kLadder);
  h.Start();
  h.Crash("a");
  h.Crash("a");
  EXPECT_EQ(h.StatusOf("a").next_step, "reset_state");
  h.Advance(seconds(11));
  EXPECT_EQ(h.StatusOf("a").next_step, "rollback_state");
  h.Crash("a");
  h.Crash("a");
  EXPECT_EQ(h.steps.back().second, "rollback_state");
  EXPECT_EQ(h.step_began.back(), h.now);  // a new episode
}

TEST(Ladder, GiveUpLeavesTheChildFailedAndTheSystemRunning) {
  Harness h(kLadder);
  h.Start();
  for (int i = 0; i < 6; ++i) h.Crash("a");
  EXPECT_EQ(h.State("a"), "failed");
  EXPECT_TRUE(h.StatusOf("a").gave_up);
  EXPECT_EQ(h.Last("child_gave_up").node, "a");
  EXPECT_EQ(h.Last("child_gave_up").streak, 2);  // what reached the step
  EXPECT_FALSE(h.finish_code.has_value());
  EXPECT_EQ(h.State("b"), "running");
  // An operator's start is a fresh chance: a new episode, the ladder rewound.
  h.StartChild("a");
  EXPECT_EQ(h.State("a"), "running");
  EXPECT_EQ(h.StatusOf("a").streak, 0);
  EXPECT_EQ(h.StatusOf("a").next_step, "rollback_state");
  EXPECT_FALSE(h.StatusOf("a").in_episode);  // checkpoints are taken again
  h.Crash("a");
  h.Crash("a");
  EXPECT_EQ(h.steps.back().second, "rollback_state");
  EXPECT_EQ(h.step_began.back(), h.now);
}

// The runtime checkpoints only outside an episode: not while a streak runs,
// nor between a step and the end of its episode (healthy_after), when the
// streak count has started again but the state is still on trial.
TEST(Ladder, AnEpisodeLastsFromTheFirstFailureUntilHealthyAfter) {
  Harness h(kLadder);
  h.Start();
  EXPECT_FALSE(h.StatusOf("a").in_episode);
  h.Crash("a");
  EXPECT_TRUE(h.StatusOf("a").in_episode);
  h.Crash("a");  // the step: the streak count starts again
  EXPECT_EQ(h.StatusOf("a").streak, 0);
  EXPECT_TRUE(h.StatusOf("a").in_episode);
  h.Advance(seconds(9));
  EXPECT_TRUE(h.StatusOf("a").in_episode);
  h.Advance(seconds(2));
  EXPECT_FALSE(h.StatusOf("a").in_episode);
}

TEST(Ladder, GiveUpOnACriticalChildShutsTheSystemDownWithExit3) {
  Harness h(R"(
[system]
root = "main"
[supervisor.main]
intensity = 100
period = "1s"
children = ["b", "a"]
[component.a]
exec = ["/bin/true"]
critical = true
on_persistent_failure = { after = 1, steps = ["give_up"] }
[component.b]
exec = ["/bin/true"]
)");
  h.Start();
  h.Journal();
  h.Crash("a");
  EXPECT_THAT(h.Journal(),
              ElementsAre("child_exited a exit", "persistent_failure_step a", "child_gave_up a",
                          "child_terminated b shutdown", "system_stopped"));
  ASSERT_TRUE(h.finish_code.has_value());
  EXPECT_EQ(*h.finish_code, 3);
  EXPECT_THAT(h.finish_message, ::testing::HasSubstr("critical component 'a'"));
}

TEST(Ladder, EscalateFailsTheSupervisorAtOnce) {
  Harness h(R"(
[system]
root = "main"
[supervisor.main]
intensity = 100
period = "1s"
children = ["sub"]
[supervisor.sub]
intensity = 100
period = "1s"
children = ["a"]
[component.a]
exec = ["/bin/true"]
on_persistent_failure = { after = 2, steps = ["escalate"] }
)");
  h.Start();
  h.Crash("a");
  h.Journal();
  h.Crash("a");
  auto lines = h.Journal();
  EXPECT_THAT(lines, ::testing::Contains("supervisor_exited sub shutdown"));
  EXPECT_THAT(lines, ::testing::Contains("child_restarting sub"));
  EXPECT_EQ(h.State("sub"), "running");
  EXPECT_EQ(h.State("a"), "running");
  // A restarted supervisor starts afresh: the ladder too.
  EXPECT_EQ(h.StatusOf("a").next_step, "escalate");
}

TEST(Ladder, IntensityStillAppliesAlongsideTheLadder) {
  Harness h(R"(
[system]
root = "main"
[supervisor.main]
intensity = 2
period = "10s"
children = ["a"]
[component.a]
exec = ["/bin/true"]
state = { size = "1MiB" }
on_persistent_failure = { after = 1, steps = ["reset_state", "reset_state", "reset_state"] }
)");
  h.Start();
  h.Crash("a");
  h.Crash("a");
  h.Crash("a");
  ASSERT_TRUE(h.finish_code.has_value());
  EXPECT_EQ(*h.finish_code, 3);
}

}  // namespace
}  // namespace slate::core
