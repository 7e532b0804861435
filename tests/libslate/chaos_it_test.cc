// `slate chaos` against a running system: every injection is journaled
// before the fault, and each is followed by the end it causes and a
// recovery; the system keeps running and loses no committed state.
#include <map>

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
                                 "--faults", "kill,segv,hang"});
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
        const Json want = fault == "kill"   ? Json{{"signal", 9}}
                          : fault == "segv" ? Json{{"signal", 11}}
                                            : Json{{"kind", "hang"}};
        for (const auto& [key, value] : want.items())
          EXPECT_EQ(e["reason"][key], value) << e.dump();
      }
    }
  };
  auto injected = sut.Events("fault_injected");
  ASSERT_GE(injected.size(), 5u) << chaos.out;
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

}  // namespace
}  // namespace slate::testing
