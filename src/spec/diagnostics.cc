#include "spec/diagnostics.h"

#include <algorithm>
#include <tuple>

#include <fmt/format.h>

namespace slate::spec {

std::string FormatDiagnostic(const Diagnostic& d, std::string_view file) {
  std::string_view kind = d.severity == Severity::kWarning ? "warning: " : "";
  if (d.line <= 0) return fmt::format("{}: {}{}", file, kind, d.message);
  return fmt::format("{}:{}:{}: {}{}", file, d.line, d.column, kind, d.message);
}

void SortDiagnostics(std::vector<Diagnostic>& ds) {
  auto key = [](const Diagnostic& d) { return std::tie(d.line, d.column, d.severity, d.message); };
  std::stable_sort(ds.begin(), ds.end(),
                   [&](const Diagnostic& a, const Diagnostic& b) { return key(a) < key(b); });
  ds.erase(std::unique(ds.begin(), ds.end(),
                       [&](const Diagnostic& a, const Diagnostic& b) { return key(a) == key(b); }),
           ds.end());
}

bool HasErrors(const std::vector<Diagnostic>& ds) {
  return std::any_of(ds.begin(), ds.end(),
                     [](const Diagnostic& d) { return d.severity == Severity::kError; });
}

namespace {

// Optimal string alignment distance: insertions, deletions, substitutions
// and transpositions of neighbours each cost 1 ("mian" is 1 from "main").
std::size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

}  // namespace

std::string ClosestMatch(std::string_view word, const std::vector<std::string>& candidates) {
  // A word that starts a candidate ("rollback" for "rollback_state").
  if (word.size() >= 4) {
    for (const auto& c : candidates) {
      if (c.starts_with(word)) return c;
    }
  }
  std::string best;
  std::size_t best_distance = std::max<std::size_t>(1, word.size() / 3) + 1;
  for (const auto& c : candidates) {
    std::size_t d = EditDistance(word, c);
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  return best;
}

std::string DidYouMean(std::string_view word, const std::vector<std::string>& candidates) {
  std::string m = ClosestMatch(word, candidates);
  return m.empty() ? std::string() : fmt::format(" (did you mean '{}'?)", m);
}

}  // namespace slate::spec
