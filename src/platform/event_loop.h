// EventLoop: the runtime's one wait point, a thin layer over epoll.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <unordered_map>

#include <sys/epoll.h>

#include "base/result.h"
#include "platform/status.h"
#include "platform/unique_fd.h"

namespace slate::platform {

// Level-triggered dispatch of readiness on descriptors to callbacks. It does
// not own the descriptors it watches: Remove() one before closing it.
// Callbacks may add, modify and remove registrations, their own included; an
// event for a registration removed earlier in the same round is dropped.
// Single-threaded.
class EventLoop {
 public:
  // `events` are EPOLL* bits (EPOLLIN, EPOLLOUT, EPOLLPRI, ...); the callback
  // receives the bits that fired, EPOLLHUP and EPOLLERR included.
  using Callback = std::function<void(std::uint32_t events)>;

  static constexpr std::chrono::milliseconds kForever{-1};

  // Fails only if epoll_create1 does (EMFILE, ENOMEM).
  static Result<EventLoop> Create();

  // Errors are epoll_ctl's: EEXIST if `fd` is registered, EPERM for regular
  // files, EBADF.
  Status Add(int fd, std::uint32_t events, Callback callback);
  Status Modify(int fd, std::uint32_t events);
  Status Remove(int fd);

  // Waits until something is ready or `timeout` passes (kForever: no limit,
  // 0: just poll), runs the callbacks, and returns how many ran. An
  // interrupted wait (EINTR) returns 0.
  Result<int> RunOnce(std::chrono::milliseconds timeout);

  std::size_t size() const { return by_fd_.size(); }

 private:
  struct Registration {
    int fd;
    Callback callback;
  };

  explicit EventLoop(UniqueFd epoll) : epoll_(std::move(epoll)) {}

  UniqueFd epoll_;
  std::uint64_t next_id_ = 1;
  // epoll_event.data carries an id, never reused, so a stale event cannot
  // reach a new registration that got the same descriptor number.
  std::unordered_map<std::uint64_t, std::shared_ptr<Registration>> by_id_;
  std::unordered_map<int, std::uint64_t> by_fd_;
};

}  // namespace slate::platform
