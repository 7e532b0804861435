// The runtime's end of sd_notify (`ready = "notify"`, heartbeats): one
// datagram socket per component, bound at a path under state_dir that the
// component finds in NOTIFY_SOCKET.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <sys/types.h>

#include "base/result.h"
#include "platform/unique_fd.h"

namespace slate::platform {

// Larger datagrams are rejected whole (systemd uses the same bound).
inline constexpr std::size_t kMaxNotifyDatagram = 4096;

// One datagram. The fields are the assignments sd_notify(3) defines; what we
// do not interpret is kept in `other`, verbatim.
struct NotifyMessage {
  // Sender, from SCM_CREDENTIALS (the kernel fills in the real values; only
  // a sender with CAP_SYS_ADMIN / CAP_SETUID could claim another pid / uid).
  // pid 0 if the datagram carried no credentials. A short-lived sender may
  // be gone when this is read; systemd-notify(1) run as root therefore sends
  // in the name of its parent (the script that called it).
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;

  bool ready = false;                 // READY=1
  bool watchdog = false;              // WATCHDOG=1
  bool stopping = false;              // STOPPING=1
  bool reloading = false;             // RELOADING=1
  std::optional<std::string> status;  // STATUS=...
  std::optional<pid_t> main_pid;      // MAINPID=N, N > 0
  std::vector<std::string> other;     // e.g. "ERRNO=5", "WATCHDOG_USEC=..."

  // Something was wrong and ignored: a line without '=', a NUL byte, a bad
  // MAINPID, an oversized datagram (then nothing in it is used).
  bool malformed = false;
  // Descriptors that came with it (SCM_RIGHTS, e.g. FDSTORE=1); all closed.
  std::size_t fds_discarded = 0;
};

// Parses the payload of a datagram: newline-separated KEY=VALUE lines. Empty
// lines are fine; anything else that is not KEY=VALUE marks it malformed.
NotifyMessage ParseNotifyPayload(std::string_view payload);

class NotifySocket {
 public:
  // Binds an AF_UNIX SOCK_DGRAM socket at `path` (a file system path, not the
  // abstract namespace), non-blocking, close-on-exec, with SO_PASSCRED. A
  // stale socket file left at `path` is replaced; any other file there is an
  // Error, as is a path longer than sun_path allows (107 bytes). The file's
  // mode follows the umask: restrict access with state_dir's mode.
  static Result<NotifySocket> Bind(std::string path);

  NotifySocket(NotifySocket&&) noexcept = default;
  NotifySocket& operator=(NotifySocket&&) noexcept;
  NotifySocket(const NotifySocket&) = delete;
  NotifySocket& operator=(const NotifySocket&) = delete;
  ~NotifySocket();  // closes the socket and unlinks the path

  int fd() const { return fd_.get(); }  // poll for EPOLLIN
  const std::string& path() const { return path_; }

  // The next queued datagram, or nullopt when none is queued. Never blocks.
  // Garbage does not fail: it comes back with `malformed` set. An Error is a
  // failure of the socket itself.
  Result<std::optional<NotifyMessage>> Receive();

 private:
  NotifySocket(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
  void Unlink();

  UniqueFd fd_;
  std::string path_;
};

}  // namespace slate::platform
