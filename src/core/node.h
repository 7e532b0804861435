// Internal to src/core: one node of the supervision tree and one supervisor's
// plan. See supervision.h for the semantics.
#pragma once

#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "core/actions.h"
#include "core/intensity.h"
#include "spec/model.h"

namespace slate::core::internal {

using NodeId = std::size_t;
constexpr NodeId kNoNode = static_cast<NodeId>(-1);

enum class State { kStopped, kStarting, kRunning, kStopping, kRestarting };
std::string_view ToString(State s);

// One step of a plan: start some nodes (concurrently: several only for
// simple_one_for_one instances) and wait until all are running, or stop
// some nodes (concurrently) and wait until all are stopped.
struct Step {
  enum class Kind { kStart, kStop };
  Kind kind;
  std::vector<NodeId> nodes;
  bool begun = false;
};

// What a supervisor is doing. kIdle: nothing, its queue is handled at once.
enum class Goal {
  kIdle,
  kInitialStart,  // starting all children; a start failure fails this start
  kRestart,       // restarting after a failure; a start failure is retried
  kCommand,       // an operator's start/stop/restart of one child
  kFailedStart,   // stopping what was started, then reporting the failure
  kStop,          // stopping all children because the parent asked
  kGiveUp,        // intensity exceeded: stopping all children, then exiting
  kAutoShutdown,  // a significant child ended: stopping all, then exiting
};

// Work that waits for a supervisor's plan to finish.
struct Pending {
  enum class Kind { kChildEnded, kStart, kStop, kRestart, kRetry, kStepDone };
  Kind kind;
  NodeId child;
  Incarnation incarnation = 0;  // kChildEnded: the process that ended
  ExitReason reason;            // kChildEnded
};

enum class TimerKind {
  kReady,           // ready_timeout
  kHeartbeat,       // heartbeat deadline
  kShutdown,        // SIGTERM sent, SIGKILL when this fires
  kSupervisorKill,  // a supervisor's own shutdown timeout
  kHealthy,         // running long enough ends the streak
  kRetry,           // the next attempt of a failed restart
};

struct Node {
  NodeId id = 0;
  std::string name;
  NodeId parent = kNoNode;
  const spec::Component* component = nullptr;    // for components
  const spec::Supervisor* supervisor = nullptr;  // for supervisors
  spec::RestartType restart = spec::RestartType::kPermanent;
  spec::Shutdown shutdown;
  bool significant = false;
  bool detached = false;  // an instance of an earlier life of its supervisor

  State state = State::kStopped;
  std::optional<Time> running_since;

  // Components: the current process.
  Incarnation incarnation = 0;
  int pid = 0;
  bool process_alive = false;
  std::optional<ExitReason> kill_reason;  // set when we kill it for a fault
  Time last_heartbeat{};

  // Accounting, for status and backoff.
  int restarts = 0;
  int streak = 0;
  bool removed = false;           // temporary child that ended: not restarted
  bool operator_stopped = false;  // `slate stop`: left alone until `slate start`

  // The ladder of persistent failures (SPEC section 6).
  std::size_t next_step = 0;         // index into on_persistent_failure.steps
  std::optional<Time> streak_began;  // first failure of the episode the ladder answers
  std::uint64_t step_token = 0;      // an ApplyStep the runtime is carrying out
  bool gave_up = false;              // give_up: not restarted until `slate start`

  // Timers of this node, by kind (0: none).
  std::vector<TimerId> timers = std::vector<TimerId>(6, 0);

  // Supervisors.
  std::vector<NodeId> children;
  std::optional<RestartIntensity> intensity;
  Goal goal = Goal::kIdle;
  std::deque<Step> plan;
  std::deque<Pending> pending;
  std::optional<ExitReason> failure;  // kFailedStart: the reason reported upwards
  std::string give_up_detail;         // kGiveUp by escalation: why

  bool is_supervisor() const { return supervisor != nullptr; }
  TimerId& timer(TimerKind k) { return timers[static_cast<std::size_t>(k)]; }
};

}  // namespace slate::core::internal
