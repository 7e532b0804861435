#include "runtime/log_sink.h"

#include <algorithm>
#include <cstdio>  // renameat2, RENAME_EXCHANGE
#include <ctime>
#include <system_error>

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include "runtime/say.h"

namespace slate::runtime {

LogSink::LogSink(std::string name, std::string path, bool echo)
    : name_(std::move(name)), path_(std::move(path)), echo_(echo) {
  OpenFile();
}

LogSink::LogSink(LogSink&& other) noexcept
    : name_(std::move(other.name_)),
      path_(std::move(other.path_)),
      echo_(other.echo_),
      fd_(other.fd_),
      size_(other.size_),
      partial_(std::move(other.partial_)),
      echo_dropped_(other.echo_dropped_) {
  other.fd_ = -1;
}

LogSink::~LogSink() {
  Flush();
  if (fd_ >= 0) ::close(fd_);
}

void LogSink::OpenFile() {
  // A runtime that died inside Rotate, after the exchange, left the full log
  // at NAME.log.new: move it on to NAME.log.1 as Rotate would have.
  const std::string fresh = path_ + ".new";
  struct stat left {};
  if (::stat(fresh.c_str(), &left) == 0 && left.st_size > 0) {
    (void)::rename(fresh.c_str(), (path_ + ".1").c_str());
  }
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd_ < 0) {
    Say("cannot open log {}: {}", path_, std::system_category().message(errno));
    return;
  }
  struct stat st {};
  size_ = ::fstat(fd_, &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
}

void LogSink::Rotate() {
  // NAME.log must exist at every instant (a reader may look at any time):
  // the fresh file is made aside and swapped in with one atomic exchange;
  // only then does the full one move on to NAME.log.1.
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  std::string fresh = path_ + ".new";
  std::string old = path_ + ".1";
  int nfd = ::open(fresh.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0640);
  if (nfd >= 0 &&
      ::renameat2(AT_FDCWD, fresh.c_str(), AT_FDCWD, path_.c_str(), RENAME_EXCHANGE) == 0) {
    if (::rename(fresh.c_str(), old.c_str()) != 0) {
      Say("cannot rotate {}: {}", path_, std::system_category().message(errno));
    }
    fd_ = nfd;
    size_ = 0;
    return;
  }
  // No exchange on this file system: rename, then create (a brief gap).
  if (nfd >= 0) {
    ::close(nfd);
    ::unlink(fresh.c_str());
  }
  if (::rename(path_.c_str(), old.c_str()) != 0) {
    Say("cannot rotate {}: {}", path_, std::system_category().message(errno));
  }
  OpenFile();
}

void LogSink::Write(std::string_view data) {
  while (!data.empty()) {
    std::size_t nl = data.find('\n');
    if (nl == std::string_view::npos) {
      partial_.append(data);
      while (partial_.size() >= kMaxLine) {
        Line(std::string_view(partial_).substr(0, kMaxLine));
        partial_.erase(0, kMaxLine);
      }
      return;
    }
    if (partial_.empty()) {
      Line(data.substr(0, nl));
    } else {
      partial_.append(data.substr(0, nl));
      Line(partial_);
      partial_.clear();
    }
    data.remove_prefix(nl + 1);
  }
}

void LogSink::Flush() {
  if (partial_.empty()) return;
  Line(partial_);
  partial_.clear();
}

void LogSink::Line(std::string_view line) {
  std::string out(line);
  out += '\n';
  if (fd_ >= 0) {
    if (size_ + out.size() > kRotateAt) Rotate();
    if (fd_ >= 0 && ::write(fd_, out.data(), out.size()) > 0) size_ += out.size();
  }
  if (!echo_) return;
  // Refill the echo budget; a line beyond it is not echoed.
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  std::int64_t now = ts.tv_sec * 1'000'000'000LL + ts.tv_nsec;
  echo_tokens_ =
      std::min(kEchoPerSecond,
               echo_tokens_ + static_cast<double>(now - echo_refilled_ns_) * kEchoPerSecond / 1e9);
  echo_refilled_ns_ = now;
  if (echo_tokens_ < 1) {
    ++echo_dropped_;
    return;
  }
  echo_tokens_ -= 1;
  if (echo_dropped_ > echo_dropped_reported_) {
    if (!Echo(fmt::format("{} | [{} lines not shown here; see {}]\n", name_,
                          echo_dropped_ - echo_dropped_reported_, path_))) {
      ++echo_dropped_;
      return;
    }
    echo_dropped_reported_ = echo_dropped_;
  }
  if (!Echo(fmt::format("{} | {}", name_, out))) ++echo_dropped_;
}

bool LogSink::Echo(std::string_view text) {
  // Write only if stderr can take it now: POLLOUT on a pipe means at least
  // PIPE_BUF bytes fit, and a write of up to PIPE_BUF bytes is then whole.
  pollfd p{STDERR_FILENO, POLLOUT, 0};
  return text.size() <= 4096 && ::poll(&p, 1, 0) == 1 && (p.revents & POLLOUT) != 0 &&
         ::write(STDERR_FILENO, text.data(), text.size()) > 0;
}

}  // namespace slate::runtime
