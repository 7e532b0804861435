// What the supervision core hears (process facts, timers, commands) and what
// it asks the runtime to do. The core never touches the OS: the runtime
// carries out each Action in order and reports back with the matching calls
// of Supervision.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "core/intensity.h"
#include "spec/model.h"

namespace slate::core {

// One process of a component: every spawn gets a new incarnation, so a late
// report about an old process can never be mistaken for the current one.
using Incarnation = std::uint64_t;
using TimerId = std::uint64_t;

// How a process ended, as the OS tells it.
struct ProcessStatus {
  bool signaled = false;
  int code = 0;    // exit code, when !signaled
  int signal = 0;  // when signaled
  bool core_dumped = false;
  bool oom = false;  // killed by the memory limit
};

// Why a child ended (SPEC section 3).
struct ExitReason {
  enum class Kind { kNormal, kShutdown, kExit, kSignal, kHang, kStartTimeout, kStartError, kOom };
  Kind kind = Kind::kNormal;
  int code = 0;    // kExit
  int signal = 0;  // kSignal
  bool core_dumped = false;
  std::string detail;  // kStartError: what failed; for supervisors: which child

  bool operator==(const ExitReason&) const = default;
};

std::string_view ToString(ExitReason::Kind k);
// "exit code 1", "signal 9 (core dumped)", "hang: no heartbeat for 612ms", ...
std::string Describe(const ExitReason& r);

// A line of the event journal, before the runtime adds seq, ts and mono_ns.
struct Event {
  std::string event;       // "child_started", ...
  std::string node;        // the node concerned ("" for system events)
  std::string supervisor;  // its supervisor ("" for the root and system events)
  std::optional<int> pid;
  std::optional<ExitReason> reason;
  std::optional<int> restarts;
  std::optional<int> streak;
  std::optional<std::int64_t> delay_ms;
  std::optional<std::string> step;          // persistent_failure_step: the ladder step
  std::optional<std::string> image;         // image_* events: the digest now current
  std::optional<std::string> detail;        // what a step or hook found
  std::optional<std::uint64_t> checkpoint;  // state_checkpointed, state_rolled_back
  std::optional<std::uint64_t> bytes;       // state_checkpointed
  std::optional<std::string> device;        // device_reset
  std::optional<bool> ok;                   // device_reset
  std::optional<std::string> channel;       // message_dead_lettered
  std::optional<std::uint64_t> msg_id;      // message_dead_lettered
  std::optional<std::uint32_t> deliveries;  // message_dead_lettered
};

// Start a process of `component` as incarnation `incarnation`. The runtime
// answers with Supervision::Spawned or SpawnFailed.
struct Spawn {
  Incarnation incarnation;
  std::string name;  // instance name, e.g. "worker@2"
  const spec::Component* component;
};

// Apply a step of a component's ladder (SPEC section 6) that needs the
// runtime: rollback_state, reset_state, sanitize_state, revert_image,
// reinstall_image, reset_device. The component is down meanwhile. The runtime
// answers Supervision::StepDone(token) when it is done (whatever the
// outcome: a step that cannot be applied is reported in its own event), and
// the child is restarted then.
struct ApplyStep {
  std::uint64_t token;
  std::string name;
  const spec::Component* component;
  spec::LadderStep step;
  Time streak_began;  // monotonic: when the failures this step answers began
};

// Send `signal` to the whole process tree of `incarnation`.
struct Kill {
  Incarnation incarnation;
  int signal;
};

// Call Supervision::TimerFired(id) at `deadline` (monotonic) unless cancelled.
struct StartTimer {
  TimerId id;
  Time deadline;
};

struct CancelTimer {
  TimerId id;
};

// Append to the journal.
struct Emit {
  Event event;
};

// The system is over: `slate run` exits with `code` (0 orderly, 2 could not
// start, 3 gave up) after printing `message` if not empty.
struct Finish {
  int code;
  std::string message;
};

using Action = std::variant<Spawn, Kill, StartTimer, CancelTimer, Emit, Finish, ApplyStep>;
using Actions = std::vector<Action>;

}  // namespace slate::core
