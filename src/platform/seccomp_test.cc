#include "platform/seccomp.h"

#include <algorithm>
#include <cerrno>
#include <string>

#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <seccomp.h>

#include "platform/pipe.h"
#include "platform/spawn.h"
#include "platform/test_support.h"

namespace slate::platform {
namespace {

using testing::ReadAll;
using testing::WaitForExit;

class SeccompTest : public testing::PlatformTest {
 protected:
  void SetUp() override {
    PlatformTest::SetUp();
    if (auto why = SeccompUnavailable()) GTEST_SKIP() << *why;
  }
};

std::shared_ptr<const SeccompFilter> FilterOf(const SeccompPolicy& policy) {
  auto filter = SeccompFilter::For(policy);
  EXPECT_TRUE(filter.ok()) << filter.error().message;
  return filter.ok() ? *filter : nullptr;
}

// Forks a child that loads `filter` (under no_new_privs, as a component
// does) and then runs `attempt`, which returns the child's exit code.
ExitStatus RunUnder(const SeccompFilter& filter, int (*attempt)()) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0U, filter.program()) != 0) {
      ::_exit(100);
    }
    ::_exit(attempt());
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFSIGNALED(status)) return ExitStatus::Killed(WTERMSIG(status), WCOREDUMP(status) != 0);
  return ExitStatus::Exited(WEXITSTATUS(status));
}

// unshare(0) changes nothing, so it tells only whether the filter lets
// unshare through: 0 if it did, the errno if not.
int UnshareNothing() {
  return ::syscall(SYS_unshare, 0) == 0 ? 0 : errno;
}

TEST(SeccompProfile, EveryNameIsASystemCallOfThisArchitecture) {
  for (std::string_view name : DefaultSeccompProfile()) {
    EXPECT_GE(seccomp_syscall_resolve_name(std::string(name).c_str()), 0) << name;
  }
}

TEST(SeccompProfile, LeavesOutWhatReachesPastTheProcess) {
  for (std::string_view name : {"mount", "umount2", "unshare", "setns", "ptrace", "bpf",
                                "init_module", "reboot", "kexec_load", "keyctl", "io_uring_setup",
                                "userfaultfd", "open_by_handle_at", "clock_settime"}) {
    EXPECT_EQ(std::count(DefaultSeccompProfile().begin(), DefaultSeccompProfile().end(), name), 0)
        << name;
  }
}

TEST_F(SeccompTest, AFilterIsBuiltOncePerPolicy) {
  auto a = FilterOf({});
  auto b = FilterOf({});
  auto c = FilterOf({{"ptrace"}, SeccompPolicy::OnViolation::kKill});
  ASSERT_TRUE(a && b && c);
  EXPECT_EQ(a.get(), b.get());
  EXPECT_NE(a.get(), c.get());
  EXPECT_GT(a->instructions(), 10U);
  EXPECT_EQ(a->program()->len, a->instructions());
}

TEST_F(SeccompTest, AnUnknownNameIsAnErrorNamingIt) {
  auto filter = SeccompFilter::For({{"futx"}, SeccompPolicy::OnViolation::kKill});
  ASSERT_FALSE(filter.ok());
  EXPECT_EQ(filter.error().message, "seccomp filter: unknown system call 'futx'");
}

TEST_F(SeccompTest, WhatTheProfileAllowsRuns) {
  auto filter = FilterOf({});
  ASSERT_TRUE(filter);
  EXPECT_EQ(RunUnder(*filter, [] { return ::getpid() > 0 ? 0 : 1; }), ExitStatus::Exited(0));
  // A fork (clone without namespace flags) and a wait.
  EXPECT_EQ(RunUnder(*filter,
                     [] {
                       const pid_t child = ::fork();
                       if (child == 0) ::_exit(7);
                       int status = 0;
                       ::waitpid(child, &status, 0);
                       return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
                     }),
            ExitStatus::Exited(7));
}

TEST_F(SeccompTest, ACallOutsideTheProfileKillsTheProcessWithSigsys) {
  auto filter = FilterOf({});
  ASSERT_TRUE(filter);
  const ExitStatus end = RunUnder(*filter, &UnshareNothing);
  ASSERT_TRUE(end.killed()) << end.Describe();
  EXPECT_EQ(end.code, SIGSYS);
}

TEST_F(SeccompTest, CloneWithANamespaceFlagIsAViolationAndClone3IsNotImplemented) {
  auto filter = FilterOf({});
  ASSERT_TRUE(filter);
  const ExitStatus end = RunUnder(*filter, [] {
    return static_cast<int>(::syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0));
  });
  ASSERT_TRUE(end.killed()) << end.Describe();
  EXPECT_EQ(end.code, SIGSYS);
  EXPECT_EQ(
      RunUnder(*filter,
               [] { return ::syscall(SYS_clone3, nullptr, 0) == -1 && errno == ENOSYS ? 0 : 1; }),
      ExitStatus::Exited(0));
}

TEST_F(SeccompTest, WithTheErrnoActionACallOutsideFailsWithEperm) {
  auto filter = FilterOf({{}, SeccompPolicy::OnViolation::kErrno});
  ASSERT_TRUE(filter);
  EXPECT_EQ(RunUnder(*filter, &UnshareNothing), ExitStatus::Exited(EPERM));
}

TEST_F(SeccompTest, AllowAddsToTheProfile) {
  auto filter = FilterOf({{"unshare"}, SeccompPolicy::OnViolation::kKill});
  ASSERT_TRUE(filter);
  EXPECT_EQ(RunUnder(*filter, &UnshareNothing), ExitStatus::Exited(0));
}

// Through Spawn: the filter is loaded in the child right before execve, so
// the program starts under it.
ExitStatus SpawnUnder(std::shared_ptr<const SeccompFilter> filter, const std::string& script,
                      std::string* output = nullptr) {
  auto out = MakeOutputPipe();
  EXPECT_TRUE(out.ok());
  SpawnRequest request = testing::ShellRequest(script, {{out->write.get(), 1}});
  request.no_new_privs = true;
  request.seccomp = std::move(filter);
  auto process = Spawn(request);
  EXPECT_TRUE(process.ok()) << process.error().message;
  if (!process.ok()) return ExitStatus::Exited(-1);
  out->write.Reset();
  std::string text = ReadAll(out->read.get());
  if (output != nullptr) *output = text;
  return WaitForExit(process.value()).value_or(ExitStatus::Exited(-1));
}

TEST_F(SeccompTest, AShellScriptRunsUnderTheDefaultProfile) {
  std::string out;
  EXPECT_EQ(SpawnUnder(FilterOf({}),
                       "x=$(echo hi | tr h H); ls / >/dev/null; sleep 0.01; "
                       "grep Seccomp: /proc/self/status | tr -d '\\t'; echo $x; exit 3",
                       &out),
            ExitStatus::Exited(3));
  EXPECT_EQ(out, "Seccomp:2\nHi\n");
}

TEST_F(SeccompTest, ASpawnedProgramThatBreaksTheFilterDiesOfSigsys) {
  const ExitStatus end = SpawnUnder(FilterOf({}), "exec /usr/bin/unshare --user /bin/true");
  ASSERT_TRUE(end.killed()) << end.Describe();
  EXPECT_EQ(end.code, SIGSYS);
}

TEST_F(SeccompTest, WithoutNoNewPrivsAnUnprivilegedChildCannotLoadAFilter) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root, to run the child as another user";
  SpawnRequest request = testing::ShellRequest("exit 0");
  request.identity = Identity{65534, 65534, {}};
  request.capabilities = 0;
  request.seccomp = FilterOf({});
  auto process = Spawn(request);
  ASSERT_FALSE(process.ok());
  EXPECT_NE(process.error().message.find("load the seccomp filter: Permission denied"),
            std::string::npos)
      << process.error().message;
}

}  // namespace
}  // namespace slate::platform
