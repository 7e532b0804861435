#include "platform/notify_socket.h"

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "platform/spawn.h"
#include "platform/test_support.h"

namespace slate::platform {
namespace {

using testing::WaitForExit;

TEST(ParseNotifyPayload, KnownAssignments) {
  const NotifyMessage m =
      ParseNotifyPayload("READY=1\nSTATUS=warming up\nWATCHDOG=1\nMAINPID=42\nERRNO=5\n");
  EXPECT_TRUE(m.ready);
  EXPECT_TRUE(m.watchdog);
  EXPECT_FALSE(m.stopping);
  EXPECT_EQ(m.status, "warming up");
  EXPECT_EQ(m.main_pid, 42);
  EXPECT_EQ(m.other, std::vector<std::string>{"ERRNO=5"});
  EXPECT_FALSE(m.malformed);
}

TEST(ParseNotifyPayload, StoppingReloadingAndNoTrailingNewline) {
  const NotifyMessage m = ParseNotifyPayload("STOPPING=1\n\nRELOADING=1");
  EXPECT_TRUE(m.stopping);
  EXPECT_TRUE(m.reloading);
  EXPECT_FALSE(m.malformed);
}

TEST(ParseNotifyPayload, GarbageIsFlaggedAndTheRestKept) {
  NotifyMessage m = ParseNotifyPayload("hello\nREADY=1\n=x\n");
  EXPECT_TRUE(m.malformed);
  EXPECT_TRUE(m.ready);
  m = ParseNotifyPayload("MAINPID=abc");
  EXPECT_TRUE(m.malformed);
  EXPECT_FALSE(m.main_pid.has_value());
  m = ParseNotifyPayload(std::string_view("READY=1\0x", 9));
  EXPECT_TRUE(m.malformed);
  EXPECT_FALSE(m.ready);
  m = ParseNotifyPayload("READY=0\n");
  EXPECT_FALSE(m.ready);
  EXPECT_EQ(m.other, std::vector<std::string>{"READY=0"});
}

class NotifySocketTest : public testing::PlatformTest {
 protected:
  void SetUp() override {
    PlatformTest::SetUp();
    char tmpl[] = "/tmp/slate-notify-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/notify.sock";
  }
  void TearDown() override {
    ::rmdir(dir_.c_str());
    PlatformTest::TearDown();
  }

  // Waits (bounded) for a datagram and returns it.
  std::optional<NotifyMessage> Next(NotifySocket& socket) {
    pollfd p{socket.fd(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(testing::kPatience.count())) != 1) {
      return std::nullopt;
    }
    auto message = socket.Receive();
    EXPECT_TRUE(message.ok());
    return message.ok() ? *message : std::nullopt;
  }

  std::string dir_;
  std::string path_;
};

// Sends `payload` to `path` from a forked child, with `fds` attached, and
// returns the child's pid once it has exited. Only async-signal-safe calls
// run in the child.
pid_t SendFromChild(const std::string& path, const std::string& payload,
                    const std::vector<int>& fds = {}) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.c_str(), path.size());
  std::vector<char> control(CMSG_SPACE(sizeof(int) * fds.size()));
  iovec io{const_cast<char*>(payload.data()), payload.size()};
  msghdr header{};
  header.msg_name = &address;
  header.msg_namelen = sizeof address;
  header.msg_iov = &io;
  header.msg_iovlen = 1;
  if (!fds.empty()) {
    header.msg_control = control.data();
    header.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&header);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    _exit(::sendmsg(fd, &header, 0) == static_cast<ssize_t>(payload.size()) ? 0 : 1);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "sendmsg failed in the child";
  return pid;
}

TEST_F(NotifySocketTest, ReceivesReadyAndWatchdogWithTheSenderPid) {
  auto socket = NotifySocket::Bind(path_);
  ASSERT_TRUE(socket.ok()) << socket.error().message;
  auto empty = socket.value().Receive();
  ASSERT_TRUE(empty.ok());
  EXPECT_FALSE(empty->has_value()) << "an empty socket must not block or invent data";

  const pid_t sender = SendFromChild(path_, "READY=1\nSTATUS=up");
  const pid_t second = SendFromChild(path_, "WATCHDOG=1");
  auto ready = Next(socket.value());
  ASSERT_TRUE(ready.has_value());
  EXPECT_TRUE(ready->ready);
  EXPECT_EQ(ready->status, "up");
  EXPECT_EQ(ready->pid, sender);
  EXPECT_EQ(ready->uid, ::getuid());
  auto watchdog = Next(socket.value());
  ASSERT_TRUE(watchdog.has_value());
  EXPECT_TRUE(watchdog->watchdog);
  EXPECT_EQ(watchdog->pid, second);
}

// systemd-notify, run by a component's shell script. It then waits on a
// BARRIER=1 datagram whose descriptor the receiver closes: Receive() does.
TEST_F(NotifySocketTest, SystemdNotifyFromASpawnedScriptIsUnderstood) {
  if (::access("/usr/bin/systemd-notify", X_OK) != 0) {
    GTEST_SKIP() << "systemd-notify is not installed";
  }
  auto socket = NotifySocket::Bind(path_);
  ASSERT_TRUE(socket.ok()) << socket.error().message;
  auto request = testing::ShellRequest("/usr/bin/systemd-notify --ready --status=hello");
  request.env.push_back("NOTIFY_SOCKET=" + path_);
  auto process = Spawn(request);
  ASSERT_TRUE(process.ok()) << process.error().message;
  auto ready = Next(socket.value());
  ASSERT_TRUE(ready.has_value());
  EXPECT_TRUE(ready->ready);
  EXPECT_EQ(ready->status, "hello");
  if (::getuid() == 0) {
    // Privileged, it sends in the name of its parent, our child: it may be
    // gone by the time the datagram is read, its parent is not.
    EXPECT_EQ(ready->pid, process->pid());
  } else {
    EXPECT_GT(ready->pid, 0);
  }
  auto barrier = Next(socket.value());
  ASSERT_TRUE(barrier.has_value());
  EXPECT_EQ(barrier->other, std::vector<std::string>{"BARRIER=1"});
  EXPECT_EQ(barrier->fds_discarded, 1u);
  EXPECT_EQ(WaitForExit(process.value()), ExitStatus::Exited(0));
}

TEST_F(NotifySocketTest, PassedDescriptorsAreClosedNotLeaked) {
  auto socket = NotifySocket::Bind(path_);
  ASSERT_TRUE(socket.ok());
  const int before = testing::CountOpenFds();
  std::vector<int> fds(20, STDIN_FILENO);  // more than the control buffer holds
  SendFromChild(path_, "FDSTORE=1\n", fds);
  SendFromChild(path_, "READY=1\n", {STDIN_FILENO, STDOUT_FILENO});
  auto flood = Next(socket.value());
  ASSERT_TRUE(flood.has_value());
  EXPECT_TRUE(flood->malformed) << "control data was truncated";
  EXPECT_GT(flood->fds_discarded, 0u);
  auto ready = Next(socket.value());
  ASSERT_TRUE(ready.has_value());
  EXPECT_TRUE(ready->ready);
  EXPECT_EQ(ready->fds_discarded, 2u);
  EXPECT_EQ(testing::CountOpenFds(), before);
}

TEST_F(NotifySocketTest, OversizedDatagramIsRejectedWhole) {
  auto socket = NotifySocket::Bind(path_);
  ASSERT_TRUE(socket.ok());
  SendFromChild(path_, "READY=1\n" + std::string(kMaxNotifyDatagram, 'x'));
  auto message = Next(socket.value());
  ASSERT_TRUE(message.has_value());
  EXPECT_TRUE(message->malformed);
  EXPECT_FALSE(message->ready);
}

TEST_F(NotifySocketTest, StaleSocketIsReplacedOtherFilesAreNot) {
  {
    // What a crashed runtime leaves behind: the file of a socket now closed.
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, path_.c_str(), path_.size());
    const int stale = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ASSERT_EQ(::bind(stale, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    ::close(stale);
    auto socket = NotifySocket::Bind(path_);
    ASSERT_TRUE(socket.ok()) << socket.error().message;
  }
  struct stat st;
  EXPECT_NE(::stat(path_.c_str(), &st), 0) << "socket file not removed";

  const int file = ::open(path_.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
  ASSERT_GE(file, 0);
  ::close(file);
  EXPECT_FALSE(NotifySocket::Bind(path_).ok());
  ::unlink(path_.c_str());
}

TEST_F(NotifySocketTest, OverlongPathIsAnError) {
  EXPECT_FALSE(NotifySocket::Bind(dir_ + "/" + std::string(200, 'n')).ok());
  EXPECT_FALSE(NotifySocket::Bind("").ok());
}

}  // namespace
}  // namespace slate::platform
