#include "core/intensity.h"

namespace slate::core {

void RestartIntensity::Expire(Time now) {
  while (!history_.empty() && now - history_.front() >= period_) history_.pop_front();
}

bool RestartIntensity::Allow(Time now) {
  Expire(now);
  history_.push_back(now);
  return static_cast<int>(history_.size()) <= intensity_;
}

int RestartIntensity::InWindow(Time now) const {
  int n = 0;
  for (Time t : history_) n += now - t < period_ ? 1 : 0;
  return n;
}

}  // namespace slate::core
