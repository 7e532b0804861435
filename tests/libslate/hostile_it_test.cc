// Hostile components through the real runtime (issue 8, item 4): a bounded
// fork bomb, a memory hog, a flood of sd_notify datagrams and a child that
// ignores SIGTERM and leaves its process group. Each test asserts the same
// three things while the hostile component does its worst:
//   (a) `slate status` answers within 100 ms, every time: straight on the
//       control socket and through the `slate status --json` client;
//   (b) a bystander (a counter in the state store) keeps counting and is
//       never restarted;
//   (c) the journal attributes each end to the hostile component, with the
//       reason its limits imply.
// A flood of output (Run.AFloodOfOutputDoesNotSlowSupervision in
// tests/runtime) and garbage in a channel's memory (Scribble/Corruption in
// channel_it_test.cc) have tests of their own. CgroupLimits: the memory hog
// and the fork bomb again, bounded by cgroup v2 memory_max and pids_max;
// they run where the host passes those controllers down (in CI: in a
// Debian 12 guest, scripts/vm-test) and are skipped elsewhere.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>

#include <fcntl.h>
#include <linux/bpf.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <gmock/gmock.h>

#include "../runtime/system_under_test.h"
#include "platform/cgroup.h"
#include "platform/file_io.h"

namespace slate::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using Clock = std::chrono::steady_clock;

constexpr milliseconds kStatusBound{100};

// SLATE_TEST_TIME_SCALE: how many times slower than this machine the tests
// run (scripts/vm-test runs them in an emulated guest); 1 by default.
int TimeScale() {
  const char* v = std::getenv("SLATE_TEST_TIME_SCALE");
  const int scale = v != nullptr ? std::atoi(v) : 1;
  return scale > 1 ? scale : 1;
}

// Live (not zombie) processes whose command line holds `marker`.
std::vector<pid_t> ProcessesWith(const std::string& marker) {
  std::vector<pid_t> out;
  std::error_code ec;
  // Processes come and go while we read: no throwing increments.
  for (fs::directory_iterator it("/proc", ec), end; !ec && it != end; it.increment(ec)) {
    const fs::directory_entry& e = *it;
    const std::string name = e.path().filename();
    if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) continue;
    const auto pid = static_cast<pid_t>(std::stoi(name));
    std::string cmdline = ProcFile(pid, "cmdline");
    std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
    if (cmdline.find(marker) != std::string::npos && Alive(pid)) out.push_back(pid);
  }
  return out;
}

std::size_t AliveOf(const std::vector<pid_t>& pids) {
  return static_cast<std::size_t>(std::count_if(pids.begin(), pids.end(), Alive));
}

// The most live processes with `marker` seen at once, counted every 5 ms on
// a thread of its own from its construction until Stop(): from before the
// component starts, so that a slow test thread (an emulated guest, where
// one `slate status` takes over a second) cannot miss a short-lived peak.
class MostProcesses {
 public:
  explicit MostProcesses(std::string marker)
      : marker_(std::move(marker)), thread_([this] {
          while (!stop_) {
            const std::size_t now = ProcessesWith(marker_).size();
            std::size_t most = most_.load();
            while (now > most && !most_.compare_exchange_weak(most, now)) {
            }
            std::this_thread::sleep_for(milliseconds(5));
          }
        }) {}
  ~MostProcesses() { Stop(); }
  MostProcesses(const MostProcesses&) = delete;
  MostProcesses& operator=(const MostProcesses&) = delete;

  // Stops counting; the most seen.
  std::size_t Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    return most_;
  }

 private:
  const std::string marker_;
  std::atomic<bool> stop_{false};
  std::atomic<std::size_t> most_{0};
  std::thread thread_;  // last: starts once the rest is there
};

// Asks for the status every `gap` on a thread of its own, on the control
// socket and with the CLI, until stopped; keeps the slowest answers.
class StatusProbe {
 public:
  explicit StatusProbe(const SystemUnderTest& sut, milliseconds gap = milliseconds(100))
      : thread_([this, &sut, gap] {
          while (!stop_) {
            const milliseconds ask = sut.AskStatus();
            const auto t0 = Clock::now();
            const CommandOutput cli = sut.Cli({"status", "--json"});
            const auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - t0);
            {
              std::lock_guard lock(mutex_);
              ++rounds_;
              if (ask.count() < 0) ++unanswered_;
              if (cli.code != 0 || Json::parse(cli.out, nullptr, false).is_discarded()) {
                ++unanswered_;
                last_error_ = cli.out;
              }
              max_ask_ = std::max(max_ask_, ask);
              max_cli_ = std::max(max_cli_, took);
              if (took >= kStatusBound) slow_cli_.push_back(took.count());
            }
            std::this_thread::sleep_for(gap);
          }
        }) {}
  ~StatusProbe() { Stop(); }
  StatusProbe(const StatusProbe&) = delete;
  StatusProbe& operator=(const StatusProbe&) = delete;

  // Stops it and checks what it saw: at least `min_rounds` answers, all of
  // them within the bound.
  void Check(const char* what, int min_rounds = 20) {
    Stop();
    std::printf(
        "[%s] status over %d rounds: max %lld ms on the socket, %lld ms with slate status "
        "--json\n",
        what, rounds_, static_cast<long long>(max_ask_.count()),
        static_cast<long long>(max_cli_.count()));
    milliseconds bound = kStatusBound;
#if defined(__SANITIZE_ADDRESS__)
    // A sanitized client takes ~100-150 ms to start: fewer rounds fit, and
    // its own time says nothing about the runtime's. The sanitized runtime
    // is several times slower and, in CI, shares both cores with lint: its
    // bound is 3x. The 100 ms of the issue is held by the normal build.
    min_rounds /= 4;
    slow_cli_.clear();
    bound *= 3;
#endif
    if (const int scale = TimeScale(); scale > 1) {
      // An emulated guest (scripts/vm-test): a bound on time says nothing.
      min_rounds /= scale;
      slow_cli_.clear();
      bound *= scale;
    }
    EXPECT_GE(rounds_, min_rounds) << what;
    EXPECT_EQ(unanswered_, 0) << what << ": " << last_error_;
    EXPECT_LT(max_ask_, bound) << what << ": status on the control socket";
    // The client's time includes starting a process (posix_spawn, the
    // dynamic loader), which a loaded host's scheduler, not the runtime,
    // decides: with a compiler on both shared cores one start in ~20 took
    // 281 ms while the runtime answered the socket in 2 ms. So one round
    // may be slow; more is a slow runtime.
    EXPECT_LE(slow_cli_.size(), 1u)
        << what << ": slate status --json took " << ::testing::PrintToString(slow_cli_) << " ms";
  }

 private:
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  int rounds_ = 0;
  int unanswered_ = 0;
  std::string last_error_;
  milliseconds max_ask_{0};
  milliseconds max_cli_{0};
  std::vector<long long> slow_cli_;  // client rounds of kStatusBound or more, in ms
  std::thread thread_;               // last: starts once the rest is there
};

// The bystander: a counter committing to its store every 5 ms.
constexpr const char* kBystander = R"(
[component.bystander]
exec = ["{peer}", "count", "--out", "bystander.out", "--pace-us", "5000"]
ready = "notify"
state = { size = "16MiB" }
)";

class Bystander {
 public:
  explicit Bystander(const SystemUnderTest& sut)
      : sut_(sut),
        out_(sut.dir() + "/bystander.out"),
        pid_(sut.Node("bystander").value("pid", 0)),
        count_(ReadNumbers(out_).size()) {}

  // It counted on (at least `min` more) with the same process, and never ended.
  void Check(std::size_t min = 100) const {
    const std::size_t now = ReadNumbers(out_).size();
    std::printf("bystander: counted %zu while the hostile one ran\n", now - count_);
    EXPECT_GE(now, count_ + min) << "the bystander stalled";
    EXPECT_GT(pid_, 0);
    EXPECT_EQ(sut_.Node("bystander").value("pid", 0), pid_) << "the bystander was restarted";
    EXPECT_EQ(sut_.Node("bystander").value("state", ""), "running");
    EXPECT_TRUE(sut_.Events("child_exited", "bystander").empty()) << sut_.RunLog();
    EXPECT_TRUE(sut_.Events("child_terminated", "bystander").empty()) << sut_.RunLog();
    EXPECT_EQ(sut_.Events("child_started", "bystander").size(), 1u);
  }

 private:
  const SystemUnderTest& sut_;
  std::string out_;
  int pid_;
  std::size_t count_;
};

TEST(Hostile, AForkBombIsBoundedByItsUsersNprocAndItsForksDieWithIt) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root, to run the bomb as nobody";
  const passwd* nobody = ::getpwnam("nobody");
  if (nobody == nullptr) GTEST_SKIP() << "no user nobody on this host";
  // RLIMIT_NPROC counts every process of the user: the host's own must
  // leave the bomb room.
  constexpr int kNproc = 24;
  // How long each bomb holds its processes before it exits: long enough to
  // be seen after the bystander and the probe are set up, which under
  // AddressSanitizer, with lint on both cores, took over 1.5 s once.
#if defined(__SANITIZE_ADDRESS__)
  constexpr milliseconds kHold{4000};
#else
  constexpr milliseconds kHold{1500};
#endif
  const std::string marker = fmt::format("hostile-bomb-{}", ::getpid());
  SystemUnderTest sut(fmt::format(R"(
[supervisor.main]
intensity = 20
period = "10s"
children = ["bystander", "bomb"]
{}
[component.bomb]
exec = ["{{peer}}", "fork-bomb", "--marker", "{}", "--hold-ms", "{}", "--code", "7"]
user = "nobody"
shutdown = "500ms"
limits = {{ nproc = {} }}
)",
                                  kBystander, marker, kHold.count(), kNproc));
  sut.StartReady();
  Bystander bystander(sut);
  StatusProbe probe(sut);
  // The first incarnation's processes: those in its leader's process group.
  // Not a list of pids seen before its child_exited: the next incarnation's
  // leader could be in such a list (its lines come after it is started), and
  // with pid_max at 32768 a pid can come back as another process.
  const pid_t first_leader = sut.Node("bomb").value("pid", 0);
  ASSERT_GT(first_leader, 0) << sut.Status().dump();
  const auto first_alive = [&] {
    const std::vector<pid_t> now = ProcessesWith(marker);
    return static_cast<std::size_t>(std::count_if(
        now.begin(), now.end(), [&](pid_t p) { return ::getpgid(p) == first_leader; }));
  };
  // The bomb fills its user's quota and stays there.
  std::size_t most = 0;
  const auto t0 = Clock::now();
  while (sut.Events("child_exited", "bomb").empty() &&
         Clock::now() - t0 < kHold + milliseconds(3500)) {
    most = std::max(most, ProcessesWith(marker).size());
    std::this_thread::sleep_for(milliseconds(10));
  }
  ASSERT_FALSE(sut.Events("child_exited", "bomb").empty()) << sut.RunLog();
  EXPECT_GE(most, static_cast<std::size_t>(kNproc) / 2) << "the bomb did not go off";
  EXPECT_LE(most, static_cast<std::size_t>(kNproc)) << "nproc did not bound the bomb";
  EXPECT_THAT(sut.ComponentLog("bomb"), HasSubstr("fork-bomb: refused after"));
  // Its end is its own exit, and its forks go with it: the next incarnation
  // starts (as nobody, whose quota the old forks would still fill).
  ASSERT_TRUE(sut.WaitEvent("child_started", "bomb", milliseconds(3000), 2)) << sut.RunLog();
  EXPECT_TRUE(SystemUnderTest::WaitUntil([&] { return first_alive() == 0; }, milliseconds(1000)))
      << first_alive() << " of the first bomb's processes survived it";
  // Let it go off again, while the probe goes on.
  while (Clock::now() - t0 < 2 * kHold) {
    most = std::max(most, ProcessesWith(marker).size());
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_LE(most, static_cast<std::size_t>(kNproc));
  probe.Check("fork bomb");
  bystander.Check();
  for (const Json& e : sut.Events("child_exited", "bomb")) {
    EXPECT_EQ(e["reason"]["kind"], "exit") << e.dump();
    EXPECT_EQ(e["reason"].value("code", -1), 7) << e.dump();
  }
  // Stopped, the bomb leaves nothing behind.
  const auto stop = Clock::now();
  ASSERT_EQ(sut.Cli({"stop", "bomb"}).code, 0);
  EXPECT_TRUE(SystemUnderTest::WaitUntil([&] { return ProcessesWith(marker).empty(); },
                                         milliseconds(500 + 1000)))
      << ProcessesWith(marker).size() << " bomb processes survived its stop";
  std::printf("bomb: stopped in %lld ms\n",
              static_cast<long long>(
                  std::chrono::duration_cast<milliseconds>(Clock::now() - stop).count()));
  EXPECT_TRUE(sut.WaitEvent("child_terminated", "bomb", milliseconds(2000)));
  EXPECT_EQ(sut.Events("child_terminated", "bomb").at(0)["reason"]["kind"], "shutdown");
  EXPECT_EQ(sut.Node("bystander").value("state", ""), "running");
  EXPECT_EQ(sut.Cli({"shutdown"}).code, 0);
  EXPECT_EQ(sut.Wait(), 0);
  EXPECT_TRUE(ProcessesWith(marker).empty());
}

TEST(Hostile, AMemoryHogFailsItsOwnMallocAndAloneIsRestarted) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "AddressSanitizer reserves terabytes of address space: no sanitized program "
                  "starts under address_space = 64MiB";
#endif
  SystemUnderTest sut(fmt::format(R"(
[supervisor.main]
intensity = 100
period = "10s"
children = ["bystander", "hog"]
{}
[component.hog]
exec = ["{{peer}}", "hog", "--chunk-kib", "1024", "--pace-us", "2000"]
limits = {{ address_space = "64MiB" }}
)",
                                  kBystander));
  sut.StartReady();
  Bystander bystander(sut);
  StatusProbe probe(sut);
  ASSERT_TRUE(sut.WaitEvent("child_exited", "hog", milliseconds(3000), 3)) << sut.RunLog();
  std::this_thread::sleep_for(milliseconds(2000));  // it goes on hogging and failing
  probe.Check("memory hog");
  bystander.Check();
  // Each end is the hog's own abort when its malloc failed at the limit.
  const std::vector<Json> ends = sut.Events("child_exited", "hog");
  std::printf("hog: %zu ends\n", ends.size());
  for (const Json& e : ends) {
    EXPECT_EQ(e["reason"]["kind"], "signal") << e.dump();
    EXPECT_EQ(e["reason"].value("signal", 0), SIGABRT) << e.dump();
  }
  const std::string log = sut.ComponentLog("hog");
  EXPECT_THAT(log, HasSubstr("hog: malloc failed after"));
  unsigned mib = 0;
  const auto at = log.find("malloc failed after ");
  ASSERT_NE(at, std::string::npos);
  ASSERT_EQ(std::sscanf(log.c_str() + at, "malloc failed after %u MiB", &mib), 1);
  EXPECT_GT(mib, 8u);
  EXPECT_LT(mib, 64u);
  EXPECT_TRUE(sut.Events("supervisor_intensity_exceeded").empty());
  EXPECT_EQ(sut.Cli({"shutdown"}).code, 0);
  EXPECT_EQ(sut.Wait(), 0);
}

// The numbers of the flooder's last report line.
struct FloodReport {
  long long sent = 0, fds = 0, full = 0, refused = 0, forged = 0;
  unsigned sockets = 0;
};

FloodReport LastFloodReport(const std::string& log) {
  FloodReport r;
  const auto at = log.rfind("flood: sent ");
  if (at != std::string::npos) {
    (void)std::sscanf(log.c_str() + at,
                      "flood: sent %lld (with a descriptor %lld), full %lld, refused %lld, forged "
                      "%lld to %u sockets",
                      &r.sent, &r.fds, &r.full, &r.refused, &r.forged, &r.sockets);
  }
  return r;
}

TEST(Hostile, AFloodOfNotifyDatagramsNeitherSlowsTheRuntimeNorVouchesForAnother) {
  // The victim is ready once, heartbeats for 800 ms and stops (a hang); its
  // next incarnations heartbeat but are never ready (start_timeout). The
  // flood sends READY=1 and WATCHDOG=1 to the victim's own notify socket all
  // the while, reached through /proc/PID/root of the victim's processes:
  // ptrace = "host" opens that way (by default, a Landlock domain of its own
  // closes it where the host has Landlock), so that the forged datagrams
  // test what the runtime does with them.
  SystemUnderTest sut(fmt::format(R"(
[supervisor.main]
intensity = 20
period = "10s"
children = ["bystander", "victim", "flood"]
{}
[component.victim]
exec = ["{{peer}}", "mute", "--marker", "victim.started", "--hold-ms", "800"]
ready = "notify"
heartbeat = "300ms"
ready_timeout = "1s"
[component.flood]
exec = ["{{peer}}", "notify-flood", "--victim", "victim"]
ready = "notify"
ptrace = "host"
)",
                                  kBystander));
  sut.StartReady();
  Bystander bystander(sut);
  StatusProbe probe(sut);
  std::this_thread::sleep_for(milliseconds(500));  // the flood is on
  const int fds = CountFds(sut.pid());
  ASSERT_TRUE(sut.WaitEvent("child_exited", "victim", milliseconds(5000), 2)) << sut.RunLog();
  std::this_thread::sleep_for(milliseconds(500));
  probe.Check("notify flood");
  bystander.Check();
  // The descriptors it sends do not pile up in the runtime. The least of
  // ten looks: the victim keeps restarting, and one look may land while a
  // restart holds the old process's descriptors and the new one's.
  int least = CountFds(sut.pid());
  for (int i = 0; i < 9; ++i) {
    std::this_thread::sleep_for(milliseconds(10));
    least = std::min(least, CountFds(sut.pid()));
  }
  EXPECT_LE(least, fds + 4);
  // The flood was on, and reached the victim's socket.
  const FloodReport flood = LastFloodReport(sut.ComponentLog("flood"));
  std::printf(
      "flood: sent %lld (%lld with a descriptor), full %lld, refused %lld, forged %lld to "
      "%u sockets of the victim\n",
      flood.sent, flood.fds, flood.full, flood.refused, flood.forged, flood.sockets);
  EXPECT_GT(flood.sent, 1000);
  EXPECT_GT(flood.fds, 0);
  EXPECT_GT(flood.forged, 0) << "the flood never reached the victim's notify socket";
  // The forged datagrams vouched for nothing: the victim hung, and was then
  // never ready again.
  const std::vector<Json> ends = sut.Events("child_exited", "victim");
  EXPECT_EQ(ends.at(0)["reason"]["kind"], "hang") << ends.at(0).dump();
  for (std::size_t i = 1; i < ends.size(); ++i) {
    EXPECT_EQ(ends[i]["reason"]["kind"], "start_timeout") << ends[i].dump();
  }
  EXPECT_EQ(sut.Events("child_ready", "victim").size(), 1u);
  EXPECT_NE(sut.Node("victim").value("state", ""), "running");
  // The flood itself goes on: flooding its own socket is no fault.
  EXPECT_TRUE(sut.Events("child_exited", "flood").empty()) << sut.RunLog();
  EXPECT_EQ(sut.Node("flood").value("state", ""), "running");
  EXPECT_EQ(sut.Cli({"shutdown"}).code, 0);
  EXPECT_EQ(sut.Wait(), 0);
}

TEST(Hostile, AChildThatIgnoresSigtermAndLeavesTheGroupDiesWithItsComponent) {
  // Each component forks a child and a grandchild that called setsid() and
  // ignore SIGTERM. The first process of `stubborn` dies of SIGTERM (a
  // runtime that waits only for it would leave the others behind); that of
  // `mule` ignores it too (the runtime must SIGKILL all of it after
  // `shutdown`).
  constexpr milliseconds kShutdown{500};
  constexpr milliseconds kSlack{1000};
  const std::string marker = fmt::format("hostile-stubborn-{}", ::getpid());
  SystemUnderTest sut(fmt::format(R"(
[supervisor.main]
intensity = 10
children = ["bystander", "stubborn", "mule"]
{0}
[component.stubborn]
exec = ["{{peer}}", "stubborn", "--marker", "{1}-stubborn"]
shutdown = "{2}ms"
[component.mule]
exec = ["{{peer}}", "stubborn", "--marker", "{1}-mule", "--main-ignores", "yes"]
shutdown = "{2}ms"
)",
                                  kBystander, marker, kShutdown.count()));
  sut.StartReady();
  Bystander bystander(sut);
  StatusProbe probe(sut, milliseconds(20));
  auto tree = [&](const std::string& name) {
    std::vector<pid_t> pids;
    EXPECT_TRUE(SystemUnderTest::WaitUntil(
        [&] { return (pids = ProcessesWith(marker + "-" + name)).size() == 3; },
        milliseconds(2000)))
        << pids.size() << " processes of " << name;
    return pids;
  };
  // How long after `after` (the command that returned) all of `pids` are gone.
  auto gone = [&](const std::vector<pid_t>& pids, milliseconds bound, const std::string& after) {
    const auto t0 = Clock::now();
    EXPECT_TRUE(SystemUnderTest::WaitUntil([&] { return AliveOf(pids) == 0; }, bound))
        << AliveOf(pids) << " of " << pids.size() << " processes survived " << after;
    const auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - t0);
    std::printf("%s: tree gone %lld ms after it\n", after.c_str(),
                static_cast<long long>(took.count()));
    return took;
  };
  for (const std::string name : {"stubborn", "mule"}) {
    SCOPED_TRACE(name);
    std::vector<pid_t> pids = tree(name);
    // A failure: the first process is killed; the rest of the tree goes
    // with it, before the restart.
    ASSERT_EQ(sut.Cli({"kill", name}).code, 0);
    ASSERT_TRUE(sut.WaitEvent("child_exited", name)) << sut.RunLog();
    gone(pids, kSlack, name + " kill");
    const Json end = sut.Events("child_exited", name).at(0);
    EXPECT_EQ(end["reason"]["kind"], "signal") << end.dump();
    EXPECT_EQ(end["reason"].value("signal", 0), SIGKILL) << end.dump();
    // A restart: SIGTERM, then SIGKILL to all of the tree after `shutdown`
    // at the latest.
    pids = tree(name);
    ASSERT_EQ(sut.Cli({"restart", name}).code, 0);
    gone(pids, kShutdown + kSlack, name + " restart");
    // A stop.
    pids = tree(name);
    ASSERT_EQ(sut.Cli({"stop", name}).code, 0);
    gone(pids, kShutdown + kSlack, name + " stop");
    EXPECT_TRUE(ProcessesWith(marker + "-" + name).empty());
    ASSERT_TRUE(sut.WaitEvent("child_terminated", name, milliseconds(2000), 2));
    for (const Json& e : sut.Events("child_terminated", name)) {
      EXPECT_EQ(e["reason"]["kind"], "shutdown") << e.dump();
    }
    EXPECT_EQ(sut.Events("child_exited", name).size(), 1u) << sut.RunLog();
    // Started again, for the shutdown below.
    ASSERT_EQ(sut.Cli({"start", name}).code, 0);
  }
  std::vector<pid_t> pids = tree("stubborn");
  for (pid_t pid : tree("mule")) pids.push_back(pid);
  probe.Check("stubborn trees", 20);
  bystander.Check();
  ASSERT_EQ(sut.Cli({"shutdown"}).code, 0);
  EXPECT_EQ(sut.Wait(kShutdown + kSlack + milliseconds(2000)), 0);
  gone(pids, kSlack, "the shutdown");
  EXPECT_TRUE(ProcessesWith(marker).empty());
}

// A cgroup v2 directory of its own for a `slate run`, below this process's
// cgroup, with the memory and pids controllers passed down to it: as a
// systemd service with Delegate=yes has. Whatever is left in it is killed
// and it is removed at the end.
class DelegatedCgroup {
 public:
  DelegatedCgroup() {
    auto where = platform::LocateCgroup2();
    if (!where) {
      why_not_ = where.error().message;
      return;
    }
    const std::string own = where->own_dir;
    auto controllers = platform::ReadFile(own + "/cgroup.controllers");
    if (!controllers) {
      why_not_ = controllers.error().message;
      return;
    }
    for (const char* c : {"memory", "pids"}) {
      if (controllers->find(c) == std::string::npos) {
        why_not_ = fmt::format("no {} controller in cgroup v2 here ({}/cgroup.controllers: {})", c,
                               own, *controllers);
        return;
      }
    }
    // Possible in the root cgroup, or where nothing else runs in ours.
    if (auto r = platform::WriteFileAt(AT_FDCWD, own + "/cgroup.subtree_control", "+memory +pids");
        !r) {
      why_not_ = r.error().message;
      return;
    }
    static int serial = 0;
    path_ = fmt::format("{}/slate-it-{}-{}", own, ::getpid(), ++serial);
    if (::mkdir(path_.c_str(), 0755) != 0) why_not_ = "mkdir " + path_;
  }
  ~DelegatedCgroup() {
    if (!path_.empty()) Remove(path_);
  }
  DelegatedCgroup(const DelegatedCgroup&) = delete;
  DelegatedCgroup& operator=(const DelegatedCgroup&) = delete;

  const std::optional<std::string>& why_not() const { return why_not_; }
  const std::string& path() const { return path_; }

 private:
  static void Remove(const fs::path& dir) {
    std::error_code ec;
    std::ofstream(dir / "cgroup.kill") << "1";
    std::vector<fs::path> children;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      if (e.is_directory(ec)) children.push_back(e.path());
    }
    for (const fs::path& c : children) Remove(c);
    for (int i = 0; i < 200 && ::rmdir(dir.c_str()) != 0 && errno == EBUSY; ++i) {
      std::this_thread::sleep_for(milliseconds(5));
    }
  }

  std::optional<std::string> why_not_;
  std::string path_;
};

// The line of /proc/PID/cgroup for cgroup v2: "0::PATH", as PATH.
std::string CgroupOf(pid_t pid) {
  std::string text = ProcFile(pid, "cgroup");
  const auto at = text.find("0::");
  if (at == std::string::npos) return "";
  text = text.substr(at + 3);
  return text.substr(0, text.find('\n'));
}

// A cgroup control file of process `pid`'s cgroup, trimmed.
std::string CgroupFileOf(pid_t pid, const std::string& file) {
  auto where = platform::LocateCgroup2();
  if (!where) return "";
  auto text = platform::ReadFile(where->mount + CgroupOf(pid) + "/" + file);
  if (!text) return "";
  while (!text->empty() && text->back() == '\n') text->pop_back();
  return *text;
}

// `file` of a cgroup below `tree` whose name starts with `prefix`: the first
// that can be read (a process's cgroup is gone soon after it ends), or "".
std::string CgroupFileIn(const std::string& tree, const std::string& prefix,
                         const std::string& file) {
  std::string out;
  SystemUnderTest::WaitUntil(
      [&] {
        std::error_code ec;
        for (const auto& e : fs::directory_iterator(tree, ec)) {
          if (!e.path().filename().string().starts_with(prefix)) continue;
          if (auto text = platform::ReadFile((e.path() / file).string())) {
            out = text->substr(0, text->find('\n'));
            return true;
          }
        }
        return false;
      },
      milliseconds(5000));
  return out;
}

TEST(CgroupLimits, AMemoryHogIsEndedAsOomWithItsTreeAndAloneIsRestarted) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "AddressSanitizer's shadow memory would count against memory_max";
#endif
  DelegatedCgroup cgroup;
  if (cgroup.why_not()) {
    // scripts/test's guest sets it: there, a skip would hide a failure.
    ASSERT_EQ(std::getenv("SLATE_REQUIRE_CGROUP_LIMITS"), nullptr) << *cgroup.why_not();
    GTEST_SKIP() << "cgroup v2 limits unavailable: " << *cgroup.why_not();
  }
  constexpr std::uint64_t kLimit = 48 << 20;
  SystemUnderTest sut(fmt::format(R"(
[supervisor.main]
intensity = 100
period = "10s"
children = ["bystander", "hog"]
{}
[component.hog]
exec = ["{{peer}}", "hog", "--chunk-kib", "1024", "--pace-us", "2000"]
limits = {{ memory_max = "48MiB" }}
)",
                                  kBystander));
  sut.Start(cgroup.path());
  ASSERT_TRUE(sut.WaitEvent("system_started", "", milliseconds(10000 * TimeScale())))
      << sut.RunLog();
  // cgroup v2 passes controllers down only from a cgroup without processes:
  // the runtime moved itself into a leaf of its tree.
  EXPECT_EQ(CgroupOf(sut.pid()),
            fmt::format("{}/slate-{}/runtime",
                        cgroup.path().substr(cgroup.path().find("/slate-it-")), sut.pid()));
  EXPECT_THAT(sut.RunLog(), HasSubstr("the runtime moved itself into"));
  const std::string tree = fmt::format("{}/slate-{}", cgroup.path(), sut.pid());
  EXPECT_EQ(CgroupFileIn(tree, "hog.", "memory.max"), std::to_string(kLimit));
  EXPECT_EQ(CgroupFileIn(tree, "hog.", "memory.oom.group"), "1");
  EXPECT_EQ(CgroupFileIn(tree, "bystander.", "memory.max"), "max");
  Bystander bystander(sut);
  StatusProbe probe(sut);
  ASSERT_TRUE(sut.WaitEvent("child_exited", "hog", milliseconds(5000 * TimeScale()), 3))
      << sut.RunLog();
  probe.Check("memory hog under memory_max");
  bystander.Check();
  // Each end is the OOM killer's, inside the limit: never a failed malloc.
  for (const Json& e : sut.Events("child_exited", "hog")) {
    EXPECT_EQ(e["reason"]["kind"], "oom") << e.dump();
  }
  EXPECT_THAT(sut.ComponentLog("hog"), Not(HasSubstr("malloc failed")));
  EXPECT_TRUE(sut.Events("supervisor_intensity_exceeded").empty());
  const pid_t runtime = sut.pid();
  EXPECT_EQ(sut.Cli({"shutdown"}).code, 0);
  EXPECT_EQ(sut.Wait(milliseconds(20000 * TimeScale())), 0);
  // It put everything back: no controllers passed down, its tree removed.
  auto passed_down = platform::ReadFile(cgroup.path() + "/cgroup.subtree_control");
  ASSERT_TRUE(passed_down.ok());
  EXPECT_EQ(passed_down->find_first_not_of(" \n"), std::string::npos) << *passed_down;
  EXPECT_FALSE(fs::exists(fmt::format("{}/slate-{}", cgroup.path(), runtime)));
}

TEST(CgroupLimits, AForkBombIsBoundedByPidsMaxWithoutAUserOfItsOwn) {
  DelegatedCgroup cgroup;
  if (cgroup.why_not()) {
    // scripts/test's guest sets it: there, a skip would hide a failure.
    ASSERT_EQ(std::getenv("SLATE_REQUIRE_CGROUP_LIMITS"), nullptr) << *cgroup.why_not();
    GTEST_SKIP() << "cgroup v2 limits unavailable: " << *cgroup.why_not();
  }
  // Unlike nproc, pids.max counts the component's own processes (and
  // threads) only, whoever they run as: root here.
  constexpr std::size_t kPids = 16;
  const std::string marker = fmt::format("cgroup-bomb-{}", ::getpid());
  SystemUnderTest sut(fmt::format(R"(
[supervisor.main]
intensity = 20
period = "10s"
children = ["bystander", "bomb"]
{}
[component.bomb]
exec = ["{{peer}}", "fork-bomb", "--marker", "{}", "--hold-ms", "1500", "--code", "7"]
shutdown = "500ms"
limits = {{ pids_max = {} }}
)",
                                  kBystander, marker, kPids));
  // Counted from the start: the bomb goes off at once and its first process
  // ends 1.5 s later, while in the emulated guest the system_started wait
  // and the bystander's first status can take most of that (a CI run
  // counted at most 1 when it began counting only after them).
  MostProcesses counted(marker);
  sut.Start(cgroup.path());
  ASSERT_TRUE(sut.WaitEvent("system_started", "", milliseconds(10000 * TimeScale())))
      << sut.RunLog();
  Bystander bystander(sut);
  StatusProbe probe(sut);
  ASSERT_TRUE(sut.WaitEvent("child_exited", "bomb", milliseconds(5000 * TimeScale())))
      << sut.RunLog();
  const std::size_t most = counted.Stop();
  std::printf("fork bomb: at most %zu of its processes at once (pids_max %zu)\n", most, kPids);
  EXPECT_GE(most, kPids / 2) << "the bomb did not go off";
  EXPECT_LE(most, kPids) << "pids_max did not bound the bomb";
  EXPECT_THAT(sut.ComponentLog("bomb"), HasSubstr("fork-bomb: refused after"));
  probe.Check("fork bomb under pids_max", 10);
  bystander.Check();
  const Json end = sut.Events("child_exited", "bomb").at(0);
  EXPECT_EQ(end["reason"]["kind"], "exit") << end.dump();
  EXPECT_EQ(end["reason"].value("code", -1), 7) << end.dump();
  ASSERT_EQ(sut.Cli({"stop", "bomb"}).code, 0);
  EXPECT_TRUE(SystemUnderTest::WaitUntil([&] { return ProcessesWith(marker).empty(); },
                                         milliseconds(1500 * TimeScale())))
      << ProcessesWith(marker).size() << " bomb processes survived its stop";
  EXPECT_EQ(sut.Cli({"shutdown"}).code, 0);
  EXPECT_EQ(sut.Wait(milliseconds(20000 * TimeScale())), 0);
}

// How many BPF device programs are attached to the cgroup at `dir`
// (BPF_PROG_QUERY); -1 if it cannot be asked.
int DevicePrograms(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -1;
  bpf_attr attr;
  std::memset(&attr, 0, sizeof attr);
  attr.query.target_fd = static_cast<__u32>(fd);
  attr.query.attach_type = BPF_CGROUP_DEVICE;
  const long r = ::syscall(SYS_bpf, BPF_PROG_QUERY, &attr, sizeof attr);
  ::close(fd);
  return r == 0 ? static_cast<int>(attr.query.prog_cnt) : -1;
}

// From its second start on, the cgroup of a component's next start is made
// ahead, off the restart's path (bench/recovery). A process started in one
// has its limits and the block-device filter all the same, and none is left
// behind when the system stops.
TEST(CgroupLimits, ACgroupMadeAheadOfARestartHoldsTheSameLimits) {
  auto where = platform::LocateCgroup2();
  if (!where) GTEST_SKIP() << "no cgroup v2: " << where.error().message;
  // Where limits cannot be had (cgroup v2 without controllers), the rest.
  DelegatedCgroup cgroup;
  const bool limits = !cgroup.why_not();
  if (!limits) {
    ASSERT_EQ(std::getenv("SLATE_REQUIRE_CGROUP_LIMITS"), nullptr) << *cgroup.why_not();
  }
  SystemUnderTest sut(fmt::format(R"(
[supervisor.main]
children = ["sub"]
[supervisor.sub]
intensity = 100
period = "10s"
children = ["a"]
[component.a]
exec = ["/bin/sleep", "1000"]
ready = "spawn"
shutdown = "brutal_kill"
{}
)",
                                  limits ? "limits = { pids_max = 7 }" : ""));
  sut.Start(limits ? cgroup.path() : "");
  ASSERT_TRUE(sut.WaitEvent("system_started", "", milliseconds(10000 * TimeScale())))
      << sut.RunLog();
  if (sut.RunLog().find("cgroup v2 not available") != std::string::npos) {
    GTEST_SKIP() << "the runtime has no cgroups here: " << sut.RunLog();
  }
  auto pid_of_a = [&] { return sut.Node("a").value("pid", 0); };
  // Where each start's process runs: its line of /proc/PID/cgroup.
  auto cgroup_of = [](int pid) {
    auto text = platform::ReadFile(fmt::format("/proc/{}/cgroup", pid));
    if (!text) return std::string();
    const std::size_t at = text->find("0::");
    return at == std::string::npos ? std::string()
                                   : text->substr(at + 3, text->find('\n', at) - at - 3);
  };
  std::vector<std::string> cgroups{cgroup_of(pid_of_a())};
  for (int start = 2; start <= 4; ++start) {
    const int before = pid_of_a();
    ASSERT_GT(before, 0) << sut.RunLog();
    // The cgroup of a next start is made 2 ms after a restart.
    std::this_thread::sleep_for(milliseconds(50));
    ASSERT_EQ(::kill(before, SIGKILL), 0);
    ASSERT_TRUE(SystemUnderTest::WaitUntil(
        [&] {
          const int now = pid_of_a();
          return now > 0 && now != before;
        },
        milliseconds(5000 * TimeScale())))
        << sut.RunLog();
    cgroups.push_back(cgroup_of(pid_of_a()));
  }
  ASSERT_EQ(cgroups.size(), 4U);
  // The first two starts make their cgroup on the way; the later ones find
  // it made. A fresh one each time.
  EXPECT_THAT(cgroups[0], Not(HasSubstr(".next-")));
  EXPECT_THAT(cgroups[1], Not(HasSubstr(".next-")));
  EXPECT_THAT(cgroups[2], HasSubstr("/a.next-"));
  EXPECT_THAT(cgroups[3], HasSubstr("/a.next-"));
  EXPECT_NE(cgroups[2], cgroups[3]);
  const std::string dir = where->mount + cgroups[3];
  if (limits) {
    auto pids_max = platform::ReadFile(dir + "/pids.max");
    ASSERT_TRUE(pids_max) << dir;
    EXPECT_EQ(*pids_max, "7\n");
  }
  if (sut.RunLog().find("no block-device filter") == std::string::npos) {
    EXPECT_GE(DevicePrograms(dir), 1) << dir;
  }
  // The last start left one made ahead for a fifth; it goes when `a` is
  // stopped (here through its supervisor), not only at the end. (Those of
  // ended processes go once empty.)
  const std::string tree = dir.substr(0, dir.rfind('/'));
  auto made_ahead = [&] {
    std::vector<std::string> found;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(tree, ec)) {
      if (e.path().filename().string().starts_with("a.next-")) found.push_back(e.path());
    }
    return found;
  };
  EXPECT_TRUE(SystemUnderTest::WaitUntil([&] { return made_ahead().size() == 2; },
                                         milliseconds(2000 * TimeScale())))
      << made_ahead().size() << " in " << tree << ": expected the current one and the next";
  const CommandOutput stop = sut.Cli({"stop", "sub"});
  ASSERT_EQ(stop.code, 0) << stop.out;
  EXPECT_TRUE(SystemUnderTest::WaitUntil([&] { return made_ahead().empty(); },
                                         milliseconds(5000 * TimeScale())))
      << made_ahead().size() << " left in " << tree;
  EXPECT_EQ(sut.Cli({"shutdown"}).code, 0);
  EXPECT_EQ(sut.Wait(milliseconds(20000 * TimeScale())), 0);
  // The runtime's tree, with every cgroup of `a`, is gone.
  EXPECT_FALSE(fs::exists(tree)) << tree << "\n" << sut.RunLog();
}

TEST(CgroupLimits, WithoutThemTheRuntimeRefusesToStartUnlessTheyAreOptional) {
  // Where the host passes the controllers down, they are withheld by a
  // process that shares the runtime's cgroup.
  DelegatedCgroup cgroup;
  if (std::getenv("SLATE_REQUIRE_CGROUP_LIMITS") != nullptr) {
    ASSERT_FALSE(cgroup.why_not()) << *cgroup.why_not();
  }
  std::string where;
  struct Sharer {
    pid_t pid = -1;
    ~Sharer() {
      if (pid > 0) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
      }
    }
  } sharer_process;
  pid_t& sharer = sharer_process.pid;
  if (!cgroup.why_not()) {
    where = cgroup.path();
    sharer = ::fork();
    if (sharer == 0) {
      ::pause();
      std::_Exit(0);
    }
    ASSERT_TRUE(platform::WriteFileAt(AT_FDCWD, where + "/cgroup.procs", std::to_string(sharer)));
  }
  const std::string system = R"(
[supervisor.main]
children = ["a"]
[component.a]
exec = ["{peer}", "count", "--out", "a.out", "--pace-us", "5000"]
ready = "notify"
state = { size = "16MiB" }
limits = { memory_max = "64MiB", pids_max = 32 }
)";
  {
    SystemUnderTest sut(system);
    sut.Start(where);
    EXPECT_EQ(sut.Wait(milliseconds(10000 * TimeScale())), 1);
    EXPECT_THAT(sut.RunLog(),
                HasSubstr("component a: a cgroup with memory_max and pids_max (limits) is not "
                          "available on this host: "));
    EXPECT_THAT(sut.RunLog(), HasSubstr("to run it without, write optional = true in its limits "
                                        "table"));
    if (sharer > 0) {
      EXPECT_THAT(sut.RunLog(), HasSubstr("other processes share cgroup"));
    }
    EXPECT_TRUE(sut.Events("child_started").empty());
  }
  {
    SystemUnderTest sut(system);
    sut.Replace("pids_max = 32 }", "pids_max = 32, optional = true }");
    sut.Start(where);
    ASSERT_TRUE(sut.WaitEvent("child_ready", "a", milliseconds(10000 * TimeScale())))
        << sut.RunLog();
    EXPECT_THAT(sut.RunLog(), HasSubstr("it runs without it (optional)"));
    // Without them: no limits on its cgroup (no memory controller there at
    // all), and the runtime stayed where it was.
    const int a = sut.Node("a").value("pid", 0);
    ASSERT_GT(a, 0);
    EXPECT_NE(CgroupOf(a), "");
    EXPECT_EQ(CgroupFileOf(a, "memory.max"), "");
    if (sharer > 0) {
      EXPECT_EQ(CgroupOf(sut.pid()), CgroupOf(sharer));
    }
    EXPECT_EQ(sut.Cli({"shutdown"}).code, 0);
    EXPECT_EQ(sut.Wait(milliseconds(20000 * TimeScale())), 0);
  }
}

}  // namespace
}  // namespace slate::testing
