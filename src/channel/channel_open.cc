// ChannelFiles::Open and the checks the runtime repeats on every Stats,
// OnConsumerCrashed and Requeue: the recovery path of docs/channel-format.md.
#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>
#include <tuple>
#include <utility>
#include <vector>

#include <fcntl.h>

#include <fmt/format.h>

#include "channel/channel_files.h"

namespace slate::channel {

namespace {

using internal::ReadAt;
using internal::ReadWord;

// Slot headers are read in runs of up to this many bytes.
constexpr std::uint64_t kReadChunk = std::uint64_t{1} << 20;

// A file the runtime made is missing: the directory was tampered with.
ChannelResult<platform::UniqueFd> OpenOwnedFile(const std::string& path) {
  auto fd = internal::OpenFile(path, O_RDWR);
  if (!fd && fd.error().code == Errc::kNotFound) {
    return Corrupt(Culprit::kRuntime, fmt::format("{} is missing", path));
  }
  return fd;
}

// A channel made by an older runtime is brought up to this layout in place;
// queued messages, positions and dead letters are untouched. The ends are
// not attached (Open runs before any component starts). The runtime region
// goes last: a runtime that dies midway leaves it old, and the next Open
// migrates again (every step can be repeated).
//   1 -> 2: the wants_* words moved from offset 76 (cleared here) to 256.
//   2 -> 3: the slot's id became the commit point. Up to layout 2 the
//     producer wrote the id first, so the slot of `write` can hold its id
//     over half a payload, and a repair may have left ids past `write`:
//     every slot id at or past `write` is cleared, or a consumer polling
//     slots would take it for a published message. One pass over the slot
//     headers, in reads of up to kReadChunk.
ChannelStatus MigrateLayout(std::uint32_t from, const std::array<int, 3>& fds,
                            const ChannelGeometry& g, std::vector<std::string>* notes) {
  const std::array<std::string_view, 3> files = {kProducerFile, kConsumerFile, kRuntimeFile};
  const int producer = fds[0];
  // Only with a write index in range: one out of range is the producer's
  // garbage, which Check finds and Repair mends (it clears the slot ids
  // past the end it settles on).
  std::optional<std::uint64_t> write;
  if (from < 3) {
    auto w = ReadWord(producer, offset::kWrite, Culprit::kProducer, kProducerFile);
    auto ack = ReadWord(fds[1], offset::kAck, Culprit::kConsumer, kConsumerFile);
    auto floor = ReadWord(fds[2], offset::kFloor, Culprit::kRuntime, kRuntimeFile);
    if (!w) return w.error();
    if (ack && floor && *w >= std::max({*ack, *floor, kFirstId}) && *w <= *ack + g.capacity) {
      write = *w;
    }
  }
  if (write) {
    const std::uint64_t slot = SlotSize(g.max_message);
    const std::uint64_t per_read = slot <= kReadChunk ? kReadChunk / slot : 1;
    std::vector<std::byte> buf;
    for (std::uint64_t i = 0; i < g.capacity;) {
      const std::uint64_t n = std::min(per_read, g.capacity - i);
      buf.resize((n - 1) * slot + sizeof(std::uint64_t));
      const std::uint64_t at = kPageSize + i * slot;
      if (auto st = ReadAt(producer, at, buf.data(), buf.size(), Culprit::kProducer, kProducerFile);
          !st) {
        return st;
      }
      for (std::uint64_t k = 0; k < n; ++k) {
        std::uint64_t id = 0;
        std::memcpy(&id, buf.data() + k * slot + offset::kSlotId, sizeof id);
        if (id == 0 || id < *write) continue;  // 0: nothing to clear (and maybe a hole)
        const std::uint64_t zero = 0;
        if (auto st = internal::WriteAt(producer, at + k * slot + offset::kSlotId, &zero,
                                        sizeof zero, kProducerFile);
            !st) {
          return st;
        }
      }
      i += n;
    }
  }
  for (std::size_t i = 0; i < fds.size(); ++i) {
    RegionHeader h;
    if (auto st = ReadAt(fds[i], 0, &h, sizeof h, Culprit::kRuntime, files[i]); !st) return st;
    if (h.version >= kLayoutVersion) continue;
    if (h.version == 1 && i < 2) {
      const std::uint32_t zero = 0;
      if (auto st = internal::WriteAt(fds[i], kLayout1Wants, &zero, sizeof zero, files[i]); !st) {
        return st;
      }
    }
    h.version = kLayoutVersion;
    if (auto st = internal::WriteAt(fds[i], 0, &h, sizeof h, files[i]); !st) return st;
  }
  notes->push_back(fmt::format("migrated from channel layout {} to {}", from, kLayoutVersion));
  return Ok();
}

}  // namespace

ChannelResult<ChannelFiles> ChannelFiles::Open(const std::string& dir, const ChannelGeometry& g) {
  if (auto st = CheckGeometry(g); !st) return st.error();
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return MakeChannelError(Errc::kNotFound, fmt::format("no channel directory {}", dir));
  }
  ChannelFiles f;
  f.dir_ = dir;
  f.geometry_ = g;
  for (auto [fd, file] :
       {std::pair{&f.runtime_fd_, kRuntimeFile}, std::pair{&f.producer_fd_, kProducerFile},
        std::pair{&f.consumer_fd_, kConsumerFile}}) {
    auto opened = OpenOwnedFile(f.PathOf(file));
    if (!opened) return opened.error();
    *fd = std::move(*opened);
  }

  // The runtime region declares the shape; it must be the system file's.
  RegionHeader h;
  if (auto st = ReadAt(f.runtime_fd_.get(), 0, &h, sizeof h, Culprit::kRuntime, kRuntimeFile);
      !st) {
    return st.error();
  }
  if (h.magic == kRuntimeMagic && h.version >= 1 && h.version < kLayoutVersion &&
      h.capacity == g.capacity && h.max_message == g.max_message) {
    if (auto st = MigrateLayout(h.version,
                                {f.producer_fd_.get(), f.consumer_fd_.get(), f.runtime_fd_.get()},
                                g, &f.notes_);
        !st) {
      return st.error();
    }
    h.version = kLayoutVersion;
  }
  auto shape = ShapeFromRuntimeHeader(h);
  if (!shape) return shape.error();
  if (!shape->SameShape(g)) {
    return MakeChannelError(
        Errc::kGeometryMismatch,
        fmt::format("{} holds a channel of capacity {} and max_message {}; "
                    "the system file says {} and {}",
                    dir, shape->capacity, shape->max_message, g.capacity, g.max_message));
  }
  if (auto st = internal::CheckFileSize(f.runtime_fd_.get(), RuntimeFileSize(g), Culprit::kRuntime,
                                        kRuntimeFile);
      !st) {
    return st.error();
  }
  f.nonce_ = h.nonce;
  auto mapped = internal::Mapping::Map(f.runtime_fd_.get(), RuntimeFileSize(g), true, kRuntimeFile);
  if (!mapped) return mapped.error();
  f.runtime_ = std::move(*mapped);

  const std::uint64_t committed = Load64(f.runtime_.data(), offset::kDeadLetterEnd);
  auto dlq = DeadLetterQueue::Open(f.PathOf(kDeadLetterFile), f.nonce_, g.max_message, committed,
                                   &f.notes_);
  if (!dlq) return dlq.error();
  f.dlq_.emplace(std::move(*dlq));

  // The ends' files. One an end broke (the runtime may have died before it
  // could repair it after failing that end) is repaired here, as it would
  // have been before the end's next start; each end at most once.
  IndexSnapshot snapshot;
  bool repaired[2] = {false, false};
  for (;;) {
    auto checked = [&f, &snapshot]() -> ChannelStatus {
      if (auto st = f.CheckEndFiles(); !st) return st;
      auto s = f.ReadIndices();
      if (!s) return s.error();
      snapshot = *s;
      return f.CheckSlots(std::max(s->ack_after, s->floor), s->write);
    }();
    if (checked) break;
    const ChannelError& e = checked.error();
    const bool producer = e.culprit == Culprit::kProducer;
    if (e.code != Errc::kCorrupt || (!producer && e.culprit != Culprit::kConsumer) ||
        repaired[producer ? 0 : 1]) {
      return e;
    }
    repaired[producer ? 0 : 1] = true;
    auto what = f.Repair(producer ? EndRole::kProducer : EndRole::kConsumer);
    if (!what && what.error().code == Errc::kBusy) return e;  // attached: its peer names it
    if (!what) return what.error();
    f.notes_.push_back(fmt::format("repaired the {}'s file ({}): {}", CulpritName(e.culprit),
                                   e.Describe(), what->empty() ? "nothing to change" : *what));
  }
  const IndexSnapshot* s = &snapshot;
  const std::uint64_t head = std::max(s->ack_after, s->floor);

  // Recovery. Nothing below runs unless every check above passed.
  f.CommitDeadLetterEnd();  // a torn append may have been cut off
  if (head < s->write && f.dlq_->Contains(head)) {
    // The runtime died between appending the dead letter and raising the floor.
    Word64(f.runtime_.data(), offset::kFloor).store(head + 1, std::memory_order_seq_cst);
    f.notes_.push_back(fmt::format("finished dead-lettering message {}", head));
  }
  auto max_deliveries = Word32(f.runtime_.data(), offset::kMaxDeliveries);
  if (max_deliveries.load() != g.max_deliveries) {
    f.notes_.push_back(
        fmt::format("max_deliveries {} -> {}", max_deliveries.load(), g.max_deliveries));
    max_deliveries.store(g.max_deliveries);
  }
  Word64(f.runtime_.data(), offset::kRuntimeEpoch).fetch_add(1, std::memory_order_seq_cst);
  // A poison mark belongs to the chaos run of the runtime that set it.
  Word64(f.runtime_.data(), offset::kPoison).store(0, std::memory_order_seq_cst);
  // A runtime that died between a bump and its wake (SetDown, Repair,
  // Requeue) may have left an end asleep: both look again.
  f.Nudge(EndRole::kProducer);
  f.Nudge(EndRole::kConsumer);
  return f;
}

ChannelStatus ChannelFiles::CheckEndFiles() const {
  for (auto [fd, file, magic, owner, size] :
       {std::tuple{producer_fd_.get(), kProducerFile, kProducerMagic, Culprit::kProducer,
                   ProducerFileSize(geometry_)},
        std::tuple{consumer_fd_.get(), kConsumerFile, kConsumerMagic, Culprit::kConsumer,
                   ConsumerFileSize()}}) {
    if (auto st = internal::CheckFileSize(fd, size, owner, file); !st) return st;
    RegionHeader h;
    if (auto st = ReadAt(fd, 0, &h, sizeof h, owner, file); !st) return st;
    if (auto st = CheckEndHeader(h, magic, nonce_, geometry_, owner); !st) return st;
  }
  return Ok();
}

ChannelResult<IndexSnapshot> ChannelFiles::ReadIndices() const {
  // This order never reports a consistent channel as corrupt while the ends
  // run (see IndexSnapshot).
  IndexSnapshot s;
  auto consumer_word = [this](std::size_t at) {
    return ReadWord(consumer_fd_.get(), at, Culprit::kConsumer, kConsumerFile);
  };
  auto ack = consumer_word(offset::kAck);
  if (!ack) return ack.error();
  auto delivered = consumer_word(offset::kDelivered);
  if (!delivered) return delivered.error();
  auto write = ReadPublishedEnd();
  if (!write) return write.error();
  auto ack_after = consumer_word(offset::kAck);
  if (!ack_after) return ack_after.error();
  s.ack = *ack;
  s.delivered = *delivered;
  s.write = *write;
  s.ack_after = *ack_after;
  s.floor = Floor();
  if (auto st = CheckIndices(s, geometry_.capacity); !st) return st.error();
  last_good_consumed_ = std::max(s.ack_after, s.floor);
  return s;
}

ChannelResult<std::uint64_t> ChannelFiles::ReadPublishedEnd() const {
  auto write = ReadWord(producer_fd_.get(), offset::kWrite, Culprit::kProducer, kProducerFile);
  if (!write) return write.error();
  if (*write < kFirstId) return *write;  // CheckIndices blames it
  std::array<std::byte, kSlotHeaderSize> head{};
  if (auto st = ReadAt(producer_fd_.get(), SlotOffset(geometry_, *write), head.data(), head.size(),
                       Culprit::kProducer, kProducerFile);
      !st) {
    return st.error();
  }
  std::uint64_t slot_id = 0;
  std::uint32_t length = 0;
  std::memcpy(&slot_id, head.data() + offset::kSlotId, sizeof slot_id);
  std::memcpy(&length, head.data() + offset::kSlotLength, sizeof length);
  auto again = ReadWord(producer_fd_.get(), offset::kWrite, Culprit::kProducer, kProducerFile);
  if (!again) return again.error();
  return PublishedEnd(*write, slot_id, length, *again, geometry_);
}

ChannelStatus ChannelFiles::CheckSlots(std::uint64_t from, std::uint64_t to) const {
  const std::uint64_t slot = SlotSize(geometry_.max_message);
  const std::uint64_t per_read = slot <= kReadChunk ? kReadChunk / slot : 1;
  std::vector<std::byte> buf;
  for (std::uint64_t id = from; id < to;) {
    const std::uint64_t index = id % geometry_.capacity;
    const std::uint64_t n = std::min({per_read, to - id, geometry_.capacity - index});
    buf.resize((n - 1) * slot + kSlotHeaderSize);
    if (auto st = ReadAt(producer_fd_.get(), SlotOffset(geometry_, id), buf.data(), buf.size(),
                         Culprit::kProducer, kProducerFile);
        !st) {
      return st;
    }
    for (std::uint64_t k = 0; k < n; ++k) {
      std::uint64_t slot_id = 0;
      std::uint32_t length = 0;
      std::memcpy(&slot_id, buf.data() + k * slot + offset::kSlotId, sizeof slot_id);
      std::memcpy(&length, buf.data() + k * slot + offset::kSlotLength, sizeof length);
      if (slot_id == id + k && length <= geometry_.max_message) continue;
      // A running consumer may have consumed it meanwhile and the producer
      // reused the slot; only a message still unconsumed must be intact.
      auto ack = ReadWord(consumer_fd_.get(), offset::kAck, Culprit::kConsumer, kConsumerFile);
      if (!ack) return ack.error();
      if (*ack > id + k) continue;
      return Corrupt(Culprit::kProducer,
                     fmt::format("slot {} should hold message {} but holds id {}, {} bytes "
                                 "(max_message {})",
                                 index + k, id + k, slot_id, length, geometry_.max_message));
    }
    id += n;
  }
  return Ok();
}

}  // namespace slate::channel
