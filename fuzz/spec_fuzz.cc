// Feeds arbitrary bytes to the system file parser. It must never crash, hang
// or leak, and must either accept the input or explain why not.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "spec/parser.h"
#include "spec/tree.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  slate::spec::ParseResult r = slate::spec::ParseText(text, "/nonexistent/fuzz/system.toml");
  if (r.ok()) {
    // An accepted system must be drawable.
    (void)slate::spec::RenderTree(*r.system);
  } else if (r.diagnostics.empty()) {
    std::abort();  // rejected without a reason: a bug
  }
  (void)r.Report();
  return 0;
}
