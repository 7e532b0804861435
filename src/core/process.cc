// One child's life: start, readiness, stop, and the end of its process.
#include <csignal>

#include "core/engine.h"

namespace slate::core {

void Supervision::Engine::BeginStart(Node& c) {
  Disarm(c, TimerKind::kRetry);
  if (c.is_supervisor()) {
    StartSupervisor(c);
    return;
  }
  by_incarnation_.erase(c.incarnation);
  c.incarnation = next_incarnation_++;
  by_incarnation_[c.incarnation] = c.id;
  c.state = State::kStarting;
  c.pid = 0;
  c.process_alive = true;
  c.kill_reason.reset();
  c.running_since.reset();
  out_.emplace_back(Spawn{c.incarnation, c.name, c.component});
}

void Supervision::Engine::BecomeRunning(Node& c) {
  Disarm(c, TimerKind::kReady);
  c.state = State::kRunning;
  c.running_since = now_;
  Emit("child_ready", c);
  if (c.component->heartbeat) {
    c.last_heartbeat = now_;
    Arm(c, TimerKind::kHeartbeat, now_ + *c.component->heartbeat);
  }
  if (c.streak > 0 || c.next_step > 0) {
    // A streak (and the ladder's episode) ends after running healthy_after (default: the
    // supervisor's period, the window in which OTP remembers restarts).
    Time healthy =
        c.component->healthy_after ? *c.component->healthy_after : Parent(c).supervisor->period;
    Arm(c, TimerKind::kHealthy, now_ + healthy);
  }
  Schedule(Parent(c));
}

void Supervision::Engine::BeginStop(Node& n) {
  if (n.is_supervisor()) {
    if (n.state != State::kStopped) StopAll(n, Goal::kStop);
    return;
  }
  switch (n.state) {
    case State::kStopped:
    case State::kStopping: return;
    case State::kRestarting:
      Disarm(n, TimerKind::kRetry);
      n.state = State::kStopped;
      Emit("child_terminated", n);
      return;
    case State::kStarting:
    case State::kRunning: break;
  }
  n.state = State::kStopping;
  n.running_since.reset();
  Disarm(n, TimerKind::kReady);
  Disarm(n, TimerKind::kHeartbeat);
  Disarm(n, TimerKind::kHealthy);
  switch (n.shutdown.kind) {
    case spec::Shutdown::Kind::kBrutalKill: out_.emplace_back(Kill{n.incarnation, SIGKILL}); break;
    case spec::Shutdown::Kind::kInfinity: out_.emplace_back(Kill{n.incarnation, SIGTERM}); break;
    case spec::Shutdown::Kind::kTimeout:
      out_.emplace_back(Kill{n.incarnation, SIGTERM});
      Arm(n, TimerKind::kShutdown, now_ + n.shutdown.timeout);
      break;
  }
}

void Supervision::Engine::ProcessEnded(Node& c, const ExitReason& reason) {
  c.process_alive = false;
  by_incarnation_.erase(c.incarnation);
  State was = c.state;
  DisarmAll(c);
  c.state = State::kStopped;
  c.running_since.reset();
  if (was == State::kStopping) {
    // We asked for this end: not a failure, whatever the exit code.
    Event e;
    e.event = "child_terminated";
    if (c.pid != 0) e.pid = c.pid;
    e.reason = ExitReason{ExitReason::Kind::kShutdown, 0, 0, false, ""};
    Emit(c, std::move(e));
    Schedule(Parent(c));
    return;
  }
  Event e;
  e.event = "child_exited";
  if (c.pid != 0) e.pid = c.pid;
  e.reason = reason;
  e.restarts = c.restarts;
  e.streak = c.streak;
  Emit(c, std::move(e));
  if (was == State::kStarting) {
    ChildStartFailed(Parent(c), c, reason);
  } else {
    ChildEnded(Parent(c), c, reason);
  }
}

}  // namespace slate::core
