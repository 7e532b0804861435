#include "runtime/journal.h"

#include <cerrno>
#include <ctime>
#include <system_error>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

namespace slate::runtime {
namespace {

std::string ErrnoMsg(int err) {
  return std::system_category().message(err);
}

// The seq of the last complete line, and whether the file ends mid-line.
struct Tail {
  std::uint64_t seq = 0;
  bool torn = false;
};

Tail ReadTail(int fd) {
  Tail t;
  off_t size = ::lseek(fd, 0, SEEK_END);
  if (size <= 0) return t;
  // The last few KiB hold the last complete line: events are short.
  off_t start = size > 65536 ? size - 65536 : 0;
  std::string buf(static_cast<std::size_t>(size - start), '\0');
  ssize_t n = ::pread(fd, buf.data(), buf.size(), start);
  if (n <= 0) return t;
  buf.resize(static_cast<std::size_t>(n));
  t.torn = buf.back() != '\n';
  std::size_t end = t.torn ? buf.rfind('\n') : buf.size() - 1;
  while (end != std::string::npos && end > 0) {
    std::size_t begin = buf.rfind('\n', end - 1);
    begin = begin == std::string::npos ? 0 : begin + 1;
    auto j = nlohmann::json::parse(buf.substr(begin, end - begin), nullptr, false);
    if (!j.is_discarded() && j.contains("seq") && j["seq"].is_number_unsigned()) {
      t.seq = j["seq"].get<std::uint64_t>();
      return t;
    }
    if (begin == 0) break;
    end = begin - 1;
  }
  return t;
}

}  // namespace

std::string Rfc3339Now() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return Rfc3339(ts);
}

std::string Rfc3339(const timespec& ts) {
  std::tm tm{};
  ::gmtime_r(&ts.tv_sec, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000);
}

nlohmann::json ToJson(const core::ExitReason& r) {
  nlohmann::json j;
  j["kind"] = std::string(core::ToString(r.kind));
  switch (r.kind) {
    case core::ExitReason::Kind::kExit:
    case core::ExitReason::Kind::kNormal: j["code"] = r.code; break;
    case core::ExitReason::Kind::kSignal:
      j["signal"] = r.signal;
      j["core_dumped"] = r.core_dumped;
      break;
    default: break;
  }
  if (!r.detail.empty()) j["detail"] = r.detail;
  return j;
}

Result<Journal> Journal::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return MakeError(fmt::format("cannot open journal {}: {}", path, ErrnoMsg(errno)));
  Tail t = ReadTail(fd);
  if (t.torn && ::write(fd, "\n", 1) != 1) {
    int err = errno;
    ::close(fd);
    return MakeError(fmt::format("cannot repair journal {}: {}", path, ErrnoMsg(err)));
  }
  return Journal(fd, t.seq);
}

Journal::Journal(Journal&& other) noexcept : fd_(other.fd_), seq_(other.seq_) {
  other.fd_ = -1;
}

Journal& Journal::operator=(Journal&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    seq_ = other.seq_;
    other.fd_ = -1;
  }
  return *this;
}

Journal::~Journal() {
  if (fd_ >= 0) ::close(fd_);
}

Result<std::string> Journal::Append(const core::Event& e, std::chrono::nanoseconds mono) {
  timespec wall{};
  ::clock_gettime(CLOCK_REALTIME, &wall);
  return Append(e, mono, wall);
}

Result<std::string> Journal::Append(const core::Event& e, std::chrono::nanoseconds mono,
                                    const timespec& wall) {
  nlohmann::json j;
  j["seq"] = seq_ + 1;
  j["ts"] = Rfc3339(wall);
  j["mono_ns"] = mono.count();
  j["event"] = e.event;
  if (!e.node.empty()) j["node"] = e.node;
  if (!e.supervisor.empty()) j["supervisor"] = e.supervisor;
  if (e.pid) j["pid"] = *e.pid;
  if (e.reason) j["reason"] = ToJson(*e.reason);
  if (e.restarts) j["restarts"] = *e.restarts;
  if (e.streak) j["streak"] = *e.streak;
  if (e.delay_ms) j["delay_ms"] = *e.delay_ms;
  if (e.step) j["step"] = *e.step;
  if (e.image) j["image"] = *e.image;
  if (e.detail) j["detail"] = *e.detail;
  if (e.checkpoint) j["checkpoint"] = *e.checkpoint;
  if (e.bytes) j["bytes"] = *e.bytes;
  if (e.device) j["device"] = *e.device;
  if (e.ok) j["ok"] = *e.ok;
  if (e.channel) j["channel"] = *e.channel;
  if (e.msg_id) j["msg_id"] = *e.msg_id;
  if (e.deliveries) j["deliveries"] = *e.deliveries;
  std::string line = j.dump();
  std::string out = line + "\n";
  // One write: O_APPEND makes it atomic with respect to readers, who see
  // either the whole line or none of it.
  ssize_t n = ::write(fd_, out.data(), out.size());
  if (n != static_cast<ssize_t>(out.size())) {
    return MakeError(fmt::format("cannot write the journal: {}",
                                 n < 0 ? ErrnoMsg(errno) : std::string("short write")));
  }
  ++seq_;
  return line;
}

}  // namespace slate::runtime
