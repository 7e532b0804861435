#include <fmt/format.h>

#include "cli/verbs.h"
#include "runtime/runtime.h"
#include "spec/parser.h"

namespace slate::cli {

int RunRun(const Options& o) {
  spec::ParseResult r = spec::ParseFile(o.file);
  fmt::print(stderr, "{}", r.Report());
  if (!r.ok()) {
    fmt::print(stderr, "slate run: {} has errors; nothing started\n", o.file);
    return 2;
  }
  return runtime::Run(r.system, runtime::RunOptions{});
}

}  // namespace slate::cli
