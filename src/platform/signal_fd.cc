#include "platform/signal_fd.h"

#include <cerrno>
#include <string>

#include <pthread.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "platform/status.h"

namespace slate::platform {

Result<SignalFd> SignalFd::Create(std::initializer_list<int> signals) {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : signals) {
    if (sig == SIGKILL || sig == SIGSTOP || sigaddset(&set, sig) != 0) {
      return MakeError("signalfd: cannot catch signal " + std::to_string(sig));
    }
  }
  UniqueFd fd(::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!fd.valid()) {
    return ErrnoError("signalfd", errno);
  }
  sigset_t saved;
  if (const int error = pthread_sigmask(SIG_BLOCK, &set, &saved); error != 0) {
    return ErrnoError("pthread_sigmask", error);
  }
  return SignalFd(std::move(fd), saved);
}

SignalFd::SignalFd(SignalFd&& other) noexcept
    : fd_(std::move(other.fd_)), saved_mask_(other.saved_mask_), restore_(other.restore_) {
  other.restore_ = false;
}

SignalFd::~SignalFd() {
  if (restore_) {
    pthread_sigmask(SIG_SETMASK, &saved_mask_, nullptr);
  }
}

Result<std::optional<SignalInfo>> SignalFd::Read() {
  signalfd_siginfo raw{};
  ssize_t n;
  do {
    n = ::read(fd_.get(), &raw, sizeof raw);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    return errno == EAGAIN ? Result<std::optional<SignalInfo>>(std::nullopt)
                           : ErrnoError("read signalfd", errno);
  }
  SignalInfo info;
  info.signo = static_cast<int>(raw.ssi_signo);
  info.code = raw.ssi_code;
  info.pid = static_cast<pid_t>(raw.ssi_pid);
  info.uid = raw.ssi_uid;
  info.status = raw.ssi_status;
  return std::optional<SignalInfo>(info);
}

}  // namespace slate::platform
