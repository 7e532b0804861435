#include "platform/file_io.h"

#include <cerrno>

#include <fcntl.h>
#include <unistd.h>

#include "platform/unique_fd.h"

namespace slate::platform {

Result<std::string> ReadFileAt(int dir_fd, const std::string& path) {
  UniqueFd fd(::openat(dir_fd, path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd.valid()) {
    return ErrnoError("open " + path, errno);
  }
  std::string text;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n > 0) {
      text.append(buf, static_cast<size_t>(n));
    } else if (n == 0) {
      return text;
    } else if (errno != EINTR) {
      return ErrnoError("read " + path, errno);
    }
  }
}

Status WriteFileAt(int dir_fd, const std::string& path, std::string_view data) {
  UniqueFd fd(::openat(dir_fd, path.c_str(), O_WRONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd.valid()) {
    return ErrnoError("open " + path, errno);
  }
  ssize_t n;
  do {
    n = ::write(fd.get(), data.data(), data.size());
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    return ErrnoError("write " + path, errno);
  }
  if (static_cast<size_t>(n) != data.size()) {
    return MakeError("write " + path + ": short write");
  }
  return OkStatus();
}

}  // namespace slate::platform
