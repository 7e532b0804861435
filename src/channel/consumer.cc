#include "channel/consumer.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

#include <fmt/format.h>

namespace slate::channel {

using internal::Deadline;

Consumer::Consumer(internal::Regions r, AttachOptions options)
    : r_(std::move(r)), options_(options) {}

ChannelResult<Consumer> Consumer::Attach(EndFds fds, AttachOptions options) {
  auto regions = internal::MapRegions(std::move(fds), internal::Role::kConsumer);
  if (!regions) return regions.error();
  const std::byte* own = regions->own.data();
  IndexSnapshot s;
  s.ack = Load64(own, offset::kAck);
  s.delivered = Load64(own, offset::kDelivered);
  const std::uint64_t write_index = Load64(regions->peer.data(), offset::kWrite);
  s.write = PublishedEnd(regions->peer.data(), regions->shape);
  s.ack_after = s.ack;
  s.floor = Load64(regions->runtime.data(), offset::kFloor);
  auto check = CheckIndices(s, regions->shape.capacity);
  // The producer's garbage is not ours to die of: attach broken, and heal
  // when the runtime has failed and repaired it (see Heal).
  const bool producer_broke = !check && check.error().culprit == Culprit::kProducer;
  if (!check && !producer_broke) return check.error();

  // Messages below the floor went to the dead-letter queue while no
  // consumer was attached; they count as consumed.
  const std::uint64_t start = std::max(s.ack, s.floor);
  Consumer c(std::move(*regions), options);
  c.ack_ = start;
  c.delivered_ = start;
  c.delivered_slot_ = start % c.r_.shape.capacity;
  // The lowest index a correct producer can show is start - 1 (start >= 1
  // unless the runtime's floor is garbage too).
  c.write_seen_ = producer_broke ? std::max(start, kFirstId) - 1 : write_index;
  c.repairs_seen_ = Load32(c.r_.runtime.data(), offset::kRepairs);
  std::byte* mine = c.r_.own.data();
  // delivered before ack, so that ack <= delivered holds at every instant
  // for a reader (the runtime) even if we die between the two stores.
  Word64(mine, offset::kDelivered).store(start, std::memory_order_seq_cst);
  Word64(mine, offset::kAck).store(start, std::memory_order_seq_cst);
  Word32(mine, offset::kWantsData).store(0, std::memory_order_relaxed);
  Word64(mine, offset::kConsumerEpoch).fetch_add(1, std::memory_order_seq_cst);
  // The ack may have jumped to the floor: a producer asleep for space must look.
  Word32(mine, offset::kAckSeq).fetch_add(1, std::memory_order_seq_cst);
  internal::FutexWake(mine + offset::kAckSeq);
  if (producer_broke) c.Break(check.error());
  return c;
}

ChannelError Consumer::Break(ChannelError e) {
  broken_ = e;
  broken_peer_epoch_ = peer_epoch();
  return e;
}

bool Consumer::Heal() {
  if (!broken_) return true;
  // Broken by the producer's garbage: the runtime fails that producer and
  // repairs its file before the next one attaches, so a new producer epoch
  // means the positions can be trusted again.
  if (broken_->culprit != Culprit::kProducer || peer_epoch() == broken_peer_epoch_) return false;
  broken_.reset();
  write_seen_ = ack_ - 1;  // the lowest index a correct producer can show
  return true;
}

ChannelStatus Consumer::CheckOwnRegion() {
  const std::byte* own = r_.own.data();
  std::uint64_t ack = Load64(own, offset::kAck, std::memory_order_relaxed);
  std::uint64_t delivered = Load64(own, offset::kDelivered, std::memory_order_relaxed);
  if (ack != ack_ || delivered != delivered_) {
    return Break(Corrupt(Culprit::kConsumer,
                         fmt::format("positions in {} changed behind the library's back: ack {} "
                                     "delivered {}, expected {} and {}",
                                     kConsumerFile, ack, delivered, ack_, delivered_)));
  }
  return Ok();
}

ChannelStatus Consumer::ReadWrite(std::uint64_t* write, std::memory_order order) {
  std::uint64_t w = Load64(r_.peer.data(), offset::kWrite, order);
  // The index may lag one message behind the slots (PublishedEnd): we may
  // have received, and acked, the message `w` already.
  if (w < write_seen_ || w + 1 < ack_ || w > ack_ + r_.shape.capacity) {
    return Break(
        Corrupt(Culprit::kProducer,
                fmt::format("write index {} outside [{} (last seen, and ack {} - 1), {} (ack + "
                            "capacity {})]",
                            w, std::max(write_seen_, ack_ - 1), ack_, ack_ + r_.shape.capacity,
                            r_.shape.capacity)));
  }
  write_seen_ = w;
  *write = w;
  return Ok();
}

ChannelStatus Consumer::WaitForData(const Deadline& deadline) {
  const std::byte* peer = r_.peer.data();
  std::byte* own = r_.own.data();
  std::uint64_t write = 0;
  // A repair of the producer's file may have moved the write index back:
  // forget what we saw (the repair never goes below our ack).
  if (const std::uint32_t r = Load32(r_.runtime.data(), offset::kRepairs); r != repairs_seen_) {
    repairs_seen_ = r;
    write_seen_ = ack_ - 1;
  }
  // A message by the last write index we read (it only grows): no need to look again.
  if (write_seen_ > delivered_) return Ok();
  // The next message is published once its slot holds its id (the commit
  // point, PublishedEnd): polling that one line costs one cache miss per
  // message, where the index and then the slot would cost two.
  const std::byte* next = peer + kPageSize + delivered_slot_ * r_.slot_size;
  auto committed = [&] { return Load64(next, offset::kSlotId) == delivered_; };
  if (committed()) return Ok();
  for (;;) {
    if (auto st = ReadWrite(&write, std::memory_order_acquire); !st) return st;
    // Below delivered_ only after a repair dropped messages we had received:
    // wait for the new producer to get past them.
    if (write > delivered_ || committed()) return Ok();
    if (ProducerDown()) return MakeChannelError(Errc::kPeerDown, "the producer is down");
    if (deadline.Passed()) return MakeChannelError(Errc::kTimeout, "no message");
    if (internal::SpinUntil(committed, options_.spin)) return Ok();
    // Announce the sleep, then look again: Producer::Send stores the write
    // index and then reads our flag (both seq_cst), so either it sees the
    // flag and bumps the futex word, or we see its message here.
    std::uint32_t seq = Load32(peer, offset::kWriteSeq);
    Word32(own, offset::kWantsData).store(WaitToken(seq), std::memory_order_seq_cst);
    auto st = ReadWrite(&write, std::memory_order_seq_cst);
    if (st && write <= delivered_ && !committed() && !ProducerDown()) {
      st = internal::FutexWait(peer + offset::kWriteSeq, seq, deadline);
    }
    Word32(own, offset::kWantsData).store(0, std::memory_order_relaxed);
    if (!st) return st;
  }
}

ChannelResult<Received> Consumer::Receive(std::span<std::byte> buffer,
                                          std::chrono::nanoseconds timeout) {
  if (!Heal()) return *broken_;
  if (auto st = CheckOwnRegion(); !st) return st.error();
  if (auto st = WaitForData(Deadline::After(timeout)); !st) return st.error();

  // The acquire load of the slot's id (or of the write index, which the
  // producer stores after it) made the slot's contents visible.
  // Each field is read once, checked, and only the checked copy is used: a
  // producer scribbling on the slot meanwhile can garble the bytes we copy,
  // never make us read outside the slot.
  // delivered_slot_ == delivered_ % capacity, kept without a division per message.
  const std::byte* slot = r_.peer.data() + kPageSize + delivered_slot_ * r_.slot_size;
  std::uint64_t id = Load64(slot, offset::kSlotId, std::memory_order_relaxed);
  std::uint32_t length = Load32(slot, offset::kSlotLength, std::memory_order_relaxed);
  if (id != delivered_) {
    return Break(Corrupt(Culprit::kProducer, fmt::format("slot {} holds id {}, expected {}",
                                                         delivered_slot_, id, delivered_)));
  }
  if (length > r_.shape.max_message) {
    return Break(Corrupt(Culprit::kProducer, fmt::format("message {} claims {} bytes, max is {}",
                                                         id, length, r_.shape.max_message)));
  }
  if (length > buffer.size()) {
    return ChannelError{
        Errc::kBufferTooSmall, Culprit::kNone,
        fmt::format("message {} is {} bytes, the buffer {}", id, length, buffer.size()), length};
  }
  if (length > 0) std::memcpy(buffer.data(), slot + kSlotHeaderSize, length);
  ++delivered_;
  if (++delivered_slot_ == r_.shape.capacity) delivered_slot_ = 0;
  Word64(r_.own.data(), offset::kDelivered).store(delivered_, std::memory_order_release);
  // The poison word shares its cache line with kRepairs, which Heal reads on
  // every call: this costs no extra miss.
  if (id == Load64(r_.runtime.data(), offset::kPoison, std::memory_order_relaxed)) {
    (void)std::fprintf(stderr, "slate: message %llu was poisoned by slate chaos; aborting\n",
                       static_cast<unsigned long long>(id));
    std::abort();
  }
  return Received{id, length};
}

ChannelStatus Consumer::Ack(std::uint64_t id) {
  if (!Heal()) return *broken_;
  if (auto st = CheckOwnRegion(); !st) return st;
  if (id < ack_) return Ok();
  if (id >= delivered_) {
    return MakeChannelError(
        Errc::kInvalidArgument,
        fmt::format("ack of {}: only ids below {} were received", id, delivered_));
  }
  ack_ = id + 1;
  std::byte* own = r_.own.data();
  // seq_cst: ordered before the load of the producer's flag (the other half
  // of the handshake in Producer::WaitForSpace).
  Word64(own, offset::kAck).store(ack_, std::memory_order_seq_cst);
  // Wake the producer once per sleep (see Producer::Send).
  const std::uint32_t wants =
      Load32(r_.peer.data(), offset::kWantsSpace, std::memory_order_seq_cst);
  if (wants != 0 && wants == WaitToken(Load32(own, offset::kAckSeq))) {
    Word32(own, offset::kAckSeq).fetch_add(1, std::memory_order_seq_cst);
    internal::FutexWake(own + offset::kAckSeq);
  }
  return Ok();
}

std::uint64_t Consumer::epoch() const {
  return Load64(r_.own.data(), offset::kConsumerEpoch, std::memory_order_relaxed);
}

std::uint64_t Consumer::peer_epoch() const {
  return Load64(r_.peer.data(), offset::kProducerEpoch);
}

bool Consumer::ProducerDown() const {
  return Load32(r_.runtime.data(), offset::kProducerDown, std::memory_order_seq_cst) != 0;
}

std::uint64_t Consumer::runtime_epoch() const {
  return Load64(r_.runtime.data(), offset::kRuntimeEpoch);
}

}  // namespace slate::channel
