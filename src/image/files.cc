#include "image/files.h"

#include <cerrno>
#include <cstdlib>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image/digest.h"

namespace slate::image::internal {

namespace {

// Large enough that a read(2) per chunk costs little against hashing it.
constexpr std::size_t kChunk = std::size_t{256} << 10;

}  // namespace

ImageStatus WriteAll(int fd, const char* data, std::size_t size, const std::string& name) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoImageError("write " + name, errno);
    }
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return ImageOk();
}

ImageStatus SyncFileSystem(const std::string& path) {
  platform::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoImageError("open " + path, errno);
  if (::syncfs(fd.get()) != 0) return ErrnoImageError("syncfs " + path, errno);
  return ImageOk();
}

ImageStatus MakeDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoImageError("mkdir " + path, errno);
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return ErrnoImageError("stat " + path, errno);
  if (!S_ISDIR(st.st_mode)) {
    return MakeImageError(ImageErrc::kInvalidArgument, path + " is not a directory");
  }
  return ImageOk();
}

ImageStatus SyncDir(const std::string& path) {
  platform::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoImageError("open " + path, errno);
  if (::fsync(fd.get()) != 0) return ErrnoImageError("fsync " + path, errno);
  return ImageOk();
}

std::string ParentOf(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

ImageResult<platform::UniqueFd> OpenRegular(const std::string& path, bool follow) {
  const int flags = O_RDONLY | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW);
  platform::UniqueFd fd(::open(path.c_str(), flags));
  if (!fd.valid()) {
    if (errno == ELOOP) {
      return MakeImageError(ImageErrc::kInvalidArgument, path + " is a symbolic link");
    }
    return ErrnoImageError("open " + path, errno);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoImageError("stat " + path, errno);
  if (!S_ISREG(st.st_mode)) {
    return MakeImageError(ImageErrc::kInvalidArgument, path + " is not a regular file");
  }
  return fd;
}

ImageResult<std::string> CopyHashed(int in, const std::string& in_name, int out,
                                    const std::string& out_name) {
  Sha256 hash;
  std::vector<char> buf(kChunk);
  for (;;) {
    const ssize_t n = ::read(in, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoImageError("read " + in_name, errno);
    }
    if (n == 0) break;
    const auto size = static_cast<std::size_t>(n);
    hash.Update(std::span<const char>(buf.data(), size));
    if (out >= 0) {
      auto written = WriteAll(out, buf.data(), size, out_name);
      if (!written.ok()) return written.error();
    }
  }
  return hash.Finish();
}

ImageResult<TempFile> TempFile::Create(const std::string& dir, std::string_view prefix) {
  std::string path = dir + "/" + std::string(prefix) + "XXXXXX";
  platform::UniqueFd fd(::mkostemp(path.data(), O_CLOEXEC));
  if (!fd.valid()) return ErrnoImageError("create a temporary file in " + dir, errno);
  return TempFile(std::move(fd), std::move(path));
}

TempFile::TempFile(TempFile&& other) noexcept
    : fd_(std::move(other.fd_)), path_(std::move(other.path_)) {
  other.path_.clear();
}

TempFile::~TempFile() {
  if (!path_.empty()) (void)::unlink(path_.c_str());  // best effort; Open sweeps the rest
}

ImageStatus TempFile::Install(const std::string& dest, mode_t mode) {
  auto sealed = Seal(mode);
  if (!sealed.ok()) return sealed;
  auto moved = MoveTo(dest);
  if (!moved.ok()) return moved;
  return SyncDir(ParentOf(dest));
}

ImageStatus TempFile::Seal(mode_t mode) {
  // The mode is set before the fsync so that it is as durable as the bytes.
  if (::fchmod(fd_.get(), mode) != 0) return ErrnoImageError("chmod " + path_, errno);
  if (::fsync(fd_.get()) != 0) return ErrnoImageError("fsync " + path_, errno);
  return ImageOk();
}

ImageStatus TempFile::MoveTo(const std::string& dest) {
  fd_.Reset();
  if (::rename(path_.c_str(), dest.c_str()) != 0) {
    return ErrnoImageError("rename " + path_ + " to " + dest, errno);
  }
  path_.clear();
  return ImageOk();
}

ImageStatus WriteFileAtomic(const std::string& dir, const std::string& name,
                            std::string_view data) {
  auto temp = TempFile::Create(dir, kTempPrefix);
  if (!temp.ok()) return temp.error();
  auto written = WriteAll(temp->fd(), data.data(), data.size(), temp->path());
  if (!written.ok()) return written;
  return temp->Install(dir + "/" + name, 0600);
}

ImageResult<std::vector<std::string>> ListDir(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return ErrnoImageError("open " + dir, errno);
  std::vector<std::string> names;
  errno = 0;
  while (const dirent* entry = ::readdir(d)) {
    const std::string_view name(entry->d_name);
    if (name != "." && name != "..") names.emplace_back(name);
  }
  const int read_errno = errno;
  (void)::closedir(d);
  if (read_errno != 0) return ErrnoImageError("read " + dir, read_errno);
  return names;
}

ImageResult<std::string> ReadFile(const std::string& path) {
  platform::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoImageError("open " + path, errno);
  std::string data;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoImageError("read " + path, errno);
    }
    if (n == 0) return data;
    data.append(buf, static_cast<std::size_t>(n));
  }
}

ImageResult<int> RemoveTempFiles(const std::string& dir) {
  return RemoveEntries(dir, [](const std::string& name) { return name.starts_with(kTempPrefix); });
}

ImageResult<int> RemoveEntries(const std::string& dir,
                               const std::function<bool(const std::string&)>& doomed) {
  auto names = ListDir(dir);
  if (!names.ok()) return names.error();
  int removed = 0;
  for (const auto& name : *names) {
    if (!doomed(name)) continue;
    std::string path = dir;
    path.append("/").append(name);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      return ErrnoImageError("remove " + path, errno);
    }
    ++removed;
  }
  return removed;
}

}  // namespace slate::image::internal
