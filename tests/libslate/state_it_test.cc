// The state store through libslate and the real runtime (issue 5, item 1).
#include <random>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <gmock/gmock.h>

#include "../runtime/system_under_test.h"
#include "store/state_store.h"

namespace slate::testing {
namespace {

const std::string kPeer = SLATE_PEER;

std::string WithPeer(std::string toml) {
  for (std::size_t at; (at = toml.find("{peer}")) != std::string::npos;) toml.replace(at, 6, kPeer);
  return toml;
}

std::vector<std::uint64_t> Values(const std::string& path) {
  std::vector<std::uint64_t> out;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  std::uint64_t v = 0;
  while (::read(fd, &v, 8) == 8) out.push_back(v);
  ::close(fd);
  return out;
}

// The counter's store, opened after the system stopped.
struct Counted {
  std::uint64_t n = 0;
  std::uint64_t records = 0;
  bool contiguous = true;  // log/1 .. log/n, each once
};

Counted ReadStore(const std::string& dir) {
  Counted c;
  auto st = store::StateStore::Open(dir, 64 << 20, store::Durability::kProcess);
  EXPECT_TRUE(st.ok()) << st.error().message;
  if (!st.ok()) return c;
  auto n = (*st)->Get("n");
  if (n.ok() && n->has_value() && (*n)->size() == 8) std::memcpy(&c.n, (*n)->data(), 8);
  std::uint64_t expect = 1;
  EXPECT_TRUE((*st)
                  ->ForEach("log/",
                            [&](std::string_view key, std::string_view) {
                              ++c.records;
                              if (std::stoull(std::string(key.substr(4))) != expect++) {
                                c.contiguous = false;
                              }
                              return true;
                            })
                  .ok());
  return c;
}

TEST(State, ACounterKilledAThousandTimesLosesAndRepeatsNothing) {
  const char* env = std::getenv("SLATE_COUNTER_KILLS");
  const int kills = env != nullptr ? std::atoi(env) : 1000;
  SystemUnderTest sut(WithPeer(R"(
[supervisor.main]
intensity = 100000
period = "1s"
children = ["counter"]
[component.counter]
exec = ["{peer}", "count", "--out", "counter.out"]
ready = "notify"
state = { size = "64MiB", durability = "process" }
)"));
  const std::string out = sut.dir() + "/counter.out";
  sut.StartReady();
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> pause_us(0, 3000);
  int runtime_kills = 0;
  for (int i = 0; i < kills; ++i) {
    std::this_thread::sleep_for(std::chrono::microseconds(pause_us(rng)));
    if (i % 200 == 199) {
      // Now and then the runtime itself.
      ::kill(sut.pid(), SIGKILL);
      ASSERT_TRUE(sut.Wait().has_value());
      sut.StartReady();
      ++runtime_kills;
      continue;
    }
    // Wait for a process to kill (the previous one may still be restarting).
    ASSERT_TRUE(SystemUnderTest::WaitUntil(
        [&] {
          return sut.Cli({"kill", "counter"}).code == 0;
        },
        milliseconds(5000)))
        << sut.RunLog();
  }
  ASSERT_EQ(sut.Cli({"shutdown"}).code, 0);
  ASSERT_TRUE(sut.Wait().has_value());

  Counted c = ReadStore(sut.state_dir() + "/state/counter");
  std::vector<std::uint64_t> reported = Values(out);
  ASSERT_FALSE(reported.empty());
  // Every value the counter reported was committed, and none twice.
  EXPECT_LE(reported.back(), c.n);
  for (std::size_t i = 1; i < reported.size(); ++i) {
    // +1 each turn; +2 where a process died between its commit and its report.
    ASSERT_TRUE(reported[i] == reported[i - 1] + 1 || reported[i] == reported[i - 1] + 2)
        << "at " << i << ": " << reported[i - 1] << " then " << reported[i];
  }
  // One log record per committed increment, 1..n, none missing or repeated.
  EXPECT_EQ(c.records, c.n);
  EXPECT_TRUE(c.contiguous);
  EXPECT_GE(sut.Events("child_exited", "counter").size(),
            static_cast<std::size_t>(kills - runtime_kills) * 9 / 10);
  std::printf("counter at %llu after %d kills (%d of the runtime)\n",
              static_cast<unsigned long long>(c.n), kills, runtime_kills);
}

TEST(State, AComponentWithoutStateIsToldHowToGetOne) {
  SystemUnderTest sut(WithPeer(R"(
[supervisor.main]
children = ["counter"]
[component.counter]
exec = ["{peer}", "count", "--out", "counter.out"]
ready = "notify"
)"));
  sut.Start();
  ASSERT_TRUE(sut.WaitEvent("child_exited", "counter")) << sut.RunLog();
  std::ifstream in(fs::path(sut.state_dir()) / "logs" / "counter.log");
  std::string log((std::istreambuf_iterator<char>(in)), {});
  EXPECT_THAT(log, ::testing::HasSubstr("component counter has no state; give it one"));
}

}  // namespace
}  // namespace slate::testing
