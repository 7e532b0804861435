#include "platform/pipe.h"

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <unistd.h>

namespace slate::platform {
namespace {

Result<Pipe> MakePipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return ErrnoError("pipe2", errno);
  }
  return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

Status SetNonBlocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
    return ErrnoError("fcntl O_NONBLOCK", errno);
  }
  return OkStatus();
}

Result<Pipe> MakePipeWithNonBlockingReadEnd() {
  auto pipe = MakePipe();
  if (!pipe) {
    return pipe.error();
  }
  if (auto status = SetNonBlocking(pipe->read.get()); !status) {
    return status.error();
  }
  return std::move(pipe).value();
}

}  // namespace

Result<Pipe> MakeOutputPipe() {
  return MakePipeWithNonBlockingReadEnd();
}

Result<ReadinessPipe> ReadinessPipe::Create() {
  auto pipe = MakePipeWithNonBlockingReadEnd();
  if (!pipe) {
    return pipe.error();
  }
  return ReadinessPipe(std::move(pipe).value());
}

Result<ReadinessPipe::State> ReadinessPipe::Read() {
  char buf[256];
  while (state_ == State::kPending) {
    const ssize_t n = ::read(pipe_.read.get(), buf, sizeof buf);
    if (n > 0) {
      if (std::memchr(buf, '\n', static_cast<size_t>(n)) != nullptr) {
        state_ = State::kReady;
      }
    } else if (n == 0) {
      state_ = State::kNotReady;
    } else if (errno == EAGAIN) {
      break;
    } else if (errno != EINTR) {
      return ErrnoError("read readiness pipe", errno);
    }
  }
  return state_;
}

}  // namespace slate::platform
