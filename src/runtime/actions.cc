// Carrying out the core's actions, in order. An action's outcome that the
// core must hear (a spawn that worked or failed) goes back in at once, and
// the actions that produces join the end of the queue.
#include <algorithm>
#include <csignal>
#include <ctime>

#include <fmt/format.h>

#include "platform/signal_process.h"
#include "platform/spawn.h"
#include "runtime/daemon.h"
#include "runtime/say.h"

namespace slate::runtime {

void Daemon::Feed(core::Actions actions) {
  pending_.insert(pending_.end(), std::make_move_iterator(actions.begin()),
                  std::make_move_iterator(actions.end()));
  if (feeding_) return;  // the outer call drains the queue
  feeding_ = true;
  while (!pending_.empty()) {
    core::Action a = std::move(pending_.front());
    pending_.pop_front();
    Do(a);
    // The lines before a start are written once it is under way: a chain
    // of starts (a system's start, a group restart) is not held back.
    if (std::holds_alternative<core::Spawn>(a)) WriteUnwritten();
  }
  feeding_ = false;
  WriteUnwritten();
}

void Daemon::Do(const core::Action& a) {
  if (auto* s = std::get_if<core::Spawn>(&a)) {
    DoSpawn(*s);
  } else if (auto* k = std::get_if<core::Kill>(&a)) {
    DoKill(*k);
  } else if (auto* t = std::get_if<core::StartTimer>(&a)) {
    timers_.Add(t->id, t->deadline);
  } else if (auto* c = std::get_if<core::CancelTimer>(&a)) {
    timers_.Cancel(c->id);
  } else if (auto* e = std::get_if<core::Emit>(&a)) {
    DoEmit(e->event);
  } else if (auto* st = std::get_if<core::ApplyStep>(&a)) {
    DoApplyStep(*st);
  } else if (auto* f = std::get_if<core::Finish>(&a)) {
    exit_code_ = f->code;
    exit_message_ = f->message;
  }
}

void Daemon::DoSpawn(const core::Spawn& s) {
  // Its devices are reset before every start (SPEC section 6); a reset that
  // fails is a start_error.
  const bool has_reset = std::any_of(s.component->devices.begin(), s.component->devices.end(),
                                     [&](const std::string& d) {
                                       const spec::Device* dev = system_->FindDevice(d);
                                       return dev != nullptr && !dev->reset.empty();
                                     });
  if (!has_reset) return SpawnNow(s);
  ResetDevices(s.name, *s.component, [this, s](bool ok, const std::string& detail) {
    if (!ok) {
      Feed(sup_.SpawnFailed(s.incarnation, detail, Now()));
      return;
    }
    SpawnNow(s);
  });
}

void Daemon::SpawnNow(const core::Spawn& s) {
  const spec::Component& c = *s.component;
  auto fail = [&](const std::string& why) { Feed(sup_.SpawnFailed(s.incarnation, why, Now())); };
  retired_spares_.erase(s.name);  // started again: its pool with it
  if (c.standby > 0 && Promote(s)) {
    ScheduleRefill(s.name, c);  // off the promotion's path
    return;
  }

  auto out = platform::MakeOutputPipe();
  if (!out) return fail(out.error().message);
  std::optional<platform::ReadinessPipe> readiness;
  platform::SpawnRequest req;
  req.argv = c.exec;
  auto image = ImagePath(c);  // the image store's copy (SPEC section 6)
  if (!image) return fail(image.error().message);
  req.argv[0] = *image;
  req.env = ComponentEnv(s.name, c);
  req.cwd = system_->base_dir;
  auto mounts = MountsFor(s.name, c);
  if (!mounts) return fail(mounts.error().message);
  req.mounts = *mounts;
  req.fds = {{out->write.get(), 1}, {out->write.get(), 2}};
  if (auto r = Privileges(s.name, c, &req); !r) return fail(r.error().message);
  if (c.ready.kind == spec::Readiness::Kind::kFd) {
    auto rp = platform::ReadinessPipe::Create();
    if (!rp) return fail(rp.error().message);
    readiness.emplace(std::move(rp).value());
    req.fds.push_back({readiness->write_fd(), c.ready.fd});
  }
  std::vector<platform::UniqueFd> channel_fds;  // ours; the child gets copies
  auto channels = GrantChannels(
      s.name, c.ready.kind == spec::Readiness::Kind::kFd ? c.ready.fd : -1, &req, &channel_fds);
  if (!channels) return fail(channels.error().message);
  if (!channels->empty()) req.env.push_back("SLATE_CHANNELS=" + *channels);
  auto made = CgroupForStart(s.name, s.incarnation, c);
  if (!made) return fail(made.error().message);
  std::optional<platform::Cgroup> cgroup = std::move(made->cgroup);
  if (cgroup) req.cgroup = &cgroup->handle();

  auto process = platform::Spawn(req);
  channel_fds.clear();
  out->write.Reset();
  if (readiness) readiness->CloseWriteEnd();
  if (!process) {
    if (cgroup) dying_cgroups_.push_back(std::move(*cgroup));
    // The next start asks the image store again: an installed copy that
    // was removed is made anew (a damaged one is reinstall_image's).
    image_paths_.erase(c.name);
    return fail(process.error().message);
  }
  // From its second start on, the cgroup of the next is made ahead.
  if (!started_before_.insert(s.name).second && cgroups_) ScheduleRefill(s.name, c);

  pid_t pid = process->pid();
  core::Incarnation inc = s.incarnation;
  int pidfd = process->pidfd();
  (void)loop_->Add(pidfd, EPOLLIN, [this, inc](std::uint32_t) { OnExit(inc); });
  int out_fd = out->read.get();
  std::string name = s.name;
  LogFor(name);
  outputs_.emplace(out_fd, std::move(out->read));
  (void)loop_->Add(out_fd, EPOLLIN,
                   [this, out_fd, name](std::uint32_t) { OnOutput(out_fd, name); });
  if (readiness) {
    (void)loop_->Add(readiness->read_fd(), EPOLLIN,
                     [this, inc](std::uint32_t) { OnReadiness(inc); });
  }
  by_pid_[pid] = inc;
  children_.emplace(inc, Child{inc, name, std::move(process).value(), std::move(readiness),
                               std::move(cgroup), made->memory_limited, platform::UniqueFd()});
  Feed(sup_.Spawned(inc, pid, Now()));
  if (c.standby > 0) FillSpares(name, c);
}

void Daemon::DoKill(const core::Kill& k) {
  auto it = children_.find(k.incarnation);
  if (it == children_.end() || it->second.process.reaped()) return;
  if (auto r = platform::KillTree(it->second.process, k.signal); !r) {
    Say("{}: kill: {}", it->second.name, r.error().message);
  }
  // A stopped process (SIGSTOP, a debugger, `slate chaos` hang) would keep
  // the signal pending and never end: let it run to take it.
  if (k.signal != SIGKILL) (void)platform::KillTree(it->second.process, SIGCONT);
}

void Daemon::DoEmit(const core::Event& e) {
  const Time mono = Now();
  timespec wall{};
  ::clock_gettime(CLOCK_REALTIME, &wall);
  if (feeding_) {
    // Perhaps on a restart's path: written when the feeding ends.
    unwritten_.push_back({e, mono, wall});
  } else {
    WriteUnwritten();
    WriteJournal(e, mono, wall);
  }
  // After the line that caused them: a probation failure may revert the
  // image (image_reverted follows child_exited), a ready starts the clock.
  if (e.event == "child_ready" || e.event == "child_exited") {
    if (const spec::Component* c = system_->FindComponent(e.node)) {
      if (e.event == "child_ready") {
        OnImageReady(e.node, *c);
      } else {
        OnImageFailure(e.node, *c);
      }
    }
  }
  if ((e.event == "child_exited" || e.event == "child_terminated") &&
      down_when_ended_.erase(e.node) > 0) {
    WriteUnwritten();  // before its peers hear of it
    SetComponentDown(e.node, true);
  }
  if (e.event == "child_gave_up") {
    WriteUnwritten();
    SetComponentDown(e.node, true);  // its peers hear it at once
    RetireSpares(e.node);
  }
  if (e.event == "system_started") {
    WriteUnwritten();  // before the parent (systemd) hears of it
    NotifyParent("READY=1\nSTATUS=all children ready");
    if (watchdog_interval_) watchdog_next_ = Now() + *watchdog_interval_;
  }
}

void Daemon::WriteJournal(const core::Event& e, Time mono, const timespec& wall) {
  auto line = journal_->Append(e, mono, wall);
  if (!line) Say("{}", line.error().message);
  if (options_.echo_output) {
    std::string what = e.event;
    if (!e.node.empty()) what += " " + e.node;
    if (e.reason) what += fmt::format(" ({})", core::Describe(*e.reason));
    if (e.delay_ms && *e.delay_ms > 0) what += fmt::format(" in {}ms", *e.delay_ms);
    Say("{}", what);
  }
}

void Daemon::WriteUnwritten() {
  for (const Unwritten& u : std::exchange(unwritten_, {})) WriteJournal(u.event, u.mono, u.wall);
}

void Daemon::ArmTimer() {
  std::optional<Time> next = timers_.Next();
  if (probation_next_ && (!next || *probation_next_ < *next)) next = probation_next_;
  if (watchdog_next_ && (!next || *watchdog_next_ < *next)) next = watchdog_next_;
  if (next == timer_armed_at_) return;
  if (next) {
    (void)timer_->ArmAt(*next);
  } else {
    (void)timer_->Disarm();
  }
  timer_armed_at_ = next;
}

}  // namespace slate::runtime
