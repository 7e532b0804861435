#include "platform/unique_fd.h"

#include <system_error>

#include <unistd.h>

#include "platform/status.h"

namespace slate::platform {

void UniqueFd::Reset(int fd) {
  if (fd_ >= 0 && fd_ != fd) {
    (void)::close(fd_);
  }
  fd_ = fd;
}

Error ErrnoError(std::string_view what, int err) {
  std::string message(what);
  message += ": ";
  message += std::system_category().message(err);
  return MakeError(std::move(message));
}

}  // namespace slate::platform
