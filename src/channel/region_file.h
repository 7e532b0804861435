// Internal: the system calls on a channel's files — open, size checks,
// advisory locks, mappings and positioned reads. Every error names the file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "channel/error.h"
#include "platform/unique_fd.h"

namespace slate::channel::internal {

// One mmap(MAP_SHARED) of a file prefix. Move-only; unmaps on destruction.
class Mapping {
 public:
  Mapping() = default;
  Mapping(Mapping&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  Mapping& operator=(Mapping&& o) noexcept;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping();

  // PROT_READ, plus PROT_WRITE if `writable` (the kernel refuses that for a
  // descriptor opened O_RDONLY, and so does any later mprotect).
  static ChannelResult<Mapping> Map(int fd, std::uint64_t size, bool writable,
                                    std::string_view file);

  std::byte* data() const { return data_; }
  std::uint64_t size() const { return size_; }

 private:
  std::byte* data_ = nullptr;
  std::uint64_t size_ = 0;
};

ChannelResult<platform::UniqueFd> OpenFile(const std::string& path, int flags);

// fstat: a regular file, and its size. kSystem on failure.
ChannelResult<std::uint64_t> FileSize(int fd, std::string_view file);

// The file must be a regular file of exactly `size` bytes; otherwise its
// owner truncated or grew it (kCorrupt naming `owner`).
ChannelStatus CheckFileSize(int fd, std::uint64_t size, Culprit owner, std::string_view file);

// flock(LOCK_EX | LOCK_NB) on the open file description behind `fd`. true if
// taken; false if another description holds it (an attached end). The lock
// goes when every descriptor of that description is closed, e.g. at exit.
ChannelResult<bool> TryLock(int fd, std::string_view file);
void Unlock(int fd);

// pread of exactly `n` bytes; a short read means the owner shrank the file.
ChannelStatus ReadAt(int fd, std::uint64_t at, void* out, std::size_t n, Culprit owner,
                     std::string_view file);

// A u64 word that its owner may be changing: read until two reads agree
// (pread gives no atomicity), at most a few times. The runtime reads end
// regions this way rather than through a mapping, so that an end which
// truncates its file cannot make the runtime take SIGBUS.
ChannelResult<std::uint64_t> ReadWord(int fd, std::uint64_t at, Culprit owner,
                                      std::string_view file);

// pwrite of exactly `n` bytes.
ChannelStatus WriteAt(int fd, std::uint64_t at, const void* data, std::size_t n,
                      std::string_view file);

}  // namespace slate::channel::internal
