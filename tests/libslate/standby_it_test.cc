// Warm standby (`standby = N`) through the real runtime: spares of a
// libslate component park in slate_await_activation, and a failure promotes
// one instead of starting a new process.
#include <algorithm>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gmock/gmock.h>

#include "../runtime/system_under_test.h"

namespace slate::testing {
namespace {

// The parked spares of `name` in `slate status --json`.
std::vector<int> ParkedSpares(const SystemUnderTest& sut, const std::string& name) {
  std::vector<int> pids;
  Json node = sut.Node(name);
  if (!node.contains("standby")) return pids;
  for (const Json& s : node["standby"]) {
    if (s["parked"] == true) pids.push_back(s["pid"].get<int>());
  }
  return pids;
}

TEST(Standby, AFailedConsumerIsReplacedByItsParkedSpareAndLosesNothing) {
  SystemUnderTest sut(R"(
[supervisor.main]
children = ["p", "b"]
intensity = 10
[component.p]
exec = ["{peer}", "produce", "--count", "400", "--pace-us", "2000"]
ready = "notify"
[component.b]
exec = ["{peer}", "consume", "--out", "b.out"]
ready = "notify"
standby = 1
state = { size = "16MiB" }
[channel.stream]
from = "p"
to = "b"
)");
  sut.StartReady();
  std::vector<int> spares;
  ASSERT_TRUE(SystemUnderTest::WaitUntil(
      [&] {
        spares = ParkedSpares(sut, "b");
        return spares.size() == 1;
      },
      milliseconds(5000)))
      << sut.Status().dump();
  const int spare = spares[0];
  const int first = sut.Node("b")["pid"].get<int>();
  ASSERT_NE(spare, first);

  // A failure: the spare takes over, no new process is started for it.
  ASSERT_EQ(sut.Cli({"kill", "b"}).code, 0);
  ASSERT_TRUE(sut.WaitEvent("standby_promoted", "b"));
  auto promoted = sut.Events("standby_promoted", "b");
  EXPECT_EQ(promoted[0]["pid"].get<int>(), spare);
  // The restart's lines are written after the promotion, off its path; they
  // keep their order, seq without gaps, and the (monotonic) times they
  // happened at. A guard against a later change of that path.
  ASSERT_TRUE(sut.WaitEvent("child_started", "b", milliseconds(5000), 2));
  const std::vector<Json> all = sut.Events();
  std::vector<std::string> restart;
  for (std::size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(all[i]["seq"], i + 1);
    if (i > 0) {
      EXPECT_LE(all[i - 1]["mono_ns"].get<std::int64_t>(), all[i]["mono_ns"].get<std::int64_t>());
    }
    const bool ended = all[i]["event"] == "child_exited" && all[i]["pid"] == first;
    if ((!restart.empty() || ended) && all[i].value("node", "") == "b") {
      restart.push_back(all[i]["event"]);
    }
  }
  ASSERT_GE(restart.size(), 4U);
  EXPECT_EQ(std::vector<std::string>(restart.begin(), restart.begin() + 4),
            (std::vector<std::string>{"child_exited", "child_restarting", "standby_promoted",
                                      "child_started"}));
  ASSERT_TRUE(SystemUnderTest::WaitUntil(
      [&] {
        Json b = sut.Node("b");
        return b["state"] == "running" && b["pid"] == spare;
      },
      milliseconds(5000)))
      << sut.Node("b").dump();
  // ... and the pool is full again, with another process.
  ASSERT_TRUE(SystemUnderTest::WaitUntil(
      [&] {
        spares = ParkedSpares(sut, "b");
        return spares.size() == 1 && spares[0] != spare;
      },
      milliseconds(5000)))
      << sut.Status().dump();

  // The promoted spare got the channel: every message arrives, in order.
  const std::string out = (fs::path(sut.dir()) / "b.out").string();
  EXPECT_TRUE(SystemUnderTest::WaitUntil([&] { return ReadNumbers(out).size() >= 400; },
                                         milliseconds(10000)));
  std::vector<std::uint64_t> ids = ReadNumbers(out);
  ASSERT_EQ(ids.size(), 400u);
  for (std::size_t i = 0; i < ids.size(); ++i) ASSERT_EQ(ids[i], i + 1) << "at " << i;

  // A spare that dies is replaced.
  const int second_spare = spares[0];
  ASSERT_EQ(::kill(second_spare, SIGKILL), 0);
  EXPECT_TRUE(SystemUnderTest::WaitUntil(
      [&] {
        spares = ParkedSpares(sut, "b");
        return spares.size() == 1 && spares[0] != second_spare;
      },
      milliseconds(5000)))
      << sut.Status().dump();
  EXPECT_EQ(sut.Node("b")["pid"], spare);  // the component itself untouched
  EXPECT_EQ(sut.Cli({"shutdown"}).code, 0);
  EXPECT_EQ(sut.Wait(), 0);
  // No spare outlives the runtime.
  for (int pid : {spare, spares.empty() ? 0 : spares[0]}) {
    if (pid > 0) {
      EXPECT_NE(::kill(pid, 0), 0) << pid;
    }
  }
}

TEST(Standby, AGroupRestartPromotesASpareForEachMemberThatHasOne) {
  SystemUnderTest sut(R"(
[supervisor.main]
strategy = "one_for_all"
intensity = 10
children = ["x", "y", "z"]
[component.x]
exec = ["{peer}", "count", "--out", "x.out", "--pace-us", "20000"]
ready = "notify"
standby = 1
state = { size = "16MiB" }
[component.y]
exec = ["{peer}", "count", "--out", "y.out", "--pace-us", "20000"]
ready = "notify"
standby = 2
state = { size = "16MiB" }
[component.z]
exec = ["{peer}", "count", "--out", "z.out", "--pace-us", "20000"]
ready = "notify"
state = { size = "16MiB" }
)");
  sut.StartReady();
  ASSERT_TRUE(SystemUnderTest::WaitUntil(
      [&] { return ParkedSpares(sut, "x").size() == 1 && ParkedSpares(sut, "y").size() == 2; },
      milliseconds(5000)))
      << sut.Status().dump();
  const std::vector<int> x_spares = ParkedSpares(sut, "x");
  const std::vector<int> y_spares = ParkedSpares(sut, "y");
  ASSERT_EQ(sut.Cli({"kill", "z"}).code, 0);
  ASSERT_TRUE(sut.WaitEvent("standby_promoted", "x"));
  ASSERT_TRUE(sut.WaitEvent("standby_promoted", "y"));
  EXPECT_TRUE(sut.Events("standby_promoted", "z").empty());
  EXPECT_EQ(sut.Events("standby_promoted", "x")[0]["pid"], x_spares[0]);
  EXPECT_THAT(y_spares,
              ::testing::Contains(sut.Events("standby_promoted", "y")[0]["pid"].get<int>()));
  // The promoted counters go on counting from their stores.
  ASSERT_TRUE(SystemUnderTest::WaitUntil(
      [&] {
        for (const char* n : {"x", "y", "z"}) {
          if (sut.Node(n)["state"] != "running") return false;
        }
        return true;
      },
      milliseconds(5000)));
  const std::size_t before = ReadNumbers((fs::path(sut.dir()) / "x.out").string()).size();
  EXPECT_TRUE(SystemUnderTest::WaitUntil(
      [&] { return ReadNumbers((fs::path(sut.dir()) / "x.out").string()).size() >= before + 3; },
      milliseconds(5000)));
  EXPECT_EQ(sut.Cli({"shutdown"}).code, 0);
  EXPECT_EQ(sut.Wait(), 0);
}

TEST(Standby, SparesFollowTheImageAndStopWithTheirComponent) {
  SystemUnderTest sut(R"(
[supervisor.main]
children = ["x"]
[component.x]
exec = ["{peer}", "count", "--out", "x.out", "--pace-us", "20000"]
ready = "notify"
standby = 1
state = { size = "16MiB" }
)");
  // Another build of the same program: the peer with a byte appended.
  const std::string v2 = (fs::path(sut.dir()) / "peer-v2").string();
  fs::copy_file(kPeer, v2);
  { std::ofstream(v2, std::ios::app) << '\n'; }
  fs::permissions(v2, fs::perms::owner_all);
  sut.StartReady();
  std::vector<int> spares;
  ASSERT_TRUE(SystemUnderTest::WaitUntil(
      [&] { return (spares = ParkedSpares(sut, "x")).size() == 1; }, milliseconds(5000)));
  const int old_spare = spares[0];

  // An update restarts x on the new image: not by promoting the spare of
  // the old one, which is replaced by one of the new.
  ASSERT_EQ(sut.Cli({"update", "x", v2}).code, 0) << sut.RunLog();
  ASSERT_TRUE(sut.WaitEvent("image_updated", "x"));
  ASSERT_TRUE(SystemUnderTest::WaitUntil(
      [&] {
        spares = ParkedSpares(sut, "x");
        return sut.Node("x")["state"] == "running" && spares.size() == 1 && spares[0] != old_spare;
      },
      milliseconds(5000)))
      << sut.Status().dump();
  EXPECT_TRUE(sut.Events("standby_promoted", "x").empty());
  const std::string digest = sut.Node("x")["image"]["digest"].get<std::string>();
  for (int pid : {sut.Node("x")["pid"].get<int>(), spares[0]}) {
    EXPECT_THAT(fs::read_symlink(fmt::format("/proc/{}/exe", pid)).string(),
                ::testing::HasSubstr(digest.substr(digest.find(':') + 1)))
        << pid;
  }
  // Stopped: no spares. Started again: spares again.
  ASSERT_EQ(sut.Cli({"stop", "x"}).code, 0);
  EXPECT_TRUE(SystemUnderTest::WaitUntil([&] { return !sut.Node("x").contains("standby"); },
                                         milliseconds(5000)))
      << sut.Node("x").dump();
  EXPECT_FALSE(Alive(spares[0]));
  ASSERT_EQ(sut.Cli({"start", "x"}).code, 0);
  EXPECT_TRUE(SystemUnderTest::WaitUntil([&] { return ParkedSpares(sut, "x").size() == 1; },
                                         milliseconds(5000)));
  EXPECT_EQ(sut.Cli({"shutdown"}).code, 0);
  EXPECT_EQ(sut.Wait(), 0);
}

// Stopping a supervisor stops the spares of every component below it, as
// stopping the component itself does.
TEST(Standby, SparesStopWithTheSupervisorAboveThem) {
  SystemUnderTest sut(R"(
[supervisor.main]
children = ["sub"]
[supervisor.sub]
children = ["x"]
[component.x]
exec = ["{peer}", "count", "--out", "x.out", "--pace-us", "20000"]
ready = "notify"
standby = 1
state = { size = "16MiB" }
)");
  sut.StartReady();
  std::vector<int> spares;
  ASSERT_TRUE(SystemUnderTest::WaitUntil(
      [&] { return (spares = ParkedSpares(sut, "x")).size() == 1; }, milliseconds(5000)));
  const CommandOutput stop = sut.Cli({"stop", "sub"});
  ASSERT_EQ(stop.code, 0) << stop.out;
  EXPECT_TRUE(SystemUnderTest::WaitUntil([&] { return !Alive(spares[0]); }, milliseconds(5000)))
      << "the spare of x outlived the stop of its supervisor";
  // Nor is another started while it is stopped.
  std::this_thread::sleep_for(milliseconds(100));
  EXPECT_TRUE(ParkedSpares(sut, "x").empty()) << sut.Node("x").dump();
  ASSERT_EQ(sut.Cli({"start", "sub"}).code, 0);
  EXPECT_TRUE(SystemUnderTest::WaitUntil([&] { return ParkedSpares(sut, "x").size() == 1; },
                                         milliseconds(5000)));
  EXPECT_EQ(sut.Cli({"shutdown"}).code, 0);
  EXPECT_EQ(sut.Wait(), 0);
}

// A component that fails again as soon as it is promoted restarts faster than
// the pool is refilled (a refill waits 2 ms, off the promotion's path). The
// refills still come, every 2 ms or so, and keep a share of the restarts on
// promotion (about a third of them here, 200 restarts in 0.25 s).
TEST(Standby, ACrashLoopFasterThanTheRefillStillFindsSpares) {
  SystemUnderTest sut(R"(
[supervisor.main]
children = ["c"]
intensity = 200
period = "60s"
[component.c]
exec = ["{peer}", "crash"]
standby = 1
)");
  sut.Start();
  // 201 failures in a row, with no backoff, end the system.
  const std::optional<int> code = sut.Wait(milliseconds(60000));
  ASSERT_TRUE(code.has_value()) << sut.RunLog();
  EXPECT_NE(*code, 0);
  const std::vector<Json> restarts = sut.Events("child_restarting", "c");
  const std::vector<Json> promoted = sut.Events("standby_promoted", "c");
  ASSERT_EQ(restarts.size(), 200U) << sut.RunLog();
  const std::int64_t loop_ns = restarts.back()["mono_ns"].get<std::int64_t>() -
                               restarts.front()["mono_ns"].get<std::int64_t>();
  // Not the first spare alone: the pool came back while the loop ran.
  EXPECT_GE(promoted.size(), 5U) << promoted.size() << " of " << restarts.size()
                                 << " restarts promoted a spare in " << loop_ns / 1000 << " us";
}

// Issue 8: kill -9 of `slate run` leaves no component running (spares
// included), and the next `slate run` finds committed state and queued
// messages as they were.
TEST(Runtime, AKilledRuntimeLeavesNoComponentRunningAndLosesNothing) {
  SystemUnderTest sut(R"(
[supervisor.main]
children = ["p", "b", "a"]
[component.p]
exec = ["{peer}", "produce", "--count", "300"]
ready = "notify"
[component.b]
exec = ["{peer}", "consume", "--out", "b.out", "--slow-us", "5000"]
ready = "notify"
standby = 1
[component.a]
exec = ["{peer}", "count", "--out", "a.out", "--pace-us", "5000"]
ready = "notify"
state = { size = "16MiB" }
[channel.stream]
from = "p"
to = "b"
)");
  sut.StartReady();
  const std::string b_out = (fs::path(sut.dir()) / "b.out").string();
  const std::string a_out = (fs::path(sut.dir()) / "a.out").string();
  // Messages queued (the producer is done, the consumer slow), a spare
  // parked, the counter counting.
  ASSERT_TRUE(SystemUnderTest::WaitUntil(
      [&] {
        return sut.ComponentLog("p").find("produced up to 300") != std::string::npos &&
               ParkedSpares(sut, "b").size() == 1 && ReadNumbers(a_out).size() >= 3;
      },
      milliseconds(10000)))
      << sut.Status().dump();
  std::vector<int> pids = ParkedSpares(sut, "b");
  for (const char* n : {"p", "b", "a"}) pids.push_back(sut.Node(n)["pid"].get<int>());
  const std::size_t consumed_before = ReadNumbers(b_out).size();
  ASSERT_LT(consumed_before, 300u) << "nothing left queued to check";

  ::kill(sut.pid(), SIGKILL);
  ASSERT_TRUE(sut.Wait().has_value());
  EXPECT_TRUE(SystemUnderTest::WaitUntil(
      [&] { return std::none_of(pids.begin(), pids.end(), [](int pid) { return Alive(pid); }); },
      milliseconds(2000)))
      << "a component outlived the runtime";
  // What was committed and queued then: the last count and the ids received.
  const std::vector<std::uint64_t> counted = ReadNumbers(a_out);
  ASSERT_FALSE(counted.empty());

  sut.StartReady();
  // The consumer goes on where it was: every id once, in order.
  ASSERT_TRUE(SystemUnderTest::WaitUntil([&] { return ReadNumbers(b_out).size() >= 300; },
                                         milliseconds(20000)))
      << ReadNumbers(b_out).size() << " of 300\n"
      << sut.RunLog();
  std::vector<std::uint64_t> ids = ReadNumbers(b_out);
  ASSERT_EQ(ids.size(), 300u);
  for (std::size_t i = 0; i < ids.size(); ++i) ASSERT_EQ(ids[i], i + 1) << "at " << i;
  // The counter goes on from its last committed count (the last one it
  // wrote down may be one ahead of nothing, never behind).
  ASSERT_TRUE(SystemUnderTest::WaitUntil(
      [&] { return ReadNumbers(a_out).size() >= counted.size() + 2; }, milliseconds(5000)));
  std::vector<std::uint64_t> after = ReadNumbers(a_out);
  EXPECT_EQ(after[counted.size()], counted.back() + 1);
  EXPECT_EQ(sut.Cli({"shutdown"}).code, 0);
  EXPECT_EQ(sut.Wait(), 0);
}

}  // namespace
}  // namespace slate::testing
