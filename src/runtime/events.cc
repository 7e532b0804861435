// What the event loop hears: signals, timers, process exits, output,
// readiness and sd_notify datagrams.
#include <csignal>

#include <unistd.h>

#include <fmt/format.h>

#include "runtime/daemon.h"
#include "runtime/say.h"

namespace slate::runtime {

void Daemon::OnSignal() {
  for (;;) {
    auto info = signals_->Read();
    if (!info || !info->has_value()) return;
    int sig = (*info)->signo;
    switch (sig) {
      case SIGCHLD: {
        // Tracked children are reaped through their pidfds; this collects
        // what was orphaned to us (a component's grandchildren).
        auto reaped = platform::ReapOrphans(
            [this](pid_t pid) { return by_pid_.contains(pid) || hook_pids_.contains(pid); });
        (void)reaped;
        RemoveDeadCgroups();
        break;
      }
      case SIGTERM:
      case SIGINT:
      case SIGQUIT: {
        Say("{}: stopping the system", ::sigabbrev_np(sig));
        NotifyParent("STOPPING=1");
        core::CommandResult r = sup_.Shutdown(Now());
        Feed(std::move(r.actions));
        break;
      }
      case SIGHUP: Say("SIGHUP ignored (reloading the system file is not supported)"); break;
      default: break;  // SIGPIPE: a peer went away; the write already failed
    }
  }
}

void Daemon::RemoveDeadCgroups() {
  // A cgroup can be removed once the last process of its tree is gone; a
  // later exit or SIGCHLD tries again for those still busy.
  std::erase_if(dying_cgroups_, [](platform::Cgroup& cg) { return cg.Remove().ok(); });
}

void Daemon::OnTimer() {
  (void)timer_->Acknowledge();
  timer_armed_at_.reset();
  Time now = Now();
  if (watchdog_next_ && *watchdog_next_ <= now) {
    NotifyParent("WATCHDOG=1");
    watchdog_next_ = now + *watchdog_interval_;
  }
  for (TimerQueue::Id id : timers_.PopDue(now)) Feed(sup_.TimerFired(id, now));
  if (probation_next_ && *probation_next_ <= now) CheckProbations();
}

void Daemon::OnExit(core::Incarnation inc) {
  auto it = children_.find(inc);
  if (it == children_.end()) return;
  // A promoted spare's status first; the kernel's release of it (a reap
  // costs some 25 us here) waits until the next spare has been promoted.
  // Until then it stays a zombie: its pid and process group id cannot be
  // reused meanwhile. (Measured on the cold path, the same order did not
  // help: the reap only moved behind the spawn, see docs/benchmarks.md.)
  const bool peek = it->second.promoted() && !it->second.process.has_init();
  auto status =
      peek ? platform::PeekExit(it->second.process) : platform::TryReap(it->second.process);
  if (!status) {
    Say("{}: {}", it->second.name, status.error().message);
  } else if (!status->has_value()) {
    return;  // not yet
  }
  // Out of the tables before the supervisor hears of it; what is left of it
  // (its descriptors, its place in the event loop, its cgroup) is put away
  // after the restart, which does not wait for that.
  Child dead = std::move(it->second);
  children_.erase(it);
  // The leader is gone; nothing it started may outlive it (clean slate):
  // the rest of its tree is sent SIGKILL before anything replaces it.
  (void)platform::KillTree(dead.process, SIGKILL);
  core::ProcessStatus ps;
  if (status && status->has_value()) {
    const platform::ExitStatus& st = **status;
    ps.signaled = st.killed();
    ps.code = st.exited() ? st.code : 0;
    ps.signal = st.killed() ? st.code : 0;
    ps.core_dumped = st.core_dumped;
  } else {
    ps.signaled = true;
    ps.signal = SIGKILL;
  }
  // The OOM killer's SIGKILL under its memory_max: memory.oom.group makes it
  // end all of the component at once, so an OOM kill counted in its cgroup
  // is this end.
  if (dead.memory_limited && dead.cgroup && ps.signaled && ps.signal == SIGKILL) {
    auto kills = dead.cgroup->handle().MemoryEvents("oom_kill");
    ps.oom = kills && *kills > 0;
  }
  const pid_t pid = dead.process.pid();
  by_pid_.erase(pid);
  hung_.erase(pid);
  stalled_.erase(pid);
  core::Actions actions = sup_.Exited(inc, ps, Now());
  ChargeConsumer(dead.name, &actions);
  Feed(std::move(actions));
  (void)loop_->Remove(dead.process.pidfd());
  if (dead.readiness) (void)loop_->Remove(dead.readiness->read_fd());
  if (dead.cgroup) dying_cgroups_.push_back(std::move(*dead.cgroup));
  if (peek && status) {
    if (auto reaped = platform::TryReap(dead.process); !reaped) {
      Say("{}: {}", dead.name, reaped.error().message);
    }
  }
  RemoveDeadCgroups();  // after the restart: an rmdir is not on its path
  // An end of its own after which it stays down (temporary, transient and
  // normal, given up): the cgroup made for its next start goes.
  if (ready_cgroups_.contains(dead.name)) {
    auto st = sup_.StatusOf(dead.name);
    if (!st || st->state == "stopped" || st->gave_up) DropReadyCgroup(dead.name);
  }
  for (auto& [channel_name, error] : std::exchange(blame_later_, {})) Blame(channel_name, error);
}

void Daemon::OnOutput(int fd, const std::string& name) {
  // A bounded amount per wakeup: a flood from one component cannot starve
  // the others or the supervision of anything.
  char buf[16384];
  LogSink& log = LogFor(name);
  for (int round = 0; round < 4; ++round) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n > 0) {
      log.Write(std::string_view(buf, static_cast<std::size_t>(n)));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    // EOF: every writer (the component's whole tree) is gone.
    log.Flush();
    (void)loop_->Remove(fd);
    outputs_.erase(fd);
    return;
  }
}

void Daemon::OnReadiness(core::Incarnation inc) {
  auto it = children_.find(inc);
  if (it == children_.end() || !it->second.readiness) return;
  auto state = it->second.readiness->Read();
  if (state && *state == platform::ReadinessPipe::State::kPending) return;
  (void)loop_->Remove(it->second.readiness->read_fd());
  if (state && *state == platform::ReadinessPipe::State::kReady) Feed(sup_.Ready(inc, Now()));
}

void Daemon::OnNotify(const std::string& name) {
  auto sock = notify_.find(name);
  if (sock == notify_.end()) return;
  for (int i = 0; i < 64; ++i) {
    auto msg = sock->second->Receive();
    if (!msg || !msg->has_value()) return;
    const platform::NotifyMessage& m = **msg;
    // Attribute the datagram: it must come from the current process of this
    // component or one of its descendants (its process group or cgroup).
    core::Incarnation inc = sup_.IncarnationOf(name);
    auto child = children_.find(inc);
    bool ours = false;
    if (child != children_.end() && m.pid > 0) {
      pid_t leader = child->second.process.pid();
      auto in_group = [&] {
        auto pg = platform::ProcessGroupOf(m.pid);
        return pg && *pg == leader;
      };
      auto in_cgroup = [&] {
        const platform::CgroupHandle* cg = child->second.process.cgroup();
        if (cg == nullptr) return false;
        auto in = cg->Contains(m.pid);
        return in && *in;
      };
      ours = m.pid == leader || in_group() || in_cgroup();
    }
    if (!ours) {
      ++notify_rejected_;
      continue;
    }
    if (m.status) status_text_[name] = *m.status;
    for (const std::string& var : m.other) {
      // libslate found a channel's memory broken (SLATE_CORRUPT=CHANNEL).
      if (var.starts_with("SLATE_CORRUPT=")) OnCorruptReport(name, var.substr(14));
    }
    // (A process `slate chaos` stalled beats on unheard, as one whose
    // heartbeat loop is stuck while the rest of it runs.)
    if (m.watchdog && !stalled_.contains(child->second.process.pid())) sup_.Heartbeat(inc, Now());
    if (m.ready) Feed(sup_.Ready(inc, Now()));
  }
}

}  // namespace slate::runtime
