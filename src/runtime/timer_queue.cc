#include "runtime/timer_queue.h"

namespace slate::runtime {

void TimerQueue::Add(Id id, Time deadline) {
  heap_.push({deadline, id});
  live_.insert(id);
}

void TimerQueue::DropCancelled() {
  while (!heap_.empty() && !live_.contains(heap_.top().id)) heap_.pop();
}

std::optional<TimerQueue::Time> TimerQueue::Next() {
  DropCancelled();
  if (heap_.empty()) return std::nullopt;
  return heap_.top().deadline;
}

std::vector<TimerQueue::Id> TimerQueue::PopDue(Time now) {
  std::vector<Id> due;
  for (DropCancelled(); !heap_.empty() && heap_.top().deadline <= now; DropCancelled()) {
    due.push_back(heap_.top().id);
    live_.erase(heap_.top().id);
    heap_.pop();
  }
  return due;
}

}  // namespace slate::runtime
