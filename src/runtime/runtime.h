// `slate run`: the daemon. One event loop (epoll) over pidfds, a timerfd,
// a signalfd, the control socket, the components' notify sockets, readiness
// pipes and output pipes; it carries out what src/core decides. No polling:
// with no timer pending it sleeps until something happens.
#pragma once

#include <memory>

#include "spec/model.h"

namespace slate::runtime {

struct RunOptions {
  bool echo_output = true;  // copy components' output to our stderr
};

// Runs the system until it ends. Returns SPEC section 7's exit code: 0 an
// orderly shutdown, 1 a runtime error, 2 the system could not start, 3 the
// system gave up.
int Run(std::shared_ptr<const spec::System> system, const RunOptions& options);

}  // namespace slate::runtime
