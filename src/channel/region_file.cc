#include "channel/region_file.h"

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

namespace slate::channel::internal {

Mapping& Mapping::operator=(Mapping&& o) noexcept {
  if (this != &o) {
    if (data_ != nullptr) ::munmap(data_, size_);
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
  }
  return *this;
}

Mapping::~Mapping() {
  if (data_ != nullptr) ::munmap(data_, size_);
}

ChannelResult<Mapping> Mapping::Map(int fd, std::uint64_t size, bool writable,
                                    std::string_view file) {
  int prot = PROT_READ | (writable ? PROT_WRITE : 0);
  void* p = ::mmap(nullptr, size, prot, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return SystemError(fmt::format("mmap {}", file), errno);
  Mapping m;
  m.data_ = static_cast<std::byte*>(p);
  m.size_ = size;
  return m;
}

ChannelResult<platform::UniqueFd> OpenFile(const std::string& path, int flags) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC, 0600);
  if (fd < 0) {
    int err = errno;
    ChannelError e = SystemError(fmt::format("open {}", path), err);
    if (err == ENOENT) e.code = Errc::kNotFound;
    return e;
  }
  return platform::UniqueFd(fd);
}

ChannelResult<std::uint64_t> FileSize(int fd, std::string_view file) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return SystemError(fmt::format("fstat {}", file), errno);
  if (!S_ISREG(st.st_mode)) {
    return MakeChannelError(Errc::kInvalidArgument, fmt::format("{} is not a regular file", file));
  }
  return static_cast<std::uint64_t>(st.st_size);
}

ChannelStatus CheckFileSize(int fd, std::uint64_t size, Culprit owner, std::string_view file) {
  auto actual = FileSize(fd, file);
  if (!actual) return actual.error();
  if (*actual != size) {
    return Corrupt(
        owner, fmt::format("{} is {} bytes, the channel's shape needs {}", file, *actual, size));
  }
  return Ok();
}

ChannelResult<bool> TryLock(int fd, std::string_view file) {
  while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) return false;
    if (errno != EINTR) return SystemError(fmt::format("flock {}", file), errno);
  }
  return true;
}

void Unlock(int fd) {
  (void)::flock(fd, LOCK_UN);  // fails only for a bad descriptor
}

ChannelStatus ReadAt(int fd, std::uint64_t at, void* out, std::size_t n, Culprit owner,
                     std::string_view file) {
  auto* p = static_cast<char*>(out);
  std::size_t done = 0;
  while (done < n) {
    ssize_t r = ::pread(fd, p + done, n - done, static_cast<off_t>(at + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return SystemError(fmt::format("read {}", file), errno);
    }
    if (r == 0) {
      return Corrupt(owner, fmt::format("{} ends before offset {}", file, at + n));
    }
    done += static_cast<std::size_t>(r);
  }
  return Ok();
}

ChannelResult<std::uint64_t> ReadWord(int fd, std::uint64_t at, Culprit owner,
                                      std::string_view file) {
  std::uint64_t last = 0;
  for (int i = 0; i < 8; ++i) {
    std::uint64_t v = 0;
    if (auto st = ReadAt(fd, at, &v, sizeof v, owner, file); !st) return st.error();
    if (i > 0 && v == last) return v;
    last = v;
  }
  return last;  // still moving: a live counter, and the newest read is as good as any
}

ChannelStatus WriteAt(int fd, std::uint64_t at, const void* data, std::size_t n,
                      std::string_view file) {
  const auto* p = static_cast<const char*>(data);
  std::size_t done = 0;
  while (done < n) {
    ssize_t r = ::pwrite(fd, p + done, n - done, static_cast<off_t>(at + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return SystemError(fmt::format("write {}", file), errno);
    }
    done += static_cast<std::size_t>(r);
  }
  return Ok();
}

}  // namespace slate::channel::internal
