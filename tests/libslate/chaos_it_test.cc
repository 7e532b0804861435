// `slate chaos` against a running system: every injection is journaled
// before the fault, and each is followed by the end it causes and a
// recovery; the system keeps running and loses no committed state.
#include <fstream>
#include <map>
#include <string>

#include <fcntl.h>
#include <unistd.h>

#include <gmock/gmock.h>

#include "../runtime/system_under_test.h"

namespace slate::testing {
namespace {

TEST(Chaos, EveryInjectionIsJournaledFirstAndEndsInTheFaultItNames) {
  SystemUnderTest sut(R"(
[supervisor.main]
intensity = 1000
period = "1s"
children = ["a", "b"]
[component.a]
exec = ["{peer}", "count", "--out", "a.out", "--pace-us", "10000"]
ready = "notify"
heartbeat = "300ms"
state = { size = "16MiB" }
[component.b]
exec = ["/bin/sleep", "1000"]
)");
  sut.StartReady();
  CommandOutput chaos = sut.Cli({"chaos", "--seed", "11", "--seconds", "3", "--every-ms", "250",
                                 "--faults", "kill,segv,hang,stall"});
  ASSERT_EQ(chaos.code, 0) << chaos.out;
  EXPECT_THAT(chaos.out, ::testing::HasSubstr("seed 11"));
  // Each injection, then the end of the very process it named, with the
  // reason its fault gives (a stopped process is killed as a hang).
  auto check = [&](const std::vector<Json>& injected) {
    ASSERT_TRUE(SystemUnderTest::WaitUntil(
        [&] {
          for (const Json& f : injected) {
            bool ended = false;
            for (const Json& e : sut.Events("child_exited", f["node"]))
              ended |= e["pid"] == f["pid"];
            if (!ended) return false;
          }
          return true;
        },
        milliseconds(5000)));
    for (const Json& f : injected) {
      const std::string fault = f["detail"];
      for (const Json& e : sut.Events("child_exited", f["node"])) {
        if (e["pid"] != f["pid"]) continue;
        EXPECT_GT(e["seq"].get<int>(), f["seq"].get<int>());
#if defined(__SANITIZE_ADDRESS__)
        // AddressSanitizer handles a SIGSEGV itself: it aborts or exits 1
        // (ASAN_OPTIONS), so only the end is checked.
        const Json segv = Json::object();
#else
        const Json segv = {{"signal", 11}};
#endif
        const Json want = fault == "kill"   ? Json{{"signal", 9}}
                          : fault == "segv" ? segv
                                            : Json{{"kind", "hang"}};
        for (const auto& [key, value] : want.items())
          EXPECT_EQ(e["reason"][key], value) << e.dump();
      }
    }
  };
  auto injected = sut.Events("fault_injected");
  ASSERT_GE(injected.size(), 5u) << chaos.out;
  EXPECT_THAT(chaos.out, ::testing::HasSubstr(" stall ")) << "the seed draws a stall";
  check(injected);
  // Still running, every committed count kept: the counter only goes up.
  ASSERT_TRUE(SystemUnderTest::WaitUntil(
      [&] { return sut.Node("a")["state"] == "running" && sut.Node("b")["state"] == "running"; },
      milliseconds(5000)));
  std::vector<std::uint64_t> counts = ReadNumbers((fs::path(sut.dir()) / "a.out").string());
  for (std::size_t i = 1; i < counts.size(); ++i) ASSERT_GT(counts[i], counts[i - 1]) << i;

  // A schedule: exactly what it lists; a fault a target cannot take is
  // refused with the reason.
  CommandOutput planned = sut.Cli({"chaos", "--at", "50ms:segv:b,100ms:hang:b,150ms:hang:a"});
  EXPECT_EQ(planned.code, 0) << planned.out;
  EXPECT_THAT(planned.out, ::testing::HasSubstr("refused: b has no heartbeat"));
  auto all = sut.Events("fault_injected");
  ASSERT_EQ(all.size(), injected.size() + 2);
  std::vector<Json> scheduled(all.begin() + static_cast<long>(injected.size()), all.end());
  EXPECT_EQ(scheduled[0]["node"], "b");
  EXPECT_EQ(scheduled[0]["detail"], "segv");
  EXPECT_EQ(scheduled[1]["node"], "a");
  EXPECT_EQ(scheduled[1]["detail"], "hang");
  check(scheduled);
  EXPECT_EQ(sut.Cli({"chaos", "--at", "1s:melt:b"}).code, 2);
  EXPECT_EQ(sut.Cli({"shutdown"}).code, 0);
  EXPECT_EQ(sut.Wait(), 0);
}

// The faults that need the runtime's help: a poisoned message, a corrupted
// value in a store, a wedged device. Each is detected by the component it
// hits, remedied by the runtime (dead letter, sanitize, device reset) and
// paired with both in the report; nothing else is lost.
TEST(Chaos, PoisonCorruptStateAndAWedgedDeviceAreDetectedRemediedAndReported) {
  SystemUnderTest sut(R"(
[supervisor.main]
intensity = 1000
period = "1s"
children = ["p", "c", "s", "d"]
[component.p]
exec = ["{peer}", "produce", "--count", "100000000", "--pace-us", "2000"]
ready = "notify"
[component.c]
exec = ["{peer}", "consume", "--out", "c.out"]
ready = "notify"
[component.s]
exec = ["{peer}", "checked"]
ready = "notify"
state = { size = "16MiB" }
sanitize = ["{peer}", "checked-sanitize"]
on_persistent_failure = { after = 1, steps = ["sanitize_state"] }
[component.d]
exec = ["{peer}", "drive", "--device", "sim.dev", "--trigger", "never"]
ready = "notify"
devices = ["sim"]
[device.sim]
reset = ["{peer}", "device-reset", "sim.dev"]
reset_timeout = "2s"
wedge = ["/bin/sh", "-c", "echo wedged > sim.dev"]
[channel.stream]
from = "p"
to = "c"
capacity = 64
max_message = "64B"
max_deliveries = 3
)");
  sut.StartReady();
  const std::string report = (fs::path(sut.dir()) / "report.json").string();
  CommandOutput chaos =
      sut.Cli({"chaos", "--at", "300ms:poison:c,1s:corrupt_state:s,1500ms:wedge_device:d",
               "--report", "--report-json", report, "--max-recovery-ms", "5000"});
  ASSERT_EQ(chaos.code, 0) << chaos.out;
  Json r = Json::parse(std::ifstream(report));
  ASSERT_EQ(r["faults"].size(), 3u) << r.dump(2);
  EXPECT_EQ(r["recovered"], 3) << r.dump(2);
  EXPECT_EQ(r["gave_up"].size(), 0u);
  const Json& poison = r["faults"][0];
  const Json& corrupt = r["faults"][1];
  const Json& wedge = r["faults"][2];
  // The poisoned message aborted its consumer on each of its 3 deliveries,
  // and then went to the dead letters.
  EXPECT_EQ(poison["fault"], "poison");
  EXPECT_EQ(poison["target"], "stream");
  EXPECT_THAT(poison["detected_by"].get<std::string>(), ::testing::StartsWith("SIGABRT"));
  EXPECT_THAT(poison["detected_by"].get<std::string>(), ::testing::HasSubstr("3 times"));
  EXPECT_EQ(r["dead_letters_by_channel"]["stream"], 1);
  std::string dead;
  for (const Json& step : poison["remedy"]) {
    if (step.get<std::string>().starts_with("dead-lettered")) dead = step;
  }
  ASSERT_FALSE(dead.empty()) << poison.dump();
  const std::uint64_t dead_id = std::stoull(dead.substr(dead.find('#') + 1));
  // The component saw its corrupted value and exited 4; sanitize dropped it.
  EXPECT_EQ(corrupt["fault"], "corrupt_state");
  EXPECT_EQ(corrupt["detected_by"], "exit 4");
  EXPECT_THAT(corrupt["remedy"].dump(), ::testing::HasSubstr("sanitize_state"));
  // The wedged device failed its driver; the restart reset it.
  EXPECT_EQ(wedge["fault"], "wedge_device");
  EXPECT_EQ(wedge["target"], "sim");
  EXPECT_EQ(wedge["detected_by"], "exit 3");
  EXPECT_THAT(wedge["remedy"].dump(), ::testing::HasSubstr("device reset"));
  EXPECT_THAT(chaos.out, ::testing::HasSubstr("recovered 3 of 3"));
  // Every message the consumer got, in order, and only the dead letter missing.
  ASSERT_TRUE(SystemUnderTest::WaitUntil(
      [&] { return ReadNumbers((fs::path(sut.dir()) / "c.out").string()).size() > dead_id + 10; },
      milliseconds(5000)));
  std::vector<std::uint64_t> got = ReadNumbers((fs::path(sut.dir()) / "c.out").string());
  std::uint64_t want = 1;
  for (std::uint64_t id : got) {
    if (want == dead_id) ++want;
    ASSERT_EQ(id, want) << "dead letter " << dead_id << "\n" << chaos.out;
    ++want;
  }
  EXPECT_EQ(sut.Cli({"shutdown"}).code, 0);
  EXPECT_EQ(sut.Wait(), 0);
}

}  // namespace
}  // namespace slate::testing
