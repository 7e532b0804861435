#include "platform/test_support.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <poll.h>
#include <unistd.h>

#include "platform/clock.h"

namespace slate::platform::testing {
namespace {

std::chrono::milliseconds Remaining(std::chrono::nanoseconds deadline) {
  const auto left = deadline - MonotonicNow();
  return std::max(std::chrono::duration_cast<std::chrono::milliseconds>(left), 0ms);
}

// Waits until `fd` is readable (or hung up). false on timeout.
bool PollReadable(int fd, std::chrono::nanoseconds deadline) {
  pollfd p{fd, POLLIN, 0};
  for (;;) {
    const int n = ::poll(&p, 1, static_cast<int>(Remaining(deadline).count()));
    if (n > 0) {
      return true;
    }
    if (n == 0 || errno != EINTR) {
      return false;
    }
  }
}

}  // namespace

int CountOpenFds() {
  std::error_code error;
  int count = 0;
  for (std::filesystem::directory_iterator it("/proc/self/fd", error), end; !error && it != end;
       it.increment(error)) {
    ++count;
  }
  return count - 1;
}

bool WaitUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto deadline = MonotonicNow() + timeout;
  while (!done()) {
    if (MonotonicNow() > deadline) {
      return false;
    }
    std::this_thread::sleep_for(200us);
  }
  return true;
}

std::optional<ExitStatus> WaitForExit(Process& process, std::chrono::milliseconds timeout) {
  if (!PollReadable(process.pidfd(), MonotonicNow() + timeout)) {
    return std::nullopt;
  }
  auto status = TryReap(process);
  return status ? *status : std::nullopt;
}

std::string ReadAll(int fd, std::chrono::milliseconds timeout) {
  const auto deadline = MonotonicNow() + timeout;
  std::string text;
  char buf[4096];
  while (PollReadable(fd, deadline)) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
      break;
    }
    if (n > 0) {
      text.append(buf, static_cast<size_t>(n));
    }
  }
  return text;
}

std::string ReadLine(int fd, std::chrono::milliseconds timeout) {
  const auto deadline = MonotonicNow() + timeout;
  std::string text;
  char c;
  while (PollReadable(fd, deadline)) {
    const ssize_t n = ::read(fd, &c, 1);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
      break;
    }
    if (n == 1) {
      text += c;
      if (c == '\n') {
        break;
      }
    }
  }
  return text;
}

char ProcessState(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!std::getline(stat, text)) {
    return 0;
  }
  // "PID (COMM) S ...": COMM may hold spaces and parentheses.
  const auto close = text.rfind(')');
  return close == std::string::npos || close + 2 >= text.size() ? '\0' : text[close + 2];
}

std::string StatusField(pid_t pid, const std::string& key) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind(key + ":", 0) == 0) {
      std::istringstream value(line.substr(key.size() + 1));
      std::string word;
      value >> word;
      return word;
    }
  }
  return "";
}

std::string LauncherName(const ::testing::TestParamInfo<internal::SpawnMethod>& info) {
  return info.param == internal::SpawnMethod::kClone ? "clone" : "clone3";
}

SpawnRequest ShellRequest(const std::string& script, std::vector<FdGrant> fds) {
  SpawnRequest request;
  request.argv = {"/bin/sh", "-c", script};
  request.env = {"PATH=/usr/bin:/bin"};
  request.fds = std::move(fds);
  return request;
}

}  // namespace slate::platform::testing
