// Signalling one process (not its tree): `slate kill` injects a fault into a
// component's main process, as a crash would hit it.
#pragma once

#include "platform/process.h"
#include "platform/status.h"

namespace slate::platform {

// pidfd_send_signal(2) to `process` alone: never reaches a process that
// reused its pid. A process already gone (ESRCH) is not an error. A
// process with an init (Process::has_init) passes the signal on to its
// program; SIGSTOP, which it cannot, goes to their process group.
Status SignalProcess(const Process& process, int sig);

}  // namespace slate::platform
