// Messages of the runtime on its stderr. Never throws and never fails the
// caller: a closed or broken stderr must not bring the runtime down.
#pragma once

#include <string>

#include <unistd.h>

#include <fmt/format.h>

namespace slate::runtime {

template <typename... Args>
void Say(fmt::format_string<Args...> format, Args&&... args) {
  std::string line = "slate: ";
  try {
    line += fmt::format(format, std::forward<Args>(args)...);
  } catch (...) {
    line += "(unformattable message)";
  }
  line += '\n';
  (void)!::write(STDERR_FILENO, line.data(), line.size());
}

}  // namespace slate::runtime
