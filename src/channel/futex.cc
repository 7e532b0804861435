#include "channel/futex.h"

#include <cerrno>

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <climits>

#include "platform/clock.h"

namespace slate::channel::internal {

Deadline Deadline::After(std::chrono::nanoseconds timeout) {
  Deadline d;
  if (timeout < std::chrono::nanoseconds::zero() || timeout == std::chrono::nanoseconds::max()) {
    return d;
  }
  auto now = platform::MonotonicNow();
  // Saturate rather than overflow for very long timeouts.
  d.at_ = timeout > std::chrono::nanoseconds::max() - now ? std::chrono::nanoseconds::max()
                                                          : now + timeout;
  return d;
}

bool Deadline::Passed() const {
  return at_.has_value() && platform::MonotonicNow() >= *at_;
}

ChannelStatus FutexWait(const std::byte* word, std::uint32_t expected, const Deadline& deadline) {
  timespec ts{};
  const timespec* tsp = nullptr;
  if (!deadline.forever()) {
    auto ns = deadline.at()->count();
    ts.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
    ts.tv_nsec = static_cast<long>(ns % 1'000'000'000);
    tsp = &ts;
  }
  // FUTEX_WAIT_BITSET takes an absolute deadline on CLOCK_MONOTONIC (no
  // FUTEX_CLOCK_REALTIME), so a retry after EINTR needs no recomputation.
  long r =
      ::syscall(SYS_futex, word, FUTEX_WAIT_BITSET, expected, tsp, nullptr, FUTEX_BITSET_MATCH_ANY);
  if (r == 0 || errno == EAGAIN || errno == EINTR || errno == ETIMEDOUT) return Ok();
  return SystemError("futex wait", errno);
}

void FutexWake(const std::byte* word) {
  // Errors are impossible for a mapped, aligned word; if the peer shrank the
  // file (EFAULT) the peer cannot be sleeping on it either.
  (void)::syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

}  // namespace slate::channel::internal
