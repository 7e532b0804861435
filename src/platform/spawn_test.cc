#include "platform/spawn.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <fcntl.h>
#include <linux/capability.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "platform/file_io.h"
#include "platform/pipe.h"
#include "platform/signal_fd.h"
#include "platform/signal_process.h"
#include "platform/spawn_child.h"
#include "platform/test_support.h"

namespace slate::platform {
namespace {

using internal::SpawnMethod;
using testing::ReadAll;
using testing::ShellRequest;
using testing::WaitForExit;
using testing::WaitUntil;

// Every test runs with both launchers: clone3 (the default on x86-64) and
// glibc clone() (the fallback where clone3 is unavailable).
class SpawnTest : public testing::PlatformTest, public ::testing::WithParamInterface<SpawnMethod> {
 protected:
  void SetUp() override {
    PlatformTest::SetUp();
    internal::SetSpawnMethodForTesting(GetParam());
  }
  void TearDown() override {
    internal::SetSpawnMethodForTesting(SpawnMethod::kAuto);
    PlatformTest::TearDown();
  }
};

SpawnRequest Program(std::vector<std::string> argv) {
  SpawnRequest request;
  request.argv = std::move(argv);
  return request;
}

// The child's descriptors, read once it sleeps (so the dynamic loader is done
// and nothing is half-open): "0 1 2 7" etc.
std::string DescriptorsOfSleeper(pid_t pid) {
  const std::string syscall_file = "/proc/" + std::to_string(pid) + "/syscall";
  EXPECT_TRUE(WaitUntil([&] {
    std::ifstream in(syscall_file);
    long number = -1;
    return (in >> number) && number == SYS_clock_nanosleep;
  }));
  auto child = Program({"/usr/bin/ls", "/proc/" + std::to_string(pid) + "/fd"});
  auto out = MakeOutputPipe();
  EXPECT_TRUE(out.ok());
  child.fds = {{out->write.get(), 1}};
  auto ls = Spawn(child);
  EXPECT_TRUE(ls.ok()) << ls.error().message;
  out.value().write.Reset();
  std::string listing = ReadAll(out->read.get());
  EXPECT_EQ(WaitForExit(ls.value()), ExitStatus::Exited(0));
  for (char& c : listing) {
    c = c == '\n' ? ' ' : c;
  }
  return listing;
}

TEST_P(SpawnTest, TrueExitsWithZero) {
  auto process = Spawn(Program({"/bin/true"}));
  ASSERT_TRUE(process.ok()) << process.error().message;
  EXPECT_GT(process->pid(), 0);
  EXPECT_GE(process->pidfd(), 0);
  EXPECT_EQ(WaitForExit(process.value()), ExitStatus::Exited(0));
}

TEST_P(SpawnTest, ShellExitCodeIsReported) {
  auto process = Spawn(ShellRequest("exit 7"));
  ASSERT_TRUE(process.ok()) << process.error().message;
  const auto status = WaitForExit(process.value());
  EXPECT_EQ(status, ExitStatus::Exited(7));
  EXPECT_EQ(status->Describe(), "exited with code 7");
}

TEST_P(SpawnTest, KilledBySignalNine) {
  auto process = Spawn(Program({"/bin/sleep", "100"}));
  ASSERT_TRUE(process.ok()) << process.error().message;
  ASSERT_TRUE(KillTree(*process, SIGKILL).ok());
  const auto status = WaitForExit(process.value());
  EXPECT_EQ(status, ExitStatus::Killed(SIGKILL, false));
  EXPECT_EQ(status->Describe(), "killed by SIGKILL (9)");
}

TEST_P(SpawnTest, MissingProgramIsAnErrorNamingItAndLeavesNoZombie) {
  auto process = Spawn(Program({"/nonexistent/program", "arg"}));
  ASSERT_FALSE(process.ok());
  EXPECT_EQ(process.error().message, "spawn /nonexistent/program: exec: No such file or directory");
  siginfo_t info{};
  EXPECT_EQ(waitid(P_ALL, 0, &info, WEXITED | WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD) << "a child was left behind";
}

TEST_P(SpawnTest, NonExecutableFileIsPermissionDenied) {
  char path[] = "/tmp/slate-not-executable-XXXXXX";
  const int fd = ::mkstemp(path);  // mode 0600: no execute bit, even for root
  ASSERT_GE(fd, 0);
  ::close(fd);
  auto process = Spawn(Program({path}));
  ::unlink(path);
  ASSERT_FALSE(process.ok());
  EXPECT_EQ(process.error().message, std::string("spawn ") + path + ": exec: Permission denied");
}

TEST_P(SpawnTest, MissingWorkingDirectoryIsAnError) {
  auto request = Program({"/bin/true"});
  request.cwd = "/nonexistent/dir";
  auto process = Spawn(request);
  ASSERT_FALSE(process.ok());
  EXPECT_EQ(process.error().message,
            "spawn /bin/true: chdir /nonexistent/dir: No such file or directory");
}

TEST_P(SpawnTest, BadRequestsAreRefusedBeforeCloning) {
  EXPECT_FALSE(Spawn(Program({})).ok());
  EXPECT_EQ(Spawn(Program({"true"})).error().message,
            "spawn true: argv[0] must be an absolute path");
  auto twice = Program({"/bin/true"});
  twice.fds = {{0, 5}, {1, 5}};
  EXPECT_FALSE(Spawn(twice).ok());
}

bool IsFree(int fd) {
  return ::fcntl(fd, F_GETFD) < 0 && errno == EBADF;
}

TEST_P(SpawnTest, ClosedSourceDescriptorIsAnError) {
  int closed = 900;  // high enough not to be reused by Spawn's own open()
  while (!IsFree(closed)) {
    ++closed;
  }
  auto request = Program({"/bin/true"});
  request.fds = {{closed, 3}};
  auto process = Spawn(request);
  ASSERT_FALSE(process.ok());
  EXPECT_EQ(process.error().message, "spawn /bin/true: install descriptor: Bad file descriptor");
}

TEST_P(SpawnTest, EnvironmentIsExactlyTheRequestedOne) {
  auto out = MakeOutputPipe();
  ASSERT_TRUE(out.ok());
  auto request = Program({"/usr/bin/env"});
  request.env = {"A=1", "B=two words"};
  request.fds = {{out->write.get(), 1}};
  auto process = Spawn(request);
  ASSERT_TRUE(process.ok()) << process.error().message;
  out.value().write.Reset();
  EXPECT_EQ(ReadAll(out->read.get()), "A=1\nB=two words\n");
  EXPECT_EQ(WaitForExit(process.value()), ExitStatus::Exited(0));
}

TEST_P(SpawnTest, WorkingDirectoryIsSet) {
  auto out = MakeOutputPipe();
  ASSERT_TRUE(out.ok());
  auto request = Program({"/bin/pwd"});
  request.cwd = "/usr/share";
  request.fds = {{out->write.get(), 1}};
  auto process = Spawn(request);
  ASSERT_TRUE(process.ok()) << process.error().message;
  out.value().write.Reset();
  EXPECT_EQ(ReadAll(out->read.get()), "/usr/share\n");
  EXPECT_EQ(WaitForExit(process.value()), ExitStatus::Exited(0));
}

TEST_P(SpawnTest, OnlyGrantedDescriptorsAreOpenInTheChild) {
  // Not close-on-exec, as a careless library might leave it.
  const int stray = ::open("/dev/null", O_RDONLY);
  ASSERT_GE(stray, 0);
  auto extra = MakeOutputPipe();
  ASSERT_TRUE(extra.ok());
  auto request = Program({"/bin/sleep", "100"});
  request.fds = {{extra->write.get(), 7}};
  auto process = Spawn(request);
  ASSERT_TRUE(process.ok()) << process.error().message;
  EXPECT_EQ(DescriptorsOfSleeper(process->pid()), "0 1 2 7 ");
  // fd 7 is our pipe, fds 0..2 are /dev/null.
  struct stat ours;
  ASSERT_EQ(::fstat(extra->write.get(), &ours), 0);
  const std::string fd_dir = "/proc/" + std::to_string(process->pid()) + "/fd/";
  char link[64] = {};
  ASSERT_GT(::readlink((fd_dir + "7").c_str(), link, sizeof link - 1), 0);
  EXPECT_EQ(std::string(link), "pipe:[" + std::to_string(ours.st_ino) + "]");
  std::fill(std::begin(link), std::end(link), '\0');
  ASSERT_GT(::readlink((fd_dir + "1").c_str(), link, sizeof link - 1), 0);
  EXPECT_EQ(std::string(link), "/dev/null");
  ASSERT_TRUE(KillTree(*process, SIGKILL).ok());
  EXPECT_TRUE(WaitForExit(process.value()).has_value());
  ::close(stray);
}

TEST_P(SpawnTest, CollidingSourcesAndTargetsAreSwappedCorrectly) {
  // Three free descriptor numbers in a row: n, n+1, n+2.
  int n = 40;
  while (!IsFree(n) || !IsFree(n + 1) || !IsFree(n + 2)) {
    ++n;
  }
  auto p = MakeOutputPipe();
  auto q = MakeOutputPipe();
  auto r = MakeOutputPipe();
  ASSERT_TRUE(p.ok() && q.ok() && r.ok());
  ASSERT_EQ(::dup3(p->write.get(), n, O_CLOEXEC), n);
  ASSERT_EQ(::dup3(q->write.get(), n + 1, O_CLOEXEC), n + 1);
  ASSERT_EQ(::dup3(r->write.get(), n + 2, O_CLOEXEC), n + 2);
  UniqueFd at_n(n);
  UniqueFd at_n1(n + 1);
  UniqueFd at_n2(n + 2);
  p.value().write.Reset();
  q.value().write.Reset();
  r.value().write.Reset();
  // Swap n and n+1; keep n+2 where it is. (bash: dash takes only fds 0-9.)
  const std::string a = std::to_string(n);
  const std::string b = std::to_string(n + 1);
  const std::string c = std::to_string(n + 2);
  SpawnRequest request;
  request.argv = {
      "/bin/bash", "-c",
      "echo to" + b + " >&" + b + "; echo to" + a + " >&" + a + "; echo to" + c + " >&" + c};
  request.fds = {{n, n + 1}, {n + 1, n}, {n + 2, n + 2}};
  auto process = Spawn(request);
  ASSERT_TRUE(process.ok()) << process.error().message;
  at_n.Reset();
  at_n1.Reset();
  at_n2.Reset();
  EXPECT_EQ(ReadAll(p->read.get()), "to" + b + "\n");  // the child's n+1 is our n: p
  EXPECT_EQ(ReadAll(q->read.get()), "to" + a + "\n");
  EXPECT_EQ(ReadAll(r->read.get()), "to" + c + "\n");
  EXPECT_EQ(WaitForExit(process.value()), ExitStatus::Exited(0));
}

TEST_P(SpawnTest, ChildHasEmptySignalMaskAndDefaultDispositions) {
  auto signals = SignalFd::Create({SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGPIPE});
  ASSERT_TRUE(signals.ok());
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  struct sigaction saved_usr1;
  ASSERT_EQ(::sigaction(SIGUSR1, &ignore, &saved_usr1), 0);
  auto process = Spawn(Program({"/bin/sleep", "100"}));
  ASSERT_EQ(::sigaction(SIGUSR1, &saved_usr1, nullptr), 0);
  ASSERT_TRUE(process.ok()) << process.error().message;
  EXPECT_NE(testing::StatusField(::getpid(), "SigBlk"), "0000000000000000");
  EXPECT_EQ(testing::StatusField(process->pid(), "SigBlk"), "0000000000000000");
  EXPECT_EQ(testing::StatusField(process->pid(), "SigIgn"), "0000000000000000");
  ASSERT_TRUE(KillTree(*process, SIGKILL).ok());
  EXPECT_TRUE(WaitForExit(process.value()).has_value());
}

TEST_P(SpawnTest, ChildLeadsItsOwnProcessGroup) {
  auto process = Spawn(Program({"/bin/sleep", "100"}));
  ASSERT_TRUE(process.ok()) << process.error().message;
  EXPECT_EQ(ProcessGroupOf(process->pid()).value(), process->pid());
  EXPECT_NE(process->pid(), ::getpgrp());
  ASSERT_TRUE(KillTree(*process, SIGKILL).ok());
  EXPECT_TRUE(WaitForExit(process.value()).has_value());
}

TEST_P(SpawnTest, AMountViewHidesADirectoryButWhatItKeeps) {
  if (auto why = MountViewsUnavailable()) GTEST_SKIP() << *why;
  char templ[] = "/tmp/slate-view-XXXXXX";
  ASSERT_NE(::mkdtemp(templ), nullptr);
  const std::string dir = templ;
  ASSERT_EQ(
      ::system(("mkdir -p " + dir + "/mine " + dir + "/theirs " + dir + "/ro && echo s > " + dir +
                "/theirs/secret && echo k > " + dir + "/ro/kept && : > " + dir + "/file")
                   .c_str()),
      0);
  auto out = MakeOutputPipe();
  ASSERT_TRUE(out.ok());
  auto request = ShellRequest("cd / && ls -A " + dir +
                                  " | tr '\\n' ' '; echo; "
                                  "cat " +
                                  dir +
                                  "/theirs/secret 2>&1 | sed 's/.*: //'; "
                                  "echo w > " +
                                  dir +
                                  "/mine/new && echo wrote; "
                                  "cat " +
                                  dir + "/ro/kept; (echo x > " + dir +
                                  "/ro/kept) 2>&1 | sed 's/.*: //'; "
                                  "(: > " +
                                  dir + "/another) 2>&1 | sed 's/.*: //'",
                              {{out->write.get(), 1}});
  // A trailing slash and a double one are as good as the plain path.
  const MountView view{{dir + "/"},
                       {{dir + "//mine", false}, {dir + "/ro", true}, {dir + "/file", false}}};
  const std::string expected =
      "file mine ro \n"
      "No such file or directory\n"
      "wrote\n"
      "k\n"
      "Read-only file system\n"
      "Read-only file system\n";
  request.view = view;
  auto process = Spawn(request);
  ASSERT_TRUE(process.ok()) << process.error().message;
  out.value().write.Reset();
  EXPECT_EQ(ReadAll(out->read.get()), expected);
  EXPECT_EQ(WaitForExit(process.value()), ExitStatus::Exited(0));
  // The same view made once as a namespace, joined by two children in turn.
  auto mounts = MountNamespace::Make(view);
  ASSERT_TRUE(mounts.ok()) << mounts.error().message;
  for (int i = 0; i < 2; ++i) {
    auto again = MakeOutputPipe();
    ASSERT_TRUE(again.ok());
    request.fds = {{again->write.get(), 1}};
    request.view.reset();
    request.mounts = &*mounts;
    auto joined = Spawn(request);
    ASSERT_TRUE(joined.ok()) << joined.error().message;
    again.value().write.Reset();
    EXPECT_EQ(ReadAll(again->read.get()), expected);
    EXPECT_EQ(WaitForExit(joined.value()), ExitStatus::Exited(0));
  }
  // What the child wrote through a kept path is in ours; our view is whole.
  std::ifstream written(dir + "/mine/new");
  std::string line;
  EXPECT_TRUE(std::getline(written, line));
  EXPECT_EQ(line, "w");
  EXPECT_TRUE(std::ifstream(dir + "/theirs/secret").good());
  ASSERT_EQ(::system(("rm -rf " + dir).c_str()), 0);
}

// read_only_root: the whole view read-only but for the writable path, the
// kept path not marked read-only, /dev and /proc; what the host has
// read-only (the hidden tmpfs, a kept read-only path) stays so.
TEST_P(SpawnTest, AReadOnlyRootViewIsWritableOnlyWhereItSays) {
  if (auto why = ReadOnlyRootUnavailable()) GTEST_SKIP() << *why;
  char templ[] = "/tmp/slate-ro-XXXXXX";
  ASSERT_NE(::mkdtemp(templ), nullptr);
  const std::string dir = templ;
  ASSERT_EQ(::system(("mkdir -p " + dir + "/out " + dir + "/state/store/ro").c_str()), 0);
  // "name: result" per attempt: "ok" or the shell's reason.
  auto attempt = [](const std::string& name, const std::string& command) {
    return "echo \"" + name + ": $( (" + command + ") 2>&1 >/dev/null | sed 's/.*: //')\"; ";
  };
  const std::string script =
      attempt("out", "echo x > " + dir + "/out/x") + attempt("dir", "echo x > " + dir + "/x") +
      attempt("tmp", "echo x > /tmp/slate-ro-x") +
      attempt("store", "echo x > " + dir + "/state/store/x") +
      attempt("store/ro", "echo x > " + dir + "/state/store/ro/x") +
      attempt("hidden", "mkdir " + dir + "/state/other") +
      attempt("dev",
              "echo x > /dev/null && echo x > /dev/shm/slate-ro-$$ && rm /dev/shm/slate-ro-$$") +
      attempt("proc", "echo slate-ro > /proc/self/comm") + attempt("sys", "touch /sys/slate-ro");
  const std::string expected =
      "out: \n"
      "dir: Read-only file system\n"
      "tmp: Read-only file system\n"
      "store: \n"
      "store/ro: Read-only file system\n"
      "hidden: Read-only file system\n"
      "dev: \n"
      "proc: \n"
      "sys: Read-only file system\n";
  MountView view{{dir + "/state"},
                 {{dir + "/state/store", false}, {dir + "/state/store/ro", true}}};
  view.read_only_root = true;
  view.writable = {dir + "/out/"};
  auto mounts = MountNamespace::Make(view);
  ASSERT_TRUE(mounts.ok()) << mounts.error().message;
  // Made for this child, and joined as the runtime does.
  for (int joined = 0; joined < 2; ++joined) {
    auto out = MakeOutputPipe();
    ASSERT_TRUE(out.ok());
    auto request = ShellRequest(script, {{out->write.get(), 1}});
    if (joined == 1) {
      request.mounts = &*mounts;
    } else {
      request.view = view;
    }
    auto process = Spawn(request);
    ASSERT_TRUE(process.ok()) << process.error().message;
    out.value().write.Reset();
    EXPECT_EQ(ReadAll(out->read.get()), expected) << (joined == 1 ? "joined" : "made");
    EXPECT_EQ(WaitForExit(process.value()), ExitStatus::Exited(0));
  }
  EXPECT_TRUE(std::ifstream(dir + "/out/x").good());
  EXPECT_TRUE(std::ifstream(dir + "/state/store/x").good());
  // Ours stays writable.
  EXPECT_EQ(::system(("echo x > " + dir + "/x").c_str()), 0);
  // A writable path that is not there fails the view, naming it.
  view.writable = {dir + "/gone"};
  auto failed = MountNamespace::Make(view);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().message, "spawn mount view: keep writable (open_tree, move_mount) " +
                                        dir + "/gone: No such file or directory");
  ASSERT_EQ(::system(("rm -rf " + dir).c_str()), 0);
}

TEST_P(SpawnTest, AMountViewMustKeepPathsBelowWhatItHides) {
  auto request = Program({"/bin/true"});
  request.view = MountView{{"/tmp/a"}, {{"/tmp/b", false}}};
  auto process = Spawn(request);
  ASSERT_FALSE(process.ok());
  EXPECT_EQ(process.error().message, "spawn /bin/true: keep path /tmp/b is under no hidden one");
  request.view = MountView{{"tmp"}, {}};
  EXPECT_EQ(Spawn(request).error().message,
            "spawn /bin/true: hide path tmp is not an absolute path below /");
  if (MountViewsUnavailable()) return;
  const int before = testing::CountOpenFds();
  auto made = MountNamespace::Make(MountView{{"/tmp"}, {{"/tmp/slate-no-such-dir", false}}});
  ASSERT_FALSE(made.ok());
  EXPECT_EQ(made.error().message,
            "spawn mount view: keep /tmp/slate-no-such-dir: No such file or directory");
  // A view that fails in the child leaves no descriptor behind in ours.
  made = MountNamespace::Make(MountView{{"/proc/self"}, {{"/proc/self/fd", false}}});
  ASSERT_FALSE(made.ok());
  EXPECT_EQ(testing::CountOpenFds(), before);
}

INSTANTIATE_TEST_SUITE_P(Launchers, SpawnTest,
                         ::testing::Values(SpawnMethod::kClone3, SpawnMethod::kClone),
                         testing::LauncherName);

}  // namespace
}  // namespace slate::platform

namespace slate::platform {
namespace {

// What the kernel says of the child's identity and privileges.
std::string IdentityOf(SpawnRequest request) {
  auto out = MakeOutputPipe();
  EXPECT_TRUE(out.ok());
  request.argv = {
      "/bin/sh", "-c",
      "echo $(id -u) $(id -g) $(id -G); "
      "grep -E '^(CapEff|CapBnd|CapAmb|NoNewPrivs)' /proc/self/status | tr '\\t\\n' '  '"};
  request.fds = {{out->write.get(), 1}};
  auto process = Spawn(request);
  EXPECT_TRUE(process.ok()) << process.error().message;
  if (!process.ok()) return "";
  out->write.Reset();
  std::string text = ReadAll(out->read.get());
  EXPECT_EQ(WaitForExit(process.value()), ExitStatus::Exited(0));
  return text;
}

class PrivilegeTest : public SpawnTest {
 protected:
  void SetUp() override {
    SpawnTest::SetUp();
    if (auto why = CapabilityDropUnavailable()) GTEST_SKIP() << *why;
  }
};

TEST_P(PrivilegeTest, AChildRunsAsItsUserWithNoCapabilitiesAndNoNewPrivileges) {
  SpawnRequest request;
  request.identity = Identity{65534, 65533, {65532, 65531}};  // the kernel sorts them
  request.capabilities = 0;
  request.no_new_privs = true;
  EXPECT_EQ(IdentityOf(request),
            "65534 65533 65533 65531 65532\nCapEff: 0000000000000000 CapBnd: 0000000000000000 "
            "CapAmb: 0000000000000000 NoNewPrivs: 1 ");
}

TEST_P(PrivilegeTest, ACapabilityKeptForAnotherUserIsAmbient) {
  SpawnRequest request;
  request.identity = Identity{65534, 65534, {}};
  request.capabilities = std::uint64_t{1} << CAP_NET_BIND_SERVICE;
  EXPECT_EQ(IdentityOf(request),
            "65534 65534 65534\nCapEff: 0000000000000400 CapBnd: 0000000000000400 "
            "CapAmb: 0000000000000400 NoNewPrivs: 0 ");
}

TEST_P(PrivilegeTest, ARootChildHoldsOnlyTheCapabilitiesItKeeps) {
  SpawnRequest request;
  request.capabilities = std::uint64_t{1} << CAP_CHOWN;
  const std::string text = IdentityOf(request);
  EXPECT_NE(text.find("CapEff: 0000000000000001 CapBnd: 0000000000000001 CapAmb: "
                      "0000000000000000"),
            std::string::npos)
      << text;
  // Without a mask nothing changes: it has what we have.
  EXPECT_EQ(IdentityOf(SpawnRequest{}).find("CapBnd: 0000000000000000"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Launchers, PrivilegeTest,
                         ::testing::Values(SpawnMethod::kClone3, SpawnMethod::kClone),
                         testing::LauncherName);

}  // namespace
}  // namespace slate::platform

namespace slate::platform {
namespace {

// What `script` prints, run by /bin/sh as `request` says.
std::string ShellOutput(SpawnRequest request, const std::string& script) {
  auto out = MakeOutputPipe();
  EXPECT_TRUE(out.ok());
  request.argv = {"/bin/sh", "-c", script};
  request.fds = {{out->write.get(), 1}};
  auto process = Spawn(request);
  EXPECT_TRUE(process.ok()) << process.error().message;
  if (!process.ok()) return "";
  out->write.Reset();
  std::string text = ReadAll(out->read.get());
  EXPECT_EQ(WaitForExit(process.value()), ExitStatus::Exited(0));
  return text;
}

std::string OurNamespace(const char* kind) {
  char target[64] = {};
  const std::string link = std::string("/proc/self/ns/") + kind;
  EXPECT_GT(::readlink(link.c_str(), target, sizeof target - 1), 0);
  return std::string(target) + "\n";
}

// The child's network namespace, its interfaces (one a line) and how many
// times 127.0.0.1 is in its routing tables (twice once lo is up).
constexpr const char* kNetworkReport =
    "readlink /proc/self/ns/net; tail -n +3 /proc/self/net/dev | cut -d: -f1 | tr -d ' '; "
    "grep -c 127.0.0.1 /proc/self/net/fib_trie || true";

class NamespaceTest : public SpawnTest {};

TEST_P(NamespaceTest, NetworkNoneHasOnlyALoopbackThatIsDown) {
  if (auto why = NamespaceUnavailable(Namespace::kNetwork)) GTEST_SKIP() << *why;
  SpawnRequest request;
  request.network = SpawnRequest::Network::kNone;
  const std::string report = ShellOutput(request, kNetworkReport);
  const std::string ours = OurNamespace("net");
  ASSERT_TRUE(report.starts_with("net:[")) << report;
  EXPECT_NE(report.substr(0, ours.size()), ours);
  EXPECT_EQ(report.substr(report.find('\n') + 1), "lo\n0\n");
}

TEST_P(NamespaceTest, NetworkLoopbackBringsItsLoopbackUp) {
  if (auto why = NamespaceUnavailable(Namespace::kNetwork)) GTEST_SKIP() << *why;
  SpawnRequest request;
  request.network = SpawnRequest::Network::kLoopback;
  const std::string report = ShellOutput(request, kNetworkReport);
  EXPECT_NE(report.substr(0, OurNamespace("net").size()), OurNamespace("net"));
  EXPECT_EQ(report.substr(report.find('\n') + 1), "lo\n2\n");
}

TEST_P(NamespaceTest, PrivateIpcIsAnIpcNamespaceOfItsOwn) {
  if (auto why = NamespaceUnavailable(Namespace::kIpc)) GTEST_SKIP() << *why;
  SpawnRequest request;
  request.private_ipc = true;
  const std::string ns = ShellOutput(request, "readlink /proc/self/ns/ipc");
  EXPECT_TRUE(ns.starts_with("ipc:[")) << ns;
  EXPECT_NE(ns, OurNamespace("ipc"));
  // Without it: ours.
  EXPECT_EQ(ShellOutput(SpawnRequest{}, "readlink /proc/self/ns/ipc"), OurNamespace("ipc"));
}

// With pid_init: slate-init, built next to `slate` (src/init).
SpawnRequest WithInit(std::vector<std::string> argv) {
  SpawnRequest request;
  request.argv = std::move(argv);
  request.pid_init = SLATE_INIT_PATH;
  return request;
}

// The host pids of `pid`'s children.
std::vector<pid_t> ChildrenOf(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children");
  std::vector<pid_t> children;
  for (pid_t child = 0; in >> child;) children.push_back(child);
  return children;
}

// Whether a process of ours runs with exactly this command line.
bool AnyProcessRuns(const std::string& cmdline) {
  // Processes come and go meanwhile: no throwing increments, and read(2)
  // (a stream throws when a process ends while it is read).
  std::error_code ec;
  for (std::filesystem::directory_iterator it("/proc", ec), end; !ec && it != end;
       it.increment(ec)) {
    const Result<std::string> text = ReadFile(it->path() / "cmdline");
    if (text.ok() && *text == cmdline) return true;
  }
  return false;
}

TEST_P(NamespaceTest, APrivatePidNamespaceShowsOnlyItsOwnTree) {
  if (auto why = NamespaceUnavailable(Namespace::kPid)) GTEST_SKIP() << *why;
  // The init is PID 1; the program's pid is the init's on the host (unique
  // there too); its /proc has no pid but those of the namespace: the init,
  // itself, and ls, grep, sort and tr, numbered after it.
  auto out = MakeOutputPipe();
  ASSERT_TRUE(out.ok());
  auto request = WithInit(
      {"/bin/sh", "-c", "echo $$; ls /proc | grep -E '^[0-9]+$' | sort -n | tr '\\n' ' '"});
  request.fds = {{out->write.get(), 1}};
  auto process = Spawn(request);
  ASSERT_TRUE(process.ok()) << process.error().message;
  out->write.Reset();
  const std::string report = ReadAll(out->read.get());
  EXPECT_EQ(WaitForExit(*process), ExitStatus::Exited(0));
  const pid_t host_pid = process->pid();
  std::istringstream lines(report);
  pid_t program = 0;
  lines >> program;
  EXPECT_EQ(program, host_pid) << report;
  std::vector<pid_t> pids;
  for (pid_t pid = 0; lines >> pid;) pids.push_back(pid);
  ASSERT_GE(pids.size(), 3u) << report;
  EXPECT_EQ(pids[0], 1) << report;
  long pid_max = 0;
  std::ifstream("/proc/sys/kernel/pid_max") >> pid_max;
  if (host_pid + 10 >= pid_max) return;  // its next pids wrap around: not checked
  for (std::size_t i = 1; i < pids.size(); ++i) {
    EXPECT_GE(pids[i], host_pid) << report;
    EXPECT_LT(pids[i], host_pid + 10) << report;
  }
  // Its namespace is not ours; ours, unchanged, still shows our pid.
  EXPECT_NE(ShellOutput(WithInit({}), "readlink /proc/self/ns/pid"), OurNamespace("pid"));
  EXPECT_TRUE(std::filesystem::exists("/proc/" + std::to_string(::getpid())));
}

TEST_P(NamespaceTest, TheInitReportsHowItsProgramEnded) {
  if (auto why = NamespaceUnavailable(Namespace::kPid)) GTEST_SKIP() << *why;
  auto exits = Spawn(WithInit({"/bin/sh", "-c", "exit 7"}));
  ASSERT_TRUE(exits.ok()) << exits.error().message;
  EXPECT_TRUE(exits->has_init());
  EXPECT_EQ(WaitForExit(*exits), ExitStatus::Exited(7));
  auto crashes = Spawn(WithInit({"/bin/sh", "-c", "kill -SEGV $$"}));
  ASSERT_TRUE(crashes.ok()) << crashes.error().message;
  const auto status = WaitForExit(*crashes);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(status->killed());
  EXPECT_EQ(status->code, SIGSEGV) << status->Describe();
  // A program that cannot be executed is Spawn's error, as without an
  // init (which Spawn waits for), and leaves no child behind.
  auto missing = Spawn(WithInit({"/nonexistent/program", "arg"}));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message, "spawn /nonexistent/program: exec: No such file or directory");
  // An init that cannot be executed is named.
  auto no_init = WithInit({"/bin/true"});
  no_init.pid_init = "/nonexistent/slate-init";
  auto process = Spawn(no_init);
  ASSERT_FALSE(process.ok());
  EXPECT_EQ(process.error().message,
            "spawn /bin/true: exec its init /nonexistent/slate-init: No such file or directory");
  siginfo_t info{};
  EXPECT_EQ(waitid(P_ALL, 0, &info, WEXITED | WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD) << "a child was left behind";
}

TEST_P(NamespaceTest, SignalsReachTheProgramThroughItsInit) {
  if (auto why = NamespaceUnavailable(Namespace::kPid)) GTEST_SKIP() << *why;
  // sleep has no handler for SIGTERM: as PID 1 it would ignore it.
  auto process = Spawn(WithInit({"/bin/sleep", "100"}));
  ASSERT_TRUE(process.ok()) << process.error().message;
  std::vector<pid_t> program;
  ASSERT_TRUE(WaitUntil([&] { return !(program = ChildrenOf(process->pid())).empty(); }));
  // SIGSTOP cannot be passed on: it goes to the process group.
  ASSERT_TRUE(SignalProcess(*process, SIGSTOP).ok());
  ASSERT_TRUE(WaitUntil([&] {
    std::ifstream stat("/proc/" + std::to_string(program[0]) + "/stat");
    std::string line;
    std::getline(stat, line);
    return line.find(") T ") != std::string::npos;
  })) << "the program did not stop";
  ASSERT_TRUE(KillTree(*process, SIGCONT).ok());
  ASSERT_TRUE(SignalProcess(*process, SIGTERM).ok());
  EXPECT_EQ(WaitForExit(*process), ExitStatus::Killed(SIGTERM, false));
  // SIGKILL ends the init, and the kernel ends the namespace with it.
  auto killed = Spawn(WithInit({"/bin/sleep", "100"}));
  ASSERT_TRUE(killed.ok()) << killed.error().message;
  ASSERT_TRUE(KillTree(*killed, SIGKILL).ok());
  EXPECT_EQ(WaitForExit(*killed), ExitStatus::Killed(SIGKILL, false));
}

TEST_P(NamespaceTest, NothingTheProgramStartedOutlivesIt) {
  if (auto why = NamespaceUnavailable(Namespace::kPid)) GTEST_SKIP() << *why;
  // A daemon left behind, out of the program's process group: orphaned to
  // the init, which ends it with the namespace once the program is gone.
  // The program ends when the test closes its stdin, once it saw the daemon.
  using namespace std::string_literals;
  const std::string marker = "/bin/sleep\0"s + std::to_string(::getpid()) + ".25\0"s;
  int in[2];
  ASSERT_EQ(::pipe2(in, O_CLOEXEC), 0);
  UniqueFd in_read(in[0]);
  UniqueFd in_write(in[1]);
  auto request =
      WithInit({"/bin/sh", "-c",
                "setsid /bin/sleep " + std::to_string(::getpid()) + ".25 & read line; exit 0"});
  request.fds = {{in_read.get(), 0}};
  auto process = Spawn(request);
  ASSERT_TRUE(process.ok()) << process.error().message;
  in_read.Reset();
  ASSERT_TRUE(WaitUntil([&] { return AnyProcessRuns(marker); }));
  in_write.Reset();
  EXPECT_EQ(WaitForExit(*process), ExitStatus::Exited(0));
  EXPECT_FALSE(AnyProcessRuns(marker));
}

TEST_P(NamespaceTest, APidNamespaceInASharedViewKeepsItsProcToItself) {
  if (auto why = NamespaceUnavailable(Namespace::kPid)) GTEST_SKIP() << *why;
  MountView view;
  view.hide = {"/mnt"};
  auto shared = MountNamespace::Make(view);
  ASSERT_TRUE(shared.ok()) << shared.error().message;
  auto request = WithInit({});
  request.mounts = &*shared;
  EXPECT_EQ(ShellOutput(request, "test -d /proc/" + std::to_string(::getpid()) + " || echo hidden"),
            "hidden\n");
  // A later child of the same view, in our PID namespace, sees ours.
  SpawnRequest plain;
  plain.mounts = &*shared;
  EXPECT_EQ(ShellOutput(plain, "test -d /proc/" + std::to_string(::getpid()) + " && echo ours"),
            "ours\n");
}

class OwnDomainTest : public SpawnTest {};

// What a shell sees of each process through /proc/PID/root: "NAME:ok" or
// "NAME:no" for each NAME=PID in `targets`, "self" and a child of its own.
std::string ReachFrom(SpawnRequest probe, const std::string& targets) {
  return ShellOutput(std::move(probe),
                     "sleep 100 & child=$!; self=$$; " + targets +
                         "; for name in self child ${names}; do eval pid=\\$$name; "
                         "if ls /proc/$pid/root/ >/dev/null 2>&1; then echo $name:ok; "
                         "else echo $name:no; fi; done | tr '\\n' ' '; kill $child");
}

TEST_P(OwnDomainTest, AChildInADomainOfItsOwnReachesIntoNoProcessOutsideIt) {
  if (auto why = OwnDomainUnavailable(false)) {
    ASSERT_EQ(std::getenv("SLATE_REQUIRE_LANDLOCK"), nullptr) << *why;
    GTEST_SKIP() << *why;
  }
  SpawnRequest sealed = Program({"/bin/sleep", "100"});
  sealed.own_domain = true;
  auto other = Spawn(sealed);
  ASSERT_TRUE(other.ok()) << other.error().message;
  auto plain = Spawn(Program({"/bin/sleep", "100"}));
  ASSERT_TRUE(plain.ok()) << plain.error().message;
  const std::string targets = "other=" + std::to_string(other->pid()) +
                              "; plain=" + std::to_string(plain->pid()) +
                              "; us=" + std::to_string(::getpid()) + "; names='other plain us'";
  // In a domain of its own: itself and what it forks, nothing else; not
  // another child in a domain of its own, nor one in none, nor us.
  SpawnRequest probe;
  probe.own_domain = true;
  EXPECT_EQ(ReachFrom(probe, targets), "self:ok child:ok other:no plain:no us:no ");
  // Without one, the same user's processes are open to it, the other
  // child's included.
  EXPECT_EQ(ReachFrom(SpawnRequest(), targets), "self:ok child:ok other:ok plain:ok us:ok ");
  // We, in no domain, reach into it.
  std::error_code ec;
  EXPECT_TRUE(
      std::filesystem::is_directory("/proc/" + std::to_string(other->pid()) + "/root/proc", ec))
      << ec.message();
  ASSERT_TRUE(SignalProcess(*other, SIGKILL).ok());
  ASSERT_TRUE(SignalProcess(*plain, SIGKILL).ok());
  EXPECT_TRUE(WaitForExit(*other).has_value());
  EXPECT_TRUE(WaitForExit(*plain).has_value());
}

TEST_P(OwnDomainTest, ItStillRenamesAndLinksAcrossDirectoriesButCannotMount) {
  if (auto why = OwnDomainUnavailable(false)) {
    ASSERT_EQ(std::getenv("SLATE_REQUIRE_LANDLOCK"), nullptr) << *why;
    GTEST_SKIP() << *why;
  }
  SpawnRequest probe;
  probe.own_domain = true;
  // The same inode after: rename(2) and link(2), not mv's fallback to a
  // copy (on EXDEV).
  EXPECT_EQ(ShellOutput(probe,
                        "d=$(mktemp -d) && mkdir $d/a $d/b && touch $d/a/f && "
                        "i=$(stat -c %i $d/a/f) && mv $d/a/f $d/b/f && ln $d/b/f $d/a/g && "
                        "mv $d/a $d/b/ && test \"$(stat -c %i $d/b/a/g)\" = \"$i\" && "
                        "echo same inode; rm -r $d; "
                        "unshare -m mount -t tmpfs none /mnt 2>/dev/null || echo no mount"),
            "same inode\nno mount\n");
  // The same without a domain mounts (in a mount namespace of its own).
  EXPECT_EQ(ShellOutput(SpawnRequest(), "unshare -m mount -t tmpfs none /mnt && echo mounted"),
            "mounted\n");
}

INSTANTIATE_TEST_SUITE_P(Launchers, OwnDomainTest,
                         ::testing::Values(SpawnMethod::kClone3, SpawnMethod::kClone),
                         testing::LauncherName);

INSTANTIATE_TEST_SUITE_P(Launchers, NamespaceTest,
                         ::testing::Values(SpawnMethod::kClone3, SpawnMethod::kClone),
                         testing::LauncherName);

}  // namespace
}  // namespace slate::platform
