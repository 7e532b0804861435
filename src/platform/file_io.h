// Internal: whole-file reads and writes for /proc and cgroupfs, where files
// are small and every read(2) may return a different snapshot.
#pragma once

#include <string>
#include <string_view>

#include <fcntl.h>

#include "base/result.h"
#include "platform/status.h"

namespace slate::platform {

// Reads `path` (absolute, or relative to `dir_fd`) to its end. The Error
// names the path.
Result<std::string> ReadFileAt(int dir_fd, const std::string& path);
inline Result<std::string> ReadFile(const std::string& path) {
  return ReadFileAt(AT_FDCWD, path);
}

// Writes `data` in one write(2), as cgroupfs expects for its control files.
Status WriteFileAt(int dir_fd, const std::string& path, std::string_view data);

}  // namespace slate::platform
