// The probe: a stand-in component that says when it began. As its first
// act (a constructor, before main and before anything else of ours) it reads
// CLOCK_MONOTONIC and appends "<ns> <pid>\n" to the file named by
// $PROBE_FILE, in one write so a reader never sees half a line; then it
// sleeps until killed. Without $PROBE_FILE it only sleeps (bench/scale).
//
// It is linked statically where the toolchain can (no dynamic loader on the
// path from execve to the timestamp) and uses libc only, no libslate.
// It dies with its parent (PR_SET_PDEATHSIG), so a benchmark that is itself
// killed leaves no probe behind.
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <ctime>

#include <fcntl.h>
#include <sys/prctl.h>
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

__attribute__((constructor(101))) void Stamp() {
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
