// Supervision's public entries, and the plumbing shared by the engine:
// actions, timers, the advance queue.
#include "core/engine.h"

#include <algorithm>
#include <csignal>

#include <fmt/format.h>

namespace slate::core {

std::string_view ToString(ExitReason::Kind k) {
  switch (k) {
    case ExitReason::Kind::kNormal: return "normal";
    case ExitReason::Kind::kShutdown: return "shutdown";
    case ExitReason::Kind::kExit: return "exit";
    case ExitReason::Kind::kSignal: return "signal";
    case ExitReason::Kind::kHang: return "hang";
    case ExitReason::Kind::kStartTimeout: return "start_timeout";
    case ExitReason::Kind::kStartError: return "start_error";
    case ExitReason::Kind::kOom: return "oom";
  }
  return "?";
}

std::string Describe(const ExitReason& r) {
  switch (r.kind) {
    case ExitReason::Kind::kExit: return fmt::format("exit code {}", r.code);
    case ExitReason::Kind::kSignal:
      return fmt::format("signal {}{}", r.signal, r.core_dumped ? " (core dumped)" : "");
    case ExitReason::Kind::kStartError: return fmt::format("start_error: {}", r.detail);
    default: break;
  }
  std::string s(ToString(r.kind));
  if (!r.detail.empty()) s += ": " + r.detail;
  return s;
}

ExitReason Classify(const spec::Component& c, const ProcessStatus& s) {
  ExitReason r;
  if (s.oom) {
    r.kind = ExitReason::Kind::kOom;
    r.signal = s.signal;
  } else if (s.signaled) {
    r.kind = ExitReason::Kind::kSignal;
    r.signal = s.signal;
    r.core_dumped = s.core_dumped;
  } else if (s.code == 0 || std::find(c.normal_exit_codes.begin(), c.normal_exit_codes.end(),
                                      s.code) != c.normal_exit_codes.end()) {
    r.kind = ExitReason::Kind::kNormal;
    r.code = s.code;
  } else {
    r.kind = ExitReason::Kind::kExit;
    r.code = s.code;
  }
  return r;
}

Supervision::Engine::Engine(std::shared_ptr<const spec::System> system, std::uint64_t seed)
    : system_(std::move(system)), rng_(seed) {
  const spec::Supervisor* root = system_->FindSupervisor(system_->root);
  root_ = AddNode(root->name, internal::kNoNode, nullptr, root);
  AddStaticChildren(root_);
}

Actions Supervision::Engine::Take() {
  RunQueue();
  Actions a = std::move(out_);
  out_.clear();
  return a;
}

void Supervision::Engine::RunQueue() {
  // Advancing a supervisor may schedule others (its parent, a child that
  // started); run until the tree is quiet.
  while (!to_advance_.empty() && !finished_) {
    NodeId id = to_advance_.front();
    to_advance_.erase(to_advance_.begin());
    Advance(nodes_[id]);
  }
}

void Supervision::Engine::Emit(const Node& n, Event e) {
  e.node = n.name;
  if (!IsRoot(n)) e.supervisor = nodes_[n.parent].name;
  out_.emplace_back(core::Emit{std::move(e)});
}

void Supervision::Engine::Emit(const std::string& type, const Node& n) {
  Event e;
  e.event = type;
  if (n.pid != 0) e.pid = n.pid;
  Emit(n, std::move(e));
}

void Supervision::Engine::Arm(Node& n, TimerKind kind, Time deadline) {
  Disarm(n, kind);
  TimerId id = next_timer_++;
  n.timer(kind) = id;
  timers_[id] = {n.id, kind};
  out_.emplace_back(StartTimer{id, deadline});
}

void Supervision::Engine::Disarm(Node& n, TimerKind kind) {
  TimerId& id = n.timer(kind);
  if (id == 0) return;
  timers_.erase(id);
  out_.emplace_back(CancelTimer{id});
  id = 0;
}

void Supervision::Engine::DisarmAll(Node& n) {
  for (std::size_t k = 0; k < n.timers.size(); ++k) Disarm(n, static_cast<TimerKind>(k));
}

void Supervision::Engine::Finish(int code, std::string message) {
  if (finished_) return;
  finished_ = true;
  Event e;
  e.event = "system_stopped";
  out_.emplace_back(core::Emit{std::move(e)});
  out_.emplace_back(core::Finish{code, std::move(message)});
}

Actions Supervision::Engine::Start(Time now) {
  now_ = now;
  StartSupervisor(nodes_[root_]);
  return Take();
}

Actions Supervision::Engine::Spawned(Incarnation inc, int pid, Time now) {
  now_ = now;
  auto it = by_incarnation_.find(inc);
  if (it == by_incarnation_.end() || finished_) return Take();
  Node& c = nodes_[it->second];
  c.pid = pid;
  Emit("child_started", c);
  if (c.state == State::kStarting) {
    if (c.component->ready.kind == spec::Readiness::Kind::kSpawn) {
      BecomeRunning(c);
    } else if (c.component->ready_timeout) {
      Arm(c, TimerKind::kReady, now_ + *c.component->ready_timeout);
    }
  }
  return Take();
}

Actions Supervision::Engine::SpawnFailed(Incarnation inc, const std::string& error, Time now) {
  now_ = now;
  auto it = by_incarnation_.find(inc);
  if (it == by_incarnation_.end() || finished_) return Take();
  Node& c = nodes_[it->second];
  ExitReason r;
  r.kind = ExitReason::Kind::kStartError;
  r.detail = error;
  ProcessEnded(c, r);
  return Take();
}

Actions Supervision::Engine::Ready(Incarnation inc, Time now) {
  now_ = now;
  auto it = by_incarnation_.find(inc);
  if (it != by_incarnation_.end() && !finished_) {
    Node& c = nodes_[it->second];
    if (c.state == State::kStarting && c.pid != 0) BecomeRunning(c);
  }
  return Take();
}

void Supervision::Engine::Heartbeat(Incarnation inc, Time now) {
  auto it = by_incarnation_.find(inc);
  if (it != by_incarnation_.end()) nodes_[it->second].last_heartbeat = now;
}

Actions Supervision::Engine::Exited(Incarnation inc, const ProcessStatus& status, Time now) {
  now_ = now;
  auto it = by_incarnation_.find(inc);
  if (it == by_incarnation_.end() || finished_) return Take();
  Node& c = nodes_[it->second];
  ProcessEnded(c, c.kill_reason ? *c.kill_reason : Classify(*c.component, status));
  return Take();
}

Actions Supervision::Engine::Fault(Incarnation inc, ExitReason reason, Time now) {
  now_ = now;
  auto it = by_incarnation_.find(inc);
  if (it == by_incarnation_.end() || finished_) return Take();
  Node& c = nodes_[it->second];
  if ((c.state == State::kStarting || c.state == State::kRunning) && c.process_alive &&
      !c.kill_reason) {
    c.kill_reason = std::move(reason);
    out_.emplace_back(Kill{c.incarnation, SIGKILL});
  }
  return Take();
}

Actions Supervision::StepDone(std::uint64_t token, Time now) {
  return engine_->StepDone(token, now);
}

Actions Supervision::Engine::TimerFired(TimerId id, Time now) {
  now_ = now;
  auto it = timers_.find(id);
  if (it == timers_.end() || finished_) return Take();
  auto [node_id, kind] = it->second;
  timers_.erase(it);
  Node& n = nodes_[node_id];
  n.timer(kind) = 0;
  switch (kind) {
    case TimerKind::kReady:
      if (n.state == State::kStarting) {
        n.kill_reason = ExitReason{
            ExitReason::Kind::kStartTimeout, 0, 0, false,
            fmt::format(
                "not ready within {}ms",
                std::chrono::duration_cast<std::chrono::milliseconds>(*n.component->ready_timeout)
                    .count())};
        out_.emplace_back(Kill{n.incarnation, SIGKILL});
      }
      break;
    case TimerKind::kHeartbeat:
      if (n.state == State::kRunning) {
        Time deadline = n.last_heartbeat + *n.component->heartbeat;
        if (now_ < deadline) {
          Arm(n, TimerKind::kHeartbeat, deadline);
        } else {
          n.kill_reason = ExitReason{
              ExitReason::Kind::kHang, 0, 0, false,
              fmt::format(
                  "no heartbeat for {}ms",
                  std::chrono::duration_cast<std::chrono::milliseconds>(now_ - n.last_heartbeat)
                      .count())};
          out_.emplace_back(Kill{n.incarnation, SIGKILL});
        }
      }
      break;
    case TimerKind::kShutdown:
      if (n.state == State::kStopping && n.process_alive) {
        out_.emplace_back(Kill{n.incarnation, SIGKILL});
      }
      break;
    case TimerKind::kSupervisorKill: {
      // The supervisor's shutdown time is up: kill what is left below it.
      std::vector<NodeId> todo{n.id};
      while (!todo.empty()) {
        Node& d = nodes_[todo.back()];
        todo.pop_back();
        for (NodeId k : d.children) todo.push_back(k);
        if (!d.is_supervisor() && d.process_alive) {
          out_.emplace_back(Kill{d.incarnation, SIGKILL});
        }
      }
      break;
    }
    case TimerKind::kHealthy:
      // Healthy long enough: the episode is over, the ladder rewinds.
      n.streak = 0;
      n.next_step = 0;
      n.streak_began.reset();
      break;
    case TimerKind::kRetry:
      if (n.state == State::kRestarting) {
        Node& s = Parent(n);
        if (s.goal == Goal::kIdle) {
          StartGroup(s, n);
        } else {
          s.pending.push_back({Pending::Kind::kRetry, n.id, 0, {}});
        }
      }
      break;
  }
  return Take();
}

Incarnation Supervision::Engine::IncarnationOf(const std::string& name) const {
  const Node* n = Find(name);
  if (n == nullptr || n->is_supervisor() || !n->process_alive) return 0;
  return n->incarnation;
}

// --- Supervision forwards to its engine.

Supervision::Supervision(std::shared_ptr<const spec::System> system, std::uint64_t seed)
    : engine_(std::make_unique<Engine>(std::move(system), seed)) {}
Supervision::~Supervision() = default;
Actions Supervision::Start(Time now) {
  return engine_->Start(now);
}
Actions Supervision::Spawned(Incarnation inc, int pid, Time now) {
  return engine_->Spawned(inc, pid, now);
}
Actions Supervision::SpawnFailed(Incarnation inc, const std::string& error, Time now) {
  return engine_->SpawnFailed(inc, error, now);
}
Actions Supervision::Ready(Incarnation inc, Time now) {
  return engine_->Ready(inc, now);
}
Actions Supervision::Fault(Incarnation inc, ExitReason reason, Time now) {
  return engine_->Fault(inc, std::move(reason), now);
}

void Supervision::Heartbeat(Incarnation inc, Time now) {
  engine_->Heartbeat(inc, now);
}
Actions Supervision::Exited(Incarnation inc, const ProcessStatus& status, Time now) {
  return engine_->Exited(inc, status, now);
}
Actions Supervision::TimerFired(TimerId id, Time now) {
  return engine_->TimerFired(id, now);
}
CommandResult Supervision::StartChild(const std::string& name, Time now) {
  return engine_->Command(internal::Pending::Kind::kStart, name, now);
}
CommandResult Supervision::StopChild(const std::string& name, Time now) {
  return engine_->Command(internal::Pending::Kind::kStop, name, now);
}
CommandResult Supervision::RestartChild(const std::string& name, Time now) {
  return engine_->Command(internal::Pending::Kind::kRestart, name, now);
}
CommandResult Supervision::Shutdown(Time now) {
  return engine_->Shutdown(now);
}
Incarnation Supervision::IncarnationOf(const std::string& name) const {
  return engine_->IncarnationOf(name);
}
std::optional<NodeStatus> Supervision::StatusOf(const std::string& name) const {
  return engine_->StatusOf(name);
}

std::vector<NodeStatus> Supervision::Status() const {
  return engine_->Status();
}
bool Supervision::Finished() const {
  return engine_->finished();
}

}  // namespace slate::core
