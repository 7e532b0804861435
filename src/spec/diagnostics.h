// Messages about a system file, each tied to a place in it.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace slate::spec {

enum class Severity { kError, kWarning };

struct Diagnostic {
  Severity severity = Severity::kError;
  int line = 0;    // 1-based; 0 when the message concerns the whole file
  int column = 0;  // 1-based
  std::string message;
};

// "FILE:LINE:COL: message" for errors, "FILE:LINE:COL: warning: message" for
// warnings (the form compilers use, so editors can jump to it).
std::string FormatDiagnostic(const Diagnostic& d, std::string_view file);

// Sorted by position, errors before warnings at the same place, duplicates
// removed.
void SortDiagnostics(std::vector<Diagnostic>& ds);

bool HasErrors(const std::vector<Diagnostic>& ds);

// The candidate closest to `word` by edit distance, if close enough to be a
// plausible typo; empty otherwise.
std::string ClosestMatch(std::string_view word, const std::vector<std::string>& candidates);

// " (did you mean 'x'?)" or "".
std::string DidYouMean(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace slate::spec
