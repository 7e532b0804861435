// Internal: pidfd system calls. Called directly because glibc 2.36's
// <sys/pidfd.h> lacks extern "C" and so cannot be linked from C++.
#pragma once

#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

namespace slate::platform {

// A close-on-exec pidfd for `pid`, or -1 with errno set.
inline int PidfdOpen(pid_t pid) {
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0U));
}

// Signals the process `pidfd` refers to; 0, or -1 with errno (ESRCH: gone).
inline int PidfdSendSignal(int pidfd, int sig) {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0U));
}

}  // namespace slate::platform
