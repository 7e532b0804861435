// Helpers for the channel tests: scratch directories, forked children with
// bounded waits, and message payloads that prove their own integrity.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "channel/channel_files.h"
#include "channel/consumer.h"
#include "channel/producer.h"
#include "platform/unique_fd.h"

namespace slate::channel::testing {

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
  std::string Channel(std::string_view name = "ch") const {
    return path_ + "/" + std::string(name);
  }

 private:
  std::string path_;
};

// A forked child running `body`; its return value is the exit code. The
// child never returns into the test framework (it _exits), and a Child that
// is destroyed while running is killed and reaped.
class Child {
 public:
  static Child Start(const std::function<int()>& body);
  Child(Child&& o) noexcept : pid_(std::exchange(o.pid_, -1)) {}
  Child& operator=(Child&& o) noexcept;  // kills and reaps a running child first
  Child(const Child&) = delete;
  ~Child();

  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }
  // Reaps the child if it has ended; the wait status, or nullopt.
  std::optional<int> TryWait(rusage* usage = nullptr);
  // Waits up to `timeout`; nullopt if still running then.
  std::optional<int> Wait(std::chrono::milliseconds timeout = kPatience, rusage* usage = nullptr);
  // SIGKILL and reap; returns the wait status.
  int Kill();

 private:
  explicit Child(pid_t pid) : pid_(pid) {}
  pid_t pid_ = -1;
};

// "exited 3", "killed by signal 9".
std::string DescribeStatus(int status);

// Payload of message `id`: its length and bytes are a function of the id,
// so a receiver can tell a whole message from a torn or foreign one.
std::vector<std::byte> Payload(std::uint64_t id, std::size_t min_size, std::size_t max_size);
bool IsPayload(std::uint64_t id, std::span<const std::byte> bytes, std::size_t min_size,
               std::size_t max_size);

std::span<const std::byte> AsBytes(std::string_view s);
std::string AsString(std::span<const std::byte> b);

// A pipe for children to report to the test; both ends O_CLOEXEC.
struct Pipe {
  Pipe();
  platform::UniqueFd read;
  platform::UniqueFd write;
};

// Reads exactly `n` bytes, or fewer at EOF or after `timeout`.
std::vector<std::byte> ReadBytes(int fd, std::size_t n, std::chrono::milliseconds timeout);

template <typename T>
std::vector<T> ReadValues(int fd, std::size_t count,
                          std::chrono::milliseconds timeout = kPatience) {
  auto bytes = ReadBytes(fd, count * sizeof(T), timeout);
  std::vector<T> values(bytes.size() / sizeof(T));
  if (!values.empty()) std::memcpy(values.data(), bytes.data(), values.size() * sizeof(T));
  return values;
}

// Writes all of `bytes` to `fd`, or _exits the (child) process with 90.
void WriteAllOrDie(int fd, std::span<const std::byte> bytes);

ChannelFiles MustCreate(const std::string& dir, const ChannelGeometry& g);

// Writes `value` at byte `at` of `file` in the channel directory `dir`, as a
// wild write through that file's owner's mapping would (they share pages).
template <typename T>
void Scribble(const std::string& dir, std::string_view file, std::uint64_t at, T value) {
  int fd = ::open((dir + "/" + std::string(file)).c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::pwrite(fd, &value, sizeof value, static_cast<off_t>(at)),
            static_cast<ssize_t>(sizeof value));
  ::close(fd);
}
Producer MustAttachProducer(const ChannelFiles& files, AttachOptions options = {});
Consumer MustAttachConsumer(const ChannelFiles& files, AttachOptions options = {});

}  // namespace slate::channel::testing
