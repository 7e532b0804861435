// `slate run`: the daemon. One event loop (epoll) over pidfds, a timerfd,
// a signalfd, the control socket, the components' notify sockets, readiness
// pipes and output pipes; it carries out what src/core decides. No polling:
// with no timer pending it sleeps until something happens.
#pragma once

#include <memory>
#include <string_view>

#include "spec/model.h"

namespace slate::runtime {

struct RunOptions {
  bool echo_output = true;  // copy components' output to our stderr
};

// Runs the system until it ends. Returns SPEC section 7's exit code: 0 an
// orderly shutdown, 1 a runtime error, 2 the system could not start, 3 the
// system gave up.
int Run(std::shared_ptr<const spec::System> system, const RunOptions& options);

// Not a verb: `slate __read-store DIR SIZE`, which the runtime runs as a hook
// (in the component's view, as its user) after a sanitize command exits 0,
// to read the whole store at DIR: a damaged store may fault its reader, and
// that must not be the runtime. Exits 0 when it reads whole, kStoreUnreadable
// when it does not (why on stderr: the component's log), 2 on bad usage.
inline constexpr std::string_view kReadStoreCommand = "__read-store";
inline constexpr int kStoreUnreadable = 3;
int ReadStoreMain(int argc, char** argv);

}  // namespace slate::runtime
