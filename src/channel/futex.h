// Internal: sleeping and waking on a 32-bit word of a shared file mapping.
//
// Why futex and not eventfd: the word lives in the channel's own memory, so
// a waker that sees nobody asleep (the peer's "wants" flag is 0) makes no
// system call at all, and nothing but the mapping has to be handed to an
// end. The futexes are shared ones (no FUTEX_PRIVATE_FLAG): the kernel keys
// them by file page and offset, so two processes meet on the same word
// whatever their addresses. FUTEX_WAIT works on a read-only mapping (Linux
// >= 3.1), which is how each end sleeps on a word its peer owns.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "channel/error.h"

namespace slate::channel::internal {

// An absolute CLOCK_MONOTONIC deadline, or none.
class Deadline {
 public:
  // A negative timeout, or nanoseconds::max(), waits forever; 0 never waits.
  static Deadline After(std::chrono::nanoseconds timeout);

  bool forever() const { return !at_.has_value(); }
  bool Passed() const;
  const std::optional<std::chrono::nanoseconds>& at() const { return at_; }

 private:
  std::optional<std::chrono::nanoseconds> at_;
};

// Sleeps while the word at `word` equals `expected`, until woken, a signal,
// or the deadline. Returns Ok in all those cases: the caller re-checks its
// condition and the deadline. An error only if the kernel cannot read the
// word (the file under the mapping was shrunk).
ChannelStatus FutexWait(const std::byte* word, std::uint32_t expected, const Deadline& deadline);

// Wakes every waiter on the word (there is at most one by design).
void FutexWake(const std::byte* word);

// Polls `ready` for up to `spin` (reading the clock every 64 turns); true as
// soon as it holds. The optional short spin before a futex sleep.
template <typename Ready>
bool SpinUntil(Ready ready, std::chrono::nanoseconds spin);

// A hint to the CPU inside a spin loop.
inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

template <typename Ready>
bool SpinUntil(Ready ready, std::chrono::nanoseconds spin) {
  if (spin <= std::chrono::nanoseconds::zero()) return false;
  Deadline stop = Deadline::After(spin);
  for (unsigned i = 1;; ++i) {
    if (ready()) return true;
    if (i % 64 == 0 && stop.Passed()) return false;
    CpuRelax();
  }
}

}  // namespace slate::channel::internal
