// Producer: the sending end of a channel, as a component process holds it.
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

// Owns the descriptors it was attached with and its mappings; detaches
// (drops its lock, unmaps) on destruction. Not thread-safe: one thread
// sends at a time (the channel is single-producer by design).
//
// After any kCorrupt the producer is broken: every later call returns the
// same error. The runtime is expected to treat the culprit as failed. When
// the culprit was the consumer, the break heals once a new consumer has
// attached (the runtime repairs the file before starting it).
class Producer {
 public:
  // Maps and checks the regions (see internal::MapRegions), then checks the
  // write index it finds against the consumer's ack and the runtime's floor
  // (a bad one is kCorrupt naming whoever the rules blame; after a crash of
  // this producer's predecessor that is usually "producer"). Resumes after
  // the last message the predecessor published, and bumps the epoch.
  // kBusy if another producer is attached. An ack the consumer broke does not
  // fail the attach: the producer starts broken and heals when a new
  // consumer attaches.
  static ChannelResult<Producer> Attach(EndFds fds, AttachOptions options = {});

  Producer(Producer&&) noexcept = default;
  Producer& operator=(Producer&&) noexcept = default;
  ~Producer() = default;

  // Copies `message` into the next slot and publishes it; returns its id.
  // Blocks while the ring is full, up to `timeout` (negative: forever; 0:
  // not at all), sleeping on the consumer's futex word. Errors: kTooBig
  // (over max_message; nothing sent), kFull (still full at the deadline),
  // kPeerDown (full, and the runtime holds the consumer down: at once),
  // kCorrupt (the consumer's ack is impossible, or this process wrote over
  // its own region's write index).
  // If the process dies inside Send, the message was either published whole
  // or not at all: the write index moves (release) after the payload.
  ChannelResult<std::uint64_t> Send(std::span<const std::byte> message,
                                    std::chrono::nanoseconds timeout);

  // Copies the first out.size() bytes of message `id`, sent by this end or
  // a predecessor, from its slot if it is still there (one of the last
  // `capacity` ids), and returns the message's full length. kNotFound if the
  // slot has been reused or never held it, kCorrupt if it is garbled.
  ChannelResult<std::size_t> ReadBack(std::uint64_t id, std::span<std::byte> out) const;

  // The id the next Send will give its message.
  std::uint64_t next_id() const { return write_; }
  const ChannelGeometry& shape() const { return r_.shape; }
  std::uint64_t epoch() const;          // this end's attach count
  std::uint64_t peer_epoch() const;     // the consumer's; changes when it re-attaches
  std::uint64_t runtime_epoch() const;  // changes when the runtime re-opens the channel
  // The runtime holds the consumer's component down (ChannelFiles::SetDown).
  bool ConsumerDown() const;

  // The consumer's and the runtime's regions as mapped here (read-only);
  // for diagnostics and the test that proves a write to them faults.
  const std::byte* peer_region() const { return r_.peer.data(); }
  const std::byte* runtime_region() const { return r_.runtime.data(); }

 private:
  Producer(internal::Regions r, AttachOptions options);
  ChannelStatus WaitForSpace(const internal::Deadline& deadline);
  ChannelStatus ReadAck(std::uint64_t* ack, std::memory_order order);
  ChannelError Break(ChannelError e);
  // Clears a break the consumer caused once a new consumer has attached; false while broken.
  bool Heal();

  internal::Regions r_;
  AttachOptions options_;
  std::uint64_t write_ = kFirstId;     // our copy of the write index
  std::uint64_t write_slot_ = 0;       // write_ % capacity
  std::uint64_t ack_seen_ = kFirstId;  // newest valid consumer ack
  std::uint32_t repairs_seen_ = 0;     // the runtime region's repair count
  std::optional<ChannelError> broken_;
  std::uint64_t broken_peer_epoch_ = 0;
};

}  // namespace slate::channel
