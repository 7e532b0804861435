#include "channel/channel_files.h"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <utility>

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include "channel/futex.h"

namespace slate::channel {

namespace {

using internal::Mapping;
using internal::ReadAt;
using internal::ReadWord;
using internal::WriteAt;

struct InitialWord {
  std::size_t at;
  std::uint64_t value;
  std::size_t bytes;  // 4 or 8
};

ChannelStatus WriteRegion(const std::string& path, const RegionHeader& h, std::uint64_t size,
                          std::initializer_list<InitialWord> words) {
  auto fd = internal::OpenFile(path, O_RDWR | O_CREAT | O_EXCL);
  if (!fd) return fd.error();
  // Sparse: slots cost nothing until a message is written into them.
  if (::ftruncate(fd->get(), static_cast<off_t>(size)) != 0) {
    return SystemError(fmt::format("size {}", path), errno);
  }
  if (auto st = WriteAt(fd->get(), 0, &h, sizeof h, path); !st) return st;
  for (const InitialWord& w : words) {
    if (auto st = WriteAt(fd->get(), w.at, &w.value, w.bytes, path); !st) return st;
  }
  return Ok();
}

ChannelResult<std::uint64_t> NewNonce() {
  std::uint64_t nonce = 0;
  while (nonce == 0) {
    if (::getrandom(&nonce, sizeof nonce, 0) != static_cast<ssize_t>(sizeof nonce)) {
      if (errno == EINTR) continue;
      return SystemError("getrandom", errno);
    }
  }
  return nonce;
}

ChannelStatus WriteFreshChannel(const std::string& dir, const ChannelGeometry& g,
                                std::uint64_t nonce) {
  auto path = [&](std::string_view file) { return fmt::format("{}/{}", dir, file); };
  if (auto st = WriteRegion(path(kProducerFile), MakeHeader(kProducerMagic, nonce, g),
                            ProducerFileSize(g), {{offset::kWrite, kFirstId, 8}});
      !st) {
    return st;
  }
  if (auto st =
          WriteRegion(path(kConsumerFile), MakeHeader(kConsumerMagic, nonce, g), ConsumerFileSize(),
                      {{offset::kAck, kFirstId, 8}, {offset::kDelivered, kFirstId, 8}});
      !st) {
    return st;
  }
  if (auto st =
          WriteRegion(path(kRuntimeFile), MakeHeader(kRuntimeMagic, nonce, g), RuntimeFileSize(g),
                      {{offset::kFloor, kFirstId, 8},
                       {offset::kMaxDeliveries, g.max_deliveries, 4},
                       {offset::kDeadLetterEnd, DeadLetterQueue::EmptySize(), 8}});
      !st) {
    return st;
  }
  auto dlq = DeadLetterQueue::Create(path(kDeadLetterFile), nonce, g.max_message);
  if (!dlq) return dlq.error();
  return Ok();
}

// Holds the flock on an end's file for the length of a runtime operation.
class EndLock {
 public:
  explicit EndLock(int fd) : fd_(fd) {}
  EndLock(const EndLock&) = delete;
  EndLock& operator=(const EndLock&) = delete;
  ~EndLock() {
    if (held_) internal::Unlock(fd_);
  }
  ChannelStatus Take(std::string_view file, std::string_view who) {
    auto got = internal::TryLock(fd_, file);
    if (!got) return got.error();
    if (!*got) {
      return ChannelError{Errc::kBusy, Culprit::kNone, fmt::format("the {} is attached", who), 0};
    }
    held_ = true;
    return Ok();
  }

 private:
  int fd_;
  bool held_ = false;
};

}  // namespace

ChannelResult<ChannelFiles> ChannelFiles::Create(const std::string& dir, const ChannelGeometry& g) {
  namespace fs = std::filesystem;
  if (auto st = CheckGeometry(g); !st) return st.error();
  // "a/b/ch/" and "a/b/ch" name the same channel.
  std::string base = fs::path(dir).lexically_normal().string();
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  std::error_code ec;
  if (fs::exists(base, ec)) {
    return MakeChannelError(Errc::kInvalidArgument, fmt::format("{} already exists", dir));
  }
  if (fs::path parent = fs::path(base).parent_path(); !parent.empty()) {
    fs::create_directories(parent, ec);
    if (ec) return SystemError(fmt::format("create {}", parent.string()), ec.value());
  }
  auto nonce = NewNonce();
  if (!nonce) return nonce.error();
  std::string staging = base + ".new-XXXXXX";
  if (::mkdtemp(staging.data()) == nullptr) {
    return SystemError(fmt::format("mkdtemp {}", staging), errno);
  }
  auto st = WriteFreshChannel(staging, g, *nonce);
  // RENAME_NOREPLACE: never replace a channel someone made meanwhile.
  if (st && ::renameat2(AT_FDCWD, staging.c_str(), AT_FDCWD, base.c_str(), RENAME_NOREPLACE) != 0) {
    st = SystemError(fmt::format("rename {} to {}", staging, dir), errno);
  }
  if (!st) {
    fs::remove_all(staging, ec);
    return st.error();
  }
  return Open(dir, g);
}

ChannelResult<ChannelFiles> ChannelFiles::OpenOrCreate(const std::string& dir,
                                                       const ChannelGeometry& g) {
  std::error_code ec;
  if (std::filesystem::exists(dir, ec)) return Open(dir, g);
  return Create(dir, g);
}

std::string ChannelFiles::PathOf(std::string_view file) const {
  return fmt::format("{}/{}", dir_, file);
}

std::uint64_t ChannelFiles::Floor() const {
  return Load64(runtime_.data(), offset::kFloor);
}

void ChannelFiles::CommitDeadLetterEnd() {
  Word64(runtime_.data(), offset::kDeadLetterEnd).store(dlq_->end(), std::memory_order_release);
}

ChannelResult<EndFds> ChannelFiles::FdsFor(std::string_view own, std::string_view peer) const {
  EndFds fds;
  auto o = internal::OpenFile(PathOf(own), O_RDWR);
  if (!o) return o.error();
  auto p = internal::OpenFile(PathOf(peer), O_RDONLY);
  if (!p) return p.error();
  auto r = internal::OpenFile(PathOf(kRuntimeFile), O_RDONLY);
  if (!r) return r.error();
  fds.own = std::move(*o);
  fds.peer = std::move(*p);
  fds.runtime = std::move(*r);
  return fds;
}

ChannelResult<EndFds> ChannelFiles::ProducerFds() const {
  return FdsFor(kProducerFile, kConsumerFile);
}

ChannelResult<EndFds> ChannelFiles::ConsumerFds() const {
  return FdsFor(kConsumerFile, kProducerFile);
}

ChannelResult<ChannelStats> ChannelFiles::Stats() const {
  if (auto st = CheckEndFiles(); !st) return st.error();
  auto s = ReadIndices();
  if (!s) return s.error();
  ChannelStats out;
  out.consumed = std::max(s->ack_after, s->floor);
  out.next_id = s->write;
  out.depth = s->write > out.consumed ? s->write - out.consumed : 0;
  const std::uint64_t start = std::max(s->ack, s->floor);
  out.in_flight = s->delivered > start ? s->delivered - start : 0;
  out.dead_letters = dlq_->size();
  auto pe = ReadWord(producer_fd_.get(), offset::kProducerEpoch, Culprit::kProducer, kProducerFile);
  if (!pe) return pe.error();
  auto ce = ReadWord(consumer_fd_.get(), offset::kConsumerEpoch, Culprit::kConsumer, kConsumerFile);
  if (!ce) return ce.error();
  out.producer_epoch = *pe;
  out.consumer_epoch = *ce;
  out.runtime_epoch = Load64(runtime_.data(), offset::kRuntimeEpoch);
  return out;
}

ChannelResult<CrashCharge> ChannelFiles::OnConsumerCrashed() {
  EndLock lock(consumer_fd_.get());
  if (auto st = lock.Take(kConsumerFile, "consumer"); !st) return st.error();
  if (auto st = CheckEndFiles(); !st) return st.error();
  auto s = ReadIndices();
  if (!s) return s.error();
  CrashCharge charge;
  auto epoch =
      ReadWord(consumer_fd_.get(), offset::kConsumerEpoch, Culprit::kConsumer, kConsumerFile);
  if (!epoch) return epoch.error();
  auto charged_epoch = Word64(runtime_.data(), offset::kChargedEpoch);
  if (charged_epoch.load() == *epoch) return charge;  // this crash was dealt with
  const std::uint64_t head = std::max(s->ack, s->floor);
  if (s->delivered <= head) {  // nothing was in flight
    charged_epoch.store(*epoch);
    return charge;
  }
  const auto incarnation = static_cast<std::uint32_t>(*epoch);
  std::byte* entry = runtime_.data() + EntryOffset(geometry_, head);
  // Zero the count before claiming the entry for `head`, so a crash between
  // the two stores never leaves another message's count under this id. The
  // entry also records which incarnation charged it, so a runtime that dies
  // before storing charged_epoch below does not charge this crash twice.
  if (Word64(entry, offset::kEntryId).load() != head) {
    Word64(entry, offset::kEntryCharge).store(0);
    Word64(entry, offset::kEntryId).store(head);
  }
  std::uint64_t packed = Word64(entry, offset::kEntryCharge).load();
  auto count = static_cast<std::uint32_t>(packed);
  const auto charged_by = static_cast<std::uint32_t>(packed >> 32);
  if ((count == 0 || charged_by != incarnation) && count < UINT32_MAX) {
    ++count;
    Word64(entry, offset::kEntryCharge).store(std::uint64_t{incarnation} << 32 | count);
  }
  charge.in_flight = true;
  charge.id = head;
  charge.deliveries = count;
  if (count >= geometry_.max_deliveries) {
    if (auto st = DeadLetterHead(head, count); !st) return st.error();
    charge.dead_lettered = true;
    if (poisoned() == head) Word64(runtime_.data(), offset::kPoison).store(0);
  }
  charged_epoch.store(*epoch);
  // A mark behind the head was never hit (its message was handed out as it
  // was set, and acked): it must not wait for a redelivery.
  if (const std::uint64_t mark = poisoned(); mark != 0 && mark < std::max(s->ack, Floor())) {
    Word64(runtime_.data(), offset::kPoison).store(0);
  }
  return charge;
}

ChannelResult<std::uint64_t> ChannelFiles::Poison() {
  auto poison = Word64(runtime_.data(), offset::kPoison);
  // The consumer records a delivery before it reads the mark: if it was
  // handed the chosen message meanwhile, choose the next one.
  for (int attempt = 0; attempt < 16; ++attempt) {
    auto end = ReadPublishedEnd();
    if (!end) return end.error();
    poison.store(*end, std::memory_order_seq_cst);
    auto delivered =
        ReadWord(consumer_fd_.get(), offset::kDelivered, Culprit::kConsumer, kConsumerFile);
    if (!delivered) return delivered.error();
    if (*delivered <= *end) return *end;
  }
  poison.store(0);
  return MakeChannelError(Errc::kBusy, "the consumer kept overtaking the mark");
}

std::uint64_t ChannelFiles::poisoned() const {
  return Load64(runtime_.data(), offset::kPoison);
}

ChannelStatus ChannelFiles::DeadLetterHead(std::uint64_t id, std::uint32_t deliveries) {
  // Step 1: the record (skipped if a crash came between the steps last time).
  if (!dlq_->Contains(id)) {
    const std::uint64_t at = SlotOffset(geometry_, id);
    std::uint64_t slot_id = 0;
    std::uint32_t length = 0;
    if (auto st = ReadAt(producer_fd_.get(), at + offset::kSlotId, &slot_id, sizeof slot_id,
                         Culprit::kProducer, kProducerFile);
        !st) {
      return st;
    }
    if (auto st = ReadAt(producer_fd_.get(), at + offset::kSlotLength, &length, sizeof length,
                         Culprit::kProducer, kProducerFile);
        !st) {
      return st;
    }
    if (slot_id != id || length > geometry_.max_message) {
      return Corrupt(Culprit::kProducer,
                     fmt::format("slot of message {} holds id {}, {} bytes", id, slot_id, length));
    }
    std::vector<std::byte> payload(length);
    if (auto st = ReadAt(producer_fd_.get(), at + kSlotHeaderSize, payload.data(), length,
                         Culprit::kProducer, kProducerFile);
        !st) {
      return st;
    }
    if (auto st = dlq_->Append(id, deliveries, payload); !st) return st;
    CommitDeadLetterEnd();
  }
  // Step 2: the floor. The next consumer starts after the dead letter.
  Word64(runtime_.data(), offset::kFloor).store(id + 1, std::memory_order_seq_cst);
  return Ok();
}

ChannelResult<std::uint64_t> ChannelFiles::Requeue(std::uint64_t dead_letter_id) {
  auto letter = dlq_->Get(dead_letter_id);
  if (!letter) return letter.error();
  EndLock lock(producer_fd_.get());
  if (auto st = lock.Take(kProducerFile, "producer"); !st) return st.error();
  if (auto st = CheckEndFiles(); !st) return st.error();
  auto s = ReadIndices();
  if (!s) return s.error();
  if (s->write >= s->ack_after + geometry_.capacity) {
    return MakeChannelError(Errc::kFull, "no free slot to requeue into");
  }
  // The producer is detached and its file's size was just checked, so
  // writing through a mapping cannot fault; the mapping lets the write index
  // move atomically for a consumer that may be reading it.
  auto ring = Mapping::Map(producer_fd_.get(), ProducerFileSize(geometry_), true, kProducerFile);
  if (!ring) return ring.error();
  std::byte* base = ring->data();
  const std::uint64_t id = s->write;
  std::byte* slot = base + SlotOffset(geometry_, id);
  Word32(slot, offset::kSlotLength)
      .store(static_cast<std::uint32_t>(letter->payload.size()), std::memory_order_relaxed);
  if (!letter->payload.empty()) {
    std::memcpy(slot + kSlotHeaderSize, letter->payload.data(), letter->payload.size());
  }
  // As Producer::Send: the slot's id is the commit point, the index follows.
  Word64(slot, offset::kSlotId).store(id, std::memory_order_release);
  Word64(base, offset::kWrite).store(id + 1, std::memory_order_seq_cst);
  // Rare enough to wake unconditionally rather than read the consumer's flag.
  Word32(base, offset::kWriteSeq).fetch_add(1, std::memory_order_seq_cst);
  internal::FutexWake(base + offset::kWriteSeq);
  // A crash before this line leaves the letter both requeued and listed:
  // delivered again, never lost.
  if (auto st = dlq_->MarkRequeued(dead_letter_id); !st) return st.error();
  CommitDeadLetterEnd();
  return id;
}

ChannelStatus ChannelFiles::Purge(std::uint64_t dead_letter_id) {
  if (auto st = dlq_->Purge(dead_letter_id); !st) return st;
  CommitDeadLetterEnd();
  return Ok();
}

ChannelStatus ChannelFiles::PurgeAll() {
  // Lower the committed end first: a crash between the two leaves whole
  // records past it, which Open keeps.
  Word64(runtime_.data(), offset::kDeadLetterEnd)
      .store(DeadLetterQueue::EmptySize(), std::memory_order_release);
  if (auto st = dlq_->PurgeAll(); !st) return st;
  CommitDeadLetterEnd();
  return Ok();
}

void ChannelFiles::SetDown(EndRole end, bool down) {
  const bool producer = end == EndRole::kProducer;
  Word32(runtime_.data(), producer ? offset::kProducerDown : offset::kConsumerDown)
      .store(down ? 1 : 0, std::memory_order_seq_cst);
  if (!down) return;
  // The peer may be about to sleep on the down end's futex word, having read
  // the flag as 0: change the word (so its FUTEX_WAIT does not block) and
  // wake it.
  Nudge(end);
}

void ChannelFiles::Nudge(EndRole end) const {
  // The counter is changed with pread/pwrite, never through a writable
  // mapping (the end may have shrunk its file: no SIGBUS for us); futex
  // wakes through a read-only mapping, which at worst fails with EFAULT.
  const bool producer = end == EndRole::kProducer;
  const int fd = producer ? producer_fd_.get() : consumer_fd_.get();
  const std::size_t at = producer ? offset::kWriteSeq : offset::kAckSeq;
  std::uint32_t seq = 0;
  if (::pread(fd, &seq, sizeof seq, static_cast<off_t>(at)) != sizeof seq) return;
  seq += 1;
  if (::pwrite(fd, &seq, sizeof seq, static_cast<off_t>(at)) != sizeof seq) return;
  auto page = Mapping::Map(fd, kPageSize, false, producer ? kProducerFile : kConsumerFile);
  if (page) internal::FutexWake(page->data() + at);
}

bool ChannelFiles::IsDown(EndRole end) const {
  return Load32(runtime_.data(),
                end == EndRole::kProducer ? offset::kProducerDown : offset::kConsumerDown) != 0;
}

ChannelStatus ChannelFiles::Check() const {
  if (auto st = CheckEndFiles(); !st) return st;
  auto s = ReadIndices();
  if (!s) return s.error();
  return CheckSlots(std::max(s->ack_after, s->floor), s->write);
}

ChannelResult<std::string> ChannelFiles::Repair(EndRole end) {
  const bool producer = end == EndRole::kProducer;
  const int fd = producer ? producer_fd_.get() : consumer_fd_.get();
  const std::string_view file = producer ? kProducerFile : kConsumerFile;
  EndLock lock(fd);
  if (auto st = lock.Take(file, producer ? "producer" : "consumer"); !st) return st.error();
  std::vector<std::string> changes;

  const std::uint64_t size = producer ? ProducerFileSize(geometry_) : ConsumerFileSize();
  struct stat sb {};
  if (::fstat(fd, &sb) != 0) return SystemError(fmt::format("stat {}", file), errno);
  if (static_cast<std::uint64_t>(sb.st_size) != size) {
    if (::ftruncate(fd, static_cast<off_t>(size)) != 0) {
      return SystemError(fmt::format("resize {}", file), errno);
    }
    changes.push_back(fmt::format("size {} -> {}", sb.st_size, size));
  }
  const RegionHeader want =
      MakeHeader(producer ? kProducerMagic : kConsumerMagic, nonce_, geometry_);
  RegionHeader have;
  if (auto st = ReadAt(fd, 0, &have, sizeof have, Culprit::kNone, file); !st) return st.error();
  if (std::memcmp(&have, &want, sizeof want) != 0) {
    if (auto st = internal::WriteAt(fd, 0, &want, sizeof want, file); !st) return st.error();
    changes.emplace_back("header rewritten");
  }

  // Detached, locked and of the right size: the mapping cannot fault, and it
  // lets the positions move atomically for a peer that is reading them.
  auto map = Mapping::Map(fd, producer ? ProducerFileSize(geometry_) : kPageSize, true, file);
  if (!map) return map.error();
  std::byte* base = map->data();
  const std::uint64_t floor = Floor();
  if (producer) {
    auto ack = ReadWord(consumer_fd_.get(), offset::kAck, Culprit::kConsumer, kConsumerFile);
    if (!ack) return ack.error();
    const std::uint64_t consumed = std::max({*ack, floor, kFirstId});
    const std::uint64_t write = Load64(base, offset::kWrite);
    // The longest run of whole messages from the consumer's position, but
    // never past the published end of a write index that was itself in range.
    std::uint64_t limit = consumed + geometry_.capacity;
    // (write + 1 == consumed: the index lags behind a message already acked.)
    if (write + 1 >= consumed && write <= limit) {
      limit = std::min(limit, channel::PublishedEnd(base, geometry_));
    }
    std::uint64_t good = consumed;
    while (good < limit) {
      const std::byte* slot = base + SlotOffset(geometry_, good);
      if (!SlotHolds(Load64(slot, offset::kSlotId, std::memory_order_relaxed),
                     Load32(slot, offset::kSlotLength, std::memory_order_relaxed), good,
                     geometry_)) {
        break;
      }
      ++good;
    }
    // A slot beyond the end that holds an id at or past it was written by
    // the faulty process (or is from before an earlier repair): a consumer
    // polls the slot of the next id, so it must not find one there early.
    std::uint64_t cleared = 0;
    for (std::uint64_t i = 0; i < geometry_.capacity; ++i) {
      auto id = Word64(base + kPageSize + i * SlotSize(geometry_.max_message), offset::kSlotId);
      if (id.load(std::memory_order_relaxed) >= good) {
        id.store(0, std::memory_order_relaxed);
        ++cleared;
      }
    }
    if (good != write) {
      Word64(base, offset::kWrite).store(good, std::memory_order_seq_cst);
      changes.push_back(write >= good && write <= consumed + geometry_.capacity
                            ? fmt::format("write index {} -> {} ({} damaged messages dropped)",
                                          write, good, write - good)
                            : fmt::format("write index {} -> {}", write, good));
    }
    if (cleared > 0)
      changes.push_back(fmt::format("{} slot ids at or past {} cleared", cleared, good));
    Word32(runtime_.data(), offset::kRepairs).fetch_add(1, std::memory_order_seq_cst);
    Word32(base, offset::kWriteSeq).fetch_add(1, std::memory_order_seq_cst);
    internal::FutexWake(base + offset::kWriteSeq);
  } else {
    auto write = ReadPublishedEnd();
    if (!write) return write.error();
    const std::uint64_t ack = Load64(base, offset::kAck);
    const std::uint64_t delivered = Load64(base, offset::kDelivered);
    std::uint64_t good = ack;
    if (ack < std::max(floor, kFirstId) || ack > *write) {
      good = std::min(std::max(last_good_consumed_, floor), *write);
      changes.push_back(fmt::format("ack {} -> {}", ack, good));
    }
    if (delivered != good) {
      Word64(base, offset::kDelivered).store(good, std::memory_order_seq_cst);
      if (delivered < good || delivered > *write) {
        changes.push_back(fmt::format("delivered {} -> {}", delivered, good));
      }
    }
    Word64(base, offset::kAck).store(good, std::memory_order_seq_cst);
    Word32(runtime_.data(), offset::kRepairs).fetch_add(1, std::memory_order_seq_cst);
    Word32(base, offset::kAckSeq).fetch_add(1, std::memory_order_seq_cst);
    internal::FutexWake(base + offset::kAckSeq);
  }
  std::string out;
  for (const auto& c : changes) {
    if (!out.empty()) out += ", ";
    out += c;
  }
  return out;
}

}  // namespace slate::channel
