// Prints how long Spawn takes to exec /bin/true, next to the baselines it
// competes with (posix_spawn + pidfd_open, fork + exec). Asserts nothing:
// timings depend on the machine.
#include <algorithm>
#include <cstdio>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "platform/cgroup.h"
#include "platform/clock.h"
#include "platform/pidfd.h"
#include "platform/spawn.h"
#include "platform/spawn_child.h"
#include "platform/test_support.h"

extern char** environ;

namespace slate::platform {
namespace {

using internal::SpawnMethod;

constexpr int kRuns = 200;

// Median of kRuns calls of `start`, which returns a pid to reap (untimed).
double MedianMicros(const std::function<pid_t()>& start) {
  std::vector<double> micros;
  for (int i = 0; i < kRuns; ++i) {
    const auto begin = MonotonicNow();
    const pid_t pid = start();
    const auto end = MonotonicNow();
    EXPECT_GT(pid, 0);
    int status = 0;
    ::waitpid(pid, &status, 0);
    micros.push_back(static_cast<double>((end - begin).count()) / 1000.0);
  }
  std::sort(micros.begin(), micros.end());
  return micros[micros.size() / 2];
}

pid_t SpawnTrue(SpawnMethod method, const CgroupHandle* cgroup = nullptr,
                const std::optional<MountView>& view = std::nullopt) {
  internal::SetSpawnMethodForTesting(method);
  SpawnRequest request;
  request.argv = {"/bin/true"};
  request.cgroup = cgroup;
  request.view = view;
  auto process = Spawn(request);
  internal::SetSpawnMethodForTesting(SpawnMethod::kAuto);
  // The pidfd closes with the Process; the pid stays ours to reap.
  return process.ok() ? process->pid() : -1;
}

pid_t PosixSpawnTrue() {
  char arg0[] = "/bin/true";
  char* argv[] = {arg0, nullptr};
  pid_t pid = -1;
  if (posix_spawn(&pid, arg0, nullptr, nullptr, argv, environ) != 0) {
    return -1;
  }
  ::close(PidfdOpen(pid));  // to be on par: Spawn returns a pidfd
  return pid;
}

pid_t ForkExecTrue() {
  const pid_t pid = ::fork();
  if (pid == 0) {
    char arg0[] = "/bin/true";
    char* argv[] = {arg0, nullptr};
    ::execv(arg0, argv);
    _exit(127);
  }
  return pid;
}

TEST(SpawnBench, MedianTimeToExecBinTrue) {
  const double clone3 = MedianMicros([] { return SpawnTrue(SpawnMethod::kClone3); });
  const double clone = MedianMicros([] { return SpawnTrue(SpawnMethod::kClone); });
  const double posix = MedianMicros(PosixSpawnTrue);
  const double fork = MedianMicros(ForkExecTrue);
  std::printf("median of %d starts of /bin/true, until execve has replaced the image:\n", kRuns);
  std::printf("  %-40s %8.1f us\n", "Spawn (clone3 CLONE_VM|CLONE_VFORK)", clone3);
  std::printf("  %-40s %8.1f us\n", "Spawn (glibc clone fallback)", clone);
  std::printf("  %-40s %8.1f us\n", "baseline: posix_spawn + pidfd_open", posix);
  std::printf("  %-40s %8.1f us (returns before exec)\n", "baseline: fork + exec", fork);

  // A Landlock domain of its own (SpawnRequest::own_domain), interleaved
  // with plain starts: run by run, the medians of each.
  if (!OwnDomainUnavailable(false)) {
    auto start = [](bool own_domain) {
      internal::SetSpawnMethodForTesting(SpawnMethod::kClone3);
      SpawnRequest request;
      request.argv = {"/bin/true"};
      request.own_domain = own_domain;
      auto process = Spawn(request);
      internal::SetSpawnMethodForTesting(SpawnMethod::kAuto);
      return process.ok() ? process->pid() : -1;
    };
    double plain = 0;
    double own = 0;
    for (int round = 0; round < 3; ++round) {
      plain += MedianMicros([&] { return start(false); }) / 3;
      own += MedianMicros([&] { return start(true); }) / 3;
    }
    std::printf("  %-40s %8.1f us (%.2fx plain Spawn, measured next to it: %.1f us)\n",
                "Spawn with a Landlock domain of its own", own, own / plain, plain);
  }

  // A component's view of state_dir: one hidden directory, three paths kept.
  if (!MountViewsUnavailable()) {
    char templ[] = "/tmp/slate-bench-view-XXXXXX";
    ASSERT_NE(::mkdtemp(templ), nullptr);
    const std::string dir = templ;
    for (const char* sub : {"/images", "/store", "/store/checkpoints"}) {
      ASSERT_EQ(::mkdir((dir + sub).c_str(), 0755), 0);
    }
    const MountView view{
        {dir},
        {{dir + "/images", true}, {dir + "/store", false}, {dir + "/store/checkpoints", true}}};
    const double plain = MedianMicros([] { return SpawnTrue(SpawnMethod::kClone3); });
    const double viewed =
        MedianMicros([&] { return SpawnTrue(SpawnMethod::kClone3, nullptr, view); });
    auto mounts = MountNamespace::Make(view);
    ASSERT_TRUE(mounts.ok()) << mounts.error().message;
    const double joined = MedianMicros([&] {
      internal::SetSpawnMethodForTesting(SpawnMethod::kClone3);
      SpawnRequest request;
      request.argv = {"/bin/true"};
      request.mounts = &*mounts;
      auto process = Spawn(request);
      internal::SetSpawnMethodForTesting(SpawnMethod::kAuto);
      return process.ok() ? process->pid() : -1;
    });
    std::printf("  %-40s %8.1f us (%.2fx plain Spawn, measured next to it: %.1f us)\n",
                "Spawn making a MountView (1 hidden, 3 kept)", viewed, viewed / plain, plain);
    std::printf("  %-40s %8.1f us (%.2fx plain Spawn)\n", "Spawn joining a MountNamespace", joined,
                joined / plain);
    ::rmdir((dir + "/store/checkpoints").c_str());
    ::rmdir((dir + "/store").c_str());
    ::rmdir((dir + "/images").c_str());
    ::rmdir(dir.c_str());
  }

  auto tree = CgroupTree::Create("slate-bench-" + std::to_string(::getpid()));
  if (!tree) {
    std::printf("  (no cgroup timings: %s)\n", tree.error().message.c_str());
    return;
  }
  auto cgroup = tree->CreateChild("bench");
  ASSERT_TRUE(cgroup.ok());
  const CgroupHandle* handle = &cgroup->handle();
  const double into3 = MedianMicros([&] { return SpawnTrue(SpawnMethod::kClone3, handle); });
  const double into = MedianMicros([&] { return SpawnTrue(SpawnMethod::kClone, handle); });
  std::printf("  %-40s %8.1f us\n", "Spawn into a cgroup (CLONE_INTO_CGROUP)", into3);
  std::printf("  %-40s %8.1f us\n", "Spawn into a cgroup (clone, cgroup.procs)", into);
}

}  // namespace
}  // namespace slate::platform
