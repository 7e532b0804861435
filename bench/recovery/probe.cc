// The probe: a stand-in component that says when it began. As its first
// act (a constructor, before main and before anything else of ours) it reads
// CLOCK_MONOTONIC and appends "<ns> <pid>\n" to the file named by
// $PROBE_FILE, in one write so a reader never sees half a line; then it
// sleeps until killed. Without $PROBE_FILE it only sleeps (bench/scale).
//
// Started as a Clean Slate standby spare ($SLATE_STANDBY names its
// activation socket), it first does what slate_await_activation() does:
// says it is parked and blocks until the runtime promotes it; the stamp is
// then the first thing it does as the component. Speaking the protocol
// itself keeps it the same small program for every contender.
//
// It is linked statically where the toolchain can (no dynamic loader on the
// path from execve to the timestamp) and uses libc only, no libslate.
// It dies with its parent (PR_SET_PDEATHSIG), so a benchmark that is itself
// killed leaves no probe behind.
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <ctime>

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

namespace {

pid_t g_parent = 0;

// Decimal digits of v at the end of buf; returns where they begin.
char* Digits(std::uint64_t v, char* end) {
  do {
    *--end = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  return end;
}

// slate_await_activation, as libslate does it (src/libslate/process.cc):
// one byte "parked", then one message (with descriptors, closed here). A
// spare whose supervisor goes away unpromoted ends, without a stamp.
void AwaitActivation(int fd) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  const char parked = 'P';
  if (::send(fd, &parked, 1, MSG_NOSIGNAL) != 1) ::_exit(0);
  char text[4096];
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 64)];
  iovec iov{text, sizeof text};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  while ((n = ::recvmsg(fd, &msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) {
  }
  if (n <= 0) ::_exit(0);
  ::close(fd);
}

__attribute__((constructor(101))) void Stamp() {
  if (const char* standby = std::getenv("SLATE_STANDBY")) AwaitActivation(std::atoi(standby));
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  g_parent = ::getppid();
  const char* path = std::getenv("PROBE_FILE");
  if (path == nullptr || *path == '\0') return;
  std::uint64_t ns = static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ULL +
                     static_cast<std::uint64_t>(ts.tv_nsec);
  char buf[64];
  char* end = buf + sizeof(buf);
  *--end = '\n';
  end = Digits(static_cast<std::uint64_t>(::getpid()), end);
  *--end = ' ';
  char* begin = Digits(ns, end);
  int fd = ::open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return;
  auto len = static_cast<std::size_t>(buf + sizeof(buf) - begin);
  (void)!::write(fd, begin, len);
  ::close(fd);
}

}  // namespace

int main() {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != g_parent) return 1;  // the parent died before prctl took effect
  for (;;) ::pause();
}
