// Internal to src/core: the engine behind Supervision. See supervision.h.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/node.h"
#include "core/supervision.h"

namespace slate::core {

class Supervision::Engine {
 public:
  Engine(std::shared_ptr<const spec::System> system, std::uint64_t seed);

  // Each public entry sets the time, runs, drains the advance queue, and
  // hands back the actions produced.
  Actions Start(Time now);
  Actions Spawned(Incarnation inc, int pid, Time now);
  Actions SpawnFailed(Incarnation inc, const std::string& error, Time now);
  Actions Ready(Incarnation inc, Time now);
  void Heartbeat(Incarnation inc, Time now);
  Actions Exited(Incarnation inc, const ProcessStatus& status, Time now);
  Actions Fault(Incarnation inc, ExitReason reason, Time now);
  Actions StepDone(std::uint64_t token, Time now);
  Actions TimerFired(TimerId id, Time now);
  CommandResult Command(internal::Pending::Kind kind, const std::string& name, Time now);
  CommandResult Shutdown(Time now);

  Incarnation IncarnationOf(const std::string& name) const;
  std::vector<NodeStatus> Status() const;
  std::optional<NodeStatus> StatusOf(const std::string& name) const;
  bool finished() const { return finished_; }

 private:
  using Node = internal::Node;
  using NodeId = internal::NodeId;
  using State = internal::State;
  using Goal = internal::Goal;
  using Step = internal::Step;
  using Pending = internal::Pending;
  using TimerKind = internal::TimerKind;

  // --- building the tree (tree.cc)
  NodeId AddNode(const std::string& name, NodeId parent, const spec::Component* c,
                 const spec::Supervisor* s);
  void AddStaticChildren(NodeId sup);
  void Refresh(Node& s);  // a (re)started supervisor's fresh state
  Node* Find(const std::string& name);
  const Node* Find(const std::string& name) const;
  NodeStatus StatusOf(const Node& n) const;
  Node& Parent(const Node& n) { return nodes_[n.parent]; }
  bool IsRoot(const Node& n) const { return n.parent == internal::kNoNode; }

  // --- output (engine.cc)
  Actions Take();
  void Emit(const std::string& type, const Node& n);
  void Emit(internal::Node const& n, Event e);
  void Arm(Node& n, TimerKind kind, Time deadline);
  void Disarm(Node& n, TimerKind kind);
  void DisarmAll(Node& n);
  void Schedule(Node& s) { to_advance_.push_back(s.id); }
  void RunQueue();
  void Finish(int code, std::string message);

  // --- components (process.cc)
  void BeginStart(Node& c);
  void BeginStop(Node& n);
  void BecomeRunning(Node& c);
  void ProcessEnded(Node& c, const ExitReason& reason);

  // --- supervisors (plan.cc)
  void StartSupervisor(Node& s);
  void Advance(Node& s);
  void PlanDone(Node& s);
  void StopAll(Node& s, Goal goal);
  void ChildStartFailed(Node& s, Node& c, const ExitReason& reason);
  void ChildEnded(Node& s, Node& c, const ExitReason& reason);
  void HandleEnd(Node& s, Node& c, const ExitReason& reason);
  // A failure that will restart `c`: the ladder first, then Restart.
  void Fail(Node& s, Node& c, bool yield);
  // True if a step was taken instead of restarting now.
  bool Climb(Node& s, Node& c);
  void GiveUp(Node& s, Node& c, int streak);
  // Counts the restart against intensity (or gives up), then stops the
  // restart group; starts it now, or after `delay` when positive or `yield`.
  void Restart(Node& s, Node& c, Time delay, bool yield = false);
  void StartGroup(Node& s, Node& c);
  std::vector<NodeId> Group(const Node& s, const Node& c) const;
  void CheckAutoShutdown(Node& s);
  void DrainPending(Node& s);
  void RunCommand(Node& s, Node& c, Pending::Kind kind);
  Time BackoffFor(const Node& c);

  std::shared_ptr<const spec::System> system_;
  std::deque<Node> nodes_;  // a deque: adding instances keeps references valid
  std::map<std::string, NodeId> by_name_;
  std::map<Incarnation, NodeId> by_incarnation_;
  std::map<TimerId, std::pair<NodeId, TimerKind>> timers_;
  NodeId root_ = 0;
  Incarnation next_incarnation_ = 1;
  TimerId next_timer_ = 1;
  std::mt19937_64 rng_;
  Time now_{};
  Actions out_;
  std::vector<NodeId> to_advance_;
  bool finished_ = false;
  std::uint64_t next_step_token_ = 1;
  // A critical component was given up: the shutdown under way ends with exit 3.
  std::optional<std::string> critical_give_up_;
};

}  // namespace slate::core
