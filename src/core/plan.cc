// Supervisors: plans of ordered starts and stops, restart strategies,
// intensity, escalation, auto_shutdown, and operator commands.
#include <algorithm>
#include <utility>

#include <fmt/format.h>

#include "core/backoff.h"
#include "core/engine.h"
#include "spec/units.h"

namespace slate::core {

using internal::Goal;
using internal::NodeId;

namespace {

bool IsBusyStopping(Goal g) {
  return g == Goal::kStop || g == Goal::kGiveUp || g == Goal::kAutoShutdown ||
         g == Goal::kFailedStart;
}

}  // namespace

void Supervision::Engine::StartSupervisor(Node& s) {
  Refresh(s);
  s.state = State::kStarting;
  s.running_since.reset();
  s.goal = Goal::kInitialStart;
  if (!IsRoot(s)) Emit("child_started", s);
  if (s.supervisor->strategy == spec::Strategy::kSimpleOneForOne) {
    // Instances are alike and independent: they start together.
    if (!s.children.empty()) s.plan.push_back(Step{Step::Kind::kStart, s.children, false});
  } else {
    for (NodeId k : s.children) s.plan.push_back(Step{Step::Kind::kStart, {k}, false});
  }
  Schedule(s);
}

void Supervision::Engine::Advance(Node& s) {
  if (s.goal == Goal::kIdle) return;
  while (!s.plan.empty()) {
    Step& step = s.plan.front();
    switch (step.kind) {
      case Step::Kind::kStart: {
        if (!step.begun) {
          step.begun = true;
          for (NodeId k : step.nodes) {
            if (nodes_[k].state != State::kRunning) BeginStart(nodes_[k]);
          }
        }
        bool all_running = std::all_of(step.nodes.begin(), step.nodes.end(), [&](NodeId k) {
          return nodes_[k].state == State::kRunning;
        });
        if (!all_running) return;
        break;
      }
      case Step::Kind::kStop: {
        if (!step.begun) {
          step.begun = true;
          for (NodeId k : step.nodes) BeginStop(nodes_[k]);
        }
        bool all_stopped = std::all_of(step.nodes.begin(), step.nodes.end(), [&](NodeId k) {
          return nodes_[k].state == State::kStopped;
        });
        if (!all_stopped) return;
        break;
      }
    }
    s.plan.pop_front();
  }
  PlanDone(s);
}

void Supervision::Engine::PlanDone(Node& s) {
  Goal goal = s.goal;
  s.goal = Goal::kIdle;
  switch (goal) {
    case Goal::kIdle: return;
    case Goal::kInitialStart:
      s.state = State::kRunning;
      s.running_since = now_;
      if (IsRoot(s)) {
        Event e;
        e.event = "system_started";
        out_.emplace_back(core::Emit{std::move(e)});
      } else {
        Emit("child_ready", s);
        Schedule(Parent(s));
      }
      break;
    case Goal::kRestart:
    case Goal::kCommand: break;
    case Goal::kFailedStart: {
      s.state = State::kStopped;
      ExitReason r = *s.failure;
      if (IsRoot(s)) {
        Finish(2, r.detail);
        return;
      }
      Event e;
      e.event = "child_exited";
      e.reason = r;
      Emit(s, std::move(e));
      ChildStartFailed(Parent(s), s, r);
      return;
    }
    case Goal::kStop:
      s.state = State::kStopped;
      s.running_since.reset();
      Disarm(s, TimerKind::kSupervisorKill);
      if (IsRoot(s)) {
        if (critical_give_up_) {
          Finish(3, *critical_give_up_);
        } else {
          Finish(0, "");
        }
        return;
      }
      Emit("child_terminated", s);
      Schedule(Parent(s));
      return;
    case Goal::kGiveUp:
    case Goal::kAutoShutdown: {
      s.state = State::kStopped;
      s.running_since.reset();
      Event e;
      e.event = "supervisor_exited";
      const std::string detail = std::exchange(s.give_up_detail, {});
      e.reason = ExitReason{ExitReason::Kind::kShutdown, 0, 0, false,
                            goal == Goal::kAutoShutdown ? "auto_shutdown"
                            : detail.empty()            ? "restart intensity exceeded"
                                                        : detail};
      Emit(s, e);
      if (IsRoot(s)) {
        if (goal == Goal::kGiveUp && !detail.empty()) {
          Finish(3, fmt::format("root supervisor '{}' gave up: {}", s.name, detail));
        } else if (goal == Goal::kGiveUp) {
          const int n = s.supervisor->intensity;
          Finish(3,
                 fmt::format("root supervisor '{}' gave up: more than {} restart{} in {}", s.name,
                             n, n == 1 ? "" : "s", spec::FormatDuration(s.supervisor->period)));
        } else {
          Finish(0, "");
        }
        return;
      }
      e.event = "child_exited";
      Emit(s, e);
      ChildEnded(Parent(s), s, *e.reason);
      return;
    }
  }
  DrainPending(s);
}

void Supervision::Engine::StopAll(Node& s, Goal goal) {
  s.plan.clear();
  s.pending.clear();
  s.goal = goal;
  if (goal != Goal::kFailedStart) s.state = State::kStopping;
  std::vector<NodeId> live;
  for (auto it = s.children.rbegin(); it != s.children.rend(); ++it) {
    if (nodes_[*it].state != State::kStopped) live.push_back(*it);
  }
  if (s.supervisor->strategy == spec::Strategy::kSimpleOneForOne) {
    if (!live.empty()) s.plan.push_back(Step{Step::Kind::kStop, live, false});
  } else {
    for (NodeId k : live) s.plan.push_back(Step{Step::Kind::kStop, {k}, false});
  }
  if (goal == Goal::kStop && !IsRoot(s)) {
    switch (s.shutdown.kind) {
      case spec::Shutdown::Kind::kBrutalKill: Arm(s, TimerKind::kSupervisorKill, now_); break;
      case spec::Shutdown::Kind::kTimeout:
        Arm(s, TimerKind::kSupervisorKill, now_ + s.shutdown.timeout);
        break;
      case spec::Shutdown::Kind::kInfinity: break;
    }
  }
  Schedule(s);
}

void Supervision::Engine::ChildStartFailed(Node& s, Node& c, const ExitReason& reason) {
  switch (s.goal) {
    case Goal::kInitialStart:
      // OTP: a child that cannot start fails its supervisor's start; what
      // was started is stopped in reverse order first.
      s.failure =
          ExitReason{ExitReason::Kind::kStartError, 0, 0, false,
                     fmt::format("child '{}' failed to start: {}", c.name, Describe(reason))};
      StopAll(s, Goal::kFailedStart);
      return;
    case Goal::kRestart: {
      // OTP's retry loop: every attempt counts against intensity, and the
      // next attempt waits its turn behind commands and other children's
      // ends, as OTP's try_again message does.
      s.plan.clear();
      s.goal = Goal::kIdle;
      Fail(s, c, /*yield=*/true);
      return;
    }
    case Goal::kCommand:
      // An operator's start that fails is reported, not retried.
      s.plan.clear();
      s.goal = Goal::kIdle;
      DrainPending(s);
      return;
    default: Schedule(s); return;
  }
}

void Supervision::Engine::ChildEnded(Node& s, Node& c, const ExitReason& reason) {
  if (IsBusyStopping(s.goal)) {
    Schedule(s);  // the stop step sees it stopped
    return;
  }
  if (s.goal != Goal::kIdle) {
    s.pending.push_back({Pending::Kind::kChildEnded, c.id, c.incarnation, reason});
    return;
  }
  HandleEnd(s, c, reason);
}

void Supervision::Engine::HandleEnd(Node& s, Node& c, const ExitReason& reason) {
  bool orderly =
      reason.kind == ExitReason::Kind::kNormal || reason.kind == ExitReason::Kind::kShutdown;
  bool restart = c.restart == spec::RestartType::kPermanent ||
                 (c.restart == spec::RestartType::kTransient && !orderly);
  if (!restart) {
    c.state = State::kStopped;
    if (c.restart == spec::RestartType::kTemporary) c.removed = true;
    if (c.significant) CheckAutoShutdown(s);
    DrainPending(s);
    return;
  }
  Fail(s, c, /*yield=*/false);
}

void Supervision::Engine::Fail(Node& s, Node& c, bool yield) {
  if (c.streak == 0 && c.next_step == 0) c.streak_began = now_;
  c.streak++;
  if (Climb(s, c)) return;
  Restart(s, c, BackoffFor(c), yield);
}

bool Supervision::Engine::Climb(Node& s, Node& c) {
  if (c.component == nullptr || !c.component->on_persistent_failure) return false;
  const spec::PersistentFailurePolicy& p = *c.component->on_persistent_failure;
  if (c.streak < p.after || c.next_step >= p.steps.size()) return false;
  const spec::LadderStep step = p.steps[c.next_step++];
  Event e;
  e.event = "persistent_failure_step";
  e.step = std::string(spec::ToString(step));
  e.streak = c.streak;
  Emit(c, std::move(e));
  const int streak = c.streak;
  c.streak = 0;  // the count starts again after each step
  switch (step) {
    case spec::LadderStep::kEscalate: {
      // A wider restart domain at once: the supervisor fails as if its
      // intensity were exceeded, and its parent restarts it.
      s.give_up_detail = fmt::format("child '{}' escalated a persistent failure", c.name);
      StopAll(s, Goal::kGiveUp);
      return true;
    }
    case spec::LadderStep::kGiveUp: GiveUp(s, c, streak); return true;
    default: break;
  }
  // The runtime does the work (state, images, devices) while the child is
  // down; StepDone restarts it.
  c.state = State::kRestarting;
  c.step_token = next_step_token_++;
  out_.emplace_back(
      ApplyStep{c.step_token, c.name, c.component, step, c.streak_began.value_or(now_)});
  return true;
}

void Supervision::Engine::GiveUp(Node& s, Node& c, int streak) {
  c.state = State::kStopped;
  c.gave_up = true;
  Event e;
  e.event = "child_gave_up";
  e.streak = streak;
  Emit(c, std::move(e));
  if (c.component != nullptr && c.component->critical && !finished_) {
    // Orderly: everything stops in reverse order, then `slate run` exits 3.
    critical_give_up_ = fmt::format("gave up on critical component '{}'", c.name);
    Node& root = nodes_[root_];
    if (root.goal != Goal::kStop) StopAll(root, Goal::kStop);
    return;
  }
  if (c.significant) CheckAutoShutdown(s);
  DrainPending(s);
}

Actions Supervision::Engine::StepDone(std::uint64_t token, Time now) {
  now_ = now;
  for (Node& c : nodes_) {
    if (c.step_token != token || c.detached) continue;
    c.step_token = 0;
    // Stopped meanwhile (an operator, a shutdown, a group restart): nothing to do.
    if (c.state != State::kRestarting || finished_) break;
    Node& s = Parent(c);
    if (s.goal == Goal::kIdle) {
      Restart(s, c, BackoffFor(c));
    } else {
      s.pending.push_back({Pending::Kind::kStepDone, c.id, 0, {}});
    }
    break;
  }
  return Take();
}

Time Supervision::Engine::BackoffFor(const Node& c) {
  if (c.component == nullptr || !c.component->backoff) return Time(0);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  return BackoffDelay(*c.component->backoff, c.streak, unit(rng_));
}

std::vector<NodeId> Supervision::Engine::Group(const Node& s, const Node& c) const {
  std::vector<NodeId> group;
  bool after = false;
  for (NodeId k : s.children) {
    const Node& n = nodes_[k];
    bool in = false;
    switch (s.supervisor->strategy) {
      case spec::Strategy::kOneForOne:
      case spec::Strategy::kSimpleOneForOne: in = k == c.id; break;
      case spec::Strategy::kOneForAll: in = true; break;
      case spec::Strategy::kRestForOne:
        after = after || k == c.id;
        in = after;
        break;
    }
    if (in && (k == c.id || (!n.removed && !n.operator_stopped))) group.push_back(k);
  }
  return group;
}

void Supervision::Engine::Restart(Node& s, Node& c, Time delay, bool yield) {
  if (!s.intensity->Allow(now_)) {
    Event e;
    e.event = "supervisor_intensity_exceeded";
    e.restarts = s.supervisor->intensity;
    Emit(s, std::move(e));
    StopAll(s, Goal::kGiveUp);
    return;
  }
  c.restarts++;
  Event e;
  e.event = "child_restarting";
  e.restarts = c.restarts;
  e.streak = c.streak;
  e.delay_ms = std::chrono::duration_cast<std::chrono::milliseconds>(delay).count();
  Emit(c, std::move(e));

  // Siblings in the restart group are stopped in reverse start order; a
  // temporary one is not started again.
  s.goal = Goal::kRestart;
  std::vector<NodeId> group = Group(s, c);
  for (auto it = group.rbegin(); it != group.rend(); ++it) {
    Node& n = nodes_[*it];
    if (n.id == c.id) continue;
    if (n.restart == spec::RestartType::kTemporary) n.removed = true;
    if (n.state != State::kStopped) s.plan.push_back(Step{Step::Kind::kStop, {n.id}, false});
  }
  c.state = State::kRestarting;
  if (delay > Time(0) || yield) {
    // Wait without blocking the supervisor: other children's ends and
    // commands are handled meanwhile.
    Arm(c, TimerKind::kRetry, now_ + delay);
  } else {
    for (NodeId k : group) {
      if (!nodes_[k].removed || k == c.id) {
        s.plan.push_back(Step{Step::Kind::kStart, {k}, false});
      }
    }
  }
  Schedule(s);
}

void Supervision::Engine::StartGroup(Node& s, Node& c) {
  s.goal = Goal::kRestart;
  for (NodeId k : Group(s, c)) {
    Node& n = nodes_[k];
    if ((n.state == State::kStopped && !n.removed) || k == c.id) {
      s.plan.push_back(Step{Step::Kind::kStart, {k}, false});
    }
  }
  Schedule(s);
}

void Supervision::Engine::CheckAutoShutdown(Node& s) {
  switch (s.supervisor->auto_shutdown) {
    case spec::AutoShutdown::kNever: return;
    case spec::AutoShutdown::kAnySignificant: break;
    case spec::AutoShutdown::kAllSignificant:
      for (NodeId k : s.children) {
        const Node& n = nodes_[k];
        if (n.significant && n.state != State::kStopped) return;
      }
      break;
  }
  StopAll(s, Goal::kAutoShutdown);
}

void Supervision::Engine::DrainPending(Node& s) {
  while (s.goal == Goal::kIdle && !s.pending.empty() && !finished_) {
    Pending p = std::move(s.pending.front());
    s.pending.pop_front();
    Node& c = nodes_[p.child];
    if (c.detached) continue;
    switch (p.kind) {
      case Pending::Kind::kChildEnded:
        // Handled already if the plan restarted or stopped it since.
        if (c.incarnation == p.incarnation && c.state == State::kStopped && !c.operator_stopped) {
          HandleEnd(s, c, p.reason);
        }
        break;
      case Pending::Kind::kRetry:
        if (c.state == State::kRestarting) StartGroup(s, c);
        break;
      case Pending::Kind::kStepDone:
        if (c.state == State::kRestarting && c.step_token == 0) Restart(s, c, BackoffFor(c));
        break;
      case Pending::Kind::kStart:
      case Pending::Kind::kStop:
      case Pending::Kind::kRestart: RunCommand(s, c, p.kind); break;
    }
  }
}

void Supervision::Engine::RunCommand(Node& s, Node& c, Pending::Kind kind) {
  s.goal = Goal::kCommand;
  if (kind == Pending::Kind::kStop || kind == Pending::Kind::kRestart) {
    c.operator_stopped = kind == Pending::Kind::kStop;
    s.plan.push_back(Step{Step::Kind::kStop, {c.id}, false});
  }
  if (kind == Pending::Kind::kStart || kind == Pending::Kind::kRestart) {
    c.operator_stopped = false;
    c.removed = false;
    if (c.gave_up) {
      // An operator's start after give_up is a fresh chance: a new episode.
      c.gave_up = false;
      c.streak = 0;
      c.next_step = 0;
      c.streak_began.reset();
    }
    s.plan.push_back(Step{Step::Kind::kStart, {c.id}, false});
  }
  Schedule(s);
}

CommandResult Supervision::Engine::Command(Pending::Kind kind, const std::string& name, Time now) {
  now_ = now;
  CommandResult r;
  Node* c = Find(name);
  if (c == nullptr || c->detached) {
    r.ok = false;
    r.message = fmt::format("no child named '{}'", name);
    return r;
  }
  if (IsRoot(*c)) {
    r.ok = false;
    r.message = fmt::format("'{}' is the root supervisor; use `slate shutdown`", name);
    return r;
  }
  Node& s = Parent(*c);
  if (finished_ || IsBusyStopping(s.goal) || s.state == State::kStopped) {
    r.ok = false;
    r.message = fmt::format("supervisor '{}' is not running", s.name);
    return r;
  }
  bool stopped = c->state == State::kStopped;
  if (kind == Pending::Kind::kStart && !stopped) {
    r.ok = false;
    r.message = fmt::format("'{}' is already {}", name, internal::ToString(c->state));
    return r;
  }
  if (kind == Pending::Kind::kStop && stopped) {
    c->operator_stopped = true;
    r.message = fmt::format("'{}' is already stopped", name);
    return r;
  }
  if (s.goal != Goal::kIdle) {
    s.pending.push_back({kind, c->id, 0, {}});
    r.message = fmt::format("queued: supervisor '{}' is busy", s.name);
  } else {
    RunCommand(s, *c, kind);
    r.message = "ok";
  }
  r.actions = Take();
  return r;
}

CommandResult Supervision::Engine::Shutdown(Time now) {
  now_ = now;
  CommandResult r;
  Node& root = nodes_[root_];
  if (finished_ || root.goal == Goal::kStop) {
    r.message = "already shutting down";
    return r;
  }
  StopAll(root, Goal::kStop);
  r.message = "shutting down";
  r.actions = Take();
  return r;
}

}  // namespace slate::core
