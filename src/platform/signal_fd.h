// SignalFd: signals as readable events for the EventLoop instead of handlers.
#pragma once

#include <initializer_list>
#include <optional>

#include <signal.h>
#include <sys/types.h>

#include "base/result.h"
#include "platform/unique_fd.h"

namespace slate::platform {

// What the kernel told about one delivered signal (a subset of
// signalfd_siginfo). For SIGCHLD several exits may be merged into one.
struct SignalInfo {
  int signo = 0;
  int code = 0;   // si_code: SI_USER, CLD_EXITED, ...
  pid_t pid = 0;  // sender, or the child for SIGCHLD
  uid_t uid = 0;
  int status = 0;  // SIGCHLD: exit code or signal
};

// Blocks the given signals in the calling thread and reads them from a
// descriptor. Create it in the main thread before starting any other thread,
// so that every thread inherits the mask and no thread takes them the
// default way. Spawned children get an empty mask regardless (see Spawn).
// The destructor restores the mask the thread had before Create: destroy it
// on the creating thread. Move-only; single-threaded.
class SignalFd {
 public:
  // E.g. {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGPIPE}. SIGKILL and
  // SIGSTOP cannot be caught and are an Error, as is an invalid number.
  static Result<SignalFd> Create(std::initializer_list<int> signals);

  SignalFd(SignalFd&& other) noexcept;
  SignalFd& operator=(SignalFd&&) = delete;
  SignalFd(const SignalFd&) = delete;
  SignalFd& operator=(const SignalFd&) = delete;
  ~SignalFd();

  int fd() const { return fd_.get(); }

  // The next pending signal, or nullopt when none is. Never blocks.
  Result<std::optional<SignalInfo>> Read();

 private:
  SignalFd(UniqueFd fd, const sigset_t& saved) : fd_(std::move(fd)), saved_mask_(saved) {}

  UniqueFd fd_;
  sigset_t saved_mask_;
  bool restore_ = true;
};

}  // namespace slate::platform
