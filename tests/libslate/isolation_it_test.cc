// Isolation beyond users and capabilities, through the real runtime:
// `seccomp` (a libslate component works under the default profile; a call
// outside it kills the component with SIGSYS, and the end is its own),
// `network` and `ipc` namespaces, a read-only root, and what the runtime
// does where the host cannot give them (refuse, or run without what is
// marked optional).
#include <sstream>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gmock/gmock.h>

#include "../runtime/system_under_test.h"
#include "platform/spawn.h"

namespace slate::testing {
namespace {

using ::testing::HasSubstr;

// "Seccomp:\t2" of /proc/PID/status: the mode it runs under (2: a filter).
std::string SeccompMode(int pid) {
  std::istringstream in(ProcFile(pid, "status"));
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("Seccomp:")) return line.substr(line.find_first_not_of(" \t", 8));
  }
  return "?";
}

TEST(Seccomp, ALibslateComponentWorksUnderTheDefaultProfile) {
  // Channels (futexes, shared memory), the store (LMDB), sd_notify and
  // heartbeats, and a standby spare promoted by SCM_RIGHTS: all filtered,
  // and the latter two in network, IPC and PID namespaces of their own
  // (which none of it needs; with a PID namespace, slate-init runs first,
  // under the same filter).
  SystemUnderTest sut(R"(
[supervisor.main]
children = ["p", "c", "n"]
intensity = 10
[component.p]
exec = ["{peer}", "produce", "--count", "300", "--pace-us", "2000"]
ready = "notify"
seccomp = "default"
[component.c]
exec = ["{peer}", "consume", "--out", "c.out"]
ready = "notify"
heartbeat = "2s"
standby = 1
seccomp = "default"
network = "none"
ipc = "private"
pid = "private"
[component.n]
exec = ["{peer}", "count", "--out", "n.out", "--pace-us", "5000"]
ready = "notify"
state = { size = "16MiB", checkpoint_every = "200ms" }
seccomp = "default"
network = "loopback"
ipc = "private"
pid = "private"
[channel.stream]
from = "p"
to = "c"
)");
  sut.StartReady();
  for (const char* name : {"p", "c", "n"}) {
    EXPECT_EQ(SeccompMode(sut.Node(name)["pid"].get<int>()), "2") << name;
  }
  // A failure of the consumer promotes its spare, which gets the channel
  // and goes on where its predecessor stopped.
  ASSERT_TRUE(SystemUnderTest::WaitUntil(
      [&] {
        Json c = sut.Node("c");
        return c.contains("standby") && !c["standby"].empty() && c["standby"][0]["parked"] == true;
      },
      milliseconds(5000)))
      << sut.Status().dump();
  ASSERT_EQ(sut.Cli({"kill", "c"}).code, 0);
  ASSERT_TRUE(sut.WaitEvent("standby_promoted", "c")) << sut.RunLog();
  const std::string out = (fs::path(sut.dir()) / "c.out").string();
  EXPECT_TRUE(SystemUnderTest::WaitUntil([&] { return ReadNumbers(out).size() >= 300; },
                                         milliseconds(15000)));
  std::vector<std::uint64_t> ids = ReadNumbers(out);
  ASSERT_EQ(ids.size(), 300u);
  for (std::size_t i = 0; i < ids.size(); ++i) ASSERT_EQ(ids[i], i + 1) << "at " << i;
  // The counter commits and checkpoints under its filter.
  const std::string counts = (fs::path(sut.dir()) / "n.out").string();
  EXPECT_TRUE(SystemUnderTest::WaitUntil([&] { return ReadNumbers(counts).size() >= 50; },
                                         milliseconds(10000)));
  EXPECT_TRUE(sut.WaitEvent("state_checkpointed", "n")) << sut.RunLog();
  // Only the kill we asked for ended anything.
  EXPECT_EQ(sut.Events("child_exited").size(), 1u) << sut.RunLog();
  EXPECT_EQ(sut.Cli({"shutdown"}).code, 0);
  EXPECT_EQ(sut.Wait(), 0);
}

TEST(Seccomp, ACallOutsideTheProfileKillsTheComponentWithSigsys) {
  // `reach u:` calls umount2, which the default profile leaves out.
  SystemUnderTest sut(R"(
[supervisor.main]
children = ["bystander", "v", "e"]
intensity = 10
[component.bystander]
exec = ["{peer}", "count", "--out", "b.out", "--pace-us", "5000"]
ready = "notify"
state = { size = "16MiB" }
seccomp = "default"
[component.v]
exec = ["{peer}", "reach", "u:run"]
restart = "temporary"
seccomp = "default"
[component.e]
exec = ["{peer}", "reach", "u:run"]
ready = "notify"
seccomp = { profile = "default", action = "errno" }
)");
  sut.StartReady();
  ASSERT_TRUE(sut.WaitEvent("child_exited", "v")) << sut.RunLog();
  const Json end = sut.Events("child_exited", "v")[0];
  EXPECT_EQ(end["reason"]["kind"], "signal") << end.dump();
  EXPECT_EQ(end["reason"]["signal"], SIGSYS) << end.dump();
  EXPECT_THAT(sut.Cli({"events"}).out, HasSubstr("\"signal\":31"));
  // With action = "errno" the call fails and the component goes on.
  ASSERT_TRUE(SystemUnderTest::WaitUntil(
      [&] { return sut.ComponentLog("e").find("reach done") != std::string::npos; },
      milliseconds(5000)));
  EXPECT_THAT(sut.ComponentLog("e"), HasSubstr("reach u:run: Operation not permitted"));
  // Nothing else ended.
  EXPECT_EQ(sut.Events("child_exited").size(), 1u) << sut.RunLog();
  EXPECT_EQ(sut.Node("e")["state"], "running");
  EXPECT_EQ(sut.Node("bystander")["state"], "running");
  EXPECT_EQ(sut.Cli({"shutdown"}).code, 0);
  EXPECT_EQ(sut.Wait(), 0);
}

// A TCP listener of the test on 127.0.0.1, and its port.
struct Listener {
  int fd = -1;
  int port = 0;
  Listener() {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 && ::listen(fd, 16) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port = ntohs(addr.sin_port);
    }
  }
  ~Listener() { ::close(fd); }
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;
};

// A System V shared memory segment of the test, removed at the end.
struct SharedSegment {
  key_t key = static_cast<key_t>(0x51a70000 | (::getpid() & 0xffff));
  int id = ::shmget(key, 4096, IPC_CREAT | IPC_EXCL | 0600);
  ~SharedSegment() {
    if (id >= 0) ::shmctl(id, IPC_RMID, nullptr);
  }
  SharedSegment() = default;
  SharedSegment(const SharedSegment&) = delete;
  SharedSegment& operator=(const SharedSegment&) = delete;
};

TEST(Namespaces, NetworkAndIpcKeepAComponentFromTheHost) {
  Listener listener;
  ASSERT_GT(listener.port, 0);
  SharedSegment segment;
  ASSERT_GE(segment.id, 0) << std::strerror(errno);
  const std::string args =
      fmt::format(R"("isolation", "--port", "{}", "--shm-key", "{}")", listener.port, segment.key);
  SystemUnderTest sut(fmt::format(R"(
[supervisor.main]
children = ["host", "none", "loopback", "ipc"]
[component.host]
exec = ["{{peer}}", {0}]
[component.none]
exec = ["{{peer}}", {0}]
ready = "notify"
network = "none"
[component.loopback]
exec = ["{{peer}}", {0}]
ready = "notify"
network = "loopback"
seccomp = "default"
[component.ipc]
exec = ["{{peer}}", {0}]
ipc = "private"
)",
                                  args));
  sut.StartReady();
  for (const char* name : {"host", "none", "loopback", "ipc"}) {
    ASSERT_TRUE(SystemUnderTest::WaitUntil(
        [&] { return sut.ComponentLog(name).find("isolation done") != std::string::npos; },
        milliseconds(5000)))
        << name << ": " << sut.ComponentLog(name);
  }
  // The host's network and IPC, as a control.
  const std::string host = sut.ComponentLog("host");
  EXPECT_THAT(host, HasSubstr("host: ok\n"));
  EXPECT_THAT(host, HasSubstr("shm: ok\n"));
  // No interface but a loopback that is down: no address at all.
  const std::string none = sut.ComponentLog("none");
  EXPECT_THAT(none, HasSubstr("interfaces: lo:down\n"));
  EXPECT_THAT(none, HasSubstr("host: Network is unreachable\n"));
  EXPECT_THAT(none, HasSubstr("self: Network is unreachable\n"));
  EXPECT_THAT(none, HasSubstr("shm: ok\n"));  // its IPC is the host's
  // Its own loopback, up: itself but not the host's listener.
  const std::string loopback = sut.ComponentLog("loopback");
  EXPECT_THAT(loopback, HasSubstr("interfaces: lo:up\n"));
  EXPECT_THAT(loopback, HasSubstr("host: Connection refused\n"));
  EXPECT_THAT(loopback, HasSubstr("self: ok\n"));
  // Its own IPC namespace: the test's segment is not there.
  const std::string ipc = sut.ComponentLog("ipc");
  EXPECT_THAT(ipc, HasSubstr("shm: No such file or directory\n"));
  EXPECT_THAT(ipc, HasSubstr("host: ok\n"));
  EXPECT_EQ(sut.Cli({"shutdown"}).code, 0);
  EXPECT_EQ(sut.Wait(), 0);
}

// read_only_root: the view is read-only but for `writable`, the store and
// the notify socket (and /dev, /proc). A shell tries to write; a libslate
// counter commits to its store, checkpoints and is ready through notify,
// before and after a restart (which joins the same view).
TEST(ReadOnlyRoot, AComponentWritesOnlyWhereItMayAndItsStoreStillCommits) {
  SystemUnderTest sut(R"(
[supervisor.main]
children = ["sh", "n"]
intensity = 10
[component.sh]
exec = ["/bin/sh", "-c", "for t in out/x x /tmp/slate-ro-it; do echo \"$t: $( (echo x > $t) 2>&1 >/dev/null | sed 's/.*: //')\"; done; echo tried; exec sleep 1000"]
read_only_root = true
writable = ["out"]
[component.n]
exec = ["{peer}", "count", "--out", "out/count.out", "--pace-us", "5000"]
ready = "notify"
heartbeat = "2s"
state = { size = "16MiB", checkpoint_every = "200ms" }
read_only_root = { enabled = true }
writable = ["out"]
)");
  fs::create_directories(fs::path(sut.dir()) / "out");
  sut.StartReady();
  ASSERT_TRUE(SystemUnderTest::WaitUntil(
      [&] { return sut.ComponentLog("sh").find("tried") != std::string::npos; },
      milliseconds(5000)))
      << sut.ComponentLog("sh");
  const std::string sh = sut.ComponentLog("sh");
  EXPECT_THAT(sh, HasSubstr("out/x: \n"));
  EXPECT_THAT(sh, HasSubstr("\nx: Read-only file system\n"));
  EXPECT_THAT(sh, HasSubstr("/tmp/slate-ro-it: Read-only file system\n"));
  EXPECT_TRUE(fs::exists(fs::path(sut.dir()) / "out" / "x"));
  EXPECT_FALSE(fs::exists(fs::path(sut.dir()) / "x"));
  EXPECT_FALSE(fs::exists("/tmp/slate-ro-it"));
  const std::string counts = (fs::path(sut.dir()) / "out" / "count.out").string();
  EXPECT_TRUE(SystemUnderTest::WaitUntil([&] { return ReadNumbers(counts).size() >= 50; },
                                         milliseconds(10000)));
  EXPECT_TRUE(sut.WaitEvent("state_checkpointed", "n")) << sut.RunLog();
  // Restarted, it goes on from what it committed.
  ASSERT_EQ(sut.Cli({"kill", "n"}).code, 0);
  const std::size_t before = ReadNumbers(counts).size();
  EXPECT_TRUE(SystemUnderTest::WaitUntil([&] { return ReadNumbers(counts).size() >= before + 50; },
                                         milliseconds(10000)))
      << sut.RunLog();
  std::vector<std::uint64_t> ids = ReadNumbers(counts);
  for (std::size_t i = 0; i < ids.size(); ++i) ASSERT_EQ(ids[i], i + 1) << "at " << i;
  EXPECT_EQ(sut.Node("n")["state"], "running") << sut.Status().dump();
  EXPECT_EQ(sut.Cli({"shutdown"}).code, 0);
  EXPECT_EQ(sut.Wait(), 0);
}

// `slate run` as an unprivileged user (nobody), who cannot make network
// namespaces: what the runtime says, and does, at start.
CommandOutput RunAsNobody(SystemUnderTest& sut) {
  const fs::path state = sut.state_dir();
  fs::create_directories(state);
  EXPECT_EQ(::chown(state.c_str(), 65534, 65534), 0);
  return Command({"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                  "--inh-caps=-all", "--bounding-set=-all", kSlate, "run", sut.file()});
}

TEST(Namespaces, APrivatePidNamespaceStopsAndFailsAsTheHostsDoes) {
  if (auto why = platform::NamespaceUnavailable(platform::Namespace::kPid)) GTEST_SKIP() << *why;
  // sleep has no handler for SIGTERM: as PID 1 of its namespace it would
  // ignore the stop, which would take its whole `shutdown`. slate-init is
  // PID 1 (under the default seccomp profile, too), and sleep gets the
  // stop's SIGTERM from the process group. What only the init's passing on
  // delivers is `slate kill`'s signal, sent to the init alone: the SEGV.
  SystemUnderTest sut(R"(
[supervisor.main]
children = ["sleeper", "crasher", "looker"]
intensity = 10
[component.sleeper]
exec = ["/bin/sleep", "1000"]
shutdown = "20s"
pid = "private"
seccomp = "default"
[component.crasher]
exec = ["/bin/sleep", "1000"]
pid = "private"
[component.looker]
exec = ["/bin/sh", "-c", "echo pid $$; echo procs $(ls /proc | grep -c '^[0-9]'); exec sleep 1000"]
pid = "private"
)");
  sut.StartReady();
  ASSERT_TRUE(SystemUnderTest::WaitUntil(
      [&] { return sut.ComponentLog("looker").find("procs") != std::string::npos; },
      milliseconds(5000)));
  // Its pid is the one status shows (its init's on the host), and its /proc
  // shows its init, itself and what it ran.
  const std::string looker = sut.ComponentLog("looker");
  EXPECT_THAT(looker, HasSubstr(fmt::format("pid {}\n", sut.Node("looker")["pid"].get<int>())));
  const auto procs = std::stoi(looker.substr(looker.find("procs ") + 6));
  EXPECT_GE(procs, 2) << looker;
  EXPECT_LE(procs, 6) << looker;

  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(sut.Cli({"stop", "sleeper"}).code, 0);
  ASSERT_TRUE(sut.WaitEvent("child_terminated", "sleeper", milliseconds(5000))) << sut.RunLog();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, milliseconds(3000))
      << "the stop waited for its SIGKILL";
  const Json stopped = sut.Events("child_terminated", "sleeper")[0];
  EXPECT_EQ(stopped["reason"]["kind"], "shutdown") << stopped.dump();

  // A fault through the init ends the program with it, and the end is
  // reported as the program's: signal 11, not the init's exit code.
  ASSERT_EQ(sut.Cli({"kill", "crasher", "-s", "SEGV"}).code, 0);
  ASSERT_TRUE(sut.WaitEvent("child_exited", "crasher")) << sut.RunLog();
  const Json end = sut.Events("child_exited", "crasher")[0];
  EXPECT_EQ(end["reason"]["kind"], "signal") << end.dump();
  EXPECT_EQ(end["reason"]["signal"], SIGSEGV) << end.dump();
  ASSERT_TRUE(sut.WaitEvent("child_ready", "crasher", milliseconds(5000), 2)) << sut.RunLog();
  EXPECT_EQ(sut.Cli({"shutdown"}).code, 0);
  EXPECT_EQ(sut.Wait(), 0);
}

TEST(Namespaces, AHostWithoutThemRefusesToStartUnlessTheyAreOptional) {
  if (::geteuid() != 0 || ::access("/usr/bin/setpriv", X_OK) != 0) {
    GTEST_SKIP() << "needs root and setpriv, to run the runtime as nobody";
  }
  SystemUnderTest refused(R"(
[supervisor.main]
children = ["a"]
[component.a]
exec = ["/bin/true"]
network = "none"
)");
  CommandOutput r = RunAsNobody(refused);
  EXPECT_EQ(r.code, 1) << r.out;  // a runtime error, as a user missing on the host is
  EXPECT_THAT(r.out, HasSubstr("component a: network = \"none\" is not available on this host: no "
                               "network namespaces for components"));
  EXPECT_THAT(r.out, HasSubstr("to run it without, write network = { mode = \"none\", optional = "
                               "true }"));

  // Marked optional: it runs without, and the runtime says so. The
  // component ends at once, and with it (significant) the system.
  SystemUnderTest optional(R"(
[supervisor.main]
children = ["a"]
auto_shutdown = "any_significant"
[component.a]
exec = ["/bin/sh", "-c", "readlink /proc/self/ns/net"]
restart = "transient"
significant = true
network = { mode = "loopback", optional = true }
ipc = { mode = "private", optional = true }
pid = { mode = "private", optional = true }
seccomp = { profile = "default", optional = true }
)");
  r = RunAsNobody(optional);
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("component a: network = \"loopback\" is not available on this "
                               "host: no network namespaces for components"));
  EXPECT_THAT(r.out, HasSubstr("it runs without it (optional)"));
  EXPECT_THAT(r.out, HasSubstr("component a: ipc = \"private\" is not available"));
  EXPECT_THAT(r.out, HasSubstr("component a: pid = \"private\" is not available on this host: "
                               "no PID namespaces for components"));
  // Seccomp needs no privilege: it is not left out.
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("seccomp = \"default\" is not available")));
  char ours[64] = {};
  ASSERT_GT(::readlink("/proc/self/ns/net", ours, sizeof ours - 1), 0);
  EXPECT_THAT(optional.ComponentLog("a"), HasSubstr(ours));
}

}  // namespace
}  // namespace slate::testing
