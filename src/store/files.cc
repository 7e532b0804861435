#include "store/files.h"

#include <cerrno>
#include <filesystem>
#include <system_error>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace slate::store::internal {

StoreStatus MakeDirs(const std::string& path) {
  std::error_code ec;
  const bool created = std::filesystem::create_directories(path, ec);
  if (ec) return ErrnoStoreError("mkdir " + path, ec.value());
  // create_directories uses 0777 & ~umask; a store holds a component's data.
  if (created && ::chmod(path.c_str(), 0700) != 0) {
    return ErrnoStoreError("chmod " + path, errno);
  }
  return StoreOk();
}

StoreStatus SyncDir(const std::string& path) {
  platform::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStoreError("open " + path, errno);
  if (::fsync(fd.get()) != 0) return ErrnoStoreError("fsync " + path, errno);
  return StoreOk();
}

std::string ParentOf(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

StoreStatus CopyFileSynced(const std::string& from, const std::string& to) {
  platform::UniqueFd in(::open(from.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in.valid()) return ErrnoStoreError("open " + from, errno);
  platform::UniqueFd out(::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!out.valid()) return ErrnoStoreError("create " + to, errno);
  auto fail = [&](const std::string& what, int err) -> StoreStatus {
    out.Reset();
    (void)::unlink(to.c_str());
    return ErrnoStoreError(what, err);
  };
  ssize_t n = 0;
  while ((n = ::copy_file_range(in.get(), nullptr, out.get(), nullptr, 1 << 30, 0)) != 0) {
    if (n < 0 && errno != EINTR) {
      const int err = errno;
      return fail(std::string("copy ").append(from).append(" to ").append(to), err);
    }
  }
  if (::fsync(out.get()) != 0) return fail("fsync " + to, errno);
  return StoreOk();
}

StoreStatus RemoveTree(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (ec) return ErrnoStoreError("remove " + path, ec.value());
  return StoreOk();
}

StoreResult<std::uint64_t> FileSize(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return ErrnoStoreError("stat " + path, errno);
  return static_cast<std::uint64_t>(st.st_size);
}

StoreResult<DirLock> DirLock::Acquire(const std::string& dir, Mode mode) {
  const std::string path = dir + "/slate.lock";
  platform::UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd.valid()) return ErrnoStoreError("open " + path, errno);
  const int op = mode == Mode::kShared ? LOCK_SH : LOCK_EX | LOCK_NB;
  while (::flock(fd.get(), op) != 0) {
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK) {
      return MakeStoreError(StoreErrc::kBusy, dir + " is open (by this or another process)");
    }
    return ErrnoStoreError("flock " + path, errno);
  }
  return DirLock(std::move(fd));
}

}  // namespace slate::store::internal
