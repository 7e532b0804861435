// The probe as a standby spare would run it: a libslate component that
// initialises, parks in slate_await_activation() and, once promoted (or at
// once when it is not a spare), reads CLOCK_MONOTONIC and appends
// "<ns> <pid>\n" to $PROBE_FILE, as probe.cc does in its constructor. For a
// spare, the first instruction after promotion is the return from
// slate_await_activation: nothing is exec'd on that path.
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>

#include <fcntl.h>
#include <slate/slate.h>
#include <sys/prctl.h>
#include <unistd.h>

int main() {
  const pid_t parent = ::getppid();
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) return 1;  // the parent died before prctl took effect
  if (slate_init() != SLATE_OK || slate_await_activation() != SLATE_OK) {
    std::fprintf(stderr, "standby probe: %s\n", slate_last_error());
    return 1;
  }
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  const char* path = std::getenv("PROBE_FILE");
  if (path != nullptr && *path != '\0') {
    char line[64];
    const int n = std::snprintf(line, sizeof line, "%llu %d\n",
                                static_cast<unsigned long long>(ts.tv_sec) * 1000000000ULL +
                                    static_cast<unsigned long long>(ts.tv_nsec),
                                static_cast<int>(::getpid()));
    const int fd = ::open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0 && n > 0) {
      (void)!::write(fd, line, static_cast<std::size_t>(n));
      ::close(fd);
    }
  }
  for (;;) ::pause();
}
