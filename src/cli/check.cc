#include <cstdio>

#include <fmt/format.h>

#include "cli/verbs.h"
#include "spec/parser.h"
#include "spec/tree.h"

namespace slate::cli {

int RunCheck(const Options& o) {
  spec::ParseResult r = spec::ParseFile(o.file);
  std::string report = r.Report();
  fmt::print(stderr, "{}", report);
  if (!r.ok()) {
    std::size_t errors = 0;
    for (const auto& d : r.diagnostics) errors += d.severity == spec::Severity::kError ? 1 : 0;
    fmt::print(stderr, "{}: {} error{}; nothing would start\n", o.file, errors,
               errors == 1 ? "" : "s");
    return 2;
  }
  fmt::print("{}", spec::RenderTree(*r.system));
  return 0;
}

}  // namespace slate::cli
