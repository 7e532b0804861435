// Hooks: short commands the runtime runs for a component — a device's reset,
// the component's sanitize command — each with a deadline, off the event
// loop's critical path: the loop hears the exit through the hook's pidfd and
// the deadline through its own timerfd. Output goes to the owner's log.
#include <csignal>

#include <fmt/format.h>

#include "platform/signal_process.h"
#include "platform/spawn.h"
#include "runtime/daemon.h"
#include "runtime/say.h"

namespace slate::runtime {

void Daemon::RunHook(const std::string& owner, const spec::Component& c, std::string what,
                     const std::vector<std::string>& argv, Time timeout, bool as_component,
                     HookEnded done) {
  auto out = platform::MakeOutputPipe();
  if (!out) return done({false, out.error().message, {}, {}});
  platform::SpawnRequest req;
  req.argv = argv;
  req.env = ComponentEnv(owner, c);
  req.cwd = system_->base_dir;
  auto mounts = MountsFor(owner, c);
  if (!mounts) return done({false, mounts.error().message, {}, {}});
  req.mounts = *mounts;
  req.fds = {{out->write.get(), 1}, {out->write.get(), 2}};
  req.die_with_us = true;
  if (as_component) {
    if (auto r = Privileges(owner, c, &req); !r) return done({false, r.error().message, {}, {}});
  }
  auto process = platform::Spawn(req);
  out->write.Reset();
  if (!process) return done({false, process.error().message, {}, {}});
  auto timer = platform::TimerFd::Create();
  if (!timer || !timer->ArmAt(Now() + timeout)) {
    (void)platform::KillTree(*process, SIGKILL);
    return done({false, "no timer for the hook's deadline", {}, {}});
  }
  const int pidfd = process->pidfd();
  const int timer_fd = timer->fd();
  const int out_fd = out->read.get();
  LogFor(owner);
  outputs_.emplace(out_fd, std::move(out->read));
  (void)loop_->Add(out_fd, EPOLLIN,
                   [this, out_fd, owner](std::uint32_t) { OnOutput(out_fd, owner); });
  (void)loop_->Add(pidfd, EPOLLIN, [this, pidfd](std::uint32_t) { OnHookExit(pidfd); });
  (void)loop_->Add(timer_fd, EPOLLIN, [this, pidfd](std::uint32_t) { OnHookDeadline(pidfd); });
  hook_pids_.insert(process->pid());
  hooks_.emplace(pidfd, Hook{std::move(what), std::move(process).value(), std::move(timer).value(),
                             std::move(done), false, timeout});
}

void Daemon::OnHookDeadline(int pidfd) {
  auto it = hooks_.find(pidfd);
  if (it == hooks_.end()) return;
  (void)loop_->Remove(it->second.timer.fd());
  it->second.timed_out = true;
  // The exit that follows reports it.
  (void)platform::KillTree(it->second.process, SIGKILL);
}

void Daemon::OnHookExit(int pidfd) {
  auto it = hooks_.find(pidfd);
  if (it == hooks_.end()) return;
  auto status = platform::TryReap(it->second.process);
  if (status && !status->has_value()) return;  // not yet
  (void)loop_->Remove(pidfd);
  (void)loop_->Remove(it->second.timer.fd());
  (void)platform::KillTree(it->second.process, SIGKILL);  // nothing it started outlives it
  Hook hook = std::move(it->second);
  hooks_.erase(it);
  hook_pids_.erase(hook.process.pid());
  HookEnd end;
  if (!status) {
    end.detail = status.error().message;
  } else if (hook.timed_out) {
    end.detail =
        fmt::format("{} did not finish within {}ms", hook.what,
                    std::chrono::duration_cast<std::chrono::milliseconds>(hook.timeout).count());
  } else if ((*status)->exited()) {
    end.ok = (*status)->code == 0;
    end.exit_code = (*status)->code;
    end.detail = fmt::format("{} exited with code {}", hook.what, (*status)->code);
  } else {
    end.signal = (*status)->code;
    end.detail = fmt::format("{} was killed by signal {}", hook.what, (*status)->code);
  }
  hook.done(end);
}

}  // namespace slate::runtime
