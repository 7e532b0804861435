// Pipes between the runtime and a child: captured output, and s6-style
// readiness notification on a descriptor (`ready = "fd:N"`).
#pragma once

#include "base/result.h"
#include "platform/status.h"
#include "platform/unique_fd.h"

namespace slate::platform {

// Both ends are close-on-exec: nothing leaks into a child unless Spawn
// installs it through a FdGrant.
struct Pipe {
  UniqueFd read;
  UniqueFd write;
};

// A pipe for a child's stdout or stderr. The read end is non-blocking (the
// runtime drains it from its event loop); the write end stays blocking,
// because O_NONBLOCK belongs to the open file and would be shared with the
// child, whose writes would then fail with EAGAIN instead of waiting.
// The caller closes its copy of the write end after Spawn so that the read
// end reports EOF when the last writer (the child's tree) is gone.
Result<Pipe> MakeOutputPipe();

// The parent's side of `ready = "fd:N"`: the child gets write_fd() at
// descriptor N (via FdGrant) and writes a line when it is ready.
class ReadinessPipe {
 public:
  enum class State {
    kPending,   // no newline yet and the writer is still open
    kReady,     // a newline arrived (anything after it is ignored)
    kNotReady,  // every writer closed before a newline: the child never became ready
  };

  // Fails only if the pipe cannot be created (EMFILE, ENFILE).
  static Result<ReadinessPipe> Create();

  int read_fd() const { return pipe_.read.get(); }    // poll this for EPOLLIN
  int write_fd() const { return pipe_.write.get(); }  // grant this to the child

  // Call right after Spawn: until then EOF cannot be observed.
  void CloseWriteEnd() { pipe_.write.Reset(); }

  // Drains what is available without blocking. Once kReady or kNotReady is
  // returned, later calls return the same state. Errors are read(2) errors.
  Result<State> Read();

 private:
  explicit ReadinessPipe(Pipe pipe) : pipe_(std::move(pipe)) {}

  Pipe pipe_;
  State state_ = State::kPending;
};

}  // namespace slate::platform
