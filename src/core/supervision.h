// The supervision tree as a pure state machine (STYLE.md: core decides, the
// runtime carries out). Every input is a method taking the current monotonic
// time; every method returns the actions to carry out, in order. Nothing here
// reads a clock, sleeps, or makes a system call, so tests drive it with a fake
// clock and assert on the actions.
//
// Semantics are Erlang/OTP's supervisor (SPEC section 4): ordered start that
// waits for readiness, reverse-order stop honouring each child's shutdown,
// one_for_one / one_for_all / rest_for_one / simple_one_for_one, permanent /
// transient / temporary, restart intensity with escalation, the retry loop
// when a restart fails to start, significant children and auto_shutdown;
// plus the backoff, healthy_after and heartbeat extensions.
//
// Like an OTP supervisor, each supervisor does one thing at a time: while it
// starts, stops or restarts children (a "plan"), the ends of its other
// children and operator commands for them wait in its queue, and are handled
// in order when the plan is done.
//
// Not thread-safe: one event loop owns it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/actions.h"
#include "spec/model.h"

namespace slate::core {

struct NodeStatus {
  std::string name;
  std::string supervisor;  // "" for the root
  bool is_supervisor = false;
  std::string state;          // stopped | starting | running | stopping | restarting
  int pid = 0;                // 0 when no process
  std::optional<Time> since;  // when it became running
  int restarts = 0;
  int streak = 0;
  std::optional<std::string> next_step;  // the ladder's next step, if it has one left
  bool gave_up = false;                  // state is "failed"
  bool in_episode = false;               // failing, or recovering through its ladder
  std::vector<std::string> children;
};

struct CommandResult {
  bool ok = true;
  std::string message;
  Actions actions;
};

class Supervision {
 public:
  // `seed` drives backoff jitter, so runs are reproducible in tests.
  explicit Supervision(std::shared_ptr<const spec::System> system, std::uint64_t seed = 1);
  ~Supervision();
  Supervision(const Supervision&) = delete;
  Supervision& operator=(const Supervision&) = delete;

  // Starts the whole tree. Ends with system_started once every child is
  // ready, or with Finish{2} if a child cannot start.
  Actions Start(Time now);

  // The runtime's reports about a Spawn.
  Actions Spawned(Incarnation inc, int pid, Time now);
  Actions SpawnFailed(Incarnation inc, const std::string& error, Time now);
  // Readiness (sd_notify READY=1, the fd:N newline) and liveness
  // (WATCHDOG=1, libslate heartbeats). Cheap: a heartbeat only stores `now`.
  Actions Ready(Incarnation inc, Time now);
  void Heartbeat(Incarnation inc, Time now);
  Actions Exited(Incarnation inc, const ProcessStatus& status, Time now);
  // The runtime caught the process in a fault of its own (it corrupted a
  // channel): it is killed, and its end is a failure with `reason`. Ignored
  // for a process that is not starting or running, or already being killed.
  Actions Fault(Incarnation inc, ExitReason reason, Time now);
  // The runtime carried out ApplyStep `token`; the child restarts.
  Actions StepDone(std::uint64_t token, Time now);
  Actions TimerFired(TimerId id, Time now);

  // Operator control (SPEC section 7). None of these counts as a failure.
  CommandResult StartChild(const std::string& name, Time now);
  CommandResult StopChild(const std::string& name, Time now);
  CommandResult RestartChild(const std::string& name, Time now);
  CommandResult Shutdown(Time now);

  // The incarnation of a running component (for `slate kill`), 0 if none.
  Incarnation IncarnationOf(const std::string& name) const;
  // The tree in start order, the root first.
  std::vector<NodeStatus> Status() const;
  // One node's line of Status(); nullopt for an unknown name.
  std::optional<NodeStatus> StatusOf(const std::string& name) const;
  // True once Finish was returned: the runtime should stop.
  bool Finished() const;

  class Engine;  // internal (engine.h); public only so that its files can name it

 private:
  std::unique_ptr<Engine> engine_;
};

// Classifies a process end (SPEC section 3) for a process that ended on its
// own: normal (0 or a normal_exit_code), exit, signal, or oom.
ExitReason Classify(const spec::Component& c, const ProcessStatus& s);

}  // namespace slate::core
