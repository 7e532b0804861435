#include "channel/dead_letter_queue.h"

#include <cerrno>
#include <cstring>
#include <ctime>
#include <type_traits>
#include <utility>

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include "channel/crc32c.h"
#include "channel/layout.h"
#include "channel/region_file.h"

namespace slate::channel {

namespace {

using internal::ReadAt;
using internal::WriteAt;

constexpr std::uint64_t kFileMagic = Magic("SLCHDEAD");
constexpr std::uint32_t kRecordMagic = 0x52444c53;  // "SLDR"
constexpr std::uint32_t kDeadLetter = 1;
constexpr std::uint32_t kRequeued = 2;
constexpr std::uint32_t kPurged = 3;

struct FileHeader {
  std::uint64_t magic = kFileMagic;
  std::uint32_t version = kDeadLetterVersion;
  std::uint32_t header_size = sizeof(FileHeader);
  std::uint64_t nonce = 0;
  std::uint64_t max_message = 0;
  std::uint64_t reserved[4] = {0, 0, 0, 0};
};
static_assert(sizeof(FileHeader) == 64 && std::is_trivially_copyable_v<FileHeader>);

struct RecordHeader {
  std::uint32_t magic = kRecordMagic;
  std::uint32_t kind = 0;
  std::uint64_t id = 0;
  std::int64_t time_ns = 0;
  std::uint32_t length = 0;
  std::uint32_t deliveries = 0;
  std::uint32_t crc = 0;  // CRC-32C of this header (crc = 0) then the payload
  std::uint32_t reserved = 0;
};
static_assert(sizeof(RecordHeader) == 40 && std::is_trivially_copyable_v<RecordHeader>);

constexpr std::uint64_t RecordSize(std::uint64_t length) {
  return (sizeof(RecordHeader) + length + 7) / 8 * 8;
}

std::uint32_t RecordCrc(RecordHeader h, std::span<const std::byte> payload) {
  h.crc = 0;
  std::uint32_t crc = internal::Crc32c(0, std::as_bytes(std::span(&h, 1)));
  return internal::Crc32c(crc, payload);
}

std::int64_t RealtimeNs() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

// RFC 3339, UTC, microseconds.
std::string FormatTime(std::int64_t ns) {
  std::int64_t secs = ns / 1'000'000'000;
  std::int64_t micros = (ns % 1'000'000'000) / 1000;
  if (micros < 0) {
    secs -= 1;
    micros += 1'000'000;
  }
  std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, micros);
}

std::string Base64(std::span<const std::byte> data) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < data.size(); i += 3) {
    auto n = std::to_integer<std::uint32_t>(data[i]) << 16 |
             std::to_integer<std::uint32_t>(data[i + 1]) << 8 |
             std::to_integer<std::uint32_t>(data[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += kAlphabet[(n >> s) & 63];
  }
  if (std::size_t rest = data.size() - i; rest > 0) {
    std::uint32_t n = std::to_integer<std::uint32_t>(data[i]) << 16;
    if (rest == 2) n |= std::to_integer<std::uint32_t>(data[i + 1]) << 8;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += rest == 2 ? kAlphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

}  // namespace

DeadLetterQueue::DeadLetterQueue(platform::UniqueFd fd, std::string path, std::uint64_t nonce,
                                 std::uint64_t max_message)
    : fd_(std::move(fd)),
      path_(std::move(path)),
      nonce_(nonce),
      max_message_(max_message),
      end_(sizeof(FileHeader)) {}

ChannelResult<DeadLetterQueue> DeadLetterQueue::Create(const std::string& path, std::uint64_t nonce,
                                                       std::uint64_t max_message) {
  auto fd = internal::OpenFile(path, O_RDWR | O_CREAT | O_EXCL);
  if (!fd) return fd.error();
  FileHeader h;
  h.nonce = nonce;
  h.max_message = max_message;
  if (auto st = WriteAt(fd->get(), 0, &h, sizeof h, path); !st) return st.error();
  return DeadLetterQueue(std::move(*fd), path, nonce, max_message);
}

ChannelResult<DeadLetterQueue> DeadLetterQueue::Open(const std::string& path, std::uint64_t nonce,
                                                     std::uint64_t max_message,
                                                     std::uint64_t committed_end,
                                                     std::vector<std::string>* notes) {
  auto fd = internal::OpenFile(path, O_RDWR);
  if (!fd) return fd.error();
  auto size = internal::FileSize(fd->get(), path);
  if (!size) return size.error();
  FileHeader h;
  if (auto st = ReadAt(fd->get(), 0, &h, sizeof h, Culprit::kRuntime, path); !st) {
    return st.error();
  }
  if (h.magic != kFileMagic || h.version != kDeadLetterVersion || h.header_size != sizeof h) {
    return Corrupt(Culprit::kRuntime, fmt::format("{}: not a dead-letter file of layout {}", path,
                                                  kDeadLetterVersion));
  }
  if (h.nonce != nonce || h.max_message != max_message) {
    return Corrupt(Culprit::kRuntime, fmt::format("{}: made for another channel", path));
  }
  if (committed_end < sizeof h || committed_end > *size) {
    return Corrupt(Culprit::kRuntime,
                   fmt::format("{} is {} bytes, but {} records it whole up to {}", path, *size,
                               kRuntimeFile, committed_end));
  }
  DeadLetterQueue q(std::move(*fd), path, nonce, max_message);
  if (auto st = q.Scan(*size, committed_end, notes); !st) return st.error();
  return q;
}

std::uint64_t DeadLetterQueue::EmptySize() {
  return sizeof(FileHeader);
}

ChannelStatus DeadLetterQueue::Scan(std::uint64_t file_size, std::uint64_t committed_end,
                                    std::vector<std::string>* notes) {
  std::uint64_t at = sizeof(FileHeader);
  std::vector<std::byte> payload;
  auto bad = [&](std::string_view what) {
    return Corrupt(Culprit::kRuntime, fmt::format("{}: record at offset {}: {}", path_, at, what));
  };
  auto torn = [&](std::string_view why) -> ChannelStatus {
    if (at < committed_end) return bad(why);
    if (::ftruncate(fd_.get(), static_cast<off_t>(at)) != 0) {
      return SystemError(fmt::format("truncate {}", path_), errno);
    }
    if (notes != nullptr) {
      notes->push_back(fmt::format("{}: cut {} bytes of a torn append at offset {} ({})", path_,
                                   file_size - at, at, why));
    }
    end_ = at;
    return Ok();
  };
  while (at < file_size) {
    if (file_size - at < sizeof(RecordHeader)) return torn("short header");
    RecordHeader r;
    if (auto st = ReadAt(fd_.get(), at, &r, sizeof r, Culprit::kRuntime, path_); !st) return st;
    if (r.magic != kRecordMagic) return torn("bad magic");
    if (r.kind < kDeadLetter || r.kind > kPurged) return torn(fmt::format("kind {}", r.kind));
    if (r.length > max_message_) return torn(fmt::format("length {}", r.length));
    const std::uint64_t size = RecordSize(r.length);
    if (size > file_size - at) return torn("short payload");
    payload.resize(r.length);
    if (auto st =
            ReadAt(fd_.get(), at + sizeof r, payload.data(), r.length, Culprit::kRuntime, path_);
        !st) {
      return st;
    }
    if (RecordCrc(r, payload) != r.crc) return torn("checksum mismatch");
    if (at < committed_end && committed_end < at + size) {
      return bad(fmt::format("the committed end {} falls inside it", committed_end));
    }
    if (r.kind == kDeadLetter) {
      if (!live_.emplace(r.id, at).second) return torn(fmt::format("id {} twice", r.id));
    } else {
      live_.erase(r.id);
    }
    at += size;
  }
  end_ = at;
  return Ok();
}

ChannelStatus DeadLetterQueue::AppendRecord(std::uint32_t kind, std::uint64_t id,
                                            std::uint32_t deliveries,
                                            std::span<const std::byte> payload) {
  RecordHeader r;
  r.kind = kind;
  r.id = id;
  r.time_ns = RealtimeNs();
  r.length = static_cast<std::uint32_t>(payload.size());
  r.deliveries = deliveries;
  r.crc = RecordCrc(r, payload);
  std::vector<std::byte> buf(RecordSize(payload.size()));
  std::memcpy(buf.data(), &r, sizeof r);
  if (!payload.empty()) std::memcpy(buf.data() + sizeof r, payload.data(), payload.size());
  // One pwrite: a crash leaves at most a torn tail, which Open cuts off.
  if (auto st = WriteAt(fd_.get(), end_, buf.data(), buf.size(), path_); !st) {
    (void)::ftruncate(fd_.get(), static_cast<off_t>(end_));
    return st;
  }
  if (kind == kDeadLetter) live_.emplace(id, end_);
  end_ += buf.size();
  return Ok();
}

ChannelStatus DeadLetterQueue::Append(std::uint64_t id, std::uint32_t deliveries,
                                      std::span<const std::byte> payload) {
  if (live_.contains(id)) {
    return MakeChannelError(Errc::kInvalidArgument,
                            fmt::format("message {} is already a dead letter", id));
  }
  if (payload.size() > max_message_) {
    return MakeChannelError(Errc::kInvalidArgument,
                            fmt::format("{} bytes is over max_message", payload.size()));
  }
  return AppendRecord(kDeadLetter, id, deliveries, payload);
}

std::vector<std::uint64_t> DeadLetterQueue::Ids() const {
  std::vector<std::uint64_t> ids;
  ids.reserve(live_.size());
  for (const auto& [id, at] : live_) ids.push_back(id);
  return ids;
}

ChannelResult<DeadLetter> DeadLetterQueue::Get(std::uint64_t id) const {
  auto it = live_.find(id);
  if (it == live_.end()) {
    return MakeChannelError(Errc::kNotFound, fmt::format("no dead letter {}", id));
  }
  RecordHeader r;
  if (auto st = ReadAt(fd_.get(), it->second, &r, sizeof r, Culprit::kRuntime, path_); !st) {
    return st.error();
  }
  DeadLetter d;
  d.id = r.id;
  d.deliveries = r.deliveries;
  d.time_ns = r.time_ns;
  d.payload.resize(r.length);
  if (auto st = ReadAt(fd_.get(), it->second + sizeof r, d.payload.data(), r.length,
                       Culprit::kRuntime, path_);
      !st) {
    return st.error();
  }
  return d;
}

ChannelResult<std::vector<DeadLetter>> DeadLetterQueue::List() const {
  std::vector<DeadLetter> all;
  all.reserve(live_.size());
  for (const auto& [id, at] : live_) {
    auto d = Get(id);
    if (!d) return d.error();
    all.push_back(std::move(*d));
  }
  return all;
}

ChannelResult<std::string> DeadLetterQueue::ExportJsonLines() const {
  std::string out;
  for (const auto& [id, at] : live_) {
    auto d = Get(id);
    if (!d) return d.error();
    out += fmt::format(
        "{{\"id\":{},\"time\":\"{}\",\"deliveries\":{},\"length\":{},\"payload_base64\":\"{}\"}}\n",
        d->id, FormatTime(d->time_ns), d->deliveries, d->payload.size(), Base64(d->payload));
  }
  return out;
}

ChannelStatus DeadLetterQueue::End(std::uint64_t id, std::uint32_t kind) {
  if (!live_.contains(id)) {
    return MakeChannelError(Errc::kNotFound, fmt::format("no dead letter {}", id));
  }
  if (auto st = AppendRecord(kind, id, 0, {}); !st) return st;
  live_.erase(id);
  return Ok();
}

ChannelStatus DeadLetterQueue::MarkRequeued(std::uint64_t id) {
  return End(id, kRequeued);
}

ChannelStatus DeadLetterQueue::Purge(std::uint64_t id) {
  return End(id, kPurged);
}

ChannelStatus DeadLetterQueue::PurgeAll() {
  if (::ftruncate(fd_.get(), static_cast<off_t>(sizeof(FileHeader))) != 0) {
    return SystemError(fmt::format("truncate {}", path_), errno);
  }
  live_.clear();
  end_ = sizeof(FileHeader);
  return Ok();
}

}  // namespace slate::channel
