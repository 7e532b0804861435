#include "platform/timer_fd.h"

#include <algorithm>
#include <cerrno>
#include <cstdint>

#include <sys/timerfd.h>
#include <unistd.h>

namespace slate::platform {
namespace {

Status SetTime(int fd, std::chrono::nanoseconds deadline, int flags) {
  itimerspec spec{};
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(deadline);
  spec.it_value.tv_sec = static_cast<time_t>(seconds.count());
  spec.it_value.tv_nsec = static_cast<long>((deadline - seconds).count());
  if (::timerfd_settime(fd, flags, &spec, nullptr) != 0) {
    return ErrnoError("timerfd_settime", errno);
  }
  return OkStatus();
}

}  // namespace

Result<TimerFd> TimerFd::Create() {
  UniqueFd fd(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  if (!fd.valid()) {
    return ErrnoError("timerfd_create", errno);
  }
  return TimerFd(std::move(fd));
}

Status TimerFd::ArmAt(std::chrono::nanoseconds deadline) {
  // An all-zero it_value would disarm; 1 ns is as much in the past as 0.
  const auto when = std::max(deadline, std::chrono::nanoseconds(1));
  return SetTime(fd_.get(), when, TFD_TIMER_ABSTIME);
}

Status TimerFd::Disarm() {
  return SetTime(fd_.get(), std::chrono::nanoseconds(0), 0);
}

Result<bool> TimerFd::Acknowledge() {
  std::uint64_t expirations = 0;
  ssize_t n;
  do {
    n = ::read(fd_.get(), &expirations, sizeof expirations);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    return errno == EAGAIN ? Result<bool>(false) : ErrnoError("read timerfd", errno);
  }
  return expirations > 0;
}

}  // namespace slate::platform
