// The bytes of a channel as they are in its files and mappings
// (docs/channel-format.md is the prose version; keep the two in step).
//
// A channel is a directory of four files, each written by one party:
//   producer.region  producer: write index, its futex word, message slots
//   consumer.region  consumer: ack and delivered positions, its futex word
//   runtime.region   runtime:  geometry, dead-letter floor, delivery counts
//   dead-letters     runtime:  append-only dead-letter records (never mapped by an end)
// Every region starts with a 4096-byte page whose first 64 bytes are a
// RegionHeader; mutable words follow at fixed offsets. Integers are
// little-endian. Message ids start at 1; "index" values are ids.
#pragma once

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <type_traits>

#include "channel/error.h"

namespace slate::channel {

static_assert(std::endian::native == std::endian::little, "the layout is little-endian");

// What the system file says about a channel (spec::Channel).
struct ChannelGeometry {
  std::uint64_t capacity = 1024;     // messages, 1..2^24
  std::uint64_t max_message = 4096;  // bytes, 0..64 MiB
  std::uint32_t max_deliveries = 3;  // >= 1; a runtime policy, not part of the shape

  bool SameShape(const ChannelGeometry& o) const {
    return capacity == o.capacity && max_message == o.max_message;
  }
};

inline constexpr std::uint64_t kMaxCapacity = std::uint64_t{1} << 24;
inline constexpr std::uint64_t kMaxMessageLimit = std::uint64_t{64} << 20;
// Slots are preallocated (sparse) and mapped whole; this bounds the mapping.
inline constexpr std::uint64_t kMaxRingBytes = std::uint64_t{1} << 40;

// 2: the wants_* words moved from offset 76 to a 128-byte block of their own
// at 256 and hold a wait token (WaitToken) instead of 1.
// 3: a slot's id is the commit point (written last, with release), and the
// write index may lag one message behind it (see PublishedEnd).
// ChannelFiles::Open migrates a channel of an older layout in place.
inline constexpr std::uint32_t kLayoutVersion = 3;
inline constexpr std::uint32_t kDeadLetterVersion = 1;  // the dead-letters file
inline constexpr std::uint64_t kPageSize = 4096;        // region header page, on every target
inline constexpr std::uint64_t kSlotHeaderSize = 16;
inline constexpr std::uint64_t kSlotAlign = 64;
inline constexpr std::uint64_t kDeliveryEntrySize = 16;
inline constexpr std::uint64_t kFirstId = 1;

constexpr std::uint64_t Magic(std::string_view eight) {
  std::uint64_t m = 0;
  for (std::size_t i = 0; i < 8; ++i)
    m |= std::uint64_t{static_cast<unsigned char>(eight[i])} << (8 * i);
  return m;
}
inline constexpr std::uint64_t kProducerMagic = Magic("SLCHPROD");
inline constexpr std::uint64_t kConsumerMagic = Magic("SLCHCONS");
inline constexpr std::uint64_t kRuntimeMagic = Magic("SLCHRUNT");

inline constexpr std::string_view kProducerFile = "producer.region";
inline constexpr std::string_view kConsumerFile = "consumer.region";
inline constexpr std::string_view kRuntimeFile = "runtime.region";
inline constexpr std::string_view kDeadLetterFile = "dead-letters";

// Bytes 0..63 of every region. Written once by the runtime at creation; an
// end can overwrite its own copy, so readers check it, never trust it.
struct RegionHeader {
  std::uint64_t magic = 0;
  std::uint32_t version = 0;
  std::uint32_t header_size = 0;  // kPageSize
  std::uint64_t nonce = 0;        // random, the same in all files of one channel
  std::uint64_t capacity = 0;
  std::uint64_t max_message = 0;
  std::uint64_t slot_size = 0;
  std::uint64_t reserved[2] = {0, 0};
};
static_assert(sizeof(RegionHeader) == 64 && std::is_trivially_copyable_v<RegionHeader>);

// Mutable words, by offset in their region's first page.
namespace offset {
// producer.region
// u64: ids < write are published; the message `write` may be too (see
// PublishedEnd): the producer stores its slot's id before this index.
inline constexpr std::size_t kWrite = 64;
inline constexpr std::size_t kWriteSeq = 72;  // u32 futex word: bumped to wake the consumer
// u32 alone in its 128-byte block (the consumer reads it on every ack, and
// CPUs fetch lines in pairs, so a hot neighbour line would bounce it):
// WaitToken(ack_seq) while the producer sleeps for space, else 0.
inline constexpr std::size_t kWantsSpace = 256;
inline constexpr std::size_t kProducerEpoch = 80;
// consumer.region
inline constexpr std::size_t kAck = 64;     // u64: ids < ack are consumed
inline constexpr std::size_t kAckSeq = 72;  // u32 futex word: bumped to wake the producer
// u32 alone in its 128-byte block (the producer reads it on every send):
// WaitToken(write_seq) while the consumer sleeps for data, else 0.
inline constexpr std::size_t kWantsData = 256;
inline constexpr std::size_t kConsumerEpoch = 80;
inline constexpr std::size_t kDelivered = 128;  // u64: ids < delivered were handed out
// runtime.region
inline constexpr std::size_t kFloor = 64;  // u64: ids < floor were dead-lettered (consumed)
inline constexpr std::size_t kRuntimeEpoch = 72;
inline constexpr std::size_t kMaxDeliveries = 80;  // u32
inline constexpr std::size_t kDeadLetterEnd = 88;  // u64: dead-letters is whole up to here
inline constexpr std::size_t kChargedEpoch = 96;   // u64: consumer epoch whose crash was charged
// u32 each: 1 while the runtime holds that end's component down for good
// (given up, or stopped by the operator); a peer waiting on it gets kPeerDown.
inline constexpr std::size_t kProducerDown = 104;
inline constexpr std::size_t kConsumerDown = 108;
// u32: bumped (after its changes) by every Repair of an end's file. An end
// that caches its peer's position reads it on each call and drops the cache
// when it changed: a repair may move that position back.
inline constexpr std::size_t kRepairs = 112;
// u64: a message id poisoned by `slate chaos` (0: none). A consumer handed
// that id aborts right after recording the delivery, as one whose code
// cannot handle it would; the runtime clears it when the message is
// dead-lettered. Zero in every channel made before it existed.
inline constexpr std::size_t kPoison = 120;
// a slot, from its start
inline constexpr std::size_t kSlotId = 0;      // u64
inline constexpr std::size_t kSlotLength = 8;  // u32
// a delivery-count entry, from its start
inline constexpr std::size_t kEntryId = 0;      // u64: the message this count is for
inline constexpr std::size_t kEntryCharge = 8;  // u64: (consumer epoch & 0xffffffff) << 32 | count
}  // namespace offset

// What a sleeper stores in its wants_* word: the futex value it is about to
// wait on, made nonzero. A waker bumps and wakes only while the token matches
// its futex word, so it wakes a sleeper once, not once per message (a
// collision after 2^32 wakes costs one spurious wake-up, never a lost one).
constexpr std::uint32_t WaitToken(std::uint32_t futex_value) {
  return futex_value + 1 == 0 ? 1 : futex_value + 1;
}
// The offset the wants_* words had in layout 1 (cleared by the migration).
inline constexpr std::size_t kLayout1Wants = 76;

constexpr std::uint64_t SlotSize(std::uint64_t max_message) {
  return (kSlotHeaderSize + max_message + kSlotAlign - 1) / kSlotAlign * kSlotAlign;
}
constexpr std::uint64_t ProducerFileSize(const ChannelGeometry& g) {
  return kPageSize + g.capacity * SlotSize(g.max_message);
}
constexpr std::uint64_t ConsumerFileSize() {
  return kPageSize;
}
constexpr std::uint64_t RuntimeFileSize(const ChannelGeometry& g) {
  return kPageSize + g.capacity * kDeliveryEntrySize;
}
constexpr std::uint64_t SlotOffset(const ChannelGeometry& g, std::uint64_t id) {
  return kPageSize + (id % g.capacity) * SlotSize(g.max_message);
}
constexpr std::uint64_t EntryOffset(const ChannelGeometry& g, std::uint64_t id) {
  return kPageSize + (id % g.capacity) * kDeliveryEntrySize;
}

// A message is published the moment its slot's id field holds its id: the
// producer writes the length and payload, then the id (release), then moves
// the write index. A producer killed between the last two leaves the index
// one message behind, so the end of the published stream is `write`, or
// `write + 1` when the slot of `write` already holds that id with a length
// in range. A consumer polls only the slot (one cache line) for the next
// message; everything else (attach, the runtime's checks) uses this end.
inline bool SlotHolds(std::uint64_t slot_id, std::uint32_t length, std::uint64_t id,
                      const ChannelGeometry& g) {
  return id >= kFirstId && slot_id == id && length <= g.max_message;
}

// Ranges of the system file plus the mapping bound. kInvalidArgument.
ChannelStatus CheckGeometry(const ChannelGeometry& g);

RegionHeader MakeHeader(std::uint64_t magic, std::uint64_t nonce, const ChannelGeometry& g);

// The runtime region's header is the authority on shape and nonce; this
// checks it on its own (magic, version, ranges, slot size) and returns the
// shape it declares (max_deliveries left at its default). Culprit kRuntime.
ChannelResult<ChannelGeometry> ShapeFromRuntimeHeader(const RegionHeader& h);

// Checks an end's header against the runtime's shape and nonce; a mismatch
// is kCorrupt naming `owner`.
ChannelStatus CheckEndHeader(const RegionHeader& h, std::uint64_t magic, std::uint64_t nonce,
                             const ChannelGeometry& shape, Culprit owner);

// Positions read from the three regions, in this order when the ends may be
// running: ack, delivered, write, ack_after. Every value only grows (except
// delivered, which an attaching consumer resets to ack), so that order never
// reports a consistent channel as corrupt.
struct IndexSnapshot {
  std::uint64_t ack = kFirstId;
  std::uint64_t delivered = kFirstId;
  std::uint64_t write = kFirstId;
  std::uint64_t ack_after = kFirstId;
  std::uint64_t floor = kFirstId;
};

// The invariants of docs/channel-format.md ("Validation"): ids >= 1,
// floor <= write, ack <= delivered <= write, write <= ack_after + capacity,
// ack <= ack_after. A violation names the party the rule blames.
ChannelStatus CheckIndices(const IndexSnapshot& s, std::uint64_t capacity);

// Typed access to shared words. Regions are mapped page-aligned and every
// word sits at a multiple of its size, as std::atomic_ref requires.
inline std::atomic_ref<std::uint64_t> Word64(std::byte* base, std::size_t at) {
  return std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(base + at));
}
inline std::atomic_ref<std::uint32_t> Word32(std::byte* base, std::size_t at) {
  return std::atomic_ref<std::uint32_t>(*reinterpret_cast<std::uint32_t*>(base + at));
}
// Loads from a read-only mapping: an atomic load never writes, so the
// const_cast only satisfies atomic_ref's signature.
inline std::uint64_t Load64(const std::byte* base, std::size_t at,
                            std::memory_order order = std::memory_order_acquire) {
  return Word64(const_cast<std::byte*>(base), at).load(order);
}
inline std::uint32_t Load32(const std::byte* base, std::size_t at,
                            std::memory_order order = std::memory_order_acquire) {
  return Word32(const_cast<std::byte*>(base), at).load(order);
}

// The end of the published stream (see SlotHolds), from the write index
// `write`, the slot of `write` read after it, and the index read again
// after that (`write_again`): `write + 1` if that slot holds message
// `write` or the index has moved on meanwhile (the producer commits a slot
// before it moves the index, so either way `write` was committed before the
// last read); else `write`. Never `write_again` itself: a reader that reads
// the ack after this must not find a message counted that was committed
// after the ack it read allowed. And never `write` when the slot has been
// reused by a later message, which the second read of the index catches.
inline std::uint64_t PublishedEnd(std::uint64_t write, std::uint64_t slot_id,
                                  std::uint32_t slot_length, std::uint64_t write_again,
                                  const ChannelGeometry& g) {
  return SlotHolds(slot_id, slot_length, write, g) || write_again > write ? write + 1 : write;
}

// The same through a mapping of producer.region, reading the index, the
// slot and the index again, in that order.
inline std::uint64_t PublishedEnd(const std::byte* producer_region, const ChannelGeometry& g) {
  const std::uint64_t write = Load64(producer_region, offset::kWrite);
  const std::byte* slot = producer_region + SlotOffset(g, write);
  const std::uint64_t id = Load64(slot, offset::kSlotId);
  const std::uint32_t length = Load32(slot, offset::kSlotLength, std::memory_order_relaxed);
  const std::uint64_t again = Load64(producer_region, offset::kWrite);
  return PublishedEnd(write, id, length, again, g);
}

}  // namespace slate::channel
