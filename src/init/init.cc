// slate-init: PID 1 of a component's own PID namespace (`pid = "private"`).
//
//   slate-init --status-fd N -- PROGRAM [ARG...]
//
// The runtime starts it as the namespace's first process, with every signal
// blocked (platform::SpawnRequest::pid_init). PID 1 is special: the kernel
// drops any signal sent to it from inside its namespace, and any from
// outside it but SIGKILL and SIGSTOP, for which it has no handler; and every
// orphan of the namespace becomes its child. So a program run as PID 1
// would ignore the runtime's SIGTERM and leave zombies behind. This init
// runs PROGRAM as its child instead, in the init's process group (which the
// runtime signals, and by which it knows the component's sd_notify
// datagrams), and then only:
//   - passes on to PROGRAM every signal it gets (SIGKILL and SIGSTOP
//     aside: SIGKILL ends the init, and with it the namespace; the runtime
//     sends SIGSTOP to the whole process group). A signal sent to the group
//     reaches PROGRAM twice unless the first is still pending: fine for the
//     SIGTERM and SIGCONT that the runtime sends that way;
//   - reaps every process that ends in the namespace;
//   - once PROGRAM has ended, exits with its code (128 + the signal when a
//     signal ended it). Its exit ends every process still in the namespace:
//     nothing PROGRAM started outlives it.
// PROGRAM's pid is the one the runtime numbered for it (the init's pid on
// the host); it gets the init's environment, working directory and
// descriptors, but for N, and an empty signal mask.
//
// What it tells the runtime on descriptor N, as InitRecords of 8 bytes
// (each one write, so atomic on a pipe): kInitStarted once PROGRAM has been
// executed, or kInitExecFailed or kInitForkFailed with the errno (and then
// it exits with 127 or 126); and kInitEnded with PROGRAM's wait status
// before it exits. The runtime's Spawn waits for the first, so that a
// program that cannot be executed is a start error, as without an init.
//
// Plain system calls and no heap after start: it is linked statically where
// it can be, and runs under the component's seccomp filter, whose default
// profile has every call it makes. It always ends with _exit: no exit-time
// handlers, which in a sanitized build include LeakSanitizer's, whose
// ptrace the filter forbids (the init would wait for it forever).
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "platform/init_protocol.h"

namespace {

using slate::platform::InitRecord;

// "slate-init: " + message + "\n" to stderr, the component's log.
void Say(const char* what, const char* detail) {
  char line[512];
  const int n = std::snprintf(line, sizeof line, "slate-init: %s%s%s\n", what,
                              detail[0] != '\0' ? ": " : "", detail);
  if (n > 0) {
    const std::size_t size =
        static_cast<std::size_t>(n) < sizeof line ? static_cast<std::size_t>(n) : sizeof line - 1;
    (void)!::write(STDERR_FILENO, line, size);
  }
}

void Tell(int fd, std::int32_t kind, std::int32_t value) {
  const InitRecord record{kind, value};
  (void)!::write(fd, &record, sizeof record);
}

// The descriptor number in `text`, or -1.
int ParseFd(const char* text) {
  char* end = nullptr;
  errno = 0;
  const long fd = std::strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || fd < 0 || fd > 1'000'000) return -1;
  return static_cast<int>(fd);
}

// The exit code that says how `status` ended, for whoever reads only that.
int ExitCodeFor(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5 || std::strcmp(argv[1], "--status-fd") != 0 || std::strcmp(argv[3], "--") != 0) {
    Say("usage: slate-init --status-fd N -- PROGRAM [ARG...]", "");
    ::_exit(2);
  }
  const int status_fd = ParseFd(argv[2]);
  if (status_fd < 0 || ::fcntl(status_fd, F_SETFD, FD_CLOEXEC) != 0) {
    Say("--status-fd is not an open descriptor", argv[2]);
    ::_exit(2);
  }
  // Blocked already when the runtime starts us; blocked here too when run
  // by hand, so that no signal is lost before the loop takes it.
  sigset_t all;
  sigfillset(&all);
  (void)sigprocmask(SIG_SETMASK, &all, nullptr);

  // Whether PROGRAM was executed: its end of this pipe closes on execve, or
  // carries the errno when execve failed.
  int exec_pipe[2];
  if (::pipe2(exec_pipe, O_CLOEXEC) != 0) {
    const int error = errno;
    Say("pipe", std::strerror(error));
    Tell(status_fd, slate::platform::kInitForkFailed, error);
    ::_exit(126);
  }
  const pid_t program = ::fork();
  if (program == 0) {
    sigset_t none;
    sigemptyset(&none);
    (void)sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execv(argv[4], argv + 4);
    const int error = errno;
    (void)!::write(exec_pipe[1], &error, sizeof error);
    ::_exit(127);
  }
  if (program < 0) {
    const int error = errno;
    Say("fork", std::strerror(error));
    Tell(status_fd, slate::platform::kInitForkFailed, error);
    ::_exit(126);
  }
  ::close(exec_pipe[1]);
  int exec_error = 0;
  ssize_t got = 0;
  do {
    got = ::read(exec_pipe[0], &exec_error, sizeof exec_error);
  } while (got < 0 && errno == EINTR);
  ::close(exec_pipe[0]);
  if (got == static_cast<ssize_t>(sizeof exec_error)) {
    Say(argv[4], std::strerror(exec_error));
    Tell(status_fd, slate::platform::kInitExecFailed, exec_error);
    ::_exit(127);
  }
  Tell(status_fd, slate::platform::kInitStarted, 0);

  for (;;) {
    siginfo_t info{};
    const int sig = sigwaitinfo(&all, &info);
    if (sig < 0) {
      if (errno == EINTR) continue;
      Say("sigwaitinfo", std::strerror(errno));
      (void)::kill(program, SIGKILL);
      ::_exit(126);
    }
    if (sig != SIGCHLD) {
      (void)::kill(program, sig);
      continue;
    }
    for (;;) {
      int status = 0;
      const pid_t ended = ::waitpid(-1, &status, WNOHANG);
      if (ended <= 0) break;
      if (ended == program) {
        Tell(status_fd, slate::platform::kInitEnded, status);
        ::_exit(ExitCodeFor(status));
      }
    }
  }
}
