// What slate-init (src/init) tells the runtime on its status descriptor:
// records of two 32-bit ints, each written at once (atomic on a pipe).
// Shared by the init and platform::Spawn / TryReap; no code, no libraries.
#pragma once

#include <cstdint>

namespace slate::platform {

struct InitRecord {
  std::int32_t kind;
  std::int32_t value;
};
static_assert(sizeof(InitRecord) == 8);

// The program was executed (value 0). Spawn waits for this one.
constexpr std::int32_t kInitStarted = 1;
// execve of the program failed (value: errno); the init exits with 127.
constexpr std::int32_t kInitExecFailed = 2;
// The init could not fork or make a pipe (value: errno); it exits with 126.
constexpr std::int32_t kInitForkFailed = 3;
// The program ended (value: its wait status, as waitpid gives it); the init
// exits right after.
constexpr std::int32_t kInitEnded = 4;

}  // namespace slate::platform
