// MonotonicNow: the runtime's one clock (CLOCK_MONOTONIC: never jumps, does
// not count suspend), the same one TimerFd deadlines are expressed in.
#pragma once

#include <chrono>

#include <time.h>

namespace slate::platform {

inline std::chrono::nanoseconds MonotonicNow() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);  // cannot fail for this clock
  return std::chrono::seconds(now.tv_sec) + std::chrono::nanoseconds(now.tv_nsec);
}

}  // namespace slate::platform
