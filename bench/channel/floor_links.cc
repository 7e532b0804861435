// The floor: the least two processes sharing memory need to pass a message
// with the channel's protocol (docs/channel-format.md, "Sleeping") — an
// index, a futex word and a "wants" flag per end, the optional spin, the
// payload copied in and out — and nothing else: no files, no validation,
// no epochs, no delivery counts, no second (ack) index.
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <new>

#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>

#include "channel/links.h"
#include "common/bench_util.h"

namespace slate::bench {
namespace {

constexpr std::size_t kLine = 64;
constexpr std::size_t kPage = 4096;

using Word = std::atomic<std::uint32_t>;
static_assert(Word::is_always_lock_free && sizeof(Word) == sizeof(std::uint32_t));

// Shared futexes (no FUTEX_PRIVATE_FLAG): the two ends are processes.
void FutexWait(Word* word, std::uint32_t expected) {
  (void)::syscall(SYS_futex, word, FUTEX_WAIT, expected, nullptr, nullptr, 0);
}

void FutexWake(Word* word) {
  (void)::syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// Polls `ready` for up to `spin`, reading the clock every 64 turns: what a
// channel end does before it sleeps (channel/futex.h, SpinUntil).
template <typename Ready>
bool SpinUntil(Ready ready, std::chrono::nanoseconds spin) {
  if (spin <= std::chrono::nanoseconds::zero()) return false;
  const std::int64_t stop = MonoNs() + spin.count();
  for (unsigned i = 1;; ++i) {
    if (ready()) return true;
    if (i % 64 == 0 && MonoNs() >= stop) return false;
    CpuRelax();
  }
}

// A MAP_SHARED anonymous mapping made before fork, so both ends see it.
class SharedMapping {
 public:
  explicit SharedMapping(std::size_t size) : size_(size) {
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    data_ = p == MAP_FAILED ? nullptr : static_cast<std::byte*>(p);
  }
  SharedMapping(const SharedMapping&) = delete;
  SharedMapping& operator=(const SharedMapping&) = delete;
  ~SharedMapping() {
    if (data_ != nullptr) ::munmap(data_, size_);
  }
  std::byte* data() const { return data_; }

 private:
  std::byte* data_ = nullptr;
  std::size_t size_;
};

// The flag link's one cache line: `seq` counts the messages sent and is the
// futex word; `waiting` is up while the receiver sleeps on it.
struct alignas(kLine) FlagLine {
  Word seq{0};
  Word waiting{0};
};

class FloorFlagLink final : public Link {
 public:
  FloorFlagLink(std::size_t message_size, std::chrono::nanoseconds spin)
      : map_(kLine + message_size), spin_(spin) {
    if (map_.data() != nullptr) line_ = new (map_.data()) FlagLine;
  }
  bool ok() const { return line_ != nullptr; }

  bool BecomeSender() override { return true; }
  bool BecomeReceiver() override { return true; }

  bool Send(std::span<const std::byte> message) override {
    std::memcpy(map_.data() + kLine, message.data(), message.size());
    // seq_cst orders the store before the load of the flag: either we see
    // the receiver's flag, or it sees the new count before it sleeps.
    line_->seq.store(++sent_, std::memory_order_seq_cst);
    if (line_->waiting.load(std::memory_order_seq_cst) != 0) FutexWake(&line_->seq);
    return true;
  }

  bool Receive(std::span<std::byte> buffer) override {
    const std::uint32_t seen = received_;
    while (line_->seq.load(std::memory_order_acquire) == seen) {
      if (SpinUntil([&] { return line_->seq.load(std::memory_order_relaxed) != seen; }, spin_)) {
        continue;
      }
      line_->waiting.store(1, std::memory_order_seq_cst);
      if (line_->seq.load(std::memory_order_seq_cst) == seen) FutexWait(&line_->seq, seen);
      line_->waiting.store(0, std::memory_order_relaxed);
    }
    ++received_;
    std::memcpy(buffer.data(), map_.data() + kLine, buffer.size());
    return true;
  }

 private:
  SharedMapping map_;
  FlagLine* line_ = nullptr;
  std::chrono::nanoseconds spin_;
  std::uint32_t sent_ = 0;
  std::uint32_t received_ = 0;
};

// One end's cache line in the ring, as in a channel's region: its index,
// the futex word its peer sleeps on, and its own "wants" word: 0, or 1 +
// the value of the peer's futex word it sleeps on (64 bits, so that no
// value of the 32-bit word makes it 0).
struct alignas(kLine) RingLine {
  std::atomic<std::uint64_t> index{0};
  Word seq{0};
  std::atomic<std::uint64_t> wants{0};
};

// Sleeps (after the spin) until `ready(peer.index)`.
template <typename Ready>
void WaitFor(RingLine& own, RingLine& peer, Ready ready, std::chrono::nanoseconds spin) {
  while (!ready(peer.index.load(std::memory_order_acquire))) {
    if (SpinUntil([&] { return ready(peer.index.load(std::memory_order_relaxed)); }, spin)) {
      continue;
    }
    std::uint32_t seq = peer.seq.load(std::memory_order_acquire);
    own.wants.store(std::uint64_t{seq} + 1, std::memory_order_seq_cst);
    if (!ready(peer.index.load(std::memory_order_seq_cst))) FutexWait(&peer.seq, seq);
    own.wants.store(0, std::memory_order_relaxed);
  }
}

// Stores our index, then wakes the peer if it sleeps for it — once per
// sleep: after the first bump the word no longer holds the value the peer
// went to sleep on, so later messages skip the system call until the peer
// runs again. (The channel does the same, with its wait tokens.)
void Publish(RingLine& own, const RingLine& peer, std::uint64_t index) {
  own.index.store(index, std::memory_order_seq_cst);
  std::uint64_t wants = peer.wants.load(std::memory_order_seq_cst);
  if (wants != 0 && wants - 1 == own.seq.load(std::memory_order_relaxed)) {
    own.seq.fetch_add(1, std::memory_order_seq_cst);
    FutexWake(&own.seq);
  }
}

class FloorRingLink final : public Link {
 public:
  FloorRingLink(std::size_t message_size, std::size_t capacity, std::chrono::nanoseconds spin)
      : capacity_(capacity),
        slot_size_((16 + message_size + kLine - 1) / kLine * kLine),
        map_(kPage + capacity * slot_size_),
        spin_(spin) {
    if (map_.data() == nullptr) return;
    writer_ = new (map_.data()) RingLine;
    reader_ = new (map_.data() + kLine) RingLine;
  }
  bool ok() const { return writer_ != nullptr; }

  bool BecomeSender() override { return true; }
  bool BecomeReceiver() override { return true; }

  bool Send(std::span<const std::byte> message) override {
    WaitFor(
        *writer_, *reader_, [&](std::uint64_t read) { return write_ - read < capacity_; }, spin_);
    std::byte* slot = Slot(write_);
    auto length = static_cast<std::uint32_t>(message.size());
    std::memcpy(slot, &length, sizeof length);
    std::memcpy(slot + 16, message.data(), message.size());
    Publish(*writer_, *reader_, ++write_);
    return true;
  }

  bool Receive(std::span<std::byte> buffer) override {
    WaitFor(
        *reader_, *writer_, [&](std::uint64_t write) { return write != read_; }, spin_);
    const std::byte* slot = Slot(read_);
    std::uint32_t length = 0;
    std::memcpy(&length, slot, sizeof length);
    if (length != buffer.size()) {
      std::fprintf(stderr, "floor ring: a message of %u bytes, expected %zu\n", length,
                   buffer.size());
      return false;
    }
    std::memcpy(buffer.data(), slot + 16, length);
    Publish(*reader_, *writer_, ++read_);
    return true;
  }

 private:
  std::byte* Slot(std::uint64_t index) const {
    return map_.data() + kPage + (index % capacity_) * slot_size_;
  }

  std::size_t capacity_;
  std::size_t slot_size_;
  SharedMapping map_;
  std::chrono::nanoseconds spin_;
  RingLine* writer_ = nullptr;  // written by the sender: index = messages published
  RingLine* reader_ = nullptr;  // written by the receiver: index = messages consumed
  std::uint64_t write_ = 0;     // the sender's copy
  std::uint64_t read_ = 0;      // the receiver's copy
};

}  // namespace

std::unique_ptr<Link> MakeFloorFlagLink(const LinkOptions& o) {
  auto link = std::make_unique<FloorFlagLink>(o.message_size, o.spin);
  if (!link->ok()) {
    std::perror("floor: mmap");
    return nullptr;
  }
  return link;
}

std::unique_ptr<Link> MakeFloorRingLink(const LinkOptions& o) {
  auto link = std::make_unique<FloorRingLink>(o.message_size, o.capacity, o.spin);
  if (!link->ok()) {
    std::perror("floor: mmap");
    return nullptr;
  }
  return link;
}

}  // namespace slate::bench
