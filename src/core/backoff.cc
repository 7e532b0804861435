#include "core/backoff.h"

#include <algorithm>
#include <cmath>

namespace slate::core {

Time BackoffDelay(const spec::Backoff& b, int streak, double unit) {
  if (streak <= 1) return Time(0);
  double base = static_cast<double>(b.initial.count()) * std::pow(b.factor, streak - 2);
  double capped = std::min(base, static_cast<double>(b.max.count()));
  double jittered = capped * (0.9 + 0.2 * unit);
  return Time(static_cast<std::int64_t>(jittered));
}

}  // namespace slate::core
