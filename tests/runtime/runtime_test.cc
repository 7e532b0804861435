// `slate run` with real processes, end to end (SPEC sections 3, 4, 7, 8).
#include <gtest/gtest.h>

#include "system_under_test.h"

namespace slate::testing {
namespace {

std::vector<std::string> Seq(const std::vector<Json>& events, const std::set<std::string>& kinds) {
  std::vector<std::string> out;
  for (const auto& e : events) {
    std::string ev = e["event"];
    if (!kinds.contains(ev)) continue;
    out.push_back(ev + " " + e.value("node", ""));
  }
  return out;
}

TEST(Run, StartsInOrderWaitingForEachReadinessMode) {
  SystemUnderTest s(R"(
[supervisor.main]
children = ["a", "b", "c"]
[component.a]
exec = ["{testee}", "--ready", "notify", "--ready-delay-ms", "100"]
ready = "notify"
[component.b]
exec = ["{testee}", "--ready", "fd:3", "--ready-delay-ms", "100"]
ready = "fd:3"
[component.c]
exec = ["{testee}"]
)");
  s.StartReady();
  EXPECT_EQ(Seq(s.Events(), {"child_started", "child_ready", "system_started"}),
            (std::vector<std::string>{"child_started a", "child_ready a", "child_started b",
                                      "child_ready b", "child_started c", "child_ready c",
                                      "system_started "}));
  Json st = s.Status();
  for (const auto& n : st["nodes"]) EXPECT_EQ(n["state"], "running") << n.dump();
  // seq from 1, no gaps.
  auto events = s.Events();
  for (std::size_t i = 0; i < events.size(); ++i) EXPECT_EQ(events[i]["seq"], i + 1);
  EXPECT_EQ(s.Cli({"shutdown"}).code, 0);
  EXPECT_EQ(s.Wait(), 0);
  EXPECT_EQ(Seq(s.Events(), {"child_terminated", "system_stopped"}),
            (std::vector<std::string>{"child_terminated c", "child_terminated b",
                                      "child_terminated a", "system_stopped "}));
}

TEST(Run, AStartErrorExits2NamingTheChild) {
  SystemUnderTest s(R"(
[supervisor.main]
children = ["a", "b"]
[component.a]
exec = ["{testee}"]
[component.b]
exec = ["/nonexistent/program"]
)");
  s.Start();
  EXPECT_EQ(s.Wait(), 2);
  EXPECT_NE(s.RunLog().find("child 'b' failed to start"), std::string::npos) << s.RunLog();
  EXPECT_EQ(s.Events("child_terminated", "a").size(), 1u);
}

TEST(Run, AChildThatNeverBecomesReadyIsAStartTimeout) {
  SystemUnderTest s(R"(
[supervisor.main]
children = ["a"]
[component.a]
exec = ["{testee}"]
ready = "notify"
ready_timeout = "300ms"
)");
  s.Start();
  EXPECT_EQ(s.Wait(), 2);
  auto exited = s.Events("child_exited", "a");
  ASSERT_EQ(exited.size(), 1u);
  EXPECT_EQ(exited[0]["reason"]["kind"], "start_timeout");
}

TEST(Run, CrashesAreRestartedAndClassified) {
  SystemUnderTest s(R"(
[supervisor.main]
intensity = 10
children = ["a"]
[component.a]
exec = ["{testee}", "--crash-after-ms", "200"]
)");
  s.StartReady();
  ASSERT_TRUE(s.WaitEvent("child_restarting", "a"));
  auto exited = s.Events("child_exited", "a");
  ASSERT_GE(exited.size(), 1u);
  EXPECT_EQ(exited[0]["reason"]["kind"], "signal");
  EXPECT_EQ(exited[0]["reason"]["signal"], 11);
  EXPECT_EQ(s.Cli({"shutdown"}).code, 0);
  EXPECT_EQ(s.Wait(), 0);
}

TEST(Run, RootIntensityExceededExits3) {
  SystemUnderTest s(R"(
[supervisor.main]
intensity = 2
period = "10s"
children = ["a"]
[component.a]
exec = ["{testee}", "--exit-after-ms", "20", "--code", "3"]
)");
  s.Start();
  EXPECT_EQ(s.Wait(), 3);
  EXPECT_EQ(s.Events("supervisor_intensity_exceeded", "main").size(), 1u);
  EXPECT_EQ(s.Events("child_restarting", "a").size(), 2u);
}

TEST(Run, KillIsAFailureStopIsNot) {
  SystemUnderTest s(R"(
[supervisor.main]
intensity = 1
children = ["a", "b"]
[component.a]
exec = ["{testee}"]
[component.b]
exec = ["{testee}"]
)");
  s.StartReady();
  int pid = s.Node("a")["pid"];
  CommandOutput k = s.Cli({"kill", "a", "--signal", "KILL"});
  EXPECT_EQ(k.code, 0) << k.out;
  ASSERT_TRUE(s.WaitEvent("child_ready", "a", milliseconds(5000), 2));
  auto exited = s.Events("child_exited", "a");
  ASSERT_EQ(exited.size(), 1u);
  EXPECT_EQ(exited[0]["pid"], pid);
  EXPECT_EQ(exited[0]["reason"]["signal"], 9);
  EXPECT_EQ(s.Node("a")["restarts"], 1);
  // Operator control is not counted: with intensity 1 used up, these would
  // otherwise end the system.
  EXPECT_EQ(s.Cli({"stop", "b"}).code, 0);
  EXPECT_EQ(s.Node("b")["state"], "stopped");
  EXPECT_EQ(s.Cli({"start", "b"}).code, 0);
  EXPECT_EQ(s.Node("b")["state"], "running");
  EXPECT_EQ(s.Cli({"restart", "b"}).code, 0);
  EXPECT_EQ(s.Node("b")["state"], "running");
  EXPECT_EQ(s.Events("child_exited", "b").size(), 0u);
  CommandOutput bad = s.Cli({"stop", "nope"});
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.out.find("no child named 'nope'"), std::string::npos) << bad.out;
  EXPECT_EQ(s.Cli({"shutdown"}).code, 0);
  EXPECT_EQ(s.Wait(), 0);
}

TEST(Run, OneForAllRestartsTheGroupEndToEnd) {
  SystemUnderTest s(R"(
[supervisor.main]
strategy = "one_for_all"
intensity = 5
children = ["a", "b", "c"]
[component.a]
exec = ["{testee}"]
[component.b]
exec = ["{testee}"]
[component.c]
exec = ["{testee}"]
)");
  s.StartReady();
  int a = s.Node("a")["pid"];
  ASSERT_EQ(s.Cli({"kill", "b"}).code, 0);
  ASSERT_TRUE(s.WaitEvent("child_ready", "c", milliseconds(5000), 2));
  EXPECT_NE(s.Node("a")["pid"], a);
  EXPECT_FALSE(Alive(a));
  EXPECT_EQ(s.Cli({"shutdown"}).code, 0);
  EXPECT_EQ(s.Wait(), 0);
}

TEST(Run, AChildIgnoringSigtermIsKilledAfterItsShutdownTime) {
  SystemUnderTest s(R"(
[supervisor.main]
children = ["stubborn"]
[component.stubborn]
exec = ["{testee}", "--ignore-sigterm"]
shutdown = "300ms"
)");
  s.StartReady();
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(s.Cli({"shutdown"}).code, 0);
  EXPECT_EQ(s.Wait(), 0);
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, milliseconds(300));
  EXPECT_LT(took, milliseconds(3000));
  auto t = s.Events("child_terminated", "stubborn");
  ASSERT_EQ(t.size(), 1u);
}

TEST(Run, GrandchildrenDieWithTheirComponentAndLeaveNoZombie) {
  SystemUnderTest s(R"(
[supervisor.main]
intensity = 5
children = ["parent"]
[component.parent]
exec = ["{testee}", "--grandchild", "--pidfile", "PIDS", "--exit-after-ms", "300", "--code", "1"]
)");
  std::string pids = s.dir() + "/pids";
  s.Replace("PIDS", pids);
  s.StartReady();
  ASSERT_TRUE(s.WaitEvent("child_restarting", "parent"));
  std::vector<pid_t> first = ReadPids(pids);
  ASSERT_GE(first.size(), 2u);  // the component and its grandchild
  EXPECT_TRUE(SystemUnderTest::WaitUntil([&] { return !Alive(first[1]); }, milliseconds(2000)))
      << "grandchild " << first[1] << " survived its component";
  EXPECT_TRUE(
      SystemUnderTest::WaitUntil([&] { return Zombies(s.pid()) == 0; }, milliseconds(2000)));
  EXPECT_EQ(s.Cli({"shutdown"}).code, 0);
  EXPECT_EQ(s.Wait(), 0);
}

TEST(Run, AChildThatClosesItsOutputIsStillSupervised) {
  SystemUnderTest s(R"(
[supervisor.main]
intensity = 5
children = ["quiet"]
[component.quiet]
exec = ["{testee}", "--close-stdout", "--exit-after-ms", "300", "--code", "4"]
)");
  s.StartReady();
  ASSERT_TRUE(s.WaitEvent("child_exited", "quiet"));
  EXPECT_EQ(s.Events("child_exited", "quiet")[0]["reason"]["code"], 4);
  EXPECT_EQ(s.Cli({"shutdown"}).code, 0);
  EXPECT_EQ(s.Wait(), 0);
}

TEST(Run, AChildExitingDuringShutdownIsTerminatedNotRestarted) {
  SystemUnderTest s(R"(
[supervisor.main]
children = ["a", "b"]
[component.a]
exec = ["{testee}", "--sigterm-code", "7"]
[component.b]
exec = ["{testee}", "--ignore-sigterm"]
shutdown = "500ms"
)");
  s.StartReady();
  EXPECT_EQ(s.Cli({"shutdown"}).code, 0);
  EXPECT_EQ(s.Wait(), 0);
  EXPECT_EQ(s.Events("child_restarting").size(), 0u);
  EXPECT_EQ(s.Events("child_terminated").size(), 2u);
}

TEST(Run, AHungChildIsCaughtByItsHeartbeat) {
  SystemUnderTest s(R"(
[supervisor.main]
intensity = 5
children = ["h"]
[component.h]
exec = ["{testee}", "--heartbeat-ms", "50", "--stop-heartbeat-after-ms", "400"]
heartbeat = "250ms"
)");
  s.StartReady();
  ASSERT_TRUE(s.WaitEvent("child_exited", "h", milliseconds(3000)));
  auto e = s.Events("child_exited", "h")[0];
  EXPECT_EQ(e["reason"]["kind"], "hang");
  EXPECT_EQ(s.Cli({"shutdown"}).code, 0);
  EXPECT_EQ(s.Wait(), 0);
}

TEST(Run, SigtermStopsTheSystemInOrder) {
  SystemUnderTest s(R"(
[supervisor.main]
children = ["a"]
[component.a]
exec = ["{testee}"]
)");
  s.StartReady();
  ::kill(s.pid(), SIGTERM);
  EXPECT_EQ(s.Wait(), 0);
  EXPECT_EQ(s.Events("system_stopped").size(), 1u);
}

TEST(Run, AThousandCrashesLeakNoDescriptorAndNoZombie) {
  SystemUnderTest s(R"(
[supervisor.main]
intensity = 1000000
period = "1s"
children = ["a", "crasher"]
[component.a]
exec = ["{testee}"]
[component.crasher]
exec = ["{testee}", "--exit-after-ms", "0", "--code", "1"]
restart = "transient"
)");
  s.StartReady();
  // Warm up: the first restarts open what stays open (log files, sockets).
  ASSERT_TRUE(s.WaitEvent("child_restarting", "crasher", milliseconds(10000), 10));
  int fds_before = CountFds(s.pid());
  ASSERT_TRUE(s.WaitEvent("child_restarting", "crasher", milliseconds(60000), 1000))
      << s.Events("child_restarting", "crasher").size();
  ASSERT_EQ(s.Cli({"stop", "crasher"}).code, 0);
  EXPECT_TRUE(SystemUnderTest::WaitUntil([&] { return CountFds(s.pid()) <= fds_before; },
                                         milliseconds(2000)))
      << CountFds(s.pid()) << " descriptors, " << fds_before << " before";
  EXPECT_EQ(Zombies(s.pid()), 0);
  EXPECT_EQ(s.Cli({"shutdown"}).code, 0);
  EXPECT_EQ(s.Wait(), 0);
}

}  // namespace
}  // namespace slate::testing
