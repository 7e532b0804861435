// The state store through libslate and the real runtime (issue 5, item 1).
#include <algorithm>
#include <map>
#include <optional>
#include <random>
#include <set>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/ranges.h>
#include <gmock/gmock.h>
#include <lmdb.h>

#include "../runtime/system_under_test.h"
#include "platform/device_filter.h"
#include "platform/spawn.h"
#include "store/state_store.h"

namespace slate::testing {
namespace {

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
  SystemUnderTest sut(R"(
[supervisor.main]
intensity = 100000
period = "1s"
children = ["counter"]
[component.counter]
exec = ["{peer}", "count", "--out", "counter.out"]
ready = "notify"
state = { size = "64MiB", durability = "process" }
)");
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
  std::vector<std::uint64_t> reported = ReadNumbers(out);
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
            static_cast<std::size_t>(kills - runtime_kills) / 2);
  std::printf("counter at %llu after %d kills (%d of the runtime)\n",
              static_cast<unsigned long long>(c.n), kills, runtime_kills);
}

TEST(State, AComponentWithoutStateIsToldHowToGetOne) {
  SystemUnderTest sut(R"(
[supervisor.main]
children = ["counter"]
[component.counter]
exec = ["{peer}", "count", "--out", "counter.out"]
ready = "notify"
)");
  sut.Start();
  EXPECT_TRUE(SystemUnderTest::WaitUntil(
      [&] {
        return sut.ComponentLog("counter").find("has no state; give it one") != std::string::npos;
      },
      milliseconds(5000)))
      << sut.ComponentLog("counter");
}

}  // namespace
}  // namespace slate::testing

namespace slate::testing {
namespace {

void Touch(const std::string& path) {
  std::ofstream(path) << "1";
}

std::vector<std::string> Kinds(const SystemUnderTest& sut, const std::string& node) {
  std::vector<std::string> out;
  for (const Json& e : sut.Events()) {
    if (e.value("node", "") != node) continue;
    std::string k = e["event"];
    if (k == "state_checkpointed" || k == "child_started" || k == "child_ready") continue;
    if (e.contains("step")) k.append(":").append(e["step"].get<std::string>());
    out.push_back(k);
  }
  return out;
}

TEST(Ladder, PoisonedStateRecoversThroughRollbackToAGoodCheckpoint) {
  SystemUnderTest sut(R"(
[supervisor.main]
intensity = 20
period = "10s"
children = ["agg"]
[component.agg]
exec = ["{peer}", "stateful"]
ready = "notify"
state = { size = "16MiB", checkpoint_every = "100ms", keep = 3 }
on_persistent_failure = { after = 2, steps = ["rollback_state", "give_up"] }
)");
  sut.StartReady();
  ASSERT_TRUE(sut.WaitEvent("state_checkpointed", "agg", milliseconds(5000), 2)) << sut.RunLog();
  Touch(sut.dir() + "/poison-now");
  ASSERT_TRUE(sut.WaitEvent("state_rolled_back", "agg")) << sut.RunLog();
  ASSERT_TRUE(SystemUnderTest::WaitUntil(
      [&] {
        Json st = sut.Status();
        for (const Json& n : st["nodes"]) {
          if (n["name"] == "agg") return n["state"] == "running" && n["uptime_ms"] > 300;
        }
        return false;
      },
      milliseconds(5000)))
      << sut.RunLog();
  EXPECT_THAT(Kinds(sut, "agg"),
              ::testing::ElementsAre("child_exited", "child_restarting", "child_exited",
                                     "persistent_failure_step:rollback_state", "state_rolled_back",
                                     "child_restarting"));
  Json rolled = sut.Events("state_rolled_back").at(0);
  EXPECT_GE(rolled["checkpoint"].get<int>(), 1);
  Json st = sut.Status();
  for (const Json& n : st["nodes"]) {
    if (n["name"] != "agg") continue;
    EXPECT_EQ(n["next_step"], "give_up");
    EXPECT_FALSE(n["state_store"]["checkpoints"].empty());
  }
}

TEST(Ladder, StateThatCannotBeRolledBackIsSanitizedOrReset) {
  for (const char* steps : {R"(["rollback_state"])", R"(["sanitize_state"])"}) {
    SCOPED_TRACE(steps);
    SystemUnderTest sut(fmt::format(R"(
[supervisor.main]
intensity = 20
period = "10s"
children = ["agg"]
[component.agg]
exec = ["{{peer}}", "stateful"]
ready = "notify"
state = {{ size = "16MiB" }}
sanitize = ["{{peer}}", "sanitize"]
on_persistent_failure = {{ after = 2, steps = {} }}
)",
                                    steps));
    sut.StartReady();
    std::this_thread::sleep_for(milliseconds(100));
    Touch(sut.dir() + "/poison-now");
    const bool sanitize = std::string(steps).find("sanitize") != std::string::npos;
    // No checkpoint was ever taken: rollback falls back to a reset.
    ASSERT_TRUE(sut.WaitEvent(sanitize ? "state_sanitized" : "state_reset", "agg")) << sut.RunLog();
    // Ready at start, then again after the remedy (a poisoned start never is).
    ASSERT_TRUE(sut.WaitEvent("child_ready", "agg", milliseconds(5000), 2)) << sut.RunLog();
    std::this_thread::sleep_for(milliseconds(300));
    EXPECT_EQ(sut.Events("child_exited", "agg").size(), 2u);
  }
}

// A sanitize command that exits 0 but leaves a store LMDB cannot read has
// failed all the same: the store is reset (SPEC section 6), and the
// component does not start on it.
TEST(Ladder, ASanitizeThatLeavesTheStoreUnreadableIsAReset) {
  SystemUnderTest sut(R"(
[supervisor.main]
intensity = 20
period = "10s"
children = ["agg"]
[component.agg]
exec = ["{peer}", "stateful"]
ready = "notify"
state = { size = "16MiB" }
sanitize = ["/bin/sh", "-c", "printf 'all fixed' > \"${SLATE_STORE%%:*}/data.mdb\""]
sanitize_timeout = "5s"
on_persistent_failure = { after = 2, steps = ["sanitize_state"] }
)");
  sut.StartReady();
  std::this_thread::sleep_for(milliseconds(100));
  Touch(sut.dir() + "/poison-now");
  ASSERT_TRUE(sut.WaitEvent("state_reset", "agg")) << sut.RunLog();
  ASSERT_TRUE(sut.WaitEvent("child_ready", "agg", milliseconds(5000), 2)) << sut.RunLog();
  EXPECT_TRUE(sut.Events("state_sanitized", "agg").empty());
  Json reset = sut.Events("state_reset", "agg").at(0);
  EXPECT_THAT(reset["detail"].get<std::string>(),
              ::testing::HasSubstr("the sanitize command exited 0 but the store does not read "
                                   "whole"));
  EXPECT_THAT(Kinds(sut, "agg"),
              ::testing::ElementsAre("child_exited", "child_restarting", "child_exited",
                                     "persistent_failure_step:sanitize_state", "state_reset",
                                     "child_restarting"));
}

TEST(Ladder, AWedgedDeviceRecoversOnlyBecauseItIsReset) {
  for (bool with_reset : {false, true}) {
    SCOPED_TRACE(with_reset ? "with a reset hook" : "without");
    SystemUnderTest sut(
        fmt::format(R"(
[supervisor.main]
intensity = 20
period = "10s"
children = ["driver"]
[component.driver]
exec = ["{{peer}}", "drive", "--device", "sim.dev"]
ready = "notify"
devices = ["sim"]
on_persistent_failure = {{ after = 3, steps = ["reset_device", "give_up"] }}
[device.sim]
{}
)",
                    with_reset ? R"(reset = ["{peer}", "device-reset", "sim.dev"])" : ""));
    sut.StartReady();
    Touch(sut.dir() + "/wedge-now");
    if (with_reset) {
      // Reset before the first restart already: the driver runs on.
      ASSERT_TRUE(sut.WaitEvent("child_ready", "driver", milliseconds(5000), 2)) << sut.RunLog();
      std::this_thread::sleep_for(milliseconds(300));
      EXPECT_EQ(sut.Events("child_exited", "driver").size(), 1u);
      EXPECT_GE(sut.Events("device_reset", "driver").size(), 2u);  // before each start
    } else {
      ASSERT_TRUE(sut.WaitEvent("child_gave_up", "driver", milliseconds(10000))) << sut.RunLog();
      EXPECT_TRUE(sut.Events("device_reset").empty());
    }
  }
}

TEST(Ladder, GivingUpOnACriticalComponentEndsTheRunWithExit3) {
  SystemUnderTest sut(R"(
[supervisor.main]
intensity = 20
period = "10s"
children = ["other", "core"]
[component.other]
exec = ["{peer}", "stateful", "--trigger", "never"]
ready = "notify"
state = { size = "1MiB" }
[component.core]
exec = ["{peer}", "drive", "--device", "gone.dev"]
ready = "notify"
critical = true
on_persistent_failure = { after = 2, steps = ["give_up"] }
)");
  std::ofstream(sut.dir() + "/gone.dev") << "ok\n";
  sut.StartReady();
  std::ofstream(sut.dir() + "/gone.dev") << "wedged\n";
  auto code = sut.Wait(milliseconds(10000));
  ASSERT_TRUE(code.has_value()) << sut.RunLog();
  EXPECT_EQ(*code, 3);
  EXPECT_EQ(sut.Events("child_gave_up", "core").size(), 1u);
  EXPECT_EQ(sut.Events("child_terminated", "other").size(), 1u);  // orderly
  EXPECT_EQ(sut.Events("system_stopped").size(), 1u);
  EXPECT_THAT(sut.RunLog(), ::testing::HasSubstr("gave up on critical component 'core'"));
}

}  // namespace
}  // namespace slate::testing

namespace slate::testing {
namespace {

std::string ImageOf(SystemUnderTest& sut, const std::string& name, bool* probation = nullptr) {
  Json st = sut.Status();
  for (const Json& n : st["nodes"]) {
    if (n["name"] != name || !n.contains("image")) continue;
    if (probation != nullptr) *probation = n["image"]["probation"].get<bool>();
    return n["image"]["digest"];
  }
  return "";
}

TEST(Images, ABadUpdateIsRevertedByItselfAndAGoodOneIsAccepted) {
  SystemUnderTest sut(R"(
[supervisor.main]
intensity = 20
period = "10s"
children = ["svc"]
[component.svc]
exec = ["{peer}", "drive", "--device", "ok.dev"]
ready = "notify"
healthy_after = "500ms"
)");
  // A bad version: exits at once. A good one: the same program, one byte
  // longer (another digest).
  const std::string bad = sut.dir() + "/bad-svc";
  std::ofstream(bad) << "#!/bin/sh\necho 'broken build'\nexit 1\n";
  fs::permissions(bad, fs::perms::owner_all);
  const std::string good = sut.dir() + "/good-svc";
  fs::copy_file(kPeer, good);
  std::ofstream(good, std::ios::app) << '\n';
  fs::permissions(good, fs::perms::owner_all);

  sut.StartReady();
  const std::string original = ImageOf(sut, "svc");
  ASSERT_TRUE(original.starts_with("sha256-")) << original;

  CommandOutput r = sut.Cli({"update", "svc", bad});
  ASSERT_EQ(r.code, 0) << r.out;
  ASSERT_TRUE(sut.WaitEvent("image_reverted", "svc")) << sut.RunLog();
  ASSERT_TRUE(sut.WaitEvent("child_ready", "svc", milliseconds(5000), 2)) << sut.RunLog();
  EXPECT_EQ(ImageOf(sut, "svc"), original);
  // The update's restart is the operator's: its failed start is not retried,
  // so the first failure reverts.
  EXPECT_EQ(sut.Events("child_exited", "svc").size(), 1u);
  Json reverted = sut.Events("image_reverted", "svc").at(0);
  EXPECT_EQ(reverted["image"], original);
  // SPEC section 8: a failure begins with its child_exited.
  EXPECT_LT(sut.Events("child_exited", "svc").at(0)["seq"].get<int>(), reverted["seq"].get<int>());

  r = sut.Cli({"update", "svc", good});
  ASSERT_EQ(r.code, 0) << r.out;
  bool probation = false;
  EXPECT_NE(ImageOf(sut, "svc", &probation), original);
  EXPECT_TRUE(probation);
  ASSERT_TRUE(sut.WaitEvent("image_accepted", "svc")) << sut.RunLog();
  ImageOf(sut, "svc", &probation);
  EXPECT_FALSE(probation);

  r = sut.Cli({"revert", "svc"});
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(ImageOf(sut, "svc"), original);
  EXPECT_EQ(sut.Cli({"revert", "svc"}).code, 1);  // nothing before the original
  EXPECT_EQ(sut.Cli({"update", "nope", good}).code, 1);
}

TEST(Images, TheLadderRevertsToThePreviousImage) {
  SystemUnderTest sut(R"(
[supervisor.main]
intensity = 20
period = "10s"
children = ["svc"]
[component.svc]
exec = ["{peer}", "drive", "--device", "ok.dev"]
ready = "notify"
healthy_after = "300ms"
on_persistent_failure = { after = 2, steps = ["revert_image", "give_up"] }
)");
  const std::string next = sut.dir() + "/next-svc";
  fs::copy_file(kPeer, next);
  std::ofstream(next, std::ios::app) << '\n';
  fs::permissions(next, fs::perms::owner_all);
  sut.StartReady();
  const std::string original = ImageOf(sut, "svc");
  ASSERT_EQ(sut.Cli({"update", "svc", next}).code, 0);
  ASSERT_TRUE(sut.WaitEvent("image_accepted", "svc")) << sut.RunLog();
  // Accepted, then it fails for good (its device wedges): the ladder goes
  // back to the image before the update, then gives up.
  std::ofstream(sut.dir() + "/wedge-now") << "1";
  ASSERT_TRUE(sut.WaitEvent("child_gave_up", "svc")) << sut.RunLog();
  std::vector<Json> reverted = sut.Events("image_reverted", "svc");
  ASSERT_EQ(reverted.size(), 1u);
  EXPECT_EQ(reverted[0]["image"], original);
  EXPECT_EQ(reverted[0]["detail"], "ladder step revert_image");
  EXPECT_EQ(ImageOf(sut, "svc"), original);
}

// Replaces `path` (an executable that may be running: no write in place,
// which ETXTBSY refuses) with `data`, as a bad deploy or a stray copy would.
void ReplaceFile(const std::string& path, const std::string& data) {
  const std::string temp = path + ".bad";
  std::ofstream(temp, std::ios::binary) << data;
  fs::permissions(temp, fs::perms::owner_all);
  ASSERT_EQ(::rename(temp.c_str(), path.c_str()), 0) << path << ": " << std::strerror(errno);
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// SPEC section 6's reinstall_image: what runs is the runtime's installed
// copy of the image; damaged, it is restored from the content-addressed
// object (checking its hash), and an object damaged too from exec[0] while
// that still has the same hash.
TEST(Images, TheLadderReinstallsADamagedImageFromTheStore) {
  SystemUnderTest sut(R"(
[supervisor.main]
intensity = 20
period = "10s"
children = ["svc"]
[component.svc]
exec = ["{peer}", "drive", "--device", "ok.dev"]
ready = "notify"
healthy_after = "300ms"
on_persistent_failure = { after = 2, steps = ["reinstall_image", "reinstall_image", "give_up"] }
)");
  sut.StartReady();
  const std::string digest = ImageOf(sut, "svc");
  ASSERT_TRUE(digest.starts_with("sha256-")) << digest;
  const std::string object = sut.state_dir() + "/images/objects/" + digest;
  const std::string installed = sut.state_dir() + "/images/installed/" + digest;
  const int pid = sut.Node("svc")["pid"].get<int>();
  std::error_code ec;
  EXPECT_EQ(fs::read_symlink(fmt::format("/proc/{}/exe", pid), ec).string(), installed);
  const std::string good = Slurp(kPeer);
  ASSERT_EQ(Slurp(installed), good);

  // The copy that runs is replaced with junk, and the component killed: its
  // restart cannot exec the copy (a start_error, the streak's second
  // failure), and the step puts the copy back before the next.
  ReplaceFile(installed,
              "\x7f"
              "ELF, but not really");
  ASSERT_EQ(sut.Cli({"kill", "svc"}).code, 0);
  ASSERT_TRUE(sut.WaitEvent("image_reinstalled", "svc")) << sut.RunLog();
  ASSERT_TRUE(sut.WaitEvent("child_ready", "svc", milliseconds(10000), 2)) << sut.RunLog();
  std::vector<Json> ends = sut.Events("child_exited", "svc");
  ASSERT_EQ(ends.size(), 2u) << sut.RunLog();
  EXPECT_EQ(ends[1]["reason"]["kind"], "start_error") << ends[1].dump();
  Json first = sut.Events("image_reinstalled", "svc").at(0);
  EXPECT_EQ(first["image"], digest);
  EXPECT_EQ(first["ok"], true);
  EXPECT_THAT(first["detail"].get<std::string>(),
              ::testing::AllOf(::testing::HasSubstr("does not match its digest"),
                               ::testing::HasSubstr("reinstalled from the store")));
  EXPECT_EQ(sut.Events("persistent_failure_step", "svc").at(0)["step"], "reinstall_image");
  EXPECT_EQ(Slurp(installed), good);
  EXPECT_EQ(Slurp(object), good);

  // Now the object too (the ladder's second step): it is restored from
  // exec[0], which has its hash.
  ReplaceFile(object, "not the image");
  ReplaceFile(installed, "nor this");
  ASSERT_EQ(sut.Cli({"kill", "svc"}).code, 0);
  ASSERT_TRUE(sut.WaitEvent("image_reinstalled", "svc", milliseconds(10000), 2)) << sut.RunLog();
  ASSERT_TRUE(sut.WaitEvent("child_ready", "svc", milliseconds(10000), 3)) << sut.RunLog();
  EXPECT_EQ(sut.Events("child_exited", "svc").size(), 4u) << sut.RunLog();
  Json second = sut.Events("image_reinstalled", "svc").at(1);
  EXPECT_EQ(second["ok"], true);
  EXPECT_THAT(second["detail"].get<std::string>(),
              ::testing::HasSubstr(fmt::format("reinstalled from {}", kPeer)));
  EXPECT_EQ(Slurp(installed), good);
  EXPECT_EQ(Slurp(object), good);
  EXPECT_TRUE(sut.Events("child_gave_up", "svc").empty());
}

// An installed copy that someone removed is made again from the object by
// the next start, without a ladder: only the start that found it gone fails.
TEST(Images, ARemovedInstalledCopyIsMadeAgainByTheNextStart) {
  SystemUnderTest sut(R"(
[supervisor.main]
intensity = 20
period = "10s"
children = ["svc"]
[component.svc]
exec = ["{peer}", "drive", "--device", "ok.dev"]
ready = "notify"
)");
  sut.StartReady();
  const std::string installed = sut.state_dir() + "/images/installed/" + ImageOf(sut, "svc");
  ASSERT_EQ(::unlink(installed.c_str()), 0) << installed << ": " << std::strerror(errno);
  ASSERT_EQ(sut.Cli({"kill", "svc"}).code, 0);
  ASSERT_TRUE(sut.WaitEvent("child_ready", "svc", milliseconds(10000), 2)) << sut.RunLog();
  std::vector<Json> ends = sut.Events("child_exited", "svc");
  ASSERT_EQ(ends.size(), 2u) << sut.RunLog();
  EXPECT_EQ(ends[1]["reason"]["kind"], "start_error") << ends[1].dump();
  EXPECT_EQ(Slurp(installed), Slurp(kPeer));
}

// Issue 5, item 1: a component can open only its own store; and (issue 8,
// item 2) no other component's channel files or notify socket, nor the
// control socket. The runtime hides state_dir from each component behind
// an empty tmpfs in a mount namespace of its own and binds back only what
// is the component's.
TEST(State, AComponentReachesOnlyItsOwnPartOfStateDir) {
  if (auto why = platform::MountViewsUnavailable()) {
    GTEST_SKIP() << *why;
  }
  SystemUnderTest sut(R"(
[supervisor.main]
children = ["a", "p", "b", "snoop"]
[component.a]
exec = ["{peer}", "count", "--out", "a.out", "--pace-us", "20000"]
ready = "notify"
state = { size = "16MiB" }
[component.p]
exec = ["{peer}", "produce", "--count", "3"]
ready = "notify"
[component.b]
exec = ["{peer}", "consume", "--out", "b.out"]
ready = "notify"
[component.snoop]
exec = ["{peer}", "reach", "r:state/snoop", "w:state/snoop", "r:state/a/data.mdb", "w:state/a",
        "r:state/a/lock.mdb", "r:channels/stream/producer.region", "r:channels/stream/dead-letters",
        "s:control.sock", "d:run/a.notify", "r:events.jsonl", "r:logs/a.log",
        "w:state/snoop/checkpoints", "r:images", "u:", "u:state/snoop", "x:state/a/data.mdb"]
ready = "notify"
state = { size = "16MiB", checkpoint_every = "1h" }
[channel.stream]
from = "p"
to = "b"
)");
  sut.StartReady();
  std::string log;
  ASSERT_TRUE(SystemUnderTest::WaitUntil(
      [&] {
        log = sut.ComponentLog("snoop");
        return log.find("reach done") != std::string::npos;
      },
      milliseconds(5000)))
      << log;
  // Its own store, to read and to write.
  EXPECT_THAT(log, ::testing::HasSubstr("reach r:state/snoop: ok"));
  EXPECT_THAT(log, ::testing::HasSubstr("reach w:state/snoop: ok"));
  // Nothing of the others' or the runtime's, though all of it is there.
  for (const char* other : {"r:state/a/data.mdb", "w:state/a", "r:state/a/lock.mdb",
                            "r:channels/stream/producer.region", "r:channels/stream/dead-letters",
                            "s:control.sock", "d:run/a.notify", "r:events.jsonl", "r:logs/a.log"}) {
    EXPECT_TRUE(fs::exists(fs::path(sut.state_dir()) / (other + 2))) << other;
    EXPECT_THAT(
        log, ::testing::HasSubstr(std::string("reach ") + other + ": No such file or directory"));
  }
  // Its checkpoints are the runtime's: read-only. The images, read-only too.
  EXPECT_THAT(log, ::testing::HasSubstr("reach w:state/snoop/checkpoints: Read-only file system"));
  EXPECT_THAT(log, ::testing::HasSubstr("reach r:images: ok"));
  // It runs as root, as the runtime does, but without its capabilities, so
  // it cannot take its view apart.
  EXPECT_THAT(log, ::testing::HasSubstr("reach u:: Operation not permitted"));
  EXPECT_THAT(log, ::testing::HasSubstr("reach u:state/snoop: Operation not permitted"));
  // Nor can it look into the others' views through /proc/PID/root, though
  // it runs as their user, in the host's PID namespace: it has a Landlock
  // domain of its own (where the host has no Landlock, the runtime warns).
  if (auto why = platform::OwnDomainUnavailable(true)) {
    EXPECT_EQ(std::getenv("SLATE_REQUIRE_LANDLOCK"), nullptr) << *why;
    std::printf("no Landlock here (%s): /proc/PID/root not checked\n", why->c_str());
  } else {
    EXPECT_THAT(log, ::testing::HasSubstr("reach x:state/a/data.mdb: Permission denied"));
    EXPECT_THAT(sut.RunLog(), ::testing::Not(::testing::HasSubstr("could open it through")));
  }
  // The others work as before: the stream went through, the counter counts.
  EXPECT_TRUE(SystemUnderTest::WaitUntil(
      [&] {
        std::error_code ec;
        return fs::file_size(fs::path(sut.dir()) / "b.out", ec) == 3 * 8 &&
               fs::file_size(fs::path(sut.dir()) / "a.out", ec) >= 2 * 8;
      },
      milliseconds(5000)));
  EXPECT_EQ(sut.Cli({"shutdown"}).code, 0);
  EXPECT_EQ(sut.Wait(), 0);
}

// out/, where a counter of another user than the test's writes.
void MakeOutForAnyone(SystemUnderTest& sut) {
  fs::create_directories(fs::path(sut.dir()) / "out");
  fs::permissions(fs::path(sut.dir()) / "out", fs::perms::all);
}

// The counter `a` has committed (and written out) at least two counts.
bool CountedTwice(SystemUnderTest& sut) {
  return SystemUnderTest::WaitUntil(
      [&] {
        std::error_code ec;
        return fs::file_size(fs::path(sut.dir()) / "out" / "a.out", ec) >= 2 * 8;
      },
      milliseconds(5000));
}

TEST(State, AComponentOfItsOwnUserReachesNoOtherStoreByAnyPath) {
  if (auto why = platform::MountViewsUnavailable()) GTEST_SKIP() << *why;
  if (auto why = platform::CapabilityDropUnavailable()) GTEST_SKIP() << *why;
  SystemUnderTest sut(R"(
[supervisor.main]
children = ["a", "snoop"]
[component.a]
exec = ["{peer}", "count", "--out", "out/a.out", "--pace-us", "20000"]
ready = "notify"
state = { size = "16MiB" }
user = "60001"
group = "60001"
[component.snoop]
exec = ["{peer}", "reach", "r:state/snoop", "w:state/snoop", "x:state/a/data.mdb", "x:state/a",
        "u:"]
ready = "notify"
state = { size = "16MiB" }
user = "60002"
group = "60002"
# Without a Landlock domain, so that what stops it is the store's owner.
ptrace = "host"
)");
  // Where the counter, running as 60001, writes what it counted.
  MakeOutForAnyone(sut);
  sut.StartReady();
  std::string log;
  ASSERT_TRUE(SystemUnderTest::WaitUntil(
      [&] {
        log = sut.ComponentLog("snoop");
        return log.find("reach done") != std::string::npos;
      },
      milliseconds(5000)))
      << log;
  EXPECT_THAT(log, ::testing::HasSubstr("reach as uid 60002 gid 60002"));
  EXPECT_THAT(log, ::testing::HasSubstr("reach r:state/snoop: ok"));
  EXPECT_THAT(log, ::testing::HasSubstr("reach w:state/snoop: ok"));
  // Through the other component's own view (/proc/PID/root), where its
  // store is: another user may not look there.
  EXPECT_THAT(log, ::testing::HasSubstr("reach x:state/a/data.mdb: Permission denied"));
  EXPECT_THAT(log, ::testing::HasSubstr("reach x:state/a: Permission denied"));
  EXPECT_THAT(log, ::testing::HasSubstr("reach u:: Operation not permitted"));
  // The counter commits to its store as its own user.
  EXPECT_TRUE(CountedTwice(sut));
  struct stat st {};
  ASSERT_EQ(::stat((fs::path(sut.state_dir()) / "state" / "a" / "data.mdb").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 60001u);
  EXPECT_EQ(sut.Cli({"shutdown"}).code, 0);
  EXPECT_EQ(sut.Wait(), 0);
}

TEST(State, ComponentsOfOneUserReachNoOtherStoreThroughProcUnlessPtraceHost) {
  if (auto why = platform::MountViewsUnavailable()) GTEST_SKIP() << *why;
  if (auto why = platform::CapabilityDropUnavailable()) GTEST_SKIP() << *why;
  if (auto why = platform::NamespaceUnavailable(platform::Namespace::kPid)) GTEST_SKIP() << *why;
  const std::optional<std::string> no_landlock = platform::OwnDomainUnavailable(true);
  if (no_landlock) {
    EXPECT_EQ(std::getenv("SLATE_REQUIRE_LANDLOCK"), nullptr) << *no_landlock;
  }
  // Four components of one user. The counter and `snoop` each have a PID
  // namespace of their own, where the other has no pid (and `snoop` no
  // Landlock domain: the namespace alone keeps it out). `host_snoop` has
  // the host's PID namespace and (by default) a Landlock domain of its own,
  // which may look into no process outside it. `open_snoop` has the host's
  // PID namespace and ptrace = "host", and so reaches the counter's store
  // through /proc/PID/root: which shows that the probe works, and why the
  // runtime warns about it.
  SystemUnderTest sut(R"(
[supervisor.main]
children = ["a", "snoop", "host_snoop", "open_snoop"]
[component.a]
exec = ["{peer}", "count", "--out", "out/a.out", "--pace-us", "20000"]
ready = "notify"
state = { size = "16MiB" }
user = "60001"
group = "60001"
pid = "private"
[component.snoop]
exec = ["{peer}", "reach", "x:state/a/data.mdb"]
ready = "notify"
user = "60001"
group = "60001"
pid = "private"
ptrace = "host"
[component.host_snoop]
exec = ["{peer}", "reach", "x:state/a/data.mdb"]
ready = "notify"
user = "60001"
group = "60001"
[component.open_snoop]
exec = ["{peer}", "reach", "x:state/a/data.mdb"]
ready = "notify"
user = "60001"
group = "60001"
ptrace = "host"
)");
  MakeOutForAnyone(sut);
  sut.StartReady();
  std::map<std::string, std::string> logs;
  ASSERT_TRUE(SystemUnderTest::WaitUntil(
      [&] {
        bool all = true;
        for (const char* name : {"snoop", "host_snoop", "open_snoop"}) {
          logs[name] = sut.ComponentLog(name);
          all = all && logs[name].find("reach done") != std::string::npos;
        }
        return all;
      },
      milliseconds(5000)))
      << logs["snoop"] << logs["host_snoop"] << logs["open_snoop"];
  EXPECT_THAT(logs["snoop"],
              ::testing::HasSubstr("reach x:state/a/data.mdb: No such file or directory"));
  EXPECT_THAT(logs["open_snoop"], ::testing::HasSubstr("reach x:state/a/data.mdb: ok"));
  // The counter counts, in its namespace.
  EXPECT_TRUE(CountedTwice(sut));
  // The warning at start names those that can look, and only them.
  const std::string run_log = sut.RunLog();
  EXPECT_THAT(run_log, ::testing::Not(::testing::HasSubstr("and snoop")));
  if (no_landlock) {
    std::printf("no Landlock here (%s): host_snoop can look\n", no_landlock->c_str());
    EXPECT_THAT(logs["host_snoop"], ::testing::HasSubstr("reach x:state/a/data.mdb: ok"));
    EXPECT_THAT(run_log, ::testing::HasSubstr("component a has a store, and host_snoop, open_snoop "
                                              "run as the same user (60001)"));
  } else {
    EXPECT_THAT(logs["host_snoop"],
                ::testing::HasSubstr("reach x:state/a/data.mdb: Permission denied"));
    EXPECT_THAT(run_log, ::testing::HasSubstr(
                             "component a has a store, and open_snoop runs as the same user "
                             "(60001) with the host's PID namespace and no Landlock domain "
                             "of its own"));
  }
  EXPECT_EQ(sut.Cli({"shutdown"}).code, 0);
  EXPECT_EQ(sut.Wait(), 0);
}

// A component granted CAP_SYS_ADMIN is given it to mount, which a Landlock
// domain forbids: by default it has none; written out, ptrace = "own"
// gives it one, and takes mounting away.
TEST(State, AComponentGrantedSysAdminMountsUnlessItWritesPtraceOwn) {
  if (auto why = platform::CapabilityDropUnavailable()) GTEST_SKIP() << *why;
  if (auto why = platform::OwnDomainUnavailable(true)) {
    ASSERT_EQ(std::getenv("SLATE_REQUIRE_LANDLOCK"), nullptr) << *why;
    GTEST_SKIP() << *why;
  }
  SystemUnderTest sut(R"(
[supervisor.main]
children = ["admin", "sealed"]
[component.admin]
exec = ["/bin/sh", "-c", "unshare -m mount -t tmpfs none /mnt && echo mounted || echo refused; exec sleep 100"]
capabilities = ["CAP_SYS_ADMIN"]
[component.sealed]
exec = ["/bin/sh", "-c", "unshare -m mount -t tmpfs none /mnt && echo mounted || echo refused; exec sleep 100"]
capabilities = ["CAP_SYS_ADMIN"]
ptrace = "own"
)");
  sut.StartReady();
  std::string admin;
  std::string sealed;
  ASSERT_TRUE(SystemUnderTest::WaitUntil(
      [&] {
        admin = sut.ComponentLog("admin");
        sealed = sut.ComponentLog("sealed");
        // (unshare's own complaint on stderr may come first.)
        auto said = [](const std::string& log) {
          return log.find("mounted\n") != std::string::npos ||
                 log.find("refused\n") != std::string::npos;
        };
        return said(admin) && said(sealed);
      },
      milliseconds(5000)))
      << admin << sealed;
  EXPECT_THAT(admin, ::testing::HasSubstr("mounted"));
  EXPECT_THAT(sealed, ::testing::HasSubstr("refused"));
  EXPECT_EQ(sut.Cli({"shutdown"}).code, 0);
  EXPECT_EQ(sut.Wait(), 0);
}

// A block device that the test (root) can open to read: "" if none.
std::string SomeBlockDevice() {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/dev", ec)) {
    struct stat st {};
    if (::stat(e.path().c_str(), &st) != 0 || !S_ISBLK(st.st_mode)) continue;
    const int fd = ::open(e.path().c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) continue;
    ::close(fd);
    return e.path().string();
  }
  return "";
}

// A root component without capabilities may still open a root-owned disk
// (its mode is 0660 or 0600, root's) and read every store on it raw; the
// block-device filter, on by default, refuses it, also to a promoted spare.
// Nor can it leave its cgroup (and the filter with it) by writing
// cgroup.procs of an ancestor, which root owns: the cgroup2 mount is
// read-only in its view.
TEST(State, AComponentCannotReadADiskRawUnlessBlockDevicesHost) {
  const std::string disk = SomeBlockDevice();
  if (disk.empty()) GTEST_SKIP() << "no block device here that the test can open";
  if (auto filter = platform::BlockDeviceFilter::Load(); !filter) {
    ASSERT_EQ(std::getenv("SLATE_REQUIRE_DEVICE_FILTER"), nullptr) << filter.error().message;
    GTEST_SKIP() << filter.error().message;
  }
  auto cgroup2 = platform::LocateCgroup2();
  if (!cgroup2) GTEST_SKIP() << cgroup2.error().message;
  if (auto why = platform::MountViewsUnavailable()) GTEST_SKIP() << *why;
  const std::string procs = cgroup2->mount + "/cgroup.procs";
  SystemUnderTest sut(fmt::format(R"(
[supervisor.main]
children = ["filtered", "raw"]
[component.filtered]
exec = ["{{peer}}", "reach", "b:{0}", "b:/dev/null", "m:{1}"]
ready = "notify"
standby = 1
[component.raw]
exec = ["{{peer}}", "reach", "b:{0}"]
ready = "notify"
block_devices = "host"
)",
                                  disk, procs));
  sut.StartReady();
  auto reached = [&](const char* name, std::size_t times) {
    std::string log;
    const bool done = SystemUnderTest::WaitUntil(
        [&] {
          log = sut.ComponentLog(name);
          std::size_t n = 0;
          for (auto at = log.find("reach done"); at != std::string::npos;
               at = log.find("reach done", at + 1)) {
            ++n;
          }
          return n >= times;
        },
        milliseconds(5000));
    EXPECT_TRUE(done) << name << ": " << log;
    return log;
  };
  std::string filtered = reached("filtered", 1);
  const std::string raw = reached("raw", 1);
  EXPECT_THAT(filtered, ::testing::HasSubstr("reach b:" + disk + ": Operation not permitted"));
  EXPECT_THAT(filtered, ::testing::HasSubstr("reach b:/dev/null: ok"));
  EXPECT_THAT(filtered, ::testing::HasSubstr("reach m:" + procs + ": Read-only file system"));
  EXPECT_THAT(raw, ::testing::HasSubstr("reach b:" + disk + ": ok"));
  EXPECT_THAT(sut.RunLog(), ::testing::Not(::testing::HasSubstr("no block-device filter")));
  // Killed, it is replaced by its spare, which the filter holds too.
  EXPECT_EQ(sut.Cli({"kill", "filtered"}).code, 0);
  ASSERT_TRUE(sut.WaitEvent("standby_promoted", "filtered", milliseconds(5000))) << sut.RunLog();
  filtered = reached("filtered", 2);
  const auto second = filtered.rfind("reach as uid");
  ASSERT_NE(second, std::string::npos);
  EXPECT_THAT(filtered.substr(second),
              ::testing::HasSubstr("reach b:" + disk + ": Operation not permitted"));
  EXPECT_EQ(sut.Cli({"shutdown"}).code, 0);
  EXPECT_EQ(sut.Wait(), 0);
}

// The pids in the reader table of the LMDB environment in `dir`, as
// mdb_reader_list prints them (one line a slot in use, after a header).
std::vector<pid_t> ReaderPids(const std::string& dir) {
  std::vector<pid_t> pids;
  MDB_env* env = nullptr;
  if (mdb_env_create(&env) != 0) return pids;
  if (mdb_env_open(env, dir.c_str(), MDB_NOTLS | MDB_RDONLY, 0600) == 0) {
    (void)mdb_reader_list(
        env,
        [](const char* line, void* out) {
          pid_t pid = 0;
          if (std::sscanf(line, "%d", &pid) == 1)
            static_cast<std::vector<pid_t>*>(out)->push_back(pid);
          return 0;
        },
        &pids);
  }
  mdb_env_close(env);
  return pids;
}

TEST(State, KilledReadersInAPrivatePidNamespaceLeaveNoSlotBehind) {
  if (auto why = platform::NamespaceUnavailable(platform::Namespace::kPid)) GTEST_SKIP() << *why;
  // Each incarnation holds a reader slot under its pid, and is killed
  // holding it. The next one clears the dead one's slot when it opens the
  // store, because its pid differs: the runtime numbers the program with
  // its init's host pid. Numbered 2 every time, as in a plain PID
  // namespace, each would take the stale slots for its own, and they would
  // pile up until the table is full.
  SystemUnderTest sut(R"(
[supervisor.main]
children = ["r"]
intensity = 20
[component.r]
exec = ["{peer}", "hold-read"]
ready = "notify"
state = { size = "16MiB" }
pid = "private"
)");
  sut.StartReady();
  const std::string store = (fs::path(sut.state_dir()) / "state" / "r").string();
  std::set<pid_t> programs;
  for (std::size_t kill = 1; kill <= 5; ++kill) {
    const int pid = sut.Node("r")["pid"].get<int>();
    programs.insert(pid);
    // Its slot, under its pid (the one status shows), once it holds it.
    ASSERT_TRUE(SystemUnderTest::WaitUntil(
        [&] {
          const std::vector<pid_t> readers = ReaderPids(store);
          return std::find(readers.begin(), readers.end(), pid) != readers.end();
        },
        milliseconds(5000)))
        << "no reader slot of " << pid << " in " << fmt::format("{}", ReaderPids(store));
    ASSERT_EQ(sut.Cli({"kill", "r"}).code, 0);
    ASSERT_TRUE(sut.WaitEvent("child_ready", "r", milliseconds(5000), kill + 1)) << sut.RunLog();
  }
  const int current = sut.Node("r")["pid"].get<int>();
  ASSERT_TRUE(SystemUnderTest::WaitUntil(
      [&] {
        const std::vector<pid_t> readers = ReaderPids(store);
        return std::find(readers.begin(), readers.end(), current) != readers.end();
      },
      milliseconds(5000)));
  // No killed incarnation's slot is left: only the live one's (and, for a
  // moment, the runtime's own, were it reading).
  for (const pid_t reader : ReaderPids(store)) {
    EXPECT_FALSE(programs.contains(reader)) << "a killed reader's slot is left: " << reader;
  }
  EXPECT_EQ(sut.Cli({"shutdown"}).code, 0);
  EXPECT_EQ(sut.Wait(), 0);
}

}  // namespace
}  // namespace slate::testing
