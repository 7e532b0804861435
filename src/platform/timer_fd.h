// TimerFd: a one-shot timer on the MonotonicNow() clock that an EventLoop
// can wait on (readable once the deadline has passed).
#pragma once

#include <chrono>

#include "base/result.h"
#include "platform/clock.h"
#include "platform/status.h"
#include "platform/unique_fd.h"

namespace slate::platform {

// Single-threaded. The runtime typically keeps one and arms it at its
// earliest deadline.
class TimerFd {
 public:
  // CLOCK_MONOTONIC, non-blocking, close-on-exec. Fails on EMFILE etc.
  static Result<TimerFd> Create();

  int fd() const { return fd_.get(); }

  // Fires once at `deadline` (absolute, MonotonicNow() time); a deadline in
  // the past fires at once. Replaces any earlier deadline and clears an
  // expiry not yet acknowledged.
  Status ArmAt(std::chrono::nanoseconds deadline);

  // Cancels the deadline and any expiry not yet acknowledged.
  Status Disarm();

  // Whether the timer fired since it was armed; consumes the expiry so the
  // descriptor stops being readable. Never blocks.
  Result<bool> Acknowledge();

 private:
  explicit TimerFd(UniqueFd fd) : fd_(std::move(fd)) {}

  UniqueFd fd_;
};

}  // namespace slate::platform
