// The shape of the tree: nodes from the system file, simple_one_for_one
// instances, lookups and status.
#include <cstdlib>

#include <fmt/format.h>

#include "core/engine.h"

namespace slate::core {

std::string_view internal::ToString(State s) {
  switch (s) {
    case State::kStopped: return "stopped";
    case State::kStarting: return "starting";
    case State::kRunning: return "running";
    case State::kStopping: return "stopping";
    case State::kRestarting: return "restarting";
  }
  return "?";
}

internal::NodeId Supervision::Engine::AddNode(const std::string& name, NodeId parent,
                                              const spec::Component* c, const spec::Supervisor* s) {
  Node n;
  n.id = nodes_.size();
  n.name = name;
  n.parent = parent;
  n.component = c;
  n.supervisor = s;
  if (c == nullptr && s == nullptr) std::abort();  // a broken invariant of ours
  if (c != nullptr) {
    n.restart = c->restart;
    n.shutdown = c->shutdown;
    n.significant = c->significant;
  } else {
    n.restart = s->restart;
    n.shutdown = s->shutdown;
    n.significant = s->significant;
    n.intensity.emplace(s->intensity, s->period);
  }
  nodes_.push_back(std::move(n));
  by_name_[name] = nodes_.back().id;
  if (parent != internal::kNoNode) nodes_[parent].children.push_back(nodes_.back().id);
  return nodes_.back().id;
}

void Supervision::Engine::AddStaticChildren(NodeId sup) {
  const spec::Supervisor* s = nodes_[sup].supervisor;
  if (s->strategy == spec::Strategy::kSimpleOneForOne) return;  // instances come at start
  for (const std::string& child : s->children) {
    if (const spec::Supervisor* cs = system_->FindSupervisor(child)) {
      AddStaticChildren(AddNode(child, sup, nullptr, cs));
    } else {
      AddNode(child, sup, system_->FindComponent(child), nullptr);
    }
  }
}

void Supervision::Engine::Refresh(Node& s) {
  s.intensity->Clear();
  s.pending.clear();
  s.plan.clear();
  s.failure.reset();
  if (s.supervisor->strategy == spec::Strategy::kSimpleOneForOne) {
    // Instances of an earlier life are gone for good; new ones take their
    // names.
    for (NodeId k : s.children) nodes_[k].detached = true;
    s.children.clear();
    const spec::Component* t = system_->FindComponent(s.supervisor->template_name);
    NodeId sid = s.id;
    for (int i = 1; i <= nodes_[sid].supervisor->instances; ++i) {
      AddNode(fmt::format("{}@{}", t->name, i), sid, t, nullptr);
    }
    return;
  }
  for (NodeId k : s.children) {
    Node& c = nodes_[k];
    c.restarts = 0;
    c.streak = 0;
    c.removed = false;
    c.operator_stopped = false;
    c.next_step = 0;
    c.streak_began.reset();
    c.step_token = 0;
    c.gave_up = false;
  }
}

internal::Node* Supervision::Engine::Find(const std::string& name) {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &nodes_[it->second];
}

const internal::Node* Supervision::Engine::Find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &nodes_[it->second];
}

NodeStatus Supervision::Engine::StatusOf(const Node& n) const {
  NodeStatus st;
  st.name = n.name;
  st.supervisor = IsRoot(n) ? "" : nodes_[n.parent].name;
  st.is_supervisor = n.is_supervisor();
  st.state = std::string(internal::ToString(n.state));
  st.pid = n.process_alive ? n.pid : 0;
  st.since = n.running_since;
  st.restarts = n.restarts;
  st.streak = n.streak;
  st.gave_up = n.gave_up;
  st.in_episode = n.streak > 0 || n.next_step > 0;
  if (n.gave_up) st.state = "failed";
  if (n.component != nullptr && n.component->on_persistent_failure &&
      n.next_step < n.component->on_persistent_failure->steps.size()) {
    st.next_step =
        std::string(spec::ToString(n.component->on_persistent_failure->steps[n.next_step]));
  }
  for (NodeId k : n.children) st.children.push_back(nodes_[k].name);
  return st;
}

std::optional<NodeStatus> Supervision::Engine::StatusOf(const std::string& name) const {
  const Node* n = Find(name);
  if (n == nullptr || n->detached) return std::nullopt;
  return StatusOf(*n);
}

std::vector<NodeStatus> Supervision::Engine::Status() const {
  std::vector<NodeStatus> out;
  std::vector<NodeId> todo{root_};
  while (!todo.empty()) {
    const Node& n = nodes_[todo.back()];
    todo.pop_back();
    out.push_back(StatusOf(n));
    for (auto it = n.children.rbegin(); it != n.children.rend(); ++it) todo.push_back(*it);
  }
  return out;
}

}  // namespace slate::core
