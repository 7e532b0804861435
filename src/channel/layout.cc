#include "channel/layout.h"

#include <string>

#include <fmt/format.h>

namespace slate::channel {

ChannelStatus CheckGeometry(const ChannelGeometry& g) {
  if (g.capacity < 1 || g.capacity > kMaxCapacity) {
    return MakeChannelError(Errc::kInvalidArgument,
                            fmt::format("capacity {} is outside 1..{}", g.capacity, kMaxCapacity));
  }
  if (g.max_message > kMaxMessageLimit) {
    return MakeChannelError(Errc::kInvalidArgument, fmt::format("max_message {} is over {} bytes",
                                                                g.max_message, kMaxMessageLimit));
  }
  if (g.max_deliveries < 1) {
    return MakeChannelError(Errc::kInvalidArgument, "max_deliveries must be at least 1");
  }
  // Both factors are bounded above, so the product cannot overflow.
  if (g.capacity * SlotSize(g.max_message) > kMaxRingBytes) {
    return MakeChannelError(
        Errc::kInvalidArgument,
        fmt::format("capacity {} x slot of {} bytes is over the {} GiB a channel may map",
                    g.capacity, SlotSize(g.max_message), kMaxRingBytes >> 30));
  }
  return Ok();
}

RegionHeader MakeHeader(std::uint64_t magic, std::uint64_t nonce, const ChannelGeometry& g) {
  RegionHeader h;
  h.magic = magic;
  h.version = kLayoutVersion;
  h.header_size = static_cast<std::uint32_t>(kPageSize);
  h.nonce = nonce;
  h.capacity = g.capacity;
  h.max_message = g.max_message;
  h.slot_size = SlotSize(g.max_message);
  return h;
}

namespace {

ChannelStatus CheckCommon(const RegionHeader& h, std::uint64_t magic, Culprit owner,
                          std::string_view file) {
  if (h.magic != magic) {
    return Corrupt(owner, fmt::format("{}: bad magic {:#018x}", file, h.magic));
  }
  if (h.version != kLayoutVersion) {
    return Corrupt(owner, fmt::format("{}: layout version {}, this build reads {}", file, h.version,
                                      kLayoutVersion));
  }
  if (h.header_size != kPageSize) {
    return Corrupt(owner,
                   fmt::format("{}: header size {}, expected {}", file, h.header_size, kPageSize));
  }
  return Ok();
}

}  // namespace

ChannelResult<ChannelGeometry> ShapeFromRuntimeHeader(const RegionHeader& h) {
  if (auto st = CheckCommon(h, kRuntimeMagic, Culprit::kRuntime, kRuntimeFile); !st) {
    return st.error();
  }
  ChannelGeometry shape;
  shape.capacity = h.capacity;
  shape.max_message = h.max_message;
  if (auto st = CheckGeometry(shape); !st) {
    return Corrupt(Culprit::kRuntime, fmt::format("{}: {}", kRuntimeFile, st.error().message));
  }
  if (h.slot_size != SlotSize(h.max_message)) {
    return Corrupt(Culprit::kRuntime, fmt::format("{}: slot size {} does not fit max_message {}",
                                                  kRuntimeFile, h.slot_size, h.max_message));
  }
  return shape;
}

ChannelStatus CheckEndHeader(const RegionHeader& h, std::uint64_t magic, std::uint64_t nonce,
                             const ChannelGeometry& shape, Culprit owner) {
  std::string_view file = owner == Culprit::kProducer ? kProducerFile : kConsumerFile;
  if (auto st = CheckCommon(h, magic, owner, file); !st) return st;
  if (h.nonce != nonce) {
    return Corrupt(owner, fmt::format("{}: belongs to another channel (nonce {:#x}, runtime "
                                      "region says {:#x})",
                                      file, h.nonce, nonce));
  }
  if (h.capacity != shape.capacity || h.max_message != shape.max_message ||
      h.slot_size != SlotSize(shape.max_message)) {
    return Corrupt(owner, fmt::format("{}: shape {}x{} (slot {}) differs from the runtime "
                                      "region's {}x{}",
                                      file, h.capacity, h.max_message, h.slot_size, shape.capacity,
                                      shape.max_message));
  }
  return Ok();
}

ChannelStatus CheckIndices(const IndexSnapshot& s, std::uint64_t capacity) {
  if (s.write < kFirstId) {
    return Corrupt(Culprit::kProducer, fmt::format("write index {} is below 1", s.write));
  }
  if (s.ack < kFirstId || s.ack_after < s.ack) {
    return Corrupt(Culprit::kConsumer,
                   fmt::format("ack position {} then {} (ids start at 1 and acks only grow)", s.ack,
                               s.ack_after));
  }
  if (s.floor < kFirstId) {
    return Corrupt(Culprit::kRuntime, fmt::format("dead-letter floor {} is below 1", s.floor));
  }
  // The runtime raises the floor only past published messages, so a write
  // index below it went backwards.
  if (s.write < s.floor) {
    return Corrupt(Culprit::kProducer, fmt::format("write index {} is below the dead-letter "
                                                   "floor {}",
                                                   s.write, s.floor));
  }
  if (s.ack > s.write) {
    return Corrupt(Culprit::kConsumer,
                   fmt::format("ack position {} is beyond the write index {}", s.ack, s.write));
  }
  if (s.delivered < s.ack || s.delivered > s.write) {
    return Corrupt(Culprit::kConsumer,
                   fmt::format("delivered position {} is outside [ack {}, write {}]", s.delivered,
                               s.ack, s.write));
  }
  if (s.write > s.ack_after && s.write - s.ack_after > capacity) {
    return Corrupt(Culprit::kProducer,
                   fmt::format("write index {} overruns the ring (ack {} + capacity {})", s.write,
                               s.ack_after, capacity));
  }
  return Ok();
}

}  // namespace slate::channel
