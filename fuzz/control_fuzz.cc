// Feeds arbitrary bytes to the control protocol's request parser, as a line
// from a client would reach it. It must never crash, hang or leak; an
// accepted request must be an object with a string "verb" (and a string
// "name" when there is one), and must dump back to text; a refused one must
// say why.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "runtime/control.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view line(reinterpret_cast<const char*>(data), size);
  auto request = slate::runtime::ParseRequest(line);
  if (!request) {
    if (request.error().message.empty()) std::abort();
    return 0;
  }
  const nlohmann::json& j = *request;
  if (!j.is_object() || !j.contains("verb") || !j["verb"].is_string()) std::abort();
  if (j.contains("name") && !j["name"].is_string()) std::abort();
  // The runtime echoes parts of a request in its replies.
  (void)j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return 0;
}
