// The supervisor's behaviour, SPEC section 4, driven with a fake clock and a
// fake runtime (harness_test.h). Each test reads as: a system, what happens,
// what the journal says.
#include "core/supervision.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/harness_test.h"

namespace slate::core {
namespace {

using ::testing::ElementsAre;
using testing::Harness;
using testing::milliseconds;
using testing::seconds;

// Three components under one supervisor with the given strategy.
std::string Three(std::string_view strategy, int intensity = 3, std::string_view extra_c = "") {
  return fmt::format(R"(
[system]
root = "main"
[supervisor.main]
strategy = "{}"
intensity = {}
period = "5s"
children = ["a", "b", "c"]
[component.a]
exec = ["/bin/true"]
[component.b]
exec = ["/bin/true"]
[component.c]
exec = ["/bin/true"]
{}
)",
                     strategy, intensity, extra_c);
}

const std::set<std::string> kLife{"child_started", "child_ready", "child_exited",
                                  "child_restarting", "child_terminated"};

TEST(Start, ChildrenStartInOrderEachWaitingForReadiness) {
  Harness h(R"(
[system]
root = "main"
[supervisor.main]
children = ["a", "b"]
[component.a]
exec = ["/bin/true"]
ready = "notify"
[component.b]
exec = ["/bin/true"]
)");
  h.manual_ready.insert("a");
  h.Start();
  EXPECT_THAT(h.spawns, ElementsAre("a"));
  EXPECT_EQ(h.State("a"), "starting");
  EXPECT_EQ(h.State("b"), "stopped");
  h.MakeReady("a");
  EXPECT_THAT(h.spawns, ElementsAre("a", "b"));
  EXPECT_THAT(h.Journal(), ElementsAre("child_started a", "child_ready a", "child_started b",
                                       "child_ready b", "system_started"));
}

TEST(Start, NestedSupervisorsStartDepthFirst) {
  Harness h(R"(
[system]
root = "main"
[supervisor.main]
children = ["a", "sub", "d"]
[supervisor.sub]
children = ["b", "c"]
[component.a]
exec = ["/bin/true"]
[component.b]
exec = ["/bin/true"]
[component.c]
exec = ["/bin/true"]
[component.d]
exec = ["/bin/true"]
)");
  h.Start();
  EXPECT_THAT(h.spawns, ElementsAre("a", "b", "c", "d"));
  EXPECT_EQ(h.State("sub"), "running");
  EXPECT_THAT(h.Journal({"child_ready", "system_started"}),
              ElementsAre("child_ready a", "child_ready b", "child_ready c", "child_ready sub",
                          "child_ready d", "system_started"));
}

TEST(Start, StartErrorStopsWhatStartedInReverseAndExits2) {
  Harness h(Three("one_for_one"));
  h.spawn_fails.insert("c");
  h.Start();
  EXPECT_EQ(h.finish_code, 2);
  EXPECT_EQ(h.finish_message, "child 'c' failed to start: start_error: no such file");
  EXPECT_THAT(h.Journal({"child_exited", "child_terminated", "system_stopped"}),
              ElementsAre("child_exited c start_error", "child_terminated b shutdown",
                          "child_terminated a shutdown", "system_stopped"));
}

TEST(Start, ReadyTimeoutIsAStartTimeout) {
  Harness h(R"(
[system]
root = "main"
[supervisor.main]
children = ["a", "b"]
[component.a]
exec = ["/bin/true"]
[component.b]
exec = ["/bin/true"]
ready = "notify"
ready_timeout = "2s"
)");
  h.manual_ready.insert("b");
  h.Start();
  h.Advance(milliseconds(1999));
  EXPECT_FALSE(h.finish_code);
  h.Advance(milliseconds(1));
  EXPECT_EQ(h.finish_code, 2);
  EXPECT_EQ(h.finish_message, "child 'b' failed to start: start_timeout: not ready within 2000ms");
}

TEST(Start, ANestedStartFailureFailsTheWholeStart) {
  Harness h(R"(
[system]
root = "main"
[supervisor.main]
children = ["a", "sub"]
[supervisor.sub]
children = ["b", "c"]
[component.a]
exec = ["/bin/true"]
[component.b]
exec = ["/bin/true"]
[component.c]
exec = ["/bin/true"]
)");
  h.spawn_fails.insert("c");
  h.Start();
  EXPECT_EQ(h.finish_code, 2);
  EXPECT_EQ(h.finish_message,
            "child 'sub' failed to start: start_error: child 'c' failed to start: start_error: "
            "no such file");
  EXPECT_THAT(h.Journal({"child_terminated"}),
              ElementsAre("child_terminated b shutdown", "child_terminated a shutdown"));
}

TEST(Stop, ShutdownStopsInReverseOrderAndExits0) {
  Harness h(Three("one_for_one"));
  h.Start();
  h.Journal();
  h.Shutdown();
  EXPECT_THAT(h.Journal(), ElementsAre("child_terminated c shutdown", "child_terminated b shutdown",
                                       "child_terminated a shutdown", "system_stopped"));
  EXPECT_EQ(h.finish_code, 0);
}

TEST(Stop, ShutdownHonoursEachChildsShutdown) {
  Harness h(R"(
[system]
root = "main"
[supervisor.main]
children = ["brutal", "patient", "timed"]
[component.brutal]
exec = ["/bin/true"]
shutdown = "brutal_kill"
[component.patient]
exec = ["/bin/true"]
shutdown = "infinity"
[component.timed]
exec = ["/bin/true"]
shutdown = "2s"
)");
  h.ignore_sigterm = {"timed", "patient"};
  h.Start();
  h.Shutdown();
  // timed: SIGTERM, ignored; SIGKILL 2 s later.
  ASSERT_EQ(h.kills.size(), 1u);
  EXPECT_EQ(h.kills[0], std::make_pair(std::string("timed"), SIGTERM));
  h.Advance(milliseconds(1999));
  EXPECT_EQ(h.kills.size(), 1u);
  h.Advance(milliseconds(1));
  ASSERT_EQ(h.kills.size(), 3u);
  EXPECT_EQ(h.kills[1], std::make_pair(std::string("timed"), SIGKILL));
  // patient: SIGTERM and wait, however long.
  EXPECT_EQ(h.kills[2], std::make_pair(std::string("patient"), SIGTERM));
  h.Advance(seconds(3600));
  EXPECT_EQ(h.kills.size(), 3u);
  EXPECT_EQ(h.State("patient"), "stopping");
  h.Signal("patient", SIGTERM);
  // brutal: SIGKILL at once.
  ASSERT_EQ(h.kills.size(), 4u);
  EXPECT_EQ(h.kills[3], std::make_pair(std::string("brutal"), SIGKILL));
  EXPECT_EQ(h.finish_code, 0);
}

TEST(Stop, AChildThatExitsWhileStoppedIsTerminatedNotFailed) {
  Harness h(Three("one_for_one", 0));
  h.ignore_sigterm = {"c"};
  h.Start();
  h.Shutdown();
  h.Crash("c", 1);  // exits with an error code while we stop it
  EXPECT_EQ(h.finish_code, 0);
  EXPECT_THAT(h.Journal({"child_exited", "supervisor_intensity_exceeded"}), ElementsAre());
}

struct RestartCase {
  std::string restart;
  std::string end;  // "normal", "exit", "signal"
  bool restarted;
};

class RestartTypes : public ::testing::TestWithParam<RestartCase> {};

TEST_P(RestartTypes, DecideWhetherAnEndIsRestarted) {
  const RestartCase& t = GetParam();
  Harness g(fmt::format(R"(
[system]
root = "main"
[supervisor.main]
intensity = 5
children = ["a", "x"]
[component.a]
exec = ["/bin/true"]
[component.x]
exec = ["/bin/true"]
restart = "{}"
)",
                        t.restart));
  g.Start();
  g.Journal();
  if (t.end == "normal") g.Crash("x", 0);
  if (t.end == "exit") g.Crash("x", 3);
  if (t.end == "signal") g.Signal("x", SIGSEGV);
  auto j = g.Journal({"child_restarting"});
  EXPECT_EQ(!j.empty(), t.restarted);
  EXPECT_EQ(g.State("x"), t.restarted ? "running" : "stopped");
  EXPECT_EQ(g.State("a"), "running");
}

INSTANTIATE_TEST_SUITE_P(Table, RestartTypes,
                         ::testing::Values(RestartCase{"permanent", "normal", true},
                                           RestartCase{"permanent", "exit", true},
                                           RestartCase{"permanent", "signal", true},
                                           RestartCase{"transient", "normal", false},
                                           RestartCase{"transient", "exit", true},
                                           RestartCase{"transient", "signal", true},
                                           RestartCase{"temporary", "normal", false},
                                           RestartCase{"temporary", "exit", false},
                                           RestartCase{"temporary", "signal", false}),
                         [](const auto& p) { return p.param.restart + "_" + p.param.end; });

TEST(Restart, NormalExitCodesAreNormal) {
  Harness h(R"(
[system]
root = "main"
[supervisor.main]
children = ["x"]
[component.x]
exec = ["/bin/true"]
restart = "transient"
normal_exit_codes = [75]
)");
  h.Start();
  h.Crash("x", 75);
  EXPECT_EQ(h.State("x"), "stopped");
  EXPECT_THAT(h.Journal({"child_exited"}), ElementsAre("child_exited x normal"));
}

TEST(Restart, OneForOneRestartsOnlyTheFailedChild) {
  Harness h(Three("one_for_one"));
  h.Start();
  h.Journal();
  h.Crash("b");
  EXPECT_THAT(h.Journal(), ElementsAre("child_exited b exit", "child_restarting b",
                                       "child_started b", "child_ready b"));
  EXPECT_EQ(h.StatusOf("b").restarts, 1);
}

TEST(Restart, OneForAllStopsTheOthersInReverseAndStartsAllInOrder) {
  Harness h(Three("one_for_all"));
  h.Start();
  h.Journal();
  h.Crash("b");
  EXPECT_THAT(
      h.Journal(kLife),
      ElementsAre("child_exited b exit", "child_restarting b", "child_terminated c shutdown",
                  "child_terminated a shutdown", "child_started a", "child_ready a",
                  "child_started b", "child_ready b", "child_started c", "child_ready c"));
}

TEST(Restart, RestForOneRestartsTheFailedChildAndThoseAfterIt) {
  Harness h(Three("rest_for_one"));
  h.Start();
  h.Journal();
  h.Crash("b");
  EXPECT_THAT(h.Journal(kLife), ElementsAre("child_exited b exit", "child_restarting b",
                                            "child_terminated c shutdown", "child_started b",
                                            "child_ready b", "child_started c", "child_ready c"));
  EXPECT_EQ(h.State("a"), "running");
}

TEST(Restart, ATemporaryBystanderOfAGroupRestartIsStoppedAndRemoved) {
  Harness g(R"(
[system]
root = "main"
[supervisor.main]
strategy = "one_for_all"
children = ["a", "t", "c"]
[component.a]
exec = ["/bin/true"]
[component.t]
exec = ["/bin/true"]
restart = "temporary"
[component.c]
exec = ["/bin/true"]
)");
  g.Start();
  g.Journal();
  g.Crash("c");
  EXPECT_THAT(g.Journal(kLife),
              ElementsAre("child_exited c exit", "child_restarting c",
                          "child_terminated t shutdown", "child_terminated a shutdown",
                          "child_started a", "child_ready a", "child_started c", "child_ready c"));
  EXPECT_EQ(g.State("t"), "stopped");
}

TEST(Intensity, TheIntensityThRestartIsAllowedTheNextFailsTheSupervisor) {
  Harness h(Three("one_for_one", 3));
  h.Start();
  for (int i = 0; i < 3; ++i) h.Crash("a");
  EXPECT_FALSE(h.finish_code);
  EXPECT_EQ(h.StatusOf("a").restarts, 3);
  h.Journal();
  h.Crash("a");
  EXPECT_THAT(h.Journal(), ElementsAre("child_exited a exit", "supervisor_intensity_exceeded main",
                                       "child_terminated c shutdown", "child_terminated b shutdown",
                                       "supervisor_exited main shutdown", "system_stopped"));
  EXPECT_EQ(h.finish_code, 3);
}

TEST(Intensity, ZeroMeansTheFirstFailureGivesUp) {
  Harness h(Three("one_for_one", 0));
  h.Start();
  h.Crash("c");
  EXPECT_EQ(h.finish_code, 3);
}

TEST(Intensity, TheWindowSlides) {
  Harness h(Three("one_for_one", 2));  // 2 in 5 s
  h.Start();
  h.Crash("a");
  h.Advance(seconds(3));
  h.Crash("a");
  h.Advance(milliseconds(2001));  // the first has left the window
  h.Crash("a");
  EXPECT_FALSE(h.finish_code);
  h.Advance(milliseconds(100));
  h.Crash("a");  // three within 5 s now
  EXPECT_EQ(h.finish_code, 3);
}

TEST(Intensity, OneFailureCountsAsOneRestartEvenInAGroup) {
  Harness h(Three("one_for_all", 1));
  h.Start();
  h.Crash("a");
  EXPECT_FALSE(h.finish_code);
  h.Crash("b");
  EXPECT_EQ(h.finish_code, 3);
}

TEST(RetryLoop, AFailedRestartIsRetriedAndEachAttemptCounts) {
  Harness h(Three("one_for_one", 3));
  h.Start();
  h.spawn_fails.insert("b");
  h.Journal();
  h.Crash("b");
  // Restart 1 failed to start; restart 2 is counted and waits its turn on
  // the event loop, as OTP's try_again message does.
  EXPECT_EQ(h.State("b"), "restarting");
  EXPECT_EQ(h.StatusOf("b").restarts, 2);
  h.Turn();
  EXPECT_EQ(h.State("b"), "restarting");
  EXPECT_EQ(h.StatusOf("b").restarts, 3);
  EXPECT_FALSE(h.finish_code);
  h.Turn();  // the fourth restart in the window is one too many
  EXPECT_EQ(h.finish_code, 3);
  EXPECT_THAT(h.Journal({"child_exited", "child_restarting", "supervisor_intensity_exceeded"}),
              ElementsAre("child_exited b exit", "child_restarting b", "child_exited b start_error",
                          "child_restarting b", "child_exited b start_error", "child_restarting b",
                          "child_exited b start_error", "supervisor_intensity_exceeded main"));
}

TEST(RetryLoop, CommandsAreAnsweredAndStopEndsTheLoop) {
  Harness h(Three("one_for_one", 100));
  h.Start();
  h.spawn_fails.insert("b");
  h.Crash("b");
  EXPECT_EQ(h.State("b"), "restarting");
  CommandResult r = h.Stop("b");
  EXPECT_TRUE(r.ok) << r.message;
  EXPECT_EQ(h.State("b"), "stopped");
  size_t spawns = h.spawns.size();
  h.Advance(seconds(10));
  EXPECT_EQ(h.spawns.size(), spawns);  // no more attempts
  EXPECT_FALSE(h.finish_code);
  h.spawn_fails.clear();
  EXPECT_TRUE(h.StartChild("b").ok);
  EXPECT_EQ(h.State("b"), "running");
}

const char* kEscalation = R"(
[system]
root = "main"
[supervisor.main]
intensity = 5
children = ["a", "sub"]
[supervisor.sub]
restart = "{}"
intensity = 1
children = ["b", "c"]
[component.a]
exec = ["/bin/true"]
[component.b]
exec = ["/bin/true"]
[component.c]
exec = ["/bin/true"]
)";

TEST(Escalation, APermanentSubSupervisorThatGivesUpIsRestartedFresh) {
  Harness h(fmt::format(fmt::runtime(kEscalation), "permanent"));
  h.Start();
  h.Crash("b");
  EXPECT_EQ(h.StatusOf("b").restarts, 1);
  h.Journal();
  h.Crash("b");  // second in the window: sub gives up
  EXPECT_THAT(h.Journal(),
              ElementsAre("child_exited b exit", "supervisor_intensity_exceeded sub",
                          "child_terminated c shutdown", "supervisor_exited sub shutdown",
                          "child_exited sub shutdown", "child_restarting sub", "child_started sub",
                          "child_started b", "child_ready b", "child_started c", "child_ready c",
                          "child_ready sub"));
  // Fresh state: no restart history, so one more failure is allowed.
  EXPECT_EQ(h.StatusOf("b").restarts, 0);
  EXPECT_EQ(h.StatusOf("sub").restarts, 1);
  h.Crash("b");
  EXPECT_EQ(h.State("sub"), "running");
  EXPECT_FALSE(h.finish_code);
}

TEST(Escalation, ATransientSubSupervisorThatGivesUpIsNotRestarted) {
  // OTP: a supervisor that gives up exits with reason shutdown, which is
  // not abnormal, so a transient one stays down.
  Harness h(fmt::format(fmt::runtime(kEscalation), "transient"));
  h.Start();
  h.Crash("b");
  h.Crash("b");
  EXPECT_EQ(h.State("sub"), "stopped");
  EXPECT_EQ(h.State("a"), "running");
  EXPECT_FALSE(h.finish_code);
  EXPECT_THAT(h.Journal({"child_restarting"}), ElementsAre("child_restarting b"));
}

TEST(Escalation, EscalationReachesTheRootAndExits3) {
  Harness h(R"(
[system]
root = "main"
[supervisor.main]
intensity = 0
children = ["sub"]
[supervisor.sub]
intensity = 0
children = ["b"]
[component.b]
exec = ["/bin/true"]
)");
  h.Start();
  h.Crash("b");
  EXPECT_EQ(h.finish_code, 3);
  EXPECT_EQ(h.finish_message, "root supervisor 'main' gave up: more than 0 restarts in 5s");
}

const char* kSignificant = R"(
[system]
root = "main"
[supervisor.main]
children = ["sub", "z"]
[supervisor.sub]
restart = "transient"
auto_shutdown = "{}"
children = ["a", "s1", "s2"]
[component.a]
exec = ["/bin/true"]
[component.s1]
exec = ["/bin/true"]
restart = "transient"
significant = true
[component.s2]
exec = ["/bin/true"]
restart = "temporary"
significant = true
[component.z]
exec = ["/bin/true"]
)";

TEST(Significant, AnySignificantShutsTheSupervisorDownOnTheFirst) {
  Harness h(fmt::format(fmt::runtime(kSignificant), "any_significant"));
  h.Start();
  h.Crash("s1", 0);
  EXPECT_EQ(h.State("sub"), "stopped");
  EXPECT_EQ(h.State("a"), "stopped");
  EXPECT_EQ(h.State("z"), "running");
  EXPECT_FALSE(h.finish_code);
}

TEST(Significant, AllSignificantWaitsForTheLast) {
  Harness h(fmt::format(fmt::runtime(kSignificant), "all_significant"));
  h.Start();
  h.Crash("s1", 0);
  EXPECT_EQ(h.State("sub"), "running");
  h.Crash("s2", 1);  // temporary: any end counts
  EXPECT_EQ(h.State("sub"), "stopped");
}

TEST(Significant, ASignificantChildThatIsRestartedDoesNotCount) {
  Harness h(fmt::format(fmt::runtime(kSignificant), "any_significant"));
  h.Start();
  h.Crash("s1", 1);  // transient, abnormal: restarted
  EXPECT_EQ(h.State("sub"), "running");
  EXPECT_EQ(h.State("s1"), "running");
}

TEST(Significant, AutoShutdownOfTheRootEndsTheSystemOrderly) {
  Harness h(R"(
[system]
root = "main"
[supervisor.main]
auto_shutdown = "any_significant"
children = ["a", "job"]
[component.a]
exec = ["/bin/true"]
[component.job]
exec = ["/bin/true"]
restart = "transient"
significant = true
)");
  h.Start();
  h.Crash("job", 0);
  EXPECT_EQ(h.finish_code, 0);
}

const char* kPool = R"(
[system]
root = "main"
[supervisor.main]
children = ["pool"]
[supervisor.pool]
strategy = "simple_one_for_one"
template = "w"
instances = 3
intensity = 10
[component.w]
exec = ["/bin/true"]
shutdown = "1s"
)";

TEST(SimpleOneForOne, InstancesStartAndAreRestartedAlone) {
  Harness h(kPool);
  h.Start();
  EXPECT_THAT(h.spawns, ElementsAre("w@1", "w@2", "w@3"));
  h.Crash("w@2");
  EXPECT_THAT(h.spawns, ElementsAre("w@1", "w@2", "w@3", "w@2"));
}

TEST(SimpleOneForOne, InstancesStartConcurrently) {
  Harness h(R"(
[system]
root = "main"
[supervisor.main]
children = ["pool", "after"]
[supervisor.pool]
strategy = "simple_one_for_one"
template = "w"
instances = 3
[component.w]
exec = ["/bin/true"]
ready = "notify"
[component.after]
exec = ["/bin/true"]
)");
  h.manual_ready = {"w@1", "w@2", "w@3"};
  h.Start();
  // All three are spawned before any is ready; the next sibling waits for all.
  EXPECT_THAT(h.spawns, ElementsAre("w@1", "w@2", "w@3"));
  h.MakeReady("w@2");
  h.MakeReady("w@1");
  EXPECT_EQ(h.State("pool"), "starting");
  h.MakeReady("w@3");
  EXPECT_EQ(h.State("pool"), "running");
  EXPECT_THAT(h.spawns, ElementsAre("w@1", "w@2", "w@3", "after"));
}

TEST(SimpleOneForOne, InstancesStopConcurrently) {
  Harness h(kPool);
  h.ignore_sigterm = {"w@1", "w@2", "w@3"};
  h.Start();
  h.Shutdown();
  // All three get SIGTERM before any has ended.
  ASSERT_EQ(h.kills.size(), 3u);
  h.Advance(seconds(1));
  EXPECT_EQ(h.kills.size(), 6u);
  EXPECT_EQ(h.finish_code, 0);
}

TEST(Operator, StopStartRestartAreNeverFailures) {
  Harness h(Three("one_for_one", 0));  // any failure would give up
  h.Start();
  EXPECT_TRUE(h.Stop("b").ok);
  EXPECT_EQ(h.State("b"), "stopped");
  EXPECT_TRUE(h.StartChild("b").ok);
  EXPECT_EQ(h.State("b"), "running");
  EXPECT_TRUE(h.Restart("c").ok);
  EXPECT_EQ(h.State("c"), "running");
  EXPECT_FALSE(h.finish_code);
  EXPECT_EQ(h.StatusOf("c").restarts, 0);
  EXPECT_THAT(h.Journal({"child_exited", "child_restarting"}), ElementsAre());
}

TEST(Operator, AStoppedChildIsLeftOutOfGroupRestarts) {
  Harness h(Three("one_for_all"));
  h.Start();
  h.Stop("c");
  h.Crash("a");
  EXPECT_EQ(h.State("c"), "stopped");
  EXPECT_EQ(h.State("b"), "running");
}

TEST(Operator, BadCommandsSayWhy) {
  Harness h(Three("one_for_one"));
  h.Start();
  CommandResult r = h.Stop("nope");
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.message, "no child named 'nope'");
  r = h.Stop("main");
  EXPECT_FALSE(r.ok);
  r = h.StartChild("a");
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.message, "'a' is already running");
}

TEST(Operator, CommandsWaitWhileTheSupervisorIsBusy) {
  Harness h(R"(
[system]
root = "main"
[supervisor.main]
children = ["a", "b"]
[component.a]
exec = ["/bin/true"]
[component.b]
exec = ["/bin/true"]
ready = "notify"
)");
  h.manual_ready.insert("b");
  h.Start();
  CommandResult r = h.Stop("a");
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.message, "queued: supervisor 'main' is busy");
  EXPECT_EQ(h.State("a"), "running");
  h.MakeReady("b");
  EXPECT_EQ(h.State("a"), "stopped");
}

TEST(Queue, AnEndDuringAPlanIsHandledAfterIt) {
  Harness h(R"(
[system]
root = "main"
[supervisor.main]
intensity = 5
children = ["a", "b"]
[component.a]
exec = ["/bin/true"]
[component.b]
exec = ["/bin/true"]
ready = "notify"
)");
  h.manual_ready.insert("b");
  h.Start();
  h.Crash("a");  // while b is still starting
  EXPECT_EQ(h.State("a"), "stopped");
  h.MakeReady("b");
  EXPECT_EQ(h.State("a"), "running");
  EXPECT_EQ(h.StatusOf("a").restarts, 1);
}

TEST(Stale, ReportsAboutAnOldProcessAreIgnored) {
  Harness h(Three("one_for_one"));
  h.Start();
  Incarnation old = h.sup().IncarnationOf("a");
  h.Crash("a");
  ProcessStatus st;
  st.code = 1;
  h.sup().Exited(old, st, h.now);
  h.sup().Ready(old, h.now);
  EXPECT_EQ(h.State("a"), "running");
  EXPECT_EQ(h.StatusOf("a").restarts, 1);
}

TEST(Heartbeat, AMissedHeartbeatIsAHang) {
  Harness h(R"(
[system]
root = "main"
[supervisor.main]
children = ["a"]
[component.a]
exec = ["/bin/true"]
heartbeat = "500ms"
)");
  h.Start();
  for (int i = 0; i < 10; ++i) {
    h.Advance(milliseconds(400));
    h.Beat("a");
  }
  EXPECT_EQ(h.StatusOf("a").restarts, 0);
  h.Journal();
  h.Advance(milliseconds(500));
  EXPECT_THAT(h.Journal(kLife), ElementsAre("child_exited a hang", "child_restarting a",
                                            "child_started a", "child_ready a"));
  EXPECT_EQ(h.kills.back(), std::make_pair(std::string("a"), SIGKILL));
}

TEST(Backoff, DelaysGrowWithTheStreakAndHealthyAfterEndsIt) {
  Harness h(R"(
[system]
root = "main"
[supervisor.main]
intensity = 100
period = "1s"
children = ["a"]
[component.a]
exec = ["/bin/true"]
backoff = { initial = "100ms", max = "1s", factor = 2.0 }
healthy_after = "10s"
)");
  h.Start();
  std::vector<std::int64_t> delays;
  for (int i = 0; i < 6; ++i) {
    h.Crash("a");
    delays.push_back(*h.Last("child_restarting").delay_ms);
    EXPECT_EQ(h.State("a"), i == 0 ? "running" : "restarting");
    h.Advance(seconds(2));
    EXPECT_EQ(h.State("a"), "running");
  }
  // 0, then 100, 200, 400, 800, 1000 ms, each within 10%.
  std::vector<std::int64_t> expected{0, 100, 200, 400, 800, 1000};
  for (std::size_t i = 0; i < delays.size(); ++i) {
    EXPECT_NEAR(static_cast<double>(delays[i]), static_cast<double>(expected[i]),
                static_cast<double>(expected[i]) * 0.1 + 1)
        << i;
  }
  EXPECT_EQ(h.StatusOf("a").streak, 6);
  h.Advance(seconds(10));
  EXPECT_EQ(h.StatusOf("a").streak, 0);
  h.Crash("a");
  EXPECT_EQ(*h.Last("child_restarting").delay_ms, 0);
}

TEST(Status, ShowsTheTreeInStartOrder) {
  Harness h(R"(
[system]
root = "main"
[supervisor.main]
children = ["a", "sub"]
[supervisor.sub]
children = ["b"]
[component.a]
exec = ["/bin/true"]
[component.b]
exec = ["/bin/true"]
)");
  h.Start();
  std::vector<std::string> names;
  for (const auto& st : h.sup().Status()) names.push_back(st.name + ":" + st.state);
  EXPECT_THAT(names, ElementsAre("main:running", "a:running", "sub:running", "b:running"));
  EXPECT_NE(h.StatusOf("a").pid, 0);
}

}  // namespace
}  // namespace slate::core
