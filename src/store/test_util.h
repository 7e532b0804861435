// Helpers for the store tests: a scratch directory, and real child processes
// (fork without exec) that open the store themselves and get killed.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include <sys/types.h>

#include <gtest/gtest.h>

namespace slate::store::testing {

using namespace std::chrono_literals;

// Upper bound for anything a test waits for; reached only when it fails.
inline constexpr std::chrono::milliseconds kPatience = 10s;

// A fresh directory under $TMPDIR (or /tmp), removed with its contents.
class TempDir {
 public:
  TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A forked child that runs `body` and _exits with its return value (never
// returning into the test). `body` must not use the parent's StateStore (LMDB:
// no handle across fork) and must not use gtest assertions. It gets the write
// end of a pipe whose read end the parent holds (Child::fd()) to report on,
// and the read end of one the parent writes to with Tell().
class Child {
 public:
  static Child Fork(const std::function<int(int report_fd)>& body);
  static Child Fork(const std::function<int(int report_fd, int command_fd)>& body);

  Child(Child&& other) noexcept;
  Child& operator=(Child&&) = delete;
  Child(const Child&) = delete;
  ~Child();  // SIGKILLs and reaps a child still running

  pid_t pid() const { return pid_; }
  int fd() const { return read_fd_; }

  // Reads up to and including the next '\n' (without it); nullopt on EOF or
  // timeout.
  std::optional<std::string> ReadLine(std::chrono::milliseconds timeout = kPatience);
  // Everything the child wrote until it closed the pipe (it died).
  std::string ReadRest(std::chrono::milliseconds timeout = kPatience);

  // Sends `line` and '\n' to the child's command_fd.
  void Tell(const std::string& line) const;

  // SIGKILL and reap; returns what Wait() would (-SIGKILL unless it had
  // already exited).
  std::optional<int> Kill();
  // Exit code, or -signal; nullopt on timeout.
  std::optional<int> Wait(std::chrono::milliseconds timeout = kPatience);

 private:
  Child(pid_t pid, int read_fd, int command_fd)
      : pid_(pid), read_fd_(read_fd), command_fd_(command_fd) {}
  pid_t pid_ = -1;
  int read_fd_ = -1;
  int command_fd_ = -1;
  std::string buffered_;
};

// Writes `line` and '\n' to `fd` in one write(2) (atomic for a pipe).
void Report(int fd, const std::string& line);

// For a child: blocks until a line arrives on `fd` (or EOF); returns it.
std::string AwaitLine(int fd);

// Changes one byte of the file at `path` in place (XOR 0x5a), at `offset`:
// a file that rots on the disk after it was written.
void FlipByte(const std::string& path, long offset);

}  // namespace slate::store::testing
