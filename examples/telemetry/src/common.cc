#include "common.h"

#include <algorithm>
#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <thread>

#include <signal.h>

namespace telemetry {
namespace {

const char* program = "telemetry";
volatile std::sig_atomic_t termination_requested = 0;

extern "C" void OnTermination(int /*signal*/) {
  termination_requested = 1;
}

}  // namespace

void SetProgram(const char* name) {
  program = name;
}
const char* Program() {
  return program;
}

void Log(const char* format, ...) {
  // One write per line, so lines of concurrent writers do not interleave.
  char line[1024];
  int n = std::snprintf(line, sizeof line, "%s: ", program);
  if (n < 0 || static_cast<std::size_t>(n) >= sizeof line) return;
  va_list args;
  va_start(args, format);
  // clang-tidy 14 reports an uninitialized va_list here when this file is
  // not the first of a run (state left over from the previous file).
  // NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
  int m = std::vsnprintf(line + n, sizeof line - static_cast<std::size_t>(n), format, args);
  va_end(args);
  if (m < 0) return;
  std::size_t len =
      std::min(sizeof line - 1, static_cast<std::size_t>(n) + static_cast<std::size_t>(m));
  line[len++] = '\n';
  (void)std::fwrite(line, 1, len, stderr);
}

void Fail(const char* what, const slate::Error& error, int code) {
  Log("%s: %s", what, error.text.c_str());
  std::exit(code);
}

void AttachOrExit() {
  if (auto st = slate::Init(); !st) Fail("slate_init", st.error(), kExitUsage);
}

void CatchTermination() {
  struct sigaction action {};
  action.sa_handler = OnTermination;
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;
  (void)sigaction(SIGTERM, &action, nullptr);
  (void)sigaction(SIGINT, &action, nullptr);
}

bool TerminationRequested() {
  return termination_requested != 0;
}

void Pause(std::chrono::milliseconds duration) {
  auto until = std::chrono::steady_clock::now() + duration;
  while (!TerminationRequested() && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::min(duration, std::chrono::milliseconds(10)));
  }
}

}  // namespace telemetry
