// slate_init and the process-wide calls: what the runtime handed this
// process, readiness, heartbeats and the per-thread error text.
#include <atomic>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <fmt/format.h>

#include "libslate/internal.h"

namespace slate::lib {
namespace {

thread_local std::string last_error;
thread_local int last_code = SLATE_OK;

std::once_flag init_once;
int init_result = SLATE_ENOTINIT;
Process* attached = nullptr;  // leaked on purpose: ends may outlive static destructors
int notify_fd = -1;
std::atomic<std::int64_t> last_beat_ns{0};

std::int64_t MonotonicNs() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

bool ParseInt(std::string_view s, int* out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

// SLATE_CHANNELS="NAME:tx:OWN:PEER:RUNTIME,NAME:rx:OWN:PEER:RUNTIME"
// `indices`: the numbers are indices into descriptors received with the
// text (promotion), not open descriptors.
int ParseChannels(std::string_view text, std::vector<GrantedEnd>* out, bool indices = false) {
  while (!text.empty()) {
    std::size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    std::string_view field[5];
    std::size_t n = 0;
    for (std::string_view rest = item; n < 5;) {
      std::size_t colon = rest.find(':');
      field[n++] = rest.substr(0, colon);
      if (colon == std::string_view::npos) break;
      rest = rest.substr(colon + 1);
    }
    GrantedEnd end;
    end.channel = std::string(field[0]);
    end.tx = field[1] == "tx";
    if (n != 5 || end.channel.empty() || (field[1] != "tx" && field[1] != "rx") ||
        !ParseInt(field[2], &end.own) || !ParseInt(field[3], &end.peer) ||
        !ParseInt(field[4], &end.runtime)) {
      return Fail(SLATE_ENOTRUNTIME,
                  fmt::format("slate_init: SLATE_CHANNELS entry '{}' is malformed", item));
    }
    for (int fd : {end.own, end.peer, end.runtime}) {
      if (!indices && (fd < 0 || ::fcntl(fd, F_GETFD) < 0)) {
        return Fail(SLATE_ENOTRUNTIME,
                    fmt::format("slate_init: descriptor {} of channel {} is not open (was this "
                                "process started by `slate run`?)",
                                fd, end.channel));
      }
    }
    out->push_back(std::move(end));
  }
  return SLATE_OK;
}

// SLATE_STORE="DIR:SIZE:process|power"
int ParseStore(std::string_view text, Process* p) {
  // DIR:SIZE:DURABILITY, split from the right (DIR may hold ':').
  std::string_view v = text;
  std::size_t c2 = v.rfind(':');
  std::size_t c1 =
      c2 == std::string_view::npos || c2 == 0 ? std::string_view::npos : v.rfind(':', c2 - 1);
  std::uint64_t size = 0;
  std::string_view size_text =
      c1 == std::string_view::npos ? std::string_view{} : v.substr(c1 + 1, c2 - c1 - 1);
  auto [ptr, ec] = std::from_chars(size_text.data(), size_text.data() + size_text.size(), size);
  std::string_view durability = c2 == std::string_view::npos ? "" : v.substr(c2 + 1);
  if (c1 == std::string_view::npos || ec != std::errc() || size == 0 ||
      (durability != "process" && durability != "power")) {
    return Fail(SLATE_ENOTRUNTIME, fmt::format("slate_init: SLATE_STORE '{}' is malformed", v));
  }
  p->store_dir = std::string(v.substr(0, c1));
  p->store_size = size;
  p->store_power = durability == "power";
  return SLATE_OK;
}

int DoInit() {
  const char* name = std::getenv("SLATE_COMPONENT");
  if (name == nullptr || *name == '\0') {
    return Fail(SLATE_ENOTRUNTIME,
                "slate_init: this program was not started by a Clean Slate runtime "
                "(SLATE_COMPONENT is not set). Name it in a system file's [component.NAME] "
                "exec and run `slate run FILE`; see docs/component-api.md");
  }
  auto p = std::make_unique<Process>();
  p->component = name;
  if (const char* path = std::getenv("NOTIFY_SOCKET")) p->notify_path = path;
  if (const char* usec = std::getenv("WATCHDOG_USEC")) {
    std::string_view s = usec;
    std::int64_t us = 0;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), us);
    if (ec == std::errc() && ptr == s.data() + s.size() && us > 0) p->watchdog_ns = us * 1000;
  }
  if (const char* st = std::getenv("SLATE_STORE")) {
    if (int rc = ParseStore(st, p.get()); rc != SLATE_OK) return rc;
  }
  if (const char* sb = std::getenv("SLATE_STANDBY")) {
    if (!ParseInt(sb, &p->activation_fd) || p->activation_fd < 3 ||
        ::fcntl(p->activation_fd, F_SETFD, FD_CLOEXEC) < 0) {
      return Fail(SLATE_ENOTRUNTIME,
                  fmt::format("slate_init: SLATE_STANDBY '{}' is not an open descriptor", sb));
    }
    // Nothing the spare runs may take it for a spare of its own.
    ::unsetenv("SLATE_STANDBY");
  }
  if (const char* ch = std::getenv("SLATE_CHANNELS")) {
    if (int rc = ParseChannels(ch, &p->ends); rc != SLATE_OK) return rc;
  }
  if (!p->notify_path.empty()) {
    notify_fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (notify_fd < 0) {
      return Fail(SLATE_ESYSTEM, fmt::format("slate_init: socket: {}", std::strerror(errno)));
    }
  }
  attached = p.release();
  return SLATE_OK;
}

}  // namespace

// The promotion message (runtime/standby.cc): text lines "CHANNELS=..." (as
// SLATE_CHANNELS, with indices into the descriptors that come with it in
// place of descriptor numbers) and "STORE=..." (as SLATE_STORE).
int AwaitActivation(Process* p) {
  // Parked: the runtime may promote us from now on.
  const char parked = 'P';
  while (::send(p->activation_fd, &parked, 1, MSG_NOSIGNAL) < 0) {
    if (errno == EINTR) continue;
    return Fail(SLATE_ESYSTEM,
                fmt::format("slate_await_activation: tell the runtime: {}", std::strerror(errno)));
  }
  constexpr int kMaxFds = 253;  // SCM_MAX_FD
  std::string text(std::size_t{64} * 1024, '\0');
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)];
  iovec iov{text.data(), text.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  while ((n = ::recvmsg(p->activation_fd, &msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) {
  }
  if (n < 0) {
    return Fail(SLATE_ESYSTEM,
                fmt::format("slate_await_activation: recvmsg: {}", std::strerror(errno)));
  }
  if (n == 0) {
    return Fail(SLATE_EPEERDOWN, "slate_await_activation: the runtime retired this spare; exit");
  }
  text.resize(static_cast<std::size_t>(n));
  std::vector<int> fds;
  // Whatever goes wrong below, none of them stays open behind our back.
  struct CloseUnless {
    std::vector<int>* fds;
    bool keep = false;
    ~CloseUnless() {
      if (!keep) {
        for (int fd : *fds) ::close(fd);
      }
    }
  } guard{&fds};
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (std::size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      fds.push_back(fd);
    }
  }
  if ((msg.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) != 0) {
    return Fail(SLATE_ENOTRUNTIME, "slate_await_activation: the promotion message was truncated");
  }
  std::string_view rest = text;
  while (!rest.empty()) {
    const std::size_t eol = rest.find('\n');
    std::string_view line = rest.substr(0, eol);
    rest = eol == std::string_view::npos ? std::string_view{} : rest.substr(eol + 1);
    if (line.starts_with("STORE=")) {
      if (int rc = ParseStore(line.substr(6), p); rc != SLATE_OK) return rc;
    } else if (line.starts_with("CHANNELS=")) {
      std::vector<GrantedEnd> ends;
      if (int rc = ParseChannels(line.substr(9), &ends, true); rc != SLATE_OK) return rc;
      for (GrantedEnd& end : ends) {
        for (int* fd : {&end.own, &end.peer, &end.runtime}) {
          if (*fd < 0 || static_cast<std::size_t>(*fd) >= fds.size()) {
            return Fail(SLATE_ENOTRUNTIME,
                        fmt::format("slate_await_activation: channel {} names descriptor {} of {}",
                                    end.channel, *fd, fds.size()));
          }
          *fd = fds[static_cast<std::size_t>(*fd)];
        }
      }
      p->ends = std::move(ends);
    }
  }
  guard.keep = true;
  ::close(p->activation_fd);
  p->activation_fd = -1;
  return SLATE_OK;
}

Process* Attached() {
  return attached;
}

int Fail(int code, std::string message) {
  last_error = std::move(message);
  last_code = code;
  return code;
}

int LastCode() {
  return last_code;
}

int FailChannel(std::string_view what, const channel::ChannelError& e) {
  int code = SLATE_ESYSTEM;
  switch (e.code) {
    case channel::Errc::kFull: code = SLATE_EFULL; break;
    case channel::Errc::kTooBig: code = SLATE_ETOOBIG; break;
    case channel::Errc::kTimeout: code = SLATE_ETIMEDOUT; break;
    case channel::Errc::kBufferTooSmall: code = SLATE_EMSGSIZE; break;
    case channel::Errc::kInvalidArgument: code = SLATE_EINVAL; break;
    case channel::Errc::kBusy: code = SLATE_EBUSY; break;
    case channel::Errc::kCorrupt: code = SLATE_ECORRUPT; break;
    case channel::Errc::kPeerDown: code = SLATE_EPEERDOWN; break;
    case channel::Errc::kGeometryMismatch:
    case channel::Errc::kNotFound:
    case channel::Errc::kSystem: code = SLATE_ESYSTEM; break;
  }
  return Fail(code, fmt::format("{}: {}", what, e.Describe()));
}

bool Notify(std::string_view message) {
  if (attached == nullptr || notify_fd < 0) return false;
  const std::string& path = attached->notify_path;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) return false;
  std::memcpy(addr.sun_path, path.data(), path.size());
  if (path[0] == '@') addr.sun_path[0] = '\0';  // abstract namespace
  auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size());
  return ::sendto(notify_fd, message.data(), message.size(), MSG_NOSIGNAL,
                  reinterpret_cast<const sockaddr*>(&addr), len) >= 0;
}

}  // namespace slate::lib

using slate::lib::Attached;

extern "C" {

const char* slate_strerror(int code) {
  switch (code) {
    case SLATE_OK: return "SLATE_OK: success";
    case SLATE_ENOTRUNTIME: return "SLATE_ENOTRUNTIME: not started by a Clean Slate runtime";
    case SLATE_ENOTINIT: return "SLATE_ENOTINIT: slate_init has not succeeded";
    case SLATE_EINVAL: return "SLATE_EINVAL: invalid argument";
    case SLATE_ENOCHANNEL: return "SLATE_ENOCHANNEL: no such channel end granted";
    case SLATE_EBUSY: return "SLATE_EBUSY: already open";
    case SLATE_EFULL: return "SLATE_EFULL: queue full";
    case SLATE_ETOOBIG: return "SLATE_ETOOBIG: message longer than max_message";
    case SLATE_ETIMEDOUT: return "SLATE_ETIMEDOUT: timed out";
    case SLATE_EMSGSIZE: return "SLATE_EMSGSIZE: buffer too small";
    case SLATE_ECORRUPT: return "SLATE_ECORRUPT: channel memory corrupt";
    case SLATE_EPEERDOWN: return "SLATE_EPEERDOWN: the peer is down";
    case SLATE_ESYSTEM: return "SLATE_ESYSTEM: system error";
    case SLATE_ENOTFOUND: return "SLATE_ENOTFOUND: no such key";
    case SLATE_ENOSTATE: return "SLATE_ENOSTATE: this component has no state";
    case SLATE_ENOSPC: return "SLATE_ENOSPC: the store is full";
    case SLATE_ETXN: return "SLATE_ETXN: transaction failed or already open";
    default: return "unknown error";
  }
}

const char* slate_last_error(void) {
  return slate::lib::last_error.c_str();
}

int slate_last_error_code(void) {
  return slate::lib::last_code;
}

int slate_init(void) {
  std::call_once(slate::lib::init_once, [] { slate::lib::init_result = slate::lib::DoInit(); });
  if (slate::lib::init_result != SLATE_OK && slate::lib::last_error.empty()) {
    slate::lib::last_error = "slate_init failed earlier in this process";
  }
  return slate::lib::init_result;
}

const char* slate_component(void) {
  return Attached() != nullptr ? Attached()->component.c_str() : nullptr;
}

void slate_ready(void) {
  (void)slate::lib::Notify("READY=1");
}

void slate_heartbeat(void) {
  slate::lib::Process* p = Attached();
  if (p == nullptr || p->watchdog_ns == 0) return;
  const std::int64_t now = slate::lib::MonotonicNs();
  std::int64_t last = slate::lib::last_beat_ns.load(std::memory_order_relaxed);
  if (last != 0 && now - last < p->watchdog_ns / 4) return;
  if (!slate::lib::last_beat_ns.compare_exchange_strong(last, now, std::memory_order_relaxed)) {
    return;  // another thread is sending this one
  }
  (void)slate::lib::Notify("WATCHDOG=1");
}

int slate_await_activation(void) {
  slate::lib::Process* p = Attached();
  if (p == nullptr) {
    return slate::lib::Fail(SLATE_ENOTINIT, "slate_await_activation: call slate_init first");
  }
  if (p->activation_fd < 0) return SLATE_OK;  // not a spare, or promoted already
  return slate::lib::AwaitActivation(p);
}

}  // extern "C"
