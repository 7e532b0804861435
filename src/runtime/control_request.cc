// ParseRequest on its own, so that the fuzz target (fuzz/control_fuzz.cc)
// can build it without the rest of the runtime.
#include "runtime/control.h"

namespace slate::runtime {

Result<nlohmann::json> ParseRequest(std::string_view line) {
  auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return MakeError("request is not valid JSON");
  if (!j.is_object()) return MakeError("request must be a JSON object");
  if (!j.contains("verb") || !j["verb"].is_string()) {
    return MakeError("request needs a string \"verb\"");
  }
  if (j.contains("name") && !j["name"].is_string()) return MakeError("\"name\" must be a string");
  return j;
}

}  // namespace slate::runtime
