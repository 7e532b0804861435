// Who each component runs as (`user`, `group`) and what it may keep
// (`capabilities`, `no_new_privs`, `limits`, `seccomp`) or share with the
// host (`network`, `ipc`, `pid`, `read_only_root`): names resolved and
// features checked on this host once at start, applied by Spawn in the
// child before execve.
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <vector>

#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "platform/seccomp.h"
#include "platform/spawn.h"
#include "runtime/daemon.h"
#include "runtime/say.h"

namespace slate::runtime {

namespace fs = std::filesystem;

namespace {

std::optional<std::uint32_t> Number(const std::string& s) {
  std::uint32_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// getpwnam_r / getpwuid_r; nullopt when there is no such user.
struct User {
  std::string name;
  uid_t uid;
  gid_t gid;
};
Result<std::optional<User>> LookUpUser(const std::string& spec) {
  passwd pw{};
  passwd* found = nullptr;
  std::vector<char> buf(16384);
  const std::optional<std::uint32_t> number = Number(spec);
  const int rc = number ? ::getpwuid_r(*number, &pw, buf.data(), buf.size(), &found)
                        : ::getpwnam_r(spec.c_str(), &pw, buf.data(), buf.size(), &found);
  if (rc != 0 && rc != ENOENT && rc != ESRCH) {
    return MakeError(fmt::format("look up user '{}': {}", spec, std::strerror(rc)));
  }
  if (found == nullptr) {
    if (number) return std::optional<User>(User{"", *number, static_cast<gid_t>(-1)});
    return std::optional<User>();
  }
  return std::optional<User>(User{pw.pw_name, pw.pw_uid, pw.pw_gid});
}

Result<std::optional<gid_t>> LookUpGroup(const std::string& spec) {
  if (auto number = Number(spec)) return std::optional<gid_t>(*number);
  group gr{};
  group* found = nullptr;
  std::vector<char> buf(16384);
  const int rc = ::getgrnam_r(spec.c_str(), &gr, buf.data(), buf.size(), &found);
  if (rc != 0 && rc != ENOENT && rc != ESRCH) {
    return MakeError(fmt::format("look up group '{}': {}", spec, std::strerror(rc)));
  }
  if (found == nullptr) return std::optional<gid_t>();
  return std::optional<gid_t>(gr.gr_gid);
}

// slate-init, the PID 1 of `pid = "private"` components: $SLATE_INIT, else
// next to our own executable (where the build and `install` put it). Empty
// with why when there is none.
struct InitProgram {
  std::string path;
  std::string why_not;
};
const InitProgram& FindInit() {
  static const InitProgram found = [] {
    std::string path;
    if (const char* env = std::getenv("SLATE_INIT"); env != nullptr && env[0] != '\0') {
      path = env;
    } else {
      std::error_code ec;
      const fs::path self = fs::read_symlink("/proc/self/exe", ec);
      if (ec) return InitProgram{"", "cannot find our own executable: " + ec.message()};
      path = (self.parent_path() / "slate-init").string();
    }
    if (path.empty() || path[0] != '/') {
      return InitProgram{"", fmt::format("SLATE_INIT={} is not an absolute path", path)};
    }
    if (::access(path.c_str(), X_OK) != 0) {
      return InitProgram{"", fmt::format("its init {} cannot be executed ({}); install slate-init "
                                         "next to slate, or set SLATE_INIT",
                                         path, std::strerror(errno))};
    }
    return InitProgram{path, ""};
  }();
  return found;
}

// Why `pid = "private"` cannot be had here; nullopt when it can.
std::optional<std::string> PidNamespaceUnavailable() {
  if (auto why = platform::NamespaceUnavailable(platform::Namespace::kPid)) return why;
  if (FindInit().path.empty()) return FindInit().why_not;
  return std::nullopt;
}

// A component granted CAP_SYS_ADMIN is given it to mount (which a Landlock
// domain forbids), and could take its view apart anyway: unless it writes
// ptrace = "own", it has no domain.
bool GrantedSysAdmin(const spec::Component& c) {
  return ((c.capabilities >> CAP_SYS_ADMIN) & 1U) != 0;
}

// Whether `c` runs in a Landlock domain of its own (ptrace = "own", the
// default, where the host can give it).
bool InOwnDomain(const spec::Component& c) {
  if (!c.ptrace.given && GrantedSysAdmin(c)) return false;
  return c.ptrace.mode == spec::PtraceMode::kOwn &&
         !platform::OwnDomainUnavailable(c.no_new_privs).has_value();
}

platform::SeccompPolicy SeccompPolicyOf(const spec::Component& c) {
  platform::SeccompPolicy p;
  p.allow = c.seccomp.allow;
  p.on_violation = c.seccomp.action == spec::SeccompAction::kErrno
                       ? platform::SeccompPolicy::OnViolation::kErrno
                       : platform::SeccompPolicy::OnViolation::kKill;
  return p;
}

// What `c` asks of the host that the host cannot give: refused, unless the
// system file marks it optional; then the component runs without it and we
// say so. A filter is built now, so that a start fails here, not a restart.
Result<std::monostate> CheckIsolation(const spec::Component& c,
                                      const std::optional<std::string>& cgroup_limits_unavailable,
                                      const std::optional<std::string>& device_filter_unavailable) {
  struct Demand {
    std::string key;  // as the system file writes it
    bool optional;
    std::optional<std::string> why;  // the host lacks it
    std::string table;               // its optional spelling
  };
  std::vector<Demand> demands;
  if (c.seccomp.profile != spec::SeccompProfile::kNone) {
    const auto profile = spec::ToString(c.seccomp.profile);
    const bool table = !c.seccomp.allow.empty() || c.seccomp.action != spec::SeccompAction::kKill;
    demands.push_back(
        {fmt::format("seccomp = \"{}\"", profile), c.seccomp.optional,
         platform::SeccompUnavailable(),
         table ? std::string("optional = true in its seccomp table")
               : fmt::format("seccomp = {{ profile = \"{}\", optional = true }}", profile)});
  }
  if (c.network.mode != spec::NetworkMode::kHost) {
    const auto mode = spec::ToString(c.network.mode);
    demands.push_back({fmt::format("network = \"{}\"", mode), c.network.optional,
                       platform::NamespaceUnavailable(platform::Namespace::kNetwork),
                       fmt::format("network = {{ mode = \"{}\", optional = true }}", mode)});
  }
  if (c.ipc.mode != spec::IpcMode::kHost) {
    const auto mode = spec::ToString(c.ipc.mode);
    demands.push_back({fmt::format("ipc = \"{}\"", mode), c.ipc.optional,
                       platform::NamespaceUnavailable(platform::Namespace::kIpc),
                       fmt::format("ipc = {{ mode = \"{}\", optional = true }}", mode)});
  }
  if (c.pid.mode != spec::PidMode::kHost) {
    const auto mode = spec::ToString(c.pid.mode);
    demands.push_back({fmt::format("pid = \"{}\"", mode), c.pid.optional, PidNamespaceUnavailable(),
                       fmt::format("pid = {{ mode = \"{}\", optional = true }}", mode)});
  }
  if (c.ptrace.given && c.ptrace.mode == spec::PtraceMode::kOwn) {
    demands.push_back({"ptrace = \"own\"", c.ptrace.optional,
                       platform::OwnDomainUnavailable(c.no_new_privs),
                       "ptrace = { mode = \"own\", optional = true }"});
  }
  if (c.block_devices.given && c.block_devices.mode == spec::BlockDevicesMode::kNone) {
    demands.push_back({"block_devices = \"none\"", c.block_devices.optional,
                       device_filter_unavailable,
                       "block_devices = { mode = \"none\", optional = true }"});
  }
  if (c.read_only_root.enabled) {
    demands.push_back({"read_only_root = true", c.read_only_root.optional,
                       platform::ReadOnlyRootUnavailable(),
                       "read_only_root = { enabled = true, optional = true }"});
    for (const std::string& w : c.read_only_root.writable) {
      std::error_code ec;
      if (!fs::exists(w, ec)) {
        return MakeError(
            fmt::format("component {}: writable path {} does not exist; create it before the start",
                        c.name, w));
      }
    }
  }
  if (c.limits.wants_cgroup()) {
    std::vector<std::string> keys;
    if (c.limits.memory_max) keys.emplace_back("memory_max");
    if (c.limits.pids_max) keys.emplace_back("pids_max");
    demands.push_back({fmt::format("a cgroup with {} (limits)", fmt::join(keys, " and ")),
                       c.limits.cgroup_optional, cgroup_limits_unavailable,
                       "optional = true in its limits table"});
  }
  for (const Demand& d : demands) {
    if (!d.why) continue;
    if (!d.optional) {
      return MakeError(fmt::format(
          "component {}: {} is not available on this host: {}; to run it without, write {}", c.name,
          d.key, *d.why, d.table));
    }
    Say("component {}: {} is not available on this host: {}; it runs without it (optional)", c.name,
        d.key, *d.why);
  }
  if (c.seccomp.profile != spec::SeccompProfile::kNone && !platform::SeccompUnavailable()) {
    auto filter = platform::SeccompFilter::For(SeccompPolicyOf(c));
    if (!filter) return MakeError(fmt::format("component {}: {}", c.name, filter.error().message));
  }
  return std::monostate{};
}

}  // namespace

Result<std::monostate> Daemon::SetUpIdentities() {
  if (auto why = platform::CapabilityDropUnavailable()) {
    Say("{}: components keep whatever capabilities execve gives them", *why);
  } else {
    drop_capabilities_ = true;
  }
  for (const spec::Component& c : system_->components) {
    if (auto r = CheckIsolation(c, cgroup_limits_unavailable_, device_filter_unavailable_); !r) {
      return r;
    }
  }
  // Where the host cannot give the default ptrace = "own", say so once.
  std::vector<std::string> open_to_peers;
  std::string why_open;
  for (const spec::Component& c : system_->components) {
    if (c.ptrace.given || GrantedSysAdmin(c)) continue;
    if (auto why = platform::OwnDomainUnavailable(c.no_new_privs)) {
      open_to_peers.push_back(c.name);
      why_open = *why;
    }
  }
  if (!open_to_peers.empty()) {
    Say("{}: {} may trace, and look into through /proc/PID, any process that {} user may "
        "(write ptrace = \"host\" to run without a Landlock domain and without this warning)",
        why_open, fmt::join(open_to_peers, ", "), open_to_peers.size() == 1 ? "its" : "their");
  }
  // Likewise for the default block_devices = "none".
  if (device_filter_unavailable_) {
    std::vector<std::string> open_to_disks;
    for (const spec::Component& c : system_->components) {
      if (!c.block_devices.given && c.block_devices.mode == spec::BlockDevicesMode::kNone) {
        open_to_disks.push_back(c.name);
      }
    }
    if (!open_to_disks.empty()) {
      Say("no block-device filter for components ({}): {} may open disks as {} user may (write "
          "block_devices = \"host\" to run without it and without this warning)",
          *device_filter_unavailable_, fmt::join(open_to_disks, ", "),
          open_to_disks.size() == 1 ? "its" : "their");
    }
  }
  for (const spec::Component& c : system_->components) {
    if (!c.user) continue;
    auto user = LookUpUser(*c.user);
    if (!user) return user.error();
    if (!*user) {
      return MakeError(
          fmt::format("component {}: there is no user '{}' on this host", c.name, *c.user));
    }
    platform::Identity id;
    id.uid = (*user)->uid;
    id.gid = (*user)->gid;
    if (c.group) {
      auto gid = LookUpGroup(*c.group);
      if (!gid) return gid.error();
      if (!*gid) {
        return MakeError(
            fmt::format("component {}: there is no group '{}' on this host", c.name, *c.group));
      }
      id.gid = **gid;
    } else if (id.gid == static_cast<gid_t>(-1)) {
      return MakeError(fmt::format(
          "component {}: user {} has no entry in the user database, so it has no primary "
          "group: set 'group' too",
          c.name, *c.user));
    }
    // The user's supplementary groups, as login would give them.
    if (!(*user)->name.empty()) {
      int n = 32;
      std::vector<gid_t> groups(static_cast<std::size_t>(n));
      if (::getgrouplist((*user)->name.c_str(), id.gid, groups.data(), &n) < 0) {
        groups.resize(static_cast<std::size_t>(n));
        (void)::getgrouplist((*user)->name.c_str(), id.gid, groups.data(), &n);
      }
      groups.resize(static_cast<std::size_t>(std::max(n, 0)));
      std::erase(groups, id.gid);
      id.groups = std::move(groups);
    }
    // setresuid(-1) and setresgid(-1) mean "leave it as it is": root.
    if (id.uid == static_cast<uid_t>(-1) || id.gid == static_cast<gid_t>(-1)) {
      return MakeError(fmt::format("component {}: {} is not a user or group id", c.name,
                                   id.uid == static_cast<uid_t>(-1) ? *c.user : *c.group));
    }
    if (::geteuid() != 0) {
      // Without root the only identity we can give is our own.
      if (id.uid != ::geteuid() || id.gid != ::getegid()) {
        return MakeError(fmt::format(
            "component {}: to run it as user '{}' the runtime must run as root", c.name, *c.user));
      }
      continue;
    }
    identities_.emplace(c.name, std::move(id));
  }
  // Processes of one user with the same capabilities may open each other's
  // mount views through /proc/PID/root, unless the one that would look is
  // in a Landlock domain of its own (ptrace = "own"), or has a PID namespace
  // (and /proc) of its own, where the other has no pid.
  auto uid_of = [&](const spec::Component& c) {
    auto it = identities_.find(c.name);
    return it == identities_.end() ? ::geteuid() : it->second.uid;
  };
  auto could_look = [](const spec::Component& c) {
    return !InOwnDomain(c) &&
           (c.pid.mode == spec::PidMode::kHost || PidNamespaceUnavailable().has_value());
  };
  for (const spec::Component& store : system_->components) {
    if (!store.state) continue;
    std::vector<std::string> others;
    for (const spec::Component& c : system_->components) {
      if (&c != &store && uid_of(c) == uid_of(store) && could_look(c)) {
        others.push_back(c.name);
      }
    }
    if (others.empty()) continue;
    const bool one = others.size() == 1;
    Say("component {} has a store, and {} run{} as the same user ({}) with the host's PID "
        "namespace and no Landlock domain of {} own: {} could open it through /proc/PID/root; "
        "give {} a 'user' of its own, pid = \"private\" or (where the host has Landlock) "
        "ptrace = \"own\"",
        store.name, fmt::join(others, ", "), one ? "s" : "", uid_of(store), one ? "its" : "their",
        one ? "it" : "each", one ? "it" : "each");
  }
  return std::monostate{};
}

Result<std::monostate> Daemon::Privileges(const std::string& name, const spec::Component& c,
                                          platform::SpawnRequest* req) {
  if (drop_capabilities_) req->capabilities = c.capabilities;
  req->no_new_privs = c.no_new_privs;
  req->own_domain = InOwnDomain(c);
  req->die_with_us = true;
  const spec::Component::Limits& l = c.limits;
  if (l.nofile) req->limits.push_back({RLIMIT_NOFILE, *l.nofile});
  if (l.nproc) req->limits.push_back({RLIMIT_NPROC, *l.nproc});
  if (l.address_space) req->limits.push_back({RLIMIT_AS, *l.address_space});
  if (l.cpu) {
    req->limits.push_back(
        {RLIMIT_CPU, static_cast<std::uint64_t>(
                         std::chrono::duration_cast<std::chrono::seconds>(*l.cpu).count())});
  }
  // What the host lacks was refused at start, or is optional: left out.
  if (c.network.mode != spec::NetworkMode::kHost &&
      !platform::NamespaceUnavailable(platform::Namespace::kNetwork)) {
    req->network = c.network.mode == spec::NetworkMode::kNone
                       ? platform::SpawnRequest::Network::kNone
                       : platform::SpawnRequest::Network::kLoopback;
  }
  req->private_ipc = c.ipc.mode == spec::IpcMode::kPrivate &&
                     !platform::NamespaceUnavailable(platform::Namespace::kIpc);
  if (c.pid.mode == spec::PidMode::kPrivate && !PidNamespaceUnavailable()) {
    req->pid_init = FindInit().path;
  }
  if (c.seccomp.profile != spec::SeccompProfile::kNone && !platform::SeccompUnavailable()) {
    auto filter = platform::SeccompFilter::For(SeccompPolicyOf(c));
    if (!filter) return MakeError(fmt::format("component {}: {}", c.name, filter.error().message));
    req->seccomp = *filter;
  }
  if (auto it = identities_.find(c.name); it != identities_.end()) req->identity = it->second;
  return HandOver(name, c);
}

Result<std::monostate> Daemon::HandOver(const std::string& name, const spec::Component& c) {
  auto it = identities_.find(c.name);
  if (it == identities_.end()) return std::monostate{};
  // What it must be able to write, handed over before every start (the
  // runtime itself may have made or replaced files since: a rollback, a
  // reset, LMDB's lock file). Its checkpoints stay the runtime's.
  auto give = [&](const std::string& path) -> Result<std::monostate> {
    if (::lchown(path.c_str(), it->second.uid, it->second.gid) != 0 && errno != ENOENT) {
      return MakeError(fmt::format("give {} to user {}: {}", path, *c.user, std::strerror(errno)));
    }
    return std::monostate{};
  };
  if (c.state) {
    const std::string dir = StoreDir(c.name);
    if (auto r = give(dir); !r) return r;
    (void)::chmod(dir.c_str(), 0700);  // its, and no one else's to list
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      if (e.is_regular_file(ec)) {
        if (auto r = give(e.path().string()); !r) return r;
      }
    }
  }
  if (platform::NotifySocket* n = NotifyFor(name)) {
    if (auto r = give(n->path()); !r) return r;
  }
  return std::monostate{};
}

}  // namespace slate::runtime
