#include "platform/signal_process.h"

#include <cerrno>
#include <csignal>

#include <sys/syscall.h>
#include <unistd.h>

namespace slate::platform {

Status SignalProcess(const Process& process, int sig) {
  if (process.reaped()) return OkStatus();
  if (::syscall(SYS_pidfd_send_signal, process.pidfd(), sig, nullptr, 0) != 0 && errno != ESRCH) {
    return ErrnoError("pidfd_send_signal", errno);
  }
  // An init passes on what it gets, but SIGSTOP cannot be caught: the
  // program, in the init's process group, gets it from the group.
  if (process.has_init() && sig == SIGSTOP && ::kill(-process.pid(), sig) != 0 && errno != ESRCH) {
    return ErrnoError("kill process group", errno);
  }
  return OkStatus();
}

}  // namespace slate::platform
