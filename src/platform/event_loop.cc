#include "platform/event_loop.h"

#include <algorithm>
#include <cerrno>
#include <string>

#include <climits>

namespace slate::platform {
namespace {

constexpr int kMaxEventsPerRound = 64;

}  // namespace

Result<EventLoop> EventLoop::Create() {
  UniqueFd epoll(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll.valid()) {
    return ErrnoError("epoll_create1", errno);
  }
  return EventLoop(std::move(epoll));
}

Status EventLoop::Add(int fd, std::uint32_t events, Callback callback) {
  const std::uint64_t id = next_id_++;
  epoll_event event{};
  event.events = events;
  event.data.u64 = id;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &event) != 0) {
    return ErrnoError("epoll add fd " + std::to_string(fd), errno);
  }
  by_id_[id] = std::make_shared<Registration>(Registration{fd, std::move(callback)});
  by_fd_[fd] = id;
  return OkStatus();
}

Status EventLoop::Modify(int fd, std::uint32_t events) {
  const auto it = by_fd_.find(fd);
  if (it == by_fd_.end()) {
    return MakeError("epoll modify fd " + std::to_string(fd) + ": not registered");
  }
  epoll_event event{};
  event.events = events;
  event.data.u64 = it->second;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &event) != 0) {
    return ErrnoError("epoll modify fd " + std::to_string(fd), errno);
  }
  return OkStatus();
}

Status EventLoop::Remove(int fd) {
  const auto it = by_fd_.find(fd);
  if (it == by_fd_.end()) {
    return MakeError("epoll remove fd " + std::to_string(fd) + ": not registered");
  }
  by_id_.erase(it->second);
  by_fd_.erase(it);
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr) != 0) {
    return ErrnoError("epoll remove fd " + std::to_string(fd), errno);
  }
  return OkStatus();
}

Result<int> EventLoop::RunOnce(std::chrono::milliseconds timeout) {
  epoll_event events[kMaxEventsPerRound];
  const long long ms = timeout.count() < 0 ? -1 : std::min<long long>(timeout.count(), INT_MAX);
  const int n = ::epoll_wait(epoll_.get(), events, kMaxEventsPerRound, static_cast<int>(ms));
  if (n < 0) {
    return errno == EINTR ? Result<int>(0) : ErrnoError("epoll_wait", errno);
  }
  int dispatched = 0;
  for (int i = 0; i < n; ++i) {
    const auto it = by_id_.find(events[i].data.u64);
    if (it == by_id_.end()) {
      continue;  // removed by an earlier callback of this round
    }
    // Keeps the callback alive even if it removes itself.
    const std::shared_ptr<Registration> registration = it->second;
    registration->callback(events[i].events);
    ++dispatched;
  }
  return dispatched;
}

}  // namespace slate::platform
