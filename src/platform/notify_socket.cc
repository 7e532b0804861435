#include "platform/notify_socket.h"

#include <cerrno>
#include <charconv>
#include <cstring>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "platform/status.h"

namespace slate::platform {
namespace {

// Room for credentials and up to 16 descriptors. More descriptors than that
// are closed by the kernel itself (MSG_CTRUNC), so none can leak.
constexpr std::size_t kMaxFds = 16;
constexpr std::size_t kControlSize = CMSG_SPACE(sizeof(ucred)) + CMSG_SPACE(sizeof(int) * kMaxFds);

std::optional<pid_t> ParsePid(std::string_view text) {
  pid_t pid = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), pid);
  if (error != std::errc() || end != text.data() + text.size() || pid <= 0) {
    return std::nullopt;
  }
  return pid;
}

void ApplyAssignment(std::string_view key, std::string_view value, NotifyMessage& message) {
  if (key == "READY" && value == "1") {
    message.ready = true;
  } else if (key == "WATCHDOG" && value == "1") {
    message.watchdog = true;
  } else if (key == "STOPPING" && value == "1") {
    message.stopping = true;
  } else if (key == "RELOADING" && value == "1") {
    message.reloading = true;
  } else if (key == "STATUS") {
    message.status = std::string(value);
  } else if (key == "MAINPID") {
    message.main_pid = ParsePid(value);
    message.malformed |= !message.main_pid.has_value();
  } else {
    message.other.emplace_back(std::string(key) + "=" + std::string(value));
  }
}

// Closes every descriptor in SCM_RIGHTS and copies SCM_CREDENTIALS.
void TakeControl(msghdr& header, NotifyMessage& message) {
  for (cmsghdr* c = CMSG_FIRSTHDR(&header); c != nullptr; c = CMSG_NXTHDR(&header, c)) {
    if (c->cmsg_level != SOL_SOCKET) {
      continue;
    }
    const std::size_t data_size = c->cmsg_len - CMSG_LEN(0);
    if (c->cmsg_type == SCM_RIGHTS) {
      for (std::size_t i = 0; i < data_size / sizeof(int); ++i) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
        ::close(fd);
        ++message.fds_discarded;
      }
    } else if (c->cmsg_type == SCM_CREDENTIALS && data_size >= sizeof(ucred)) {
      ucred cred;
      std::memcpy(&cred, CMSG_DATA(c), sizeof cred);
      message.pid = cred.pid;
      message.uid = cred.uid;
      message.gid = cred.gid;
    }
  }
}

Result<sockaddr_un> MakeAddress(const std::string& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.empty() || path[0] == '\0' || path.size() >= sizeof address.sun_path ||
      path.find('\0') != std::string::npos) {
    return MakeError("notify socket path \"" + path + "\" is empty or longer than " +
                     std::to_string(sizeof address.sun_path - 1) + " bytes");
  }
  std::memcpy(address.sun_path, path.data(), path.size());
  return address;
}

// A socket file from an earlier run is replaced; anything else is kept.
Status RemoveStaleSocket(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    return errno == ENOENT ? OkStatus() : ErrnoError("stat " + path, errno);
  }
  if (!S_ISSOCK(st.st_mode)) {
    return MakeError("notify socket " + path + ": a file that is not a socket is in the way");
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return ErrnoError("unlink " + path, errno);
  }
  return OkStatus();
}

}  // namespace

NotifyMessage ParseNotifyPayload(std::string_view payload) {
  NotifyMessage message;
  if (payload.find('\0') != std::string_view::npos) {
    message.malformed = true;
    return message;
  }
  while (!payload.empty()) {
    const std::size_t end = std::min(payload.find('\n'), payload.size());
    const std::string_view line = payload.substr(0, end);
    payload.remove_prefix(std::min(end + 1, payload.size()));
    if (line.empty()) {
      continue;
    }
    const std::size_t equals = line.find('=');
    if (equals == 0 || equals == std::string_view::npos) {
      message.malformed = true;
      continue;
    }
    ApplyAssignment(line.substr(0, equals), line.substr(equals + 1), message);
  }
  return message;
}

Result<NotifySocket> NotifySocket::Bind(std::string path) {
  auto address = MakeAddress(path);
  if (!address) {
    return address.error();
  }
  UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) {
    return ErrnoError("socket AF_UNIX", errno);
  }
  const int on = 1;
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_PASSCRED, &on, sizeof on) != 0) {
    return ErrnoError("setsockopt SO_PASSCRED", errno);
  }
  if (auto stale = RemoveStaleSocket(path); !stale) {
    return stale.error();
  }
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&address.value()), sizeof(sockaddr_un)) !=
      0) {
    return ErrnoError("bind " + path, errno);
  }
  return NotifySocket(std::move(fd), std::move(path));
}

NotifySocket& NotifySocket::operator=(NotifySocket&& other) noexcept {
  if (this != &other) {
    Unlink();
    fd_ = std::move(other.fd_);
    path_ = std::move(other.path_);
    other.path_.clear();
  }
  return *this;
}

NotifySocket::~NotifySocket() {
  Unlink();
}

void NotifySocket::Unlink() {
  if (fd_.valid() && !path_.empty()) {
    (void)::unlink(path_.c_str());
  }
  fd_.Reset();
}

Result<std::optional<NotifyMessage>> NotifySocket::Receive() {
  char payload[kMaxNotifyDatagram];
  alignas(cmsghdr) char control[kControlSize];
  iovec io{payload, sizeof payload};
  msghdr header{};
  header.msg_iov = &io;
  header.msg_iovlen = 1;
  header.msg_control = control;
  header.msg_controllen = sizeof control;
  ssize_t n;
  do {
    // MSG_TRUNC: returns the datagram's real length, to tell oversized ones.
    n = ::recvmsg(fd_.get(), &header, MSG_DONTWAIT | MSG_CMSG_CLOEXEC | MSG_TRUNC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN) {
      return std::optional<NotifyMessage>();
    }
    return ErrnoError("recvmsg " + path_, errno);
  }
  NotifyMessage message;
  if (static_cast<std::size_t>(n) <= sizeof payload) {
    message = ParseNotifyPayload(std::string_view(payload, static_cast<std::size_t>(n)));
  } else {
    message.malformed = true;
  }
  TakeControl(header, message);
  message.malformed |= (header.msg_flags & MSG_CTRUNC) != 0;
  return std::optional<NotifyMessage>(std::move(message));
}

}  // namespace slate::platform
