// The event journal, state_dir/events.jsonl (SPEC section 8): one JSON object
// per line, seq from 1 without gaps (continued across runs of the runtime),
// each line written with one write(2) before the change it reports becomes
// visible to `slate status`.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include <time.h>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "core/actions.h"

namespace slate::runtime {

class Journal {
 public:
  // Opens (creating if needed) the journal at `path` for appending, and
  // finds the last seq. A torn last line (the runtime died mid-write) is
  // completed with a newline so the next entry starts clean.
  static Result<Journal> Open(const std::string& path);

  Journal(Journal&& other) noexcept;
  Journal& operator=(Journal&& other) noexcept;
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;
  ~Journal();

  // Appends one event stamped with the next seq, wall time and `mono`.
  // Returns the line written (without newline). Errors are returned, not
  // thrown; the caller decides whether a journal it cannot write is fatal.
  Result<std::string> Append(const core::Event& e, std::chrono::nanoseconds mono);
  // The same, stamped with `wall` (CLOCK_REALTIME) taken when it happened:
  // for a line written a little after its event.
  Result<std::string> Append(const core::Event& e, std::chrono::nanoseconds mono,
                             const timespec& wall);

  std::uint64_t last_seq() const { return seq_; }

 private:
  Journal(int fd, std::uint64_t seq) : fd_(fd), seq_(seq) {}
  int fd_ = -1;
  std::uint64_t seq_ = 0;
};

nlohmann::json ToJson(const core::ExitReason& r);
// RFC 3339 UTC with microseconds: 2026-11-27T03:12:08.123456Z
std::string Rfc3339Now();
std::string Rfc3339(const timespec& ts);

}  // namespace slate::runtime
