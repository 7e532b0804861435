// Issue 8: 10,000 restarts leave the runtime's descriptors, memory and
// mappings flat.
#include <algorithm>
#include <fstream>
#include <string>
#include <thread>

#include <dirent.h>

#include <gmock/gmock.h>

#include "../runtime/system_under_test.h"

namespace slate::testing {
namespace {

struct Usage {
  int fds = 0;
  long rss_kib = 0;
  int mappings = 0;
};

Usage UsageOf(pid_t pid) {
  Usage u;
  const std::string proc = "/proc/" + std::to_string(pid);
  if (DIR* d = ::opendir((proc + "/fd").c_str())) {
    while (dirent* e = ::readdir(d)) u.fds += e->d_name[0] != '.';
    ::closedir(d);
  }
  std::ifstream status(proc + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.starts_with("VmRSS:")) u.rss_kib = std::stol(line.substr(6));
  }
  std::ifstream maps(proc + "/maps");
  for (std::string line; std::getline(maps, line);) ++u.mappings;
  return u;
}

// The least of each over `samples` looks 10 ms apart. Restarts never stop
// here, so any one look may land while one is in flight and holds a few
// more (a pidfd, pipes, a cgroup, the dead process's until after its
// replacement's start); what a leak adds stays in every look.
Usage LeastOf(pid_t pid, int samples) {
  Usage least = UsageOf(pid);
  for (int i = 1; i < samples; ++i) {
    std::this_thread::sleep_for(milliseconds(10));
    const Usage u = UsageOf(pid);
    least.fds = std::min(least.fds, u.fds);
    least.rss_kib = std::min(least.rss_kib, u.rss_kib);
    least.mappings = std::min(least.mappings, u.mappings);
  }
  return least;
}

int Restarts(const SystemUnderTest& sut) {
  int total = 0;
  Json st = sut.Status();
  for (const Json& n : st["nodes"]) {
    if (n["kind"] == "component") total += n["restarts"].get<int>();
  }
  return total;
}

TEST(Leaks, TenThousandRestartsLeaveTheRuntimeFlat) {
#if defined(__SANITIZE_ADDRESS__)
  // AddressSanitizer keeps freed memory in quarantine and adds its own
  // mappings: the runtime's growth would be the sanitizer's.
  GTEST_SKIP() << "measures the runtime's own memory; not under AddressSanitizer";
#endif
  // Every path a restart takes: a plain program, and a libslate component
  // with a channel end, a store and a standby spare (promoted when one is
  // parked, started cold when not).
  SystemUnderTest sut(R"(
[supervisor.main]
intensity = 1000000
period = "1s"
children = ["plain", "sink", "rich"]
[component.plain]
exec = ["/bin/false"]
[component.sink]
exec = ["{peer}", "consume", "--out", "sink.out"]
ready = "notify"
[component.rich]
exec = ["{peer}", "crash", "tx:stream", "state"]
standby = 1
state = { size = "4MiB" }
[channel.stream]
from = "rich"
to = "sink"
)");
  sut.StartReady();
  auto wait_for = [&](int restarts) {
    return SystemUnderTest::WaitUntil([&] { return Restarts(sut) >= restarts; },
                                      milliseconds(240000));
  };
  ASSERT_TRUE(wait_for(1000)) << Restarts(sut);
  const Usage before = LeastOf(sut.pid(), 20);
  ASSERT_TRUE(wait_for(11000)) << Restarts(sut);
  const Usage after = LeastOf(sut.pid(), 20);
  std::printf("after 1000 restarts: %d fds, %ld KiB RSS, %d mappings; after 11000: %d, %ld, %d\n",
              before.fds, before.rss_kib, before.mappings, after.fds, after.rss_kib,
              after.mappings);
  // Even the least of 20 looks may catch restarts in flight (LeastOf):
  // allow a few, not one per restart.
  EXPECT_LE(after.fds, before.fds + 8);
  EXPECT_LE(after.mappings, before.mappings + 8);
  EXPECT_LE(after.rss_kib, before.rss_kib + 2048);
  EXPECT_EQ(sut.Cli({"shutdown"}).code, 0);
  EXPECT_EQ(sut.Wait(), 0);
}

}  // namespace
}  // namespace slate::testing
