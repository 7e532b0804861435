// Warm standby (`standby = N`, SPEC sections 2 and 5): N spare processes per
// component, started like the component (same image, view, user) but with
// neither its channels nor its store, parked in slate_await_activation().
// A restart promotes a parked spare instead of exec'ing a new process: the
// runtime sends it its channel ends (SCM_RIGHTS) and its store over the
// activation socket, and marks it started and ready. The pool is refilled
// after the promotion.
#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>

#include <fmt/format.h>

#include "platform/signal_process.h"
#include "platform/spawn.h"
#include "runtime/daemon.h"
#include "runtime/say.h"

namespace slate::runtime {

namespace {

// GrantChannels' "NAME:tx:OWN:PEER:RT,..." with each descriptor number
// replaced by its index among `fds` (the targets, in the order sent).
std::string WithIndices(const std::string& channels, const std::vector<platform::FdGrant>& fds) {
  std::map<int, std::size_t> index;
  for (std::size_t i = 0; i < fds.size(); ++i) index[fds[i].target] = i;
  std::string out;
  std::size_t start = 0;
  while (start <= channels.size() && !channels.empty()) {
    std::size_t end = channels.find(',', start);
    if (end == std::string::npos) end = channels.size();
    std::string entry = channels.substr(start, end - start);
    // The last three fields are descriptors.
    std::vector<std::string> field;
    std::size_t from = 0;
    for (std::size_t colon; (colon = entry.find(':', from)) != std::string::npos;
         from = colon + 1) {
      field.push_back(entry.substr(from, colon - from));
    }
    field.push_back(entry.substr(from));
    for (std::size_t k = field.size() >= 3 ? field.size() - 3 : field.size(); k < field.size();
         ++k) {
      field[k] = std::to_string(index[std::stoi(field[k])]);
    }
    if (!out.empty()) out += ',';
    for (std::size_t k = 0; k < field.size(); ++k) {
      if (k > 0) out += ':';
      out += field[k];
    }
    start = end + 1;
  }
  return out;
}

}  // namespace

void Daemon::FillSpares(const std::string& name, const spec::Component& c) {
  if (c.standby <= 0 || exit_code_ || stopping_spares_ || retired_spares_.contains(name)) return;
  // Spares of an image that is no longer current (slate update or revert)
  // must not be promoted: replace them.
  auto current = ImagePath(c);
  const std::string image = current ? *current : std::string();
  std::vector<int> stale;
  for (const auto& s : spares_[name]) {
    if (s->image != image) stale.push_back(s->process->pidfd());
  }
  for (int pidfd : stale) DropSpare(pidfd);
  auto& pool = spares_[name];
  while (pool.size() < static_cast<std::size_t>(c.standby)) {
    auto spare = SpawnSpare(name, c);
    if (!spare) {
      Say("{}: standby spare: {}", name, spare.error().message);
      return;
    }
    pool.push_back(std::move(spare).value());
  }
}

Result<std::unique_ptr<Daemon::Spare>> Daemon::SpawnSpare(const std::string& name,
                                                          const spec::Component& c) {
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
    return MakeError(fmt::format("socketpair: {}", std::strerror(errno)));
  }
  platform::UniqueFd ours(pair[0]);
  platform::UniqueFd theirs(pair[1]);
  auto out = platform::MakeOutputPipe();
  if (!out) return out.error();
  platform::SpawnRequest req;
  req.argv = c.exec;
  auto image = ImagePath(c);
  if (!image) return image.error();
  req.argv[0] = *image;
  // A spare's readiness descriptor leads nowhere (it is ready once parked),
  // but must be open: else the descriptors it receives at its promotion
  // could land on that number, and its readiness write in a channel file.
  platform::UniqueFd no_readiness;
  if (c.ready.kind == spec::Readiness::Kind::kFd) {
    no_readiness.Reset(::open("/dev/null", O_WRONLY | O_CLOEXEC));
    if (!no_readiness.valid())
      return MakeError(fmt::format("open /dev/null: {}", std::strerror(errno)));
  }
  // Its environment, less its store: a spare touches neither state nor
  // channels before it is promoted.
  for (std::string& kv : ComponentEnv(name, c)) {
    if (!kv.starts_with("SLATE_STORE=")) req.env.push_back(std::move(kv));
  }
  const int target = c.ready.kind == spec::Readiness::Kind::kFd && c.ready.fd == 3 ? 4 : 3;
  req.env.push_back(fmt::format("SLATE_STANDBY={}", target));
  req.cwd = system_->base_dir;
  auto mounts = MountsFor(name, c);
  if (!mounts) return mounts.error();
  req.mounts = *mounts;
  req.fds = {{out->write.get(), 1}, {out->write.get(), 2}, {theirs.get(), target}};
  if (no_readiness.valid()) req.fds.push_back({no_readiness.get(), c.ready.fd});
  if (auto r = Privileges(name, c, &req); !r) return r.error();
  auto spare = std::make_unique<Spare>();
  spare->name = name;
  spare->component = &c;
  spare->image = req.argv[0];
  auto made = MakeCgroup(fmt::format("{}.spare-{}", name, ++spare_serial_), c);
  if (!made) return made.error();
  spare->cgroup = std::move(made->cgroup);
  spare->memory_limited = made->memory_limited;
  if (spare->cgroup) req.cgroup = &spare->cgroup->handle();
  auto process = platform::Spawn(req);
  spare->output_hold = std::move(out->write);
  theirs.Reset();
  if (!process) {
    if (spare->cgroup) dying_cgroups_.push_back(std::move(*spare->cgroup));
    return process.error();
  }
  spare->process.emplace(std::move(process).value());
  // Once promoted, its end kills its tree with one write, not an open too.
  spare->process->PrepareTreeKill();
  spare->activation = std::move(ours);
  const int pidfd = spare->process->pidfd();
  const int act = spare->activation.get();
  (void)loop_->Add(pidfd, EPOLLIN, [this, pidfd](std::uint32_t) { OnSpareExit(pidfd); });
  (void)loop_->Add(act, EPOLLIN, [this, pidfd](std::uint32_t) { OnSpareMessage(pidfd); });
  const int out_fd = out->read.get();
  LogFor(name);
  outputs_.emplace(out_fd, std::move(out->read));
  (void)loop_->Add(out_fd, EPOLLIN,
                   [this, out_fd, name](std::uint32_t) { OnOutput(out_fd, name); });
  return spare;
}

Daemon::Spare* Daemon::FindSpare(int pidfd, std::string* name) {
  for (auto& [n, pool] : spares_) {
    for (auto& s : pool) {
      if (s->process && s->process->pidfd() == pidfd) {
        if (name != nullptr) *name = n;
        return s.get();
      }
    }
  }
  return nullptr;
}

void Daemon::OnSpareMessage(int pidfd) {
  Spare* spare = FindSpare(pidfd, nullptr);
  if (spare == nullptr) return;
  char buf[16];
  const ssize_t n = ::recv(spare->activation.get(), buf, sizeof buf, MSG_DONTWAIT);
  if (n > 0) {
    spare->parked = true;  // it reached slate_await_activation
  } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
    (void)loop_->Remove(spare->activation.get());  // its exit says the rest
  }
}

void Daemon::DropSpare(int pidfd) {
  std::string name;
  Spare* spare = FindSpare(pidfd, &name);
  if (spare == nullptr) return;
  (void)loop_->Remove(pidfd);
  (void)loop_->Remove(spare->activation.get());
  (void)platform::KillTree(*spare->process, SIGKILL);
  for (int i = 0; i < 1000 && !spare->process->reaped(); ++i) {
    auto r = platform::TryReap(*spare->process);
    if (!r || r->has_value()) break;
    ::usleep(1000);
  }
  if (spare->cgroup) dying_cgroups_.push_back(std::move(*spare->cgroup));
  auto& pool = spares_[name];
  std::erase_if(pool, [spare](const std::unique_ptr<Spare>& s) { return s.get() == spare; });
}

void Daemon::OnSpareExit(int pidfd) {
  std::string name;
  Spare* spare = FindSpare(pidfd, &name);
  if (spare == nullptr) return;
  auto status = platform::TryReap(*spare->process);
  if (status && !status->has_value()) return;  // not yet
  const bool was_parked = spare->parked;
  const pid_t pid = spare->process->pid();
  const spec::Component* c = spare->component;
  DropSpare(pidfd);
  RemoveDeadCgroups();
  std::string how = "ended";
  if (status && status->has_value()) {
    const platform::ExitStatus& st = **status;
    how = st.killed() ? fmt::format("was killed by signal {}", st.code)
                      : fmt::format("exited with code {}", st.code);
  }
  // One that dies before it is parked would die again at once: it is
  // replaced at the component's next start, not in a loop here.
  if (c != nullptr && was_parked) {
    Say("{}: standby spare (pid {}) {}; starting another", name, pid, how);
    FillSpares(name, *c);
  } else {
    Say("{}: standby spare (pid {}) {} before it was ready; replaced at the next start", name, pid,
        how);
  }
}

bool Daemon::Promote(const core::Spawn& s) {
  const spec::Component& c = *s.component;
  auto it = spares_.find(s.name);
  if (it == spares_.end()) return false;
  auto current = ImagePath(c);
  if (!current) return false;  // the cold start says why
  const std::string& image = *current;
  auto pick = std::find_if(
      it->second.begin(), it->second.end(),
      [&](const std::unique_ptr<Spare>& sp) { return sp->parked && sp->image == image; });
  if (pick == it->second.end()) return false;
  Spare& spare = **pick;

  // What a start would have given it, now: the channel ends (repaired if
  // need be, marked up) and the store, handed over to its user.
  platform::SpawnRequest grant;
  std::vector<platform::UniqueFd> channel_fds;
  auto channels = GrantChannels(s.name, -1, &grant, &channel_fds);
  if (!channels) {
    Say("{}: promote standby: {}; starting a new process", s.name, channels.error().message);
    return false;
  }
  if (auto r = HandOver(s.name, c); !r) {
    Say("{}: promote standby: {}; starting a new process", s.name, r.error().message);
    return false;
  }
  // Never empty: a message even with nothing in it.
  std::string text = fmt::format(
      "{}{}\n", channels->empty() ? "" : "CHANNELS=" + WithIndices(*channels, grant.fds),
      c.state ? fmt::format("\nSTORE={}:{}:{}", StoreDir(c.name), c.state->size,
                            spec::ToString(c.state->durability))
              : "");
  std::vector<char> control(CMSG_SPACE(sizeof(int) * std::max<std::size_t>(grant.fds.size(), 1)));
  iovec iov{text.data(), text.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (!grant.fds.empty()) {
    msg.msg_control = control.data();
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * grant.fds.size());
    cmsghdr* cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int) * grant.fds.size());
    for (std::size_t i = 0; i < grant.fds.size(); ++i) {
      std::memcpy(CMSG_DATA(cm) + i * sizeof(int), &grant.fds[i].source, sizeof(int));
    }
  }
  if (::sendmsg(spare.activation.get(), &msg, MSG_NOSIGNAL) < 0) {
    // It died meanwhile: its exit is on its way; start a new process.
    Say("{}: promote standby (pid {}): {}; starting a new process", s.name, spare.process->pid(),
        std::strerror(errno));
    return false;
  }
  channel_fds.clear();
  // The scheduler tends to wake it on our CPU, where it would wait for all
  // we still do for this start (journal lines, the old cgroup): let it run
  // first (measured: 0.21 ms from child_exited to its first instruction
  // without this, on a 2-CPU VM, see docs/benchmarks.md).
  ::sched_yield();

  // From here it is the component's process like any other.
  const int pidfd = spare.process->pidfd();
  (void)loop_->Remove(pidfd);
  (void)loop_->Remove(spare.activation.get());
  const pid_t pid = spare.process->pid();
  const core::Incarnation inc = s.incarnation;
  (void)loop_->Add(pidfd, EPOLLIN, [this, inc](std::uint32_t) { OnExit(inc); });
  by_pid_[pid] = inc;
  children_.emplace(
      inc, Child{inc, s.name, std::move(*spare.process), std::nullopt, std::move(spare.cgroup),
                 spare.memory_limited, std::move(spare.output_hold)});
  it->second.erase(pick);

  core::Event e;
  e.event = "standby_promoted";
  e.node = s.name;
  e.pid = pid;
  DoEmit(e);
  Feed(sup_.Spawned(inc, pid, Now()));
  // It was parked: initialised, as far as it goes before activation.
  if (c.ready.kind != spec::Readiness::Kind::kSpawn) Feed(sup_.Ready(inc, Now()));
  return true;
}

void Daemon::ScheduleRefill(const std::string& name, const spec::Component& c) {
  // Long enough for the promoted spare to run on a single CPU (it is woken
  // by the promotion and needs microseconds), short enough that the pool is
  // seldom empty when the next failure comes.
  constexpr auto kRefillDelay = std::chrono::milliseconds(2);
  if (!refill_timer_) {
    auto timer = platform::TimerFd::Create();
    if (!timer) {
      FillSpares(name, c);
      return;
    }
    refill_timer_.emplace(std::move(timer).value());
    (void)loop_->Add(refill_timer_->fd(), EPOLLIN, [this](std::uint32_t) { OnRefillTimer(); });
  }
  // Armed already (another refill, or cgroups still to make): it fires as
  // soon or sooner. Pushing it back at every start would leave a component
  // restarting more often than every 2 ms without spares at all.
  const bool armed = !refill_pending_.empty() || !cgroups_to_prepare_.empty();
  refill_pending_[name] = &c;
  if (armed) return;
  if (!refill_timer_->ArmAt(Now() + kRefillDelay)) {
    refill_pending_.erase(name);
    FillSpares(name, c);
  }
}

void Daemon::OnRefillTimer() {
  (void)refill_timer_->Acknowledge();
  for (const auto& [name, c] : std::exchange(refill_pending_, {})) {
    FillSpares(name, *c);
    // One with spares restarts by promoting one, in the spare's cgroup.
    if (cgroups_ && c->standby == 0) cgroups_to_prepare_[name] = c;
  }
  // A few cgroups a round (each is a mkdir, an open and a BPF attach, some
  // 70 us here), so that after a group restart of many children the loop
  // is not held for all of them at once.
  constexpr int kCgroupsPerRound = 8;
  for (int i = 0; i < kCgroupsPerRound && !cgroups_to_prepare_.empty(); ++i) {
    auto next = cgroups_to_prepare_.begin();
    PrepareCgroup(next->first, *next->second);
    cgroups_to_prepare_.erase(next);
  }
  // ScheduleRefill counts on the timer being armed while anything waits.
  if (!cgroups_to_prepare_.empty() || !refill_pending_.empty())
    (void)refill_timer_->ArmAt(Now() + std::chrono::milliseconds(1));
}

void Daemon::DropReadyCgroup(const std::string& name) {
  auto ready = ready_cgroups_.find(name);
  if (ready == ready_cgroups_.end()) return;
  if (ready->second.cgroup) dying_cgroups_.push_back(std::move(*ready->second.cgroup));
  ready_cgroups_.erase(ready);
}

void Daemon::RetireSparesUnder(const std::string& name) {
  RetireSpares(name);
  auto st = sup_.StatusOf(name);
  if (!st || !st->is_supervisor) return;
  for (const std::string& child : st->children) RetireSparesUnder(child);
}

void Daemon::RetireSpares(const std::string& name) {
  retired_spares_.insert(name);
  refill_pending_.erase(name);
  cgroups_to_prepare_.erase(name);
  DropReadyCgroup(name);
  auto it = spares_.find(name);
  if (it == spares_.end()) return;
  std::vector<int> pidfds;
  for (const auto& s : it->second) pidfds.push_back(s->process->pidfd());
  for (int pidfd : pidfds) DropSpare(pidfd);
}

void Daemon::StopSpares() {
  stopping_spares_ = true;
  if (refill_timer_) {
    (void)loop_->Remove(refill_timer_->fd());
    refill_timer_.reset();
  }
  std::vector<int> pidfds;
  for (auto& [name, pool] : spares_) {
    for (auto& s : pool) pidfds.push_back(s->process->pidfd());
  }
  for (int fd : pidfds) DropSpare(fd);
  spares_.clear();
  cgroups_to_prepare_.clear();
  while (!ready_cgroups_.empty()) DropReadyCgroup(ready_cgroups_.begin()->first);
}

}  // namespace slate::runtime
