// Durations and sizes as the system file writes them (SPEC section 2).
//
// A duration is a number with a unit: "250ms", "1.5s", "2m". Units are ns,
// us, ms, s, m, h; a decimal fraction is allowed; the result is rounded to
// whole nanoseconds. A size is a plain number of bytes (given as an integer)
// or a string with B, KiB, MiB or GiB: "256B", "4KiB", "1.5MiB".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"
#include "spec/model.h"

namespace slate::spec {

// Errors say what is wrong with the text, without a position.
Result<Duration> ParseDuration(std::string_view text);
Result<std::uint64_t> ParseSize(std::string_view text);

// The shortest exact form in the same notation: 1500ms -> "1500ms",
// 10s -> "10s", 120s -> "2m".
std::string FormatDuration(Duration d);
std::string FormatSize(std::uint64_t bytes);

}  // namespace slate::spec
