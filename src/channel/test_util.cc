#include "channel/test_util.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace slate::channel::testing {

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl =
      std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/slate-channel-test-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) {
    ADD_FAILURE() << "mkdtemp failed: " << errno;
  }
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

Child Child::Start(const std::function<int()>& body) {
  (void)std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) {
    ADD_FAILURE() << "fork failed: " << errno;
    return Child(-1);
  }
  if (pid == 0) {
    int code = body();
    (void)std::fflush(nullptr);
    ::_exit(code);
  }
  return Child(pid);
}

Child& Child::operator=(Child&& o) noexcept {
  if (this != &o) {
    if (pid_ > 0) (void)Kill();
    pid_ = std::exchange(o.pid_, -1);
  }
  return *this;
}

Child::~Child() {
  if (pid_ > 0) (void)Kill();
}

std::optional<int> Child::TryWait(rusage* usage) {
  if (pid_ <= 0) return std::nullopt;
  int status = 0;
  rusage ignored{};
  pid_t r = ::wait4(pid_, &status, WNOHANG, usage != nullptr ? usage : &ignored);
  if (r == pid_) {
    pid_ = -1;
    return status;
  }
  return std::nullopt;
}

std::optional<int> Child::Wait(std::chrono::milliseconds timeout, rusage* usage) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (auto status = TryWait(usage)) return status;
    if (pid_ <= 0 || std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(200us);
  }
}

int Child::Kill() {
  if (pid_ <= 0) return -1;
  (void)::kill(pid_, SIGKILL);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
  return status;
}

std::string DescribeStatus(int status) {
  if (WIFEXITED(status)) return "exited " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "status " + std::to_string(status);
}

namespace {

// Word k of message `id`; words, not bytes, so that filling and checking
// cost little next to the copy a test wants to interrupt.
std::uint64_t PatternWord(std::uint64_t id, std::size_t k) {
  return (id * 0x9e3779b97f4a7c15u) ^ (k * 0xbf58476d1ce4e5b9u) ^ k;
}

std::size_t PayloadSize(std::uint64_t id, std::size_t min_size, std::size_t max_size) {
  return min_size + static_cast<std::size_t>((id * 2654435761u) % (max_size - min_size + 1));
}

void FillPattern(std::uint64_t id, std::span<std::byte> out) {
  std::size_t k = 0;
  for (; (k + 1) * 8 <= out.size(); ++k) {
    std::uint64_t w = PatternWord(id, k);
    std::memcpy(out.data() + k * 8, &w, 8);
  }
  if (std::size_t rest = out.size() - k * 8; rest > 0) {
    std::uint64_t w = PatternWord(id, k);
    std::memcpy(out.data() + k * 8, &w, rest);
  }
}

}  // namespace

std::vector<std::byte> Payload(std::uint64_t id, std::size_t min_size, std::size_t max_size) {
  std::vector<std::byte> out(PayloadSize(id, min_size, max_size));
  FillPattern(id, out);
  return out;
}

bool IsPayload(std::uint64_t id, std::span<const std::byte> bytes, std::size_t min_size,
               std::size_t max_size) {
  if (bytes.size() != PayloadSize(id, min_size, max_size)) return false;
  std::vector<std::byte> expected(bytes.size());
  FillPattern(id, expected);
  return bytes.empty() || std::memcmp(expected.data(), bytes.data(), bytes.size()) == 0;
}

std::span<const std::byte> AsBytes(std::string_view s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

std::string AsString(std::span<const std::byte> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

Pipe::Pipe() {
  int fds[2];
  EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  read.Reset(fds[0]);
  write.Reset(fds[1]);
}

std::vector<std::byte> ReadBytes(int fd, std::size_t n, std::chrono::milliseconds timeout) {
  std::vector<std::byte> out(n);
  std::size_t got = 0;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (got < n && std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 10) <= 0) continue;
    ssize_t r = ::read(fd, out.data() + got, n - got);
    if (r <= 0) break;
    got += static_cast<std::size_t>(r);
  }
  out.resize(got);
  return out;
}

void WriteAllOrDie(int fd, std::span<const std::byte> bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) ::_exit(90);
    bytes = bytes.subspan(static_cast<std::size_t>(n));
  }
}

ChannelFiles MustCreate(const std::string& dir, const ChannelGeometry& g) {
  auto files = ChannelFiles::Create(dir, g);
  if (!files) {
    ADD_FAILURE() << files.error().Describe();
    std::abort();
  }
  return std::move(*files);
}

Producer MustAttachProducer(const ChannelFiles& files, AttachOptions options) {
  auto fds = files.ProducerFds();
  if (!fds) {
    ADD_FAILURE() << fds.error().Describe();
    std::abort();
  }
  auto p = Producer::Attach(std::move(*fds), options);
  if (!p) {
    ADD_FAILURE() << p.error().Describe();
    std::abort();
  }
  return std::move(*p);
}

Consumer MustAttachConsumer(const ChannelFiles& files, AttachOptions options) {
  auto fds = files.ConsumerFds();
  if (!fds) {
    ADD_FAILURE() << fds.error().Describe();
    std::abort();
  }
  auto c = Consumer::Attach(std::move(*fds), options);
  if (!c) {
    ADD_FAILURE() << c.error().Describe();
    std::abort();
  }
  return std::move(*c);
}

}  // namespace slate::channel::testing
