// Status: Result<T> for operations that return nothing but can fail, and the
// helper that turns an errno into an Error. Messages read "what: reason",
// e.g. "open /x/cgroup.kill: Permission denied".
#pragma once

#include <string>
#include <string_view>
#include <variant>

#include "base/result.h"

namespace slate::platform {

// Result<void> is not expressible with base/result.h (std::variant<void,...>),
// so success-only operations carry std::monostate.
using Status = Result<std::monostate>;

inline Status OkStatus() {
  return std::monostate{};
}

// "what: strerror(err)". Thread-safe (does not use strerror()).
Error ErrnoError(std::string_view what, int err);

}  // namespace slate::platform
