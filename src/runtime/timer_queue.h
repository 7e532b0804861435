// The core's timers, kept by the runtime: a min-heap of deadlines behind one
// timerfd. Cancelled timers are dropped lazily when they reach the top.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <queue>
#include <unordered_set>
#include <vector>

namespace slate::runtime {

class TimerQueue {
 public:
  using Time = std::chrono::nanoseconds;
  using Id = std::uint64_t;

  void Add(Id id, Time deadline);
  void Cancel(Id id) { live_.erase(id); }

  // The earliest live deadline, if any.
  std::optional<Time> Next();
  // Removes and returns the ids due at `now`, earliest first.
  std::vector<Id> PopDue(Time now);
  std::size_t size() const { return live_.size(); }

 private:
  struct Entry {
    Time deadline;
    Id id;
    bool operator>(const Entry& o) const {
      return deadline != o.deadline ? deadline > o.deadline : id > o.id;
    }
  };
  void DropCancelled();

  std::priority_queue<Entry, std::vector<Entry>, std::greater<>> heap_;
  std::unordered_set<Id> live_;
};

}  // namespace slate::runtime
