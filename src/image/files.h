// Internal: the file operations the image store is built from — a temp file
// that is either renamed into place whole or removed, a copy that hashes what
// it copies, and directory syncs.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <sys/types.h>

#include "image/image_error.h"
#include "platform/unique_fd.h"

namespace slate::image::internal {

// Names beginning with this are work in progress: ImageStore::Open removes
// them from objects/ and refs/, and nothing else ever reads them.
inline constexpr std::string_view kTempPrefix = ".tmp-";

// mkdir with mode 0700; an existing directory is fine.
ImageStatus MakeDir(const std::string& path);

// fsync(2) of a directory, so that entries created, renamed or removed in it
// survive a power loss.
ImageStatus SyncDir(const std::string& path);

// The directory part of `path` ("/a/b/c" -> "/a/b", "c" -> ".").
std::string ParentOf(const std::string& path);

// Opens a regular file for reading without following a final symlink when
// `follow` is false. kNotFound, kInvalidArgument (not a regular file), kIo.
ImageResult<platform::UniqueFd> OpenRegular(const std::string& path, bool follow);

// Reads `in` to its end, writing every byte to `out` (unless out is -1) and
// hashing it; returns the digest. The names are for messages.
ImageResult<std::string> CopyHashed(int in, const std::string& in_name, int out,
                                    const std::string& out_name);

// A file DIR/PREFIX-XXXXXX (mkostemp, mode 0600, close-on-exec) that is
// either installed under its final name, whole and synced, or removed when
// this object goes away. A crash in between leaves it behind; its name says
// it is temporary.
class TempFile {
 public:
  static ImageResult<TempFile> Create(const std::string& dir, std::string_view prefix);

  TempFile(TempFile&& other) noexcept;
  TempFile& operator=(TempFile&&) = delete;
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile();

  int fd() const { return fd_.get(); }
  const std::string& path() const { return path_; }

  // fchmod(mode), fsync, close, rename(2) over `dest` (same file system), and
  // fsync of dest's directory: after a crash, `dest` is the old file or the
  // new one, whole.
  ImageStatus Install(const std::string& dest, mode_t mode);
  // Install in two halves, for many files at once with the directory synced
  // once by the caller: Seal is fchmod and fsync, MoveTo close and rename.
  ImageStatus Seal(mode_t mode);
  ImageStatus MoveTo(const std::string& dest);

 private:
  TempFile(platform::UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
  platform::UniqueFd fd_;
  std::string path_;  // empty once installed (or moved from)
};

// syncfs(2) of the file system `path` is on: all its dirty data and metadata
// reach the disk (and a write-back error since the last look is reported).
ImageStatus SyncFileSystem(const std::string& path);

// write(2) until all of `data` is written (EINTR retried); `name` for errors.
ImageStatus WriteAll(int fd, const char* data, std::size_t size, const std::string& name);

// Writes `data` to DIR/NAME atomically, as a TempFile (mode 0600).
ImageStatus WriteFileAtomic(const std::string& dir, const std::string& name, std::string_view data);

// The names in `dir`, without "." and "..", in no particular order.
ImageResult<std::vector<std::string>> ListDir(const std::string& dir);

// The whole content of a file. kNotFound when it does not exist.
ImageResult<std::string> ReadFile(const std::string& path);

// Removes the entries of `dir` whose names begin with kTempPrefix; returns how
// many.
ImageResult<int> RemoveTempFiles(const std::string& dir);

// Removes the entries of `dir` whose names `doomed` picks; returns how many.
ImageResult<int> RemoveEntries(const std::string& dir,
                               const std::function<bool(const std::string&)>& doomed);

}  // namespace slate::image::internal
