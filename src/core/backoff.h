// The backoff extension (SPEC section 4): the delay before restart n of a
// failure streak is 0 for n = 1, then min(max, initial * factor^(n-2)), with
// +-10% jitter so that siblings that failed together do not restart in step.
#pragma once

#include <cstdint>
#include <random>

#include "core/intensity.h"
#include "spec/model.h"

namespace slate::core {

// `unit` is a uniform draw from [0, 1) supplied by the caller, which keeps
// this a pure function.
Time BackoffDelay(const spec::Backoff& b, int streak, double unit);

}  // namespace slate::core
