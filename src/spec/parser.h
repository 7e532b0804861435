// Reading a system file into a validated System (SPEC section 2).
//
// Parse never throws and never stops at the first problem: it reports every
// error it can find, each tied to the key or value at fault. A System is
// returned only when there are no errors; warnings may accompany it.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "spec/diagnostics.h"
#include "spec/model.h"

namespace slate::spec {

struct ParseResult {
  std::string file;                      // as given, for messages
  std::shared_ptr<const System> system;  // null when there are errors
  std::vector<Diagnostic> diagnostics;   // sorted by position

  bool ok() const { return system != nullptr; }
  // Every diagnostic formatted as FILE:LINE:COL: message, one per line.
  std::string Report() const;
};

// Reads and checks the file at `path`. Relative paths inside it are resolved
// against its directory.
ParseResult ParseFile(const std::string& path);

// Checks `text` as if it were the file `path` (which need not exist). Used by
// tests and the fuzzer.
ParseResult ParseText(std::string_view text, const std::string& path);

}  // namespace slate::spec
