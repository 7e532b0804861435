// What every telemetry component does the same way: log lines that name the
// component, attaching to the runtime, and what to do with an error it cannot
// handle (exit, and let its supervisor start a fresh process).
#ifndef SLATE_EXAMPLES_TELEMETRY_COMMON_H_
#define SLATE_EXAMPLES_TELEMETRY_COMMON_H_

#include <chrono>
#include <cstdlib>
#include <slate/slate.hpp>
#include <utility>

namespace telemetry {

// Exit codes. 4 is the one the system file's ladder is for: the component's
// state store holds a value that fails its checksum.
inline constexpr int kExitError = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitCorruptState = 4;

// Names the program in log lines ("aggregator: ..."). Call first.
void SetProgram(const char* name);
const char* Program();

// A line on stderr, prefixed with the program's name; stderr is the
// component's log (`slate logs NAME`).
void Log(const char* format, ...) __attribute__((format(printf, 1, 2)));

// Logs `what` and the error, and exits with `code`.
[[noreturn]] void Fail(const char* what, const slate::Error& error, int code = kExitError);

// slate::Init, or exit 2 with libslate's explanation.
void AttachOrExit();

// The value of `result`, or exit naming `what`.
template <typename T>
T OrExit(slate::Result<T> result, const char* what) {
  if (!result) Fail(what, result.error());
  return std::move(result).value();
}

// SIGTERM and SIGINT set a flag instead of ending the process, for a
// component that has something to finish when it is stopped.
void CatchTermination();
bool TerminationRequested();

// Sleeps `duration` unless a termination is requested meanwhile.
void Pause(std::chrono::milliseconds duration);

}  // namespace telemetry

#endif  // SLATE_EXAMPLES_TELEMETRY_COMMON_H_
