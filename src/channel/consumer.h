// Consumer: the receiving end of a channel, as a component process holds it.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "channel/end.h"
#include "channel/error.h"
#include "channel/futex.h"
#include "channel/layout.h"

namespace slate::channel {

struct Received {
  std::uint64_t id = 0;  // the message's sequence id (from 1, no gaps)
  std::size_t size = 0;  // bytes copied into the caller's buffer
};

// Owns the descriptors it was attached with and its mappings; detaches on
// destruction. Not thread-safe (single consumer by design). After any
// kCorrupt the consumer is broken: every later call returns that error; when
// the producer was the culprit, until a new producer has attached (the
// runtime repairs the file before starting it).
class Consumer {
 public:
  // Maps and checks the regions, checks the positions it finds, and starts
  // delivery at the first unacknowledged message: ack becomes
  // max(ack, runtime's dead-letter floor) and "delivered" is reset to it,
  // so whatever a predecessor received but did not ack comes again, in
  // order. Bumps the epoch. kBusy if another consumer is attached. Positions
  // the producer broke do not fail the attach: the consumer starts broken
  // (Receive returns that kCorrupt) and heals when a new producer attaches.
  static ChannelResult<Consumer> Attach(EndFds fds, AttachOptions options = {});

  Consumer(Consumer&&) noexcept = default;
  Consumer& operator=(Consumer&&) noexcept = default;
  ~Consumer() = default;

  // Copies the next message into `buffer`. Blocks up to `timeout`
  // (negative: forever; 0: not at all) on the producer's futex word, after
  // the optional spin; never polls. Errors: kTimeout (nothing arrived),
  // kPeerDown (nothing queued and the runtime holds the producer down: at
  // once, also when it happens during the wait),
  // kBufferTooSmall (error().needed says how big; the message stays next),
  // kCorrupt (the producer's index or slot is impossible, or this process
  // wrote over its own region's positions).
  ChannelResult<Received> Receive(std::span<std::byte> buffer, std::chrono::nanoseconds timeout);

  // Cumulative: `id` and every message before it are consumed and their
  // slots may be reused. An id already acked is a no-op; an id not yet
  // received is kInvalidArgument.
  ChannelStatus Ack(std::uint64_t id);

  std::uint64_t next_unacked() const { return ack_; }
  std::uint64_t next_to_receive() const { return delivered_; }
  const ChannelGeometry& shape() const { return r_.shape; }
  std::uint64_t epoch() const;
  std::uint64_t peer_epoch() const;  // the producer's; changes when it re-attaches
  std::uint64_t runtime_epoch() const;
  // The runtime holds the producer's component down (ChannelFiles::SetDown).
  bool ProducerDown() const;

  // The producer's and the runtime's regions as mapped here (read-only);
  // for diagnostics and the test that proves a write to them faults.
  const std::byte* peer_region() const { return r_.peer.data(); }
  const std::byte* runtime_region() const { return r_.runtime.data(); }

 private:
  Consumer(internal::Regions r, AttachOptions options);
  ChannelStatus CheckOwnRegion();
  ChannelStatus ReadWrite(std::uint64_t* write, std::memory_order order);
  ChannelStatus WaitForData(const internal::Deadline& deadline);
  ChannelError Break(ChannelError e);
  // Clears a break the producer caused once a new producer has attached; false while broken.
  bool Heal();

  internal::Regions r_;
  AttachOptions options_;
  std::uint64_t ack_ = kFirstId;         // our copy of the ack position
  std::uint64_t delivered_ = kFirstId;   // our copy of the delivered position
  std::uint64_t delivered_slot_ = 0;     // delivered_ % capacity
  std::uint64_t write_seen_ = kFirstId;  // newest valid producer write index
  std::uint32_t repairs_seen_ = 0;       // the runtime region's repair count
  std::optional<ChannelError> broken_;
  std::uint64_t broken_peer_epoch_ = 0;
};

}  // namespace slate::channel
