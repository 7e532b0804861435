// Start-up and teardown of the daemon: state_dir, journal, loop, signals,
// cgroups, control socket; per-component log files and notify sockets.
#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <fmt/format.h>

#include "platform/clock.h"
#include "runtime/daemon.h"
#include "runtime/say.h"

extern char** environ;

namespace slate::runtime {

namespace fs = std::filesystem;

namespace {

// A process that exists and is not a zombie: a runtime killed but not yet
// reaped by its parent still answers kill(pid, 0).
bool Alive(pid_t pid) {
  if (::kill(pid, 0) != 0) return false;
  std::ifstream stat(fmt::format("/proc/{}/stat", pid));
  std::string line;
  std::getline(stat, line);
  std::size_t paren = line.rfind(')');
  return paren == std::string::npos || paren + 2 >= line.size() || line[paren + 2] != 'Z';
}

}  // namespace

Daemon::Daemon(std::shared_ptr<const spec::System> system, const RunOptions& options)
    : system_(std::move(system)), options_(options), sup_(system_, std::random_device{}()) {}

Daemon::~Daemon() {
  Teardown();
}

Time Daemon::Now() const {
  return platform::MonotonicNow();
}

std::string Daemon::StoreDir(const std::string& component) const {
  return (fs::path(system_->state_dir) / "state" / component).string();
}

Result<std::monostate> Daemon::PrepareStateDir() {
  std::error_code ec;
  for (const char* sub : {"", "logs", "run", "state"}) {
    fs::path p = fs::path(system_->state_dir) / sub;
    fs::create_directories(p, ec);
    if (ec) return MakeError(fmt::format("cannot create {}: {}", p.string(), ec.message()));
  }
  // Notify sockets live in run/: only we (and root) may reach them.
  ::chmod((fs::path(system_->state_dir) / "run").c_str(), 0700);
  ::chmod((fs::path(system_->state_dir) / "state").c_str(), 0700);
  return std::monostate{};
}

void Daemon::SetUpViews() {
  if (auto why = platform::MountViewsUnavailable()) {
    Say("{}: every component can reach all of state_dir (other components' stores, channel "
        "files, the control socket)",
        *why);
    return;
  }
  views_ = true;
}

Result<const platform::MountNamespace*> Daemon::MountsFor(const std::string& name,
                                                          const spec::Component& c) {
  if (!views_) return static_cast<const platform::MountNamespace*>(nullptr);
  auto it = namespaces_.find(name);
  if (it == namespaces_.end()) {
    auto made = platform::MountNamespace::Make(ViewFor(name, c));
    if (!made) return made.error();
    it = namespaces_.emplace(name, std::move(made).value()).first;
  }
  return &it->second;
}

platform::MountView Daemon::ViewFor(const std::string& name, const spec::Component& c) {
  const fs::path dir = system_->state_dir;
  platform::MountView view;
  view.hide.push_back(dir.string());
  std::error_code ec;
  if (fs::is_directory(dir / "images", ec)) view.keep.push_back({(dir / "images").string(), true});
  if (c.state) {
    // Its store, but its checkpoints (the runtime's, inside the store's
    // directory) only to read: rollback must not depend on the component.
    view.keep.push_back({StoreDir(c.name), false});
    const fs::path checkpoints = fs::path(StoreDir(c.name)) / "checkpoints";
    if (fs::is_directory(checkpoints, ec)) view.keep.push_back({checkpoints.string(), true});
  }
  if (platform::NotifySocket* n = NotifyFor(name)) view.keep.push_back({n->path(), false});
  // The cgroup2 mount read-only: a component of the user that owns the
  // cgroups (root, by default) could otherwise move itself out of its own
  // cgroup by writing cgroup.procs of an ancestor, and so out of its
  // limits, its device filter and the kill that ends its tree.
  if (cgroups_) view.read_only_mounts.push_back(cgroups_->location().mount);
  // Refused at start where the host lacks it, unless optional: left out.
  if (c.read_only_root.enabled && !platform::ReadOnlyRootUnavailable()) {
    view.read_only_root = true;
    view.writable = c.read_only_root.writable;
  }
  return view;
}

void Daemon::SetUpCgroups() {
  const bool wants_filter = std::any_of(
      system_->components.begin(), system_->components.end(), [](const spec::Component& c) {
        return c.block_devices.mode == spec::BlockDevicesMode::kNone;
      });
  auto tree = platform::CgroupTree::Create(fmt::format("slate-{}", ::getpid()));
  if (!tree) {
    Say("cgroup v2 not available ({}); process trees are torn down by process group, and a "
        "process that leaves its group (setsid) can escape",
        tree.error().message);
    cgroup_limits_unavailable_ = "cgroup v2 is not available: " + tree.error().message;
    if (wants_filter) device_filter_unavailable_ = cgroup_limits_unavailable_;
    return;
  }
  Say("{}", tree->Describe());
  RemoveStaleCgroups(tree->location().own_dir);
  cgroups_.emplace(std::move(tree).value());
  if (wants_filter) {
    // Loaded, and tried on a cgroup of ours: an outer device program that
    // allows no other below it refuses the attach, better learnt now than
    // at every start.
    auto filter = platform::BlockDeviceFilter::Load();
    if (!filter) {
      device_filter_unavailable_ = filter.error().message;
    } else if (auto probe = cgroups_->CreateChild("device-filter-probe"); !probe) {
      device_filter_unavailable_ = probe.error().message;
    } else {
      auto attached = filter->AttachTo(probe->handle());
      (void)probe->Remove();
      if (attached) {
        device_filter_.emplace(std::move(filter).value());
      } else {
        device_filter_unavailable_ = attached.error().message;
      }
    }
  }
  std::vector<std::string> controllers;
  auto wanted = [&](auto limit) {
    return std::any_of(system_->components.begin(), system_->components.end(),
                       [&](const spec::Component& c) { return limit(c.limits).has_value(); });
  };
  if (wanted([](const spec::Component::Limits& l) { return l.memory_max; })) {
    controllers.emplace_back("memory");
  }
  if (wanted([](const spec::Component::Limits& l) { return l.pids_max; })) {
    controllers.emplace_back("pids");
  }
  if (controllers.empty()) return;
  if (auto r = cgroups_->EnableControllers(controllers); !r) {
    cgroup_limits_unavailable_ = r.error().message;
    return;
  }
  Say("cgroup controllers {} enabled for the components' limits{}", fmt::join(controllers, ", "),
      cgroups_->own_leaf() != nullptr
          ? fmt::format("; the runtime moved itself into {}", cgroups_->own_leaf()->name())
          : "");
}

Result<Daemon::NewCgroup> Daemon::MakeCgroup(const std::string& label, const spec::Component& c,
                                             bool ahead) {
  NewCgroup made;
  if (cgroups_) {
    auto cg = cgroups_->CreateChild(label);
    if (cg) {
      made.cgroup.emplace(std::move(cg).value());
    } else if (ahead) {
      return cg.error();  // the start will try again, and say so
    } else {
      Say("{}: {}; its tree is tracked by process group only", c.name, cg.error().message);
    }
  }
  const platform::Cgroup* cgroup = made.cgroup ? &*made.cgroup : nullptr;
  auto give_up = [&](Error why) -> Result<NewCgroup> {
    if (made.cgroup) dying_cgroups_.push_back(std::move(*made.cgroup));
    return why;
  };
  auto limited = ApplyCgroupLimits(c, cgroup);
  if (!limited) return give_up(limited.error());
  if (auto filtered = ApplyDeviceFilter(c, cgroup); !filtered) return give_up(filtered.error());
  made.memory_limited = *limited;
  return made;
}

Result<Daemon::NewCgroup> Daemon::CgroupForStart(const std::string& name, core::Incarnation inc,
                                                 const spec::Component& c) {
  if (auto ready = ready_cgroups_.find(name); ready != ready_cgroups_.end()) {
    NewCgroup made = std::move(ready->second);
    ready_cgroups_.erase(ready);
    return made;
  }
  return MakeCgroup(fmt::format("{}.{}", name, inc), c);
}

void Daemon::PrepareCgroup(const std::string& name, const spec::Component& c) {
  // Where limits cannot be had the start says why (or fails): not here.
  if (!cgroups_ || exit_code_ || stopping_spares_ || retired_spares_.contains(name) ||
      ready_cgroups_.contains(name) || (c.limits.wants_cgroup() && cgroup_limits_unavailable_)) {
    return;
  }
  // A failure here is left for the start itself to meet (and report).
  auto made = MakeCgroup(fmt::format("{}.next-{}", name, ++ready_serial_), c, true);
  if (made && made->cgroup) ready_cgroups_.emplace(name, std::move(made).value());
}

Result<bool> Daemon::ApplyCgroupLimits(const spec::Component& c, const platform::Cgroup* cgroup) {
  const spec::Component::Limits& l = c.limits;
  if (!l.wants_cgroup() || cgroup_limits_unavailable_) return false;  // see the start's checks
  auto without = [&](const std::string& why) -> Result<bool> {
    if (!l.cgroup_optional) return MakeError(why);
    Say("{}: {}; it runs without its cgroup limits (optional)", c.name, why);
    return false;
  };
  if (cgroup == nullptr) return without("it has no cgroup of its own for its limits");
  const platform::CgroupHandle& h = cgroup->handle();
  if (l.memory_max) {
    if (auto r = h.Write("memory.max", std::to_string(*l.memory_max)); !r) {
      return without(r.error().message);
    }
    // The OOM killer ends all of it, not one process: a clean slate.
    if (auto r = h.Write("memory.oom.group", "1"); !r) return without(r.error().message);
  }
  if (l.pids_max) {
    if (auto r = h.Write("pids.max", std::to_string(*l.pids_max)); !r) {
      return without(r.error().message);
    }
  }
  return l.memory_max.has_value();
}

Result<std::monostate> Daemon::ApplyDeviceFilter(const spec::Component& c,
                                                 const platform::Cgroup* cgroup) {
  // Without a filter: refused at start if demanded, else said there.
  if (c.block_devices.mode != spec::BlockDevicesMode::kNone || !device_filter_) {
    return std::monostate{};
  }
  auto without = [&](const std::string& why) -> Result<std::monostate> {
    if (c.block_devices.given && !c.block_devices.optional) return MakeError(why);
    Say("{}: {}; it may open block devices (as its user may) until its next start", c.name, why);
    return std::monostate{};
  };
  if (cgroup == nullptr) return without("it has no cgroup of its own for the block-device filter");
  if (auto r = device_filter_->AttachTo(cgroup->handle()); !r) return without(r.error().message);
  return std::monostate{};
}

void Daemon::RemoveStaleCgroups(const std::string& parent) {
  // Trees left by runtimes that were killed (kill -9 leaves no teardown):
  // whatever still runs in them is killed, and they are removed. A tree
  // whose runtime lives belongs to another system and is left alone.
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(parent, ec)) {
    std::string name = e.path().filename().string();
    if (!e.is_directory(ec) || !name.starts_with("slate-")) continue;
    pid_t owner = std::atoi(name.c_str() + 6);
    if (owner <= 0 || owner == ::getpid() || Alive(owner)) continue;
    std::vector<fs::path> leaves;
    int survivors = 0;  // processes still in them: what the kill is for
    for (const auto& child : fs::directory_iterator(e.path(), ec)) {
      if (!child.is_directory(ec)) continue;
      std::ifstream procs(child.path() / "cgroup.procs");
      for (std::string line; std::getline(procs, line);) survivors += line.empty() ? 0 : 1;
      std::ofstream(child.path() / "cgroup.kill") << "1";
      leaves.push_back(child.path());
    }
    for (const auto& leaf : leaves) {
      for (int i = 0; i < 100 && ::rmdir(leaf.c_str()) != 0 && errno == EBUSY; ++i) ::usleep(1000);
    }
    if (::rmdir(e.path().c_str()) == 0) {
      Say("removed the cgroups of a runtime that died (pid {}): {} component cgroup(s), {} "
          "process(es) still in them killed",
          owner, leaves.size(), survivors);
    }
  }
}

Result<std::monostate> Daemon::Setup() {
  // Each component costs the runtime a few descriptors (pidfd, output pipe,
  // notify socket): a large system needs more than the usual soft limit.
  rlimit nofile{};
  if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    (void)::setrlimit(RLIMIT_NOFILE, &nofile);
  }
  if (auto r = PrepareStateDir(); !r) return r;
  auto journal = Journal::Open((fs::path(system_->state_dir) / "events.jsonl").string());
  if (!journal) return journal.error();
  journal_.emplace(std::move(journal).value());

  auto loop = platform::EventLoop::Create();
  if (!loop) return loop.error();
  loop_.emplace(std::move(loop).value());
  auto signals = platform::SignalFd::Create({SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGPIPE});
  if (!signals) return signals.error();
  signals_.emplace(std::move(signals).value());
  auto timer = platform::TimerFd::Create();
  if (!timer) return timer.error();
  timer_.emplace(std::move(timer).value());
  if (auto r = loop_->Add(signals_->fd(), EPOLLIN, [this](std::uint32_t) { OnSignal(); }); !r) {
    return r;
  }
  if (auto r = loop_->Add(timer_->fd(), EPOLLIN, [this](std::uint32_t) { OnTimer(); }); !r) {
    return r;
  }
  // Orphaned grandchildren come to us, not to init, so none is left behind.
  if (auto r = platform::SetChildSubreaper(); !r) return r;
  SetUpCgroups();
  SetUpViews();
  if (auto r = SetUpIdentities(); !r) return r;
  // After the stale cgroups are gone: no end of a dead runtime's system is
  // still attached while the channels are checked and recovered.
  if (auto r = OpenChannels(); !r) return r;
  if (auto r = SetUpStores(); !r) return r;
  if (auto r = SetUpImages(); !r) return r;

  auto control =
      ControlServer::Listen((fs::path(system_->state_dir) / "control.sock").string(), *loop_,
                            [this](const nlohmann::json& r) { return Handle(r); });
  if (!control) return control.error();
  control_ = std::move(control).value();

  // Our own parent may watch us (systemd Type=notify, WatchdogSec).
  if (const char* usec = std::getenv("WATCHDOG_USEC")) {
    const char* wpid = std::getenv("WATCHDOG_PID");
    long long us = std::atoll(usec);
    if (us > 0 && (wpid == nullptr || std::atoll(wpid) == ::getpid())) {
      watchdog_interval_ = std::chrono::microseconds(us / 2);
    }
  }
  return std::monostate{};
}

LogSink& Daemon::LogFor(const std::string& name) {
  auto it = logs_.find(name);
  if (it == logs_.end()) {
    std::string path = (fs::path(system_->state_dir) / "logs" / (name + ".log")).string();
    it = logs_.emplace(name, LogSink(name, path, options_.echo_output)).first;
  }
  return it->second;
}

platform::NotifySocket* Daemon::NotifyFor(const std::string& name) {
  auto it = notify_.find(name);
  if (it != notify_.end()) return it->second.get();
  std::string path = (fs::path(system_->state_dir) / "run" / (name + ".notify")).string();
  auto sock = platform::NotifySocket::Bind(path);
  if (!sock) {
    Say("{}: notify socket: {}", name, sock.error().message);
    return nullptr;
  }
  auto owned = std::make_unique<platform::NotifySocket>(std::move(sock).value());
  platform::NotifySocket* raw = owned.get();
  if (auto r = loop_->Add(raw->fd(), EPOLLIN, [this, name](std::uint32_t) { OnNotify(name); });
      !r) {
    Say("{}: notify socket: {}", name, r.error().message);
    return nullptr;
  }
  notify_.emplace(name, std::move(owned));
  return raw;
}

std::vector<std::string> Daemon::ComponentEnv(const std::string& name, const spec::Component& c) {
  // Ours, less what speaks of our own supervisor, plus the component's.
  static constexpr std::string_view kOurs[] = {
      "NOTIFY_SOCKET=", "WATCHDOG_USEC=",  "WATCHDOG_PID=", "LISTEN_FDS=",
      "LISTEN_PID=",    "LISTEN_FDNAMES=", "SLATE_"};
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view kv = *e;
    bool ours = false;
    for (auto prefix : kOurs) ours = ours || kv.starts_with(prefix);
    std::string_view key = kv.substr(0, kv.find('='));
    if (!ours && !c.env.contains(std::string(key))) env.emplace_back(kv);
  }
  for (const auto& [k, v] : c.env) env.push_back(fmt::format("{}={}", k, v));
  if (platform::NotifySocket* n = NotifyFor(name)) env.push_back("NOTIFY_SOCKET=" + n->path());
  env.push_back("SLATE_COMPONENT=" + name);
  env.push_back("SLATE_STATE_DIR=" + system_->state_dir);
  // SLATE_CHANNELS is added by DoSpawn, with the descriptors.
  if (c.state) {
    env.push_back(fmt::format("SLATE_STORE={}:{}:{}", StoreDir(c.name), c.state->size,
                              spec::ToString(c.state->durability)));
  }
  if (c.heartbeat) {
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(*c.heartbeat).count();
    env.push_back(fmt::format("WATCHDOG_USEC={}", us));
  }
  return env;
}

void Daemon::NotifyParent(std::string_view message) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr || *path == '\0') return;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::size_t len = std::strlen(path);
  if (len >= sizeof(addr.sun_path)) return;
  std::memcpy(addr.sun_path, path, len);
  if (addr.sun_path[0] == '@') addr.sun_path[0] = '\0';  // abstract namespace
  platform::UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return;
  auto size = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len);
  (void)::sendto(fd.get(), message.data(), message.size(), MSG_NOSIGNAL,
                 reinterpret_cast<const sockaddr*>(&addr), size);
}

void Daemon::Teardown() {
  StopSpares();
  // Normally every child is gone by now; after a runtime error, none may
  // outlive us.
  for (auto& [inc, child] : children_) {
    (void)platform::KillTree(child.process, SIGKILL);
  }
  for (auto& [inc, child] : children_) {
    for (int i = 0; i < 1000 && !child.process.reaped(); ++i) {
      auto r = platform::TryReap(child.process);
      if (!r || r->has_value()) break;
      ::usleep(1000);
    }
  }
  for (auto& [inc, child] : children_) {
    if (child.cgroup) dying_cgroups_.push_back(std::move(*child.cgroup));
  }
  children_.clear();
  for (auto& cg : dying_cgroups_) (void)cg.handle().Kill();
  for (int i = 0; i < 100 && !dying_cgroups_.empty(); ++i) {
    RemoveDeadCgroups();
    if (!dying_cgroups_.empty()) ::usleep(1000);
  }
  dying_cgroups_.clear();
  cgroups_.reset();
  for (auto& [fd, owned] : outputs_) {
    if (loop_) (void)loop_->Remove(fd);
  }
  outputs_.clear();
  logs_.clear();
  if (loop_) {
    for (auto& [name, sock] : notify_) (void)loop_->Remove(sock->fd());
  }
  notify_.clear();
  control_.reset();
}

int Daemon::Run() {
  started_ = Now();
  if (auto r = Setup(); !r) {
    Say("{}", r.error().message);
    return 1;
  }
  Say("running system '{}' from {} (state_dir {})", system_->name, system_->file,
      system_->state_dir);
  Feed(sup_.Start(Now()));
  while (!exit_code_) {
    ArmTimer();
    auto n = loop_->RunOnce(platform::EventLoop::kForever);
    if (!n) {
      Say("event loop: {}", n.error().message);
      exit_code_ = 1;
    }
  }
  NotifyParent("STOPPING=1");
  if (!exit_message_.empty()) Say("{}", exit_message_);
  Teardown();
  return *exit_code_;
}

int Run(std::shared_ptr<const spec::System> system, const RunOptions& options) {
  Daemon d(std::move(system), options);
  return d.Run();
}

}  // namespace slate::runtime
