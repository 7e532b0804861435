#include "channel/producer.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include <fmt/format.h>

namespace slate::channel {

using internal::Deadline;

Producer::Producer(internal::Regions r, AttachOptions options)
    : r_(std::move(r)), options_(options) {}

ChannelResult<Producer> Producer::Attach(EndFds fds, AttachOptions options) {
  auto regions = internal::MapRegions(std::move(fds), internal::Role::kProducer);
  if (!regions) return regions.error();
  const std::byte* own = regions->own.data();
  const std::byte* peer = regions->peer.data();
  IndexSnapshot s;
  s.ack = Load64(peer, offset::kAck);
  s.delivered = Load64(peer, offset::kDelivered);
  // A predecessor killed between committing a slot and moving the index
  // left it one behind: the message is published (the consumer may have it).
  s.write = PublishedEnd(own, regions->shape);
  s.ack_after = Load64(peer, offset::kAck);
  s.floor = Load64(regions->runtime.data(), offset::kFloor);
  auto check = CheckIndices(s, regions->shape.capacity);
  // The consumer's garbage is not ours to die of: attach broken, and heal
  // when the runtime has failed and repaired it (see Heal).
  const bool consumer_broke = !check && check.error().culprit == Culprit::kConsumer;
  if (!check && !consumer_broke) return check.error();

  Producer p(std::move(*regions), options);
  p.write_ = s.write;
  p.write_slot_ = s.write % p.r_.shape.capacity;
  p.ack_seen_ = consumer_broke ? kFirstId : s.ack_after;
  p.repairs_seen_ = Load32(p.r_.runtime.data(), offset::kRepairs);
  if (consumer_broke) p.Break(check.error());
  std::byte* mine = p.r_.own.data();
  Word64(mine, offset::kWrite).store(s.write, std::memory_order_seq_cst);
  // A predecessor killed while asleep leaves its flag up; it only costs the
  // consumer a spurious wake, but start clean.
  Word32(mine, offset::kWantsSpace).store(0, std::memory_order_relaxed);
  Word64(mine, offset::kProducerEpoch).fetch_add(1, std::memory_order_seq_cst);
  // A predecessor killed between bumping write_seq and its FUTEX_WAKE left
  // the consumer asleep on a value no later send would match: wake it.
  Word32(mine, offset::kWriteSeq).fetch_add(1, std::memory_order_seq_cst);
  internal::FutexWake(mine + offset::kWriteSeq);
  return p;
}

ChannelError Producer::Break(ChannelError e) {
  broken_ = e;
  broken_peer_epoch_ = peer_epoch();
  return e;
}

bool Producer::Heal() {
  if (!broken_) return true;
  // Broken by the consumer's garbage: once a repaired consumer has attached
  // (a new epoch), its ack can be trusted again.
  if (broken_->culprit != Culprit::kConsumer || peer_epoch() == broken_peer_epoch_) return false;
  broken_.reset();
  ack_seen_ = kFirstId;
  return true;
}

ChannelStatus Producer::ReadAck(std::uint64_t* ack, std::memory_order order) {
  std::uint64_t a = Load64(r_.peer.data(), offset::kAck, order);
  if (a < ack_seen_ || a > write_) {
    return Break(Corrupt(Culprit::kConsumer,
                         fmt::format("ack position {} outside [{} (last seen), {} (write index)]",
                                     a, ack_seen_, write_)));
  }
  ack_seen_ = a;
  *ack = a;
  return Ok();
}

ChannelStatus Producer::WaitForSpace(const Deadline& deadline) {
  const std::uint64_t capacity = r_.shape.capacity;
  const std::byte* peer = r_.peer.data();
  std::byte* own = r_.own.data();
  std::uint64_t ack = 0;
  // A repair of the consumer's file may have moved its ack back: forget it.
  if (const std::uint32_t r = Load32(r_.runtime.data(), offset::kRepairs); r != repairs_seen_) {
    repairs_seen_ = r;
    ack_seen_ = kFirstId;
  }
  // Room by the last ack we read (acks only grow): no need to look again.
  if (write_ - ack_seen_ < capacity) return Ok();
  for (;;) {
    if (auto st = ReadAck(&ack, std::memory_order_acquire); !st) return st;
    if (write_ - ack < capacity) return Ok();
    if (ConsumerDown()) {
      return MakeChannelError(
          Errc::kPeerDown,
          fmt::format("the consumer is down and {} messages wait for it", write_ - ack));
    }
    if (deadline.Passed()) {
      return MakeChannelError(Errc::kFull,
                              fmt::format("{} messages wait to be consumed", write_ - ack));
    }
    if (internal::SpinUntil([&] { return write_ - Load64(peer, offset::kAck) < capacity; },
                            options_.spin)) {
      continue;  // re-read through ReadAck, which validates
    }
    // Announce the sleep, then look again: the consumer's Ack stores its
    // position and then reads our flag (both seq_cst), so either it sees the
    // flag and wakes us, or we see its new position here.
    std::uint32_t seq = Load32(peer, offset::kAckSeq);
    Word32(own, offset::kWantsSpace).store(WaitToken(seq), std::memory_order_seq_cst);
    auto st = ReadAck(&ack, std::memory_order_seq_cst);
    if (st && write_ - ack >= capacity && !ConsumerDown()) {
      st = internal::FutexWait(peer + offset::kAckSeq, seq, deadline);
    }
    Word32(own, offset::kWantsSpace).store(0, std::memory_order_relaxed);
    if (!st) return st;
  }
}

ChannelResult<std::uint64_t> Producer::Send(std::span<const std::byte> message,
                                            std::chrono::nanoseconds timeout) {
  if (!Heal()) return *broken_;
  if (message.size() > r_.shape.max_message) {
    return MakeChannelError(Errc::kTooBig, fmt::format("{} bytes, max_message is {}",
                                                       message.size(), r_.shape.max_message));
  }
  std::byte* own = r_.own.data();
  if (std::uint64_t w = Load64(own, offset::kWrite, std::memory_order_relaxed); w != write_) {
    return Break(Corrupt(Culprit::kProducer,
                         fmt::format("write index in {} changed behind the library's back: {}, "
                                     "expected {}",
                                     kProducerFile, w, write_)));
  }
  if (auto st = WaitForSpace(Deadline::After(timeout)); !st) return st.error();

  // write_slot_ == write_ % capacity, kept without a division per message.
  std::byte* slot = own + kPageSize + write_slot_ * r_.slot_size;
  Word32(slot, offset::kSlotLength)
      .store(static_cast<std::uint32_t>(message.size()), std::memory_order_relaxed);
  if (!message.empty()) {
    std::memcpy(slot + kSlotHeaderSize, message.data(), message.size());
  }
  const std::uint64_t id = write_++;
  if (++write_slot_ == r_.shape.capacity) write_slot_ = 0;
  // The commit point: the id, with release, after the length and payload.
  // A consumer polling this slot sees the whole message or none of it.
  Word64(slot, offset::kSlotId).store(id, std::memory_order_release);
  // The index follows. seq_cst orders it before the load of the consumer's
  // flag (the other half of the handshake in Consumer::WaitForData).
  Word64(own, offset::kWrite).store(write_, std::memory_order_seq_cst);
  // Wake the consumer once per sleep: its token names the futex value it
  // waits on; once we have bumped the word, it is awake or about to be.
  const std::uint32_t wants = Load32(r_.peer.data(), offset::kWantsData, std::memory_order_seq_cst);
  if (wants != 0 && wants == WaitToken(Load32(own, offset::kWriteSeq))) {
    Word32(own, offset::kWriteSeq).fetch_add(1, std::memory_order_seq_cst);
    internal::FutexWake(own + offset::kWriteSeq);
  }
  return id;
}

std::uint64_t Producer::epoch() const {
  return Load64(r_.own.data(), offset::kProducerEpoch, std::memory_order_relaxed);
}

std::uint64_t Producer::peer_epoch() const {
  return Load64(r_.peer.data(), offset::kConsumerEpoch);
}

std::uint64_t Producer::runtime_epoch() const {
  return Load64(r_.runtime.data(), offset::kRuntimeEpoch);
}

ChannelResult<std::size_t> Producer::ReadBack(std::uint64_t id, std::span<std::byte> out) const {
  if (broken_) return *broken_;
  if (id < kFirstId || id >= write_ || write_ - id > r_.shape.capacity) {
    return MakeChannelError(Errc::kNotFound, fmt::format("message {} is not in the ring", id));
  }
  const std::byte* slot = r_.own.data() + SlotOffset(r_.shape, id);
  const std::uint64_t slot_id = Load64(slot, offset::kSlotId, std::memory_order_relaxed);
  const std::uint32_t length = Load32(slot, offset::kSlotLength, std::memory_order_relaxed);
  if (slot_id != id) {
    return MakeChannelError(Errc::kNotFound, fmt::format("slot of {} holds {}", id, slot_id));
  }
  if (length > r_.shape.max_message) {
    return Corrupt(Culprit::kProducer, fmt::format("message {} claims {} bytes, max is {}", id,
                                                   length, r_.shape.max_message));
  }
  std::memcpy(out.data(), slot + kSlotHeaderSize, std::min<std::size_t>(out.size(), length));
  return std::size_t{length};
}

bool Producer::ConsumerDown() const {
  return Load32(r_.runtime.data(), offset::kConsumerDown, std::memory_order_seq_cst) != 0;
}

}  // namespace slate::channel
