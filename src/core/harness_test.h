// A fake runtime for driving Supervision in tests: it carries out actions
// instantly (spawns succeed, signals kill unless told otherwise), keeps the
// timers, and records the journal as short strings like
// "child_exited b exit" for table-like assertions.
#pragma once

#include <csignal>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "core/supervision.h"
#include "spec/parser.h"

namespace slate::core::testing {

using std::chrono::milliseconds;
using std::chrono::seconds;

class Harness {
 public:
  explicit Harness(std::string_view toml) {
    auto r = spec::ParseText(toml, "/tmp/harness/system.toml");
    EXPECT_TRUE(r.ok()) << r.Report();
    system_ = r.system;
    sup_ = std::make_unique<Supervision>(system_, 42);
  }

  // --- what the fake processes do
  std::set<std::string> manual_ready;    // these wait for Ready()
  std::set<std::string> spawn_fails;     // exec fails
  std::set<std::string> ignore_sigterm;  // only SIGKILL ends them

  void Start() { Run(sup_->Start(now)); }

  void Crash(const std::string& name, int code = 1) {
    Incarnation inc = Inc(name);
    ASSERT_NE(inc, 0u) << name << " is not running";
    ProcessStatus st;
    st.code = code;
    Exit(inc, st);
  }
  void Signal(const std::string& name, int sig) {
    Incarnation inc = Inc(name);
    ASSERT_NE(inc, 0u) << name << " is not running";
    ProcessStatus st;
    st.signaled = true;
    st.signal = sig;
    Exit(inc, st);
  }
  void MakeReady(const std::string& name) { Run(sup_->Ready(Inc(name), now)); }
  void Beat(const std::string& name) { sup_->Heartbeat(Inc(name), now); }

  // Moves the clock, firing due timers in deadline order.
  void Advance(Time d) {
    Time until = now + d;
    for (;;) {
      auto it = std::min_element(timers.begin(), timers.end(),
                                 [](auto& a, auto& b) { return a.second < b.second; });
      if (it == timers.end() || it->second > until) break;
      now = std::max(now, it->second);
      TimerId id = it->first;
      timers.erase(it);
      Run(sup_->TimerFired(id, now));
    }
    now = until;
  }

  // One turn of the event loop: fires the timers due now, not those they
  // arm for now in turn.
  void Turn() {
    std::vector<TimerId> due;
    for (auto& [id, t] : timers) {
      if (t <= now) due.push_back(id);
    }
    for (TimerId id : due) {
      if (timers.erase(id) != 0) Run(sup_->TimerFired(id, now));
    }
  }

  // The newest journal event of a kind.
  const Event& Last(const std::string& kind) const {
    for (auto it = events.rbegin(); it != events.rend(); ++it) {
      if (it->event == kind) return *it;
    }
    static const Event kNone;
    ADD_FAILURE() << "no " << kind << " event";
    return kNone;
  }

  CommandResult Stop(const std::string& n) { return Cmd(sup_->StopChild(n, now)); }
  CommandResult StartChild(const std::string& n) { return Cmd(sup_->StartChild(n, now)); }
  CommandResult Restart(const std::string& n) { return Cmd(sup_->RestartChild(n, now)); }
  CommandResult Shutdown() { return Cmd(sup_->Shutdown(now)); }

  std::string State(const std::string& name) const {
    for (const auto& st : sup_->Status()) {
      if (st.name == name) return st.state;
    }
    return "absent";
  }
  NodeStatus StatusOf(const std::string& name) const {
    for (const auto& st : sup_->Status()) {
      if (st.name == name) return st;
    }
    return {};
  }

  // Events since the last call, as "event node [reason]".
  std::vector<std::string> Journal() {
    std::vector<std::string> out;
    out.swap(journal_);
    return out;
  }
  // Only events of the given kinds.
  std::vector<std::string> Journal(std::set<std::string> kinds) {
    std::vector<std::string> out;
    for (auto& line : Journal()) {
      if (kinds.contains(line.substr(0, line.find(' ')))) out.push_back(line);
    }
    return out;
  }

  std::vector<Event> events;        // everything, with fields
  std::vector<std::string> spawns;  // names, in order
  std::vector<std::pair<std::string, int>> kills;
  std::map<TimerId, Time> timers;
  std::optional<int> finish_code;
  std::string finish_message;
  Time now{seconds(1000)};
  Supervision& sup() { return *sup_; }

 private:
  Incarnation Inc(const std::string& name) { return sup_->IncarnationOf(name); }

  CommandResult Cmd(CommandResult r) {
    Run(std::move(r.actions));
    return r;
  }

  void Exit(Incarnation inc, ProcessStatus st) {
    live_.erase(inc);
    Run(sup_->Exited(inc, st, now));
  }

  void Run(Actions actions) {
    std::deque<Action> queue(actions.begin(), actions.end());
    while (!queue.empty()) {
      Action a = std::move(queue.front());
      queue.pop_front();
      Actions more = Carry(a);
      queue.insert(queue.end(), more.begin(), more.end());
    }
  }

  Actions Carry(const Action& a) {
    if (auto* s = std::get_if<Spawn>(&a)) {
      spawns.push_back(s->name);
      if (spawn_fails.contains(s->name))
        return sup_->SpawnFailed(s->incarnation, "no such file", now);
      live_[s->incarnation] = s->name;
      Actions out = sup_->Spawned(s->incarnation, next_pid_++, now);
      bool manual = manual_ready.contains(s->name) ||
                    s->component->ready.kind == spec::Readiness::Kind::kSpawn;
      if (!manual) {
        Actions r = sup_->Ready(s->incarnation, now);
        out.insert(out.end(), r.begin(), r.end());
      }
      return out;
    }
    if (auto* k = std::get_if<Kill>(&a)) {
      auto it = live_.find(k->incarnation);
      if (it == live_.end()) return {};
      kills.emplace_back(it->second, k->signal);
      if (k->signal == SIGTERM && ignore_sigterm.contains(it->second)) return {};
      live_.erase(it);
      ProcessStatus st;
      st.signaled = true;
      st.signal = k->signal;
      return sup_->Exited(k->incarnation, st, now);
    }
    if (auto* t = std::get_if<StartTimer>(&a)) timers[t->id] = t->deadline;
    if (auto* c = std::get_if<CancelTimer>(&a)) timers.erase(c->id);
    if (auto* e = std::get_if<Emit>(&a)) {
      events.push_back(e->event);
      std::string line = e->event.event;
      if (!e->event.node.empty()) line += " " + e->event.node;
      if (e->event.reason) line += fmt::format(" {}", ToString(e->event.reason->kind));
      journal_.push_back(line);
    }
    if (auto* f = std::get_if<Finish>(&a)) {
      finish_code = f->code;
      finish_message = f->message;
    }
    if (auto* st = std::get_if<ApplyStep>(&a)) {
      steps.emplace_back(st->name, std::string(spec::ToString(st->step)));
      step_began.push_back(st->streak_began);
      if (hold_steps) {
        held_steps.push_back(st->token);
        return {};
      }
      return sup_->StepDone(st->token, now);
    }
    return {};
  }

 public:
  // Steps the runtime would carry out, and when their episode began. With
  // hold_steps, they wait for Finish Step().
  std::vector<std::pair<std::string, std::string>> steps;
  std::vector<Time> step_began;
  bool hold_steps = false;
  std::vector<std::uint64_t> held_steps;
  void FinishStep() {
    std::uint64_t t = held_steps.front();
    held_steps.erase(held_steps.begin());
    Run(sup_->StepDone(t, now));
  }

 private:
  std::shared_ptr<const spec::System> system_;
  std::unique_ptr<Supervision> sup_;
  std::map<Incarnation, std::string> live_;
  std::vector<std::string> journal_;
  int next_pid_ = 100;
};

}  // namespace slate::core::testing
