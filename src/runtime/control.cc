#include "runtime/control.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>
#include <thread>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <fmt/format.h>

namespace slate::runtime {
namespace {

std::string ErrnoText(int err) {
  return std::system_category().message(err);
}

Result<sockaddr_un> Address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return MakeError(fmt::format("socket path {} is longer than {} bytes; use a shorter state_dir",
                                 path, sizeof(addr.sun_path) - 1));
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

}  // namespace

Result<std::unique_ptr<ControlServer>> ControlServer::Listen(const std::string& path,
                                                             platform::EventLoop& loop,
                                                             Handler handler, RateLimit rate) {
  auto addr = Address(path);
  if (!addr) return addr.error();
  platform::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return MakeError(fmt::format("socket: {}", ErrnoText(errno)));
  // A socket file left by a runtime that died: replace it, but only if
  // nobody answers there (two runtimes must not share a state_dir).
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return MakeError(fmt::format("{} exists and is not a socket", path));
    }
    platform::UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (::connect(probe.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr)) == 0) {
      return MakeError(fmt::format("another runtime is running with this state_dir ({})", path));
    }
    ::unlink(path.c_str());
  }
  mode_t old = ::umask(0177);  // the socket file is created 0600
  int rc = ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr));
  int err = errno;
  ::umask(old);
  if (rc != 0) return MakeError(fmt::format("bind {}: {}", path, ErrnoText(err)));
  if (::listen(fd.get(), 64) != 0)
    return MakeError(fmt::format("listen {}: {}", path, ErrnoText(errno)));
  std::unique_ptr<ControlServer> server(
      new ControlServer(path, std::move(fd), loop, std::move(handler), rate));
  ControlServer* self = server.get();
  auto added = loop.Add(self->listen_fd_.get(), EPOLLIN, [self](std::uint32_t) { self->Accept(); });
  if (!added) return added.error();
  return server;
}

ControlServer::ControlServer(std::string path, platform::UniqueFd fd, platform::EventLoop& loop,
                             Handler handler, RateLimit rate)
    : path_(std::move(path)),
      listen_fd_(std::move(fd)),
      loop_(loop),
      handler_(std::move(handler)),
      rate_(rate),
      tokens_(rate.burst) {}

ControlServer::~ControlServer() {
  for (auto& [fd, c] : clients_) (void)loop_.Remove(fd);
  (void)loop_.Remove(listen_fd_.get());
  ::unlink(path_.c_str());
}

void ControlServer::Accept() {
  for (;;) {
    int fd = ::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN, or a transient error: try on the next wakeup
    platform::UniqueFd conn(fd);
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
        (cred.uid != ::geteuid() && cred.uid != 0)) {
      ++refused_;
      Reply(fd, {{"ok", false}, {"error", "permission denied: another user's peer"}});
      continue;
    }
    const auto now = std::chrono::steady_clock::now();
    tokens_ =
        std::min(rate_.burst, tokens_ + rate_.per_second *
                                            std::chrono::duration<double>(now - refilled_).count());
    refilled_ = now;
    // Over the rate: read the request (closing a socket with unread data
    // would reset it and lose the reply), answer "busy", handle nothing.
    const bool busy = tokens_ < 1;
    if (!busy) tokens_ -= 1;
    if (clients_.size() >= kMaxClients) Drop(order_.front());
    auto added = loop_.Add(fd, EPOLLIN | EPOLLRDHUP, [this, fd](std::uint32_t) { Readable(fd); });
    if (!added) continue;
    clients_.emplace(fd, Client{std::move(conn), {}, busy});
    order_.push_back(fd);
  }
}

void ControlServer::Readable(int fd) {
  auto it = clients_.find(fd);
  if (it == clients_.end()) return;
  Client& c = it->second;
  char buf[4096];
  ssize_t n = ::read(fd, buf, sizeof(buf));
  if (n <= 0) {
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    Drop(fd);  // closed before a whole request
    return;
  }
  c.buffer.append(buf, static_cast<std::size_t>(n));
  std::size_t nl = c.buffer.find('\n');
  if (nl == std::string::npos) {
    if (c.buffer.size() > kMaxRequest) {
      ++refused_;
      Reply(fd,
            {{"ok", false}, {"error", fmt::format("request longer than {} bytes", kMaxRequest)}});
      Drop(fd);
    }
    return;
  }
  if (c.busy) {  // not even parsed
    ++refused_;
    Reply(fd, {{"ok", false},
               {"error", fmt::format("busy: more than {:g} requests per second; try again",
                                     rate_.per_second)}});
    Drop(fd);
    return;
  }
  auto request = ParseRequest(std::string_view(c.buffer).substr(0, nl));
  if (!request) {
    ++refused_;
    Reply(fd, {{"ok", false}, {"error", request.error().message}});
  } else {
    Reply(fd, handler_(*request));
  }
  Drop(fd);
}

void ControlServer::Reply(int fd, const nlohmann::json& reply) {
  std::string out = reply.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  // Replies are small; a peer that does not read loses its reply rather
  // than stalling the runtime.
  std::size_t done = 0;
  for (int tries = 0; done < out.size() && tries < 100; ++tries) {
    ssize_t n = ::send(fd, out.data() + done, out.size() - done, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      done += static_cast<std::size_t>(n);
    } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
      return;
    } else {
      pollfd p{fd, POLLOUT, 0};
      ::poll(&p, 1, 10);
    }
  }
}

void ControlServer::Drop(int fd) {
  (void)loop_.Remove(fd);
  clients_.erase(fd);
  order_.erase(std::remove(order_.begin(), order_.end(), fd), order_.end());
}

namespace {

Result<nlohmann::json> CallOnce(const std::string& path, const nlohmann::json& request,
                                int timeout_ms) {
  auto addr = Address(path);
  if (!addr) return addr.error();
  platform::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr)) != 0) {
    int err = errno;
    if (err == ENOENT || err == ECONNREFUSED) {
      return MakeError(fmt::format("no system is running at {}", path));
    }
    return MakeError(fmt::format("connect {}: {}", path, ErrnoText(err)));
  }
  std::string line = request.dump() + "\n";
  if (::send(fd.get(), line.data(), line.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(line.size())) {
    return MakeError(fmt::format("send to {}: {}", path, ErrnoText(errno)));
  }
  std::string reply;
  char buf[65536];
  for (;;) {
    pollfd p{fd.get(), POLLIN, 0};
    int r = ::poll(&p, 1, timeout_ms);
    if (r == 0) return MakeError(fmt::format("no reply from {} within {} ms", path, timeout_ms));
    if (r < 0 && errno == EINTR) continue;
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    reply.append(buf, static_cast<std::size_t>(n));
    if (reply.back() == '\n') break;
  }
  auto j = nlohmann::json::parse(reply, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return MakeError(fmt::format("malformed reply from {}", path));
  }
  return j;
}

}  // namespace

Result<nlohmann::json> Call(const std::string& path, const nlohmann::json& request,
                            int timeout_ms) {
  // A runtime over its request rate (someone floods it) says "busy": an
  // operator's stop or shutdown should still get through, so try again for
  // a while, then give the busy reply back.
  for (int attempt = 0;; ++attempt) {
    auto reply = CallOnce(path, request, timeout_ms);
    if (!reply || attempt == 40 || (*reply).value("ok", true) ||
        !(*reply).value("error", "").starts_with("busy:")) {
      return reply;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
}

}  // namespace slate::runtime
