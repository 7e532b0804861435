#include "spec/units.h"

#include <array>
#include <charconv>
#include <cmath>
#include <limits>

#include <fmt/format.h>

namespace slate::spec {
namespace {

struct Unit {
  std::string_view name;
  double factor;  // in the base unit (ns or bytes)
};

constexpr std::array kDurationUnits{
    Unit{"ns", 1.0}, Unit{"us", 1e3}, Unit{"ms", 1e6},
    Unit{"s", 1e9},  Unit{"m", 60e9}, Unit{"h", 3600e9},
};

constexpr std::array kSizeUnits{
    Unit{"B", 1.0},
    Unit{"KiB", 1024.0},
    Unit{"MiB", 1024.0 * 1024.0},
    Unit{"GiB", 1024.0 * 1024.0 * 1024.0},
};

// Splits "12.5ms" into 12.5 and "ms". Only plain decimals: no sign, exponent,
// hex, inf or nan.
struct Quantity {
  double number = 0;
  std::string_view unit;
};

Result<Quantity> SplitQuantity(std::string_view text, std::string_view what,
                               std::string_view example) {
  std::size_t i = 0;
  bool digits = false;
  bool dot = false;
  for (; i < text.size(); ++i) {
    char c = text[i];
    if (c >= '0' && c <= '9') {
      digits = true;
    } else if (c == '.' && !dot) {
      dot = true;
    } else {
      break;
    }
  }
  if (!digits) {
    return MakeError(fmt::format("'{}' is not a {}: expected a number and a unit, like \"{}\"",
                                 text, what, example));
  }
  Quantity q;
  std::string_view number = text.substr(0, i);
  auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), q.number);
  if (ec == std::errc::result_out_of_range) {
    // Too many digits for a double: huge if a digit before the point is not
    // zero, else too small to matter. The callers' range checks take over.
    std::string_view whole = number.substr(0, number.find('.'));
    bool huge = whole.find_first_not_of('0') != std::string_view::npos;
    q.number = huge ? std::numeric_limits<double>::infinity() : 0.0;
  } else if (ec != std::errc() || end != number.data() + number.size()) {
    return MakeError(fmt::format("'{}' is not a {}", text, what));
  }
  q.unit = text.substr(i);
  return q;
}

template <std::size_t N>
std::string UnitList(const std::array<Unit, N>& units) {
  std::string out;
  for (const auto& u : units) {
    if (!out.empty()) out += ", ";
    out += u.name;
  }
  return out;
}

}  // namespace

Result<Duration> ParseDuration(std::string_view text) {
  auto q = SplitQuantity(text, "duration", "250ms");
  if (!q) return q.error();
  if (q->unit.empty()) {
    return MakeError(fmt::format("duration '{}' has no unit (one of {}), like \"{}ms\"", text,
                                 UnitList(kDurationUnits), text));
  }
  for (const auto& u : kDurationUnits) {
    if (u.name == q->unit) {
      double ns = std::round(q->number * u.factor);
      if (ns >= static_cast<double>(std::numeric_limits<std::int64_t>::max()) / 2) {
        return MakeError(fmt::format("duration '{}' is too long", text));
      }
      return Duration(static_cast<std::int64_t>(ns));
    }
  }
  return MakeError(fmt::format("duration '{}' has an unknown unit '{}' (use one of {})", text,
                               q->unit, UnitList(kDurationUnits)));
}

Result<std::uint64_t> ParseSize(std::string_view text) {
  auto q = SplitQuantity(text, "size", "4KiB");
  if (!q) return q.error();
  if (q->unit.empty()) {
    return MakeError(fmt::format(
        "size '{}' has no unit (one of {}); write a plain byte count as an integer, not a string",
        text, UnitList(kSizeUnits)));
  }
  for (const auto& u : kSizeUnits) {
    if (u.name == q->unit) {
      double bytes = q->number * u.factor;
      if (bytes >= 0x1p62) return MakeError(fmt::format("size '{}' is too large", text));
      if (bytes != std::floor(bytes)) {
        return MakeError(fmt::format("size '{}' is not a whole number of bytes", text));
      }
      return static_cast<std::uint64_t>(bytes);
    }
  }
  std::string hint;
  if (q->unit == "KB" || q->unit == "kB" || q->unit == "K" || q->unit == "k")
    hint = " (did you mean KiB?)";
  if (q->unit == "MB" || q->unit == "M") hint = " (did you mean MiB?)";
  if (q->unit == "GB" || q->unit == "G") hint = " (did you mean GiB?)";
  return MakeError(fmt::format("size '{}' has an unknown unit '{}' (use one of {}){}", text,
                               q->unit, UnitList(kSizeUnits), hint));
}

std::string FormatDuration(Duration d) {
  std::int64_t ns = d.count();
  if (ns == 0) return "0s";
  for (auto it = kDurationUnits.rbegin(); it != kDurationUnits.rend(); ++it) {
    auto f = static_cast<std::int64_t>(it->factor);
    if (ns % f == 0) return fmt::format("{}{}", ns / f, it->name);
  }
  return fmt::format("{}ns", ns);
}

std::string FormatSize(std::uint64_t bytes) {
  if (bytes == 0) return "0B";
  for (auto it = kSizeUnits.rbegin(); it != kSizeUnits.rend(); ++it) {
    auto f = static_cast<std::uint64_t>(it->factor);
    if (bytes % f == 0) return fmt::format("{}{}", bytes / f, it->name);
  }
  return fmt::format("{}B", bytes);
}

}  // namespace slate::spec
