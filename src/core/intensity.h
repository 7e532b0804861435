// Restart intensity (OTP's MaxR/MaxT): a supervisor may restart its children
// at most `intensity` times in any window of `period`. Sliding window on a
// nanosecond monotonic clock (OTP uses whole seconds).
#pragma once

#include <chrono>
#include <deque>

namespace slate::core {

using Time = std::chrono::nanoseconds;  // monotonic, from an arbitrary origin

class RestartIntensity {
 public:
  RestartIntensity(int intensity, Time period) : intensity_(intensity), period_(period) {}

  // Records a restart at `now` and says whether it is allowed: true while at
  // most `intensity` restarts (this one included) fall within the last
  // `period`. A refused restart is still recorded, as in OTP.
  bool Allow(Time now);

  // Restarts currently inside the window (for status).
  int InWindow(Time now) const;
  void Clear() { history_.clear(); }

 private:
  void Expire(Time now);

  int intensity_;
  Time period_;
  std::deque<Time> history_;  // oldest first
};

}  // namespace slate::core
