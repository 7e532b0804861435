// libslate and channels through the real runtime: components built on
// <slate/slate.hpp> (tests/libslate/peer.cc) run under `slate run`, and the
// tests assert on what a user sees — the journal, `slate status --json`,
// the components' logs — and on the consumer's output file.
#include <random>
#include <sstream>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <gmock/gmock.h>

#include "../runtime/system_under_test.h"

namespace slate::testing {
namespace {

std::size_t RecordedCount(const std::string& path) {
  struct stat sb {};
  if (::stat(path.c_str(), &sb) != 0) return 0;
  return static_cast<std::size_t>(sb.st_size) / 8;
}

Json ChannelStatus(SystemUnderTest& sut, const std::string& name) {
  Json st = sut.Status();
  for (const Json& c : st["channels"]) {
    if (c["name"] == name) return c;
  }
  return Json();
}

TEST(Libslate, InitOutsideTheRuntimeSaysHowToRunIt) {
  // No SLATE_COMPONENT: the program was not started by `slate run`.
  ::unsetenv("SLATE_COMPONENT");
  CommandOutput r = Command({kPeer, "produce"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.out, ::testing::HasSubstr("not started by a Clean Slate runtime"));
  EXPECT_THAT(r.out, ::testing::HasSubstr("slate run"));
}

TEST(Libslate, AComponentGetsOnlyTheEndsItsFileGrants) {
  SystemUnderTest sut(R"(
[supervisor.main]
children = ["a", "b", "c", "d"]
[component.a]
exec = ["{peer}", "produce", "--count", "5"]
ready = "notify"
[component.b]
exec = ["{peer}", "consume", "--out", "b.out"]
ready = "notify"
[component.c]
exec = ["{peer}", "grants", "other", "stream"]
ready = "notify"
[component.d]
exec = ["{peer}", "consume", "--out", "d.out", "--channel", "other"]
[channel.stream]
from = "a"
to = "b"
[channel.other]
from = "c"
to = "d"
)");
  sut.StartReady();
  ASSERT_TRUE(SystemUnderTest::WaitUntil(
      [&] { return sut.ComponentLog("c").find("why:") != std::string::npos; }, milliseconds(5000)));
  std::string log = sut.ComponentLog("c");
  // Its descriptors: 0-2 (/dev/null, the output pipe), libslate's socket to
  // the runtime, and the three files of its one end. Nothing of the other
  // channel, of another component, or of the runtime's control socket.
  int fds = 0;
  int other = 0;
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);) {
    if (!line.starts_with("fd ")) continue;
    ++fds;
    if (line.find("/channels/other/") != std::string::npos) ++other;
    EXPECT_EQ(line.find("/channels/stream"), std::string::npos) << line;
    EXPECT_EQ(line.find("control.sock"), std::string::npos) << line;
    EXPECT_EQ(line.find(".notify"), std::string::npos) << line;
  }
  EXPECT_EQ(other, 3);
  EXPECT_EQ(fds, 7) << log;
  EXPECT_THAT(log, ::testing::HasSubstr("tx other: open"));
  EXPECT_THAT(log, ::testing::HasSubstr("rx other: SLATE_ENOCHANNEL"));
  EXPECT_THAT(log, ::testing::HasSubstr("tx stream: SLATE_ENOCHANNEL"));
  EXPECT_THAT(log, ::testing::HasSubstr("rx stream: SLATE_ENOCHANNEL"));
  EXPECT_THAT(log, ::testing::HasSubstr("grants component c no such end; it may send on: other"));
}

// The acceptance test of issue 4: kill -9 the consumer, the producer and the
// runtime at random moments during a stream of numbered messages; every
// message arrives, in order, at least once — exactly once after the
// consumer's dedupe.
TEST(Libslate, AStreamSurvivesKillsOfBothEndsAndTheRuntime) {
  const char* env = std::getenv("SLATE_STREAM_MESSAGES");
  const std::uint64_t total = env != nullptr ? std::strtoull(env, nullptr, 10) : 2'000'000;
  SystemUnderTest sut(fmt::format(R"(
[supervisor.main]
intensity = 1000
period = "1s"
children = ["producer", "consumer"]
[component.producer]
exec = ["{{peer}}", "produce", "--count", "{}"]
ready = "notify"
[component.consumer]
exec = ["{{peer}}", "consume", "--out", "consumer.out"]
ready = "notify"
[channel.stream]
from = "producer"
to = "consumer"
capacity = 4096
max_message = "64B"
max_deliveries = 1000
)",
                                  total));
  const std::string out = sut.dir() + "/consumer.out";
  sut.StartReady();
  std::mt19937 rng(20261127);
  std::uniform_int_distribution<int> pause_ms(10, 120);
  std::uniform_int_distribution<int> victim(0, 9);  // 0: the runtime, 1-5 consumer, 6-9 producer
  int kills[3] = {0, 0, 0};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(240);
  while (RecordedCount(out) < total && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(pause_ms(rng)));
    if (RecordedCount(out) >= total) break;
    int v = victim(rng);
    if ((v == 0 || kills[2] == 0) && kills[2] < 3 && kills[0] + kills[1] >= 4) {
      // The runtime itself: kill -9, then a new `slate run` of the same file.
      ::kill(sut.pid(), SIGKILL);
      ASSERT_TRUE(sut.Wait().has_value());
      sut.StartReady(milliseconds(20000));
      ++kills[2];
    } else {
      // Each end gets its three kills first, in turns, while the stream is
      // surely still running (2M messages take seconds); then at random.
      bool consumer = v <= 5;
      if (kills[0] < 3 || kills[1] < 3) consumer = kills[1] <= kills[0];
      CommandOutput r = sut.Cli({"kill", consumer ? "consumer" : "producer"});
      if (r.code == 0) ++kills[consumer ? 1 : 0];
    }
  }
  ASSERT_TRUE(
      SystemUnderTest::WaitUntil([&] { return RecordedCount(out) >= total; }, milliseconds(60000)))
      << RecordedCount(out) << " of " << total << " recorded\n"
      << sut.RunLog();
  std::vector<std::uint64_t> ids = ReadNumbers(out);
  ASSERT_EQ(ids.size(), total);
  for (std::uint64_t i = 0; i < total; ++i) {
    ASSERT_EQ(ids[i], i + 1) << "at record " << i;
  }
  EXPECT_GE(kills[0], 3);
  EXPECT_GE(kills[1], 3);
  EXPECT_GE(kills[2], 1);
  Json ch = ChannelStatus(sut, "stream");
  EXPECT_EQ(ch["dead_letters"], 0);
  std::printf("kills: producer %d, consumer %d, runtime %d; %llu messages\n", kills[0], kills[1],
              kills[2], static_cast<unsigned long long>(total));
}

TEST(Libslate, APoisonMessageGoesToTheDeadLetterQueueAndTheStreamGoesOn) {
  SystemUnderTest sut(R"(
[supervisor.main]
intensity = 10
children = ["producer", "consumer"]
[component.producer]
exec = ["{peer}", "produce", "--count", "50"]
ready = "notify"
[component.consumer]
exec = ["{peer}", "consume", "--out", "consumer.out", "--poison", "20"]
ready = "notify"
[channel.stream]
from = "producer"
to = "consumer"
max_deliveries = 3
)");
  const std::string out = sut.dir() + "/consumer.out";
  sut.StartReady();
  ASSERT_TRUE(sut.WaitEvent("message_dead_lettered", "consumer")) << sut.RunLog();
  ASSERT_TRUE(
      SystemUnderTest::WaitUntil([&] { return RecordedCount(out) >= 49; }, milliseconds(10000)));
  Json e = sut.Events("message_dead_lettered").at(0);
  EXPECT_EQ(e["channel"], "stream");
  EXPECT_EQ(e["msg_id"], 20);
  EXPECT_EQ(e["deliveries"], 3);
  EXPECT_EQ(sut.Events("child_exited", "consumer").size(), 3u);
  std::vector<std::uint64_t> ids = ReadNumbers(out);
  std::vector<std::uint64_t> want;
  for (std::uint64_t i = 1; i <= 50; ++i) {
    if (i != 20) want.push_back(i);
  }
  EXPECT_EQ(ids, want);
  Json ch = ChannelStatus(sut, "stream");
  EXPECT_EQ(ch["dead_letters"], 1);
  EXPECT_EQ(ch["depth"], 0);
}

class Corruption : public ::testing::TestWithParam<const char*> {};

TEST_P(Corruption, CaughtNamedRepaired) {
  SystemUnderTest sut(fmt::format(R"(
[supervisor.main]
intensity = 5
children = ["scribbler", "consumer"]
[component.scribbler]
exec = ["{{peer}}", "scribble", "--after", "10", "--what", "{}", "--once", "scribbled"]
ready = "notify"
[component.consumer]
exec = ["{{peer}}", "consume", "--out", "consumer.out"]
ready = "notify"
[channel.stream]
from = "scribbler"
to = "consumer"
capacity = 64
max_message = "8B"
)",
                                  GetParam()));
  const std::string out = sut.dir() + "/consumer.out";
  sut.StartReady();
  ASSERT_TRUE(sut.WaitEvent("child_exited", "scribbler")) << sut.RunLog();
  Json e = sut.Events("child_exited", "scribbler").at(0);
  EXPECT_EQ(e["reason"]["kind"], "signal");
  EXPECT_THAT(e["reason"].value("detail", ""),
              ::testing::HasSubstr("channel stream: corrupt (producer)"));
  // The stream goes on with the successor; the consumer never failed.
  ASSERT_TRUE(
      SystemUnderTest::WaitUntil([&] { return RecordedCount(out) >= 40; }, milliseconds(10000)))
      << sut.RunLog();
  EXPECT_TRUE(sut.Events("child_exited", "consumer").empty());
  std::vector<std::uint64_t> ids = ReadNumbers(out);
  for (std::size_t i = 0; i < ids.size(); ++i) ASSERT_EQ(ids[i], i + 1);
  EXPECT_THAT(sut.RunLog(), ::testing::HasSubstr("channel stream: repaired the producer's file"));
}

INSTANTIATE_TEST_SUITE_P(Scribble, Corruption, ::testing::Values("write", "slot"));

TEST(Libslate, CallsAreAnsweredOnceThroughServerCrashes) {
  SystemUnderTest sut(R"(
[supervisor.main]
intensity = 10
children = ["server", "client"]
[component.server]
exec = ["{peer}", "serve", "--crash-before-reply", "5", "--crash-after-reply", "3"]
ready = "notify"
[component.client]
exec = ["{peer}", "call", "--count", "30"]
ready = "notify"
[channel.req]
from = "client"
to = "server"
[channel.rep]
from = "server"
to = "client"
)");
  sut.StartReady();
  ASSERT_TRUE(SystemUnderTest::WaitUntil(
      [&] { return sut.ComponentLog("client").find("calls answered") != std::string::npos; },
      milliseconds(15000)))
      << sut.RunLog();
  EXPECT_THAT(sut.ComponentLog("client"), ::testing::HasSubstr("calls answered: 30 of 30"));
  EXPECT_EQ(sut.Events("child_exited", "server").size(), 2u);
  EXPECT_TRUE(sut.Events("child_exited", "client").empty());
  // Each request was served exactly once across the server's three lives.
  std::string log = sut.ComponentLog("server");
  for (int id = 1; id <= 30; ++id) {
    std::string line = fmt::format("served {}\n", id);
    std::size_t first = log.find(line);
    EXPECT_NE(first, std::string::npos) << id;
    EXPECT_EQ(log.find(line, first + 1), std::string::npos) << id << " served twice";
  }
}

// A component the operator stops is "down" for its peers once its process
// has ended, not while it still works through its shutdown.
TEST(Libslate, AStoppedComponentIsDownForItsPeersOnlyOnceItHasEnded) {
  SystemUnderTest sut(R"(
[supervisor.main]
children = ["server", "client"]
[component.server]
exec = ["/bin/sh", "-c", "trap '' TERM; exec /bin/sleep 100"]
shutdown = "1500ms"
[component.client]
exec = ["/bin/sleep", "100"]
[channel.rep]
from = "server"
to = "client"
)");
  sut.StartReady();
  auto stopped = std::chrono::steady_clock::now();
  ASSERT_EQ(sut.Cli({"stop", "server"}).code, 0);
  if (std::chrono::steady_clock::now() - stopped < milliseconds(1000)) {
    EXPECT_EQ(ChannelStatus(sut, "rep")["producer_down"], false);
  }
  ASSERT_TRUE(SystemUnderTest::WaitUntil(
      [&] { return ChannelStatus(sut, "rep")["producer_down"] == true; }, milliseconds(5000)));
  EXPECT_GE(std::chrono::steady_clock::now() - stopped, milliseconds(1400));
  ASSERT_EQ(sut.Cli({"start", "server"}).code, 0);
  EXPECT_EQ(ChannelStatus(sut, "rep")["producer_down"], false);
}

TEST(Libslate, ACallerHearsAtOnceThatTheServerIsDown) {
  SystemUnderTest sut(R"(
[supervisor.main]
children = ["server", "client"]
[component.server]
exec = ["{peer}", "serve", "--mute", "yes"]
ready = "notify"
[component.client]
exec = ["{peer}", "call-once", "--timeout-ms", "20000"]
ready = "notify"
[channel.req]
from = "client"
to = "server"
[channel.rep]
from = "server"
to = "client"
)");
  sut.StartReady();
  std::this_thread::sleep_for(milliseconds(300));  // the call is waiting
  EXPECT_EQ(sut.ComponentLog("client").find("call-once:"), std::string::npos);
  ASSERT_EQ(sut.Cli({"stop", "server"}).code, 0);
  auto stopped = std::chrono::steady_clock::now();
  ASSERT_TRUE(SystemUnderTest::WaitUntil(
      [&] { return sut.ComponentLog("client").find("call-once:") != std::string::npos; },
      milliseconds(10000)));
  auto heard = std::chrono::steady_clock::now();
  EXPECT_THAT(sut.ComponentLog("client"), ::testing::HasSubstr("call-once: SLATE_EPEERDOWN"));
  // The stop itself takes the server's shutdown (SIGTERM); then at once.
  EXPECT_LT(heard - stopped, milliseconds(2000));
  Json ch = ChannelStatus(sut, "rep");
  EXPECT_EQ(ch["producer_down"], true);
}

}  // namespace
}  // namespace slate::testing
