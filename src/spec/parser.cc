// Reading: TOML -> System, checking each value's type and range. Names that
// refer to other definitions are checked afterwards, in validate.cc.
#include "spec/parser.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <system_error>
#include <tuple>

#include "spec/capabilities.h"
#include "spec/reader.h"
#include "spec/syscalls.h"
#include "spec/units.h"
#include "spec/validate.h"

namespace slate::spec {
namespace {

namespace fs = std::filesystem;
using internal::Context;
using internal::EnumNames;
using internal::PosOf;
using internal::TableReader;

const EnumNames<Strategy> kStrategies{{"one_for_one", Strategy::kOneForOne},
                                      {"one_for_all", Strategy::kOneForAll},
                                      {"rest_for_one", Strategy::kRestForOne},
                                      {"simple_one_for_one", Strategy::kSimpleOneForOne}};
const EnumNames<RestartType> kRestartTypes{{"permanent", RestartType::kPermanent},
                                           {"transient", RestartType::kTransient},
                                           {"temporary", RestartType::kTemporary}};
const EnumNames<AutoShutdown> kAutoShutdowns{{"never", AutoShutdown::kNever},
                                             {"any_significant", AutoShutdown::kAnySignificant},
                                             {"all_significant", AutoShutdown::kAllSignificant}};
const EnumNames<Durability> kDurabilities{{"process", Durability::kProcess},
                                          {"power", Durability::kPower}};
const EnumNames<LadderStep> kLadderSteps{{"rollback_state", LadderStep::kRollbackState},
                                         {"reset_state", LadderStep::kResetState},
                                         {"sanitize_state", LadderStep::kSanitizeState},
                                         {"revert_image", LadderStep::kRevertImage},
                                         {"reinstall_image", LadderStep::kReinstallImage},
                                         {"reset_device", LadderStep::kResetDevice},
                                         {"escalate", LadderStep::kEscalate},
                                         {"give_up", LadderStep::kGiveUp}};
const EnumNames<SeccompProfile> kSeccompProfiles{{"default", SeccompProfile::kDefault},
                                                 {"none", SeccompProfile::kNone}};
const EnumNames<SeccompAction> kSeccompActions{{"kill", SeccompAction::kKill},
                                               {"errno", SeccompAction::kErrno}};
const EnumNames<NetworkMode> kNetworkModes{{"host", NetworkMode::kHost},
                                           {"none", NetworkMode::kNone},
                                           {"loopback", NetworkMode::kLoopback}};
const EnumNames<IpcMode> kIpcModes{{"host", IpcMode::kHost}, {"private", IpcMode::kPrivate}};
const EnumNames<PidMode> kPidModes{{"host", PidMode::kHost}, {"private", PidMode::kPrivate}};
const EnumNames<PtraceMode> kPtraceModes{{"own", PtraceMode::kOwn}, {"host", PtraceMode::kHost}};
const EnumNames<BlockDevicesMode> kBlockDevicesModes{{"none", BlockDevicesMode::kNone},
                                                     {"host", BlockDevicesMode::kHost}};
constexpr std::uint64_t kMinMemoryMax = std::uint64_t{1} << 20;

template <typename E>
std::string_view NameOf(const EnumNames<E>& names, E value) {
  for (const auto& [n, v] : names) {
    if (v == value) return n;
  }
  return "?";
}

class Reader {
 public:
  Reader(Context& ctx, std::string base_dir) : ctx_(ctx), base_dir_(std::move(base_dir)) {}

  void ReadRoot(const toml::table& root, System& sys);

 private:
  void ReadSystem(const toml::table& t, System& sys);
  Supervisor ReadSupervisor(TableReader& r);
  Component ReadComponent(TableReader& r);
  void ReadIdentity(TableReader& r, Component& c);
  void ReadLimits(TableReader& r, Component& c);
  void ReadIsolation(TableReader& r, Component& c);
  template <typename E>
  std::optional<E> ReadIsolationKey(TableReader& r, std::string_view key, std::string_view mode_key,
                                    const EnumNames<E>& names, std::string_view what,
                                    std::optional<E> table_default, bool& optional,
                                    const std::function<void(TableReader&)>& more = nullptr);
  Channel ReadChannel(TableReader& r);
  Device ReadDevice(TableReader& r);

  std::optional<Shutdown> ReadShutdown(TableReader& r);
  std::optional<Readiness> ReadReadiness(TableReader& r);
  std::optional<StateSpec> ReadState(TableReader& r);
  std::optional<Backoff> ReadBackoff(TableReader& r);
  std::optional<PersistentFailurePolicy> ReadLadder(TableReader& r);
  // A command line whose first element is resolved against the file's folder.
  std::optional<std::vector<std::string>> ReadCommand(TableReader& r, std::string_view key);

  std::string Resolve(const std::string& path) const {
    fs::path p(path);
    if (p.is_absolute()) return p.lexically_normal().string();
    return (fs::path(base_dir_) / p).lexically_normal().string();
  }

  Context& ctx_;
  std::string base_dir_;
};

void Reader::ReadRoot(const toml::table& root, System& sys) {
  static const std::vector<std::string> kTopLevel{"system", "supervisor", "component", "channel",
                                                  "device"};
  const toml::table* system_table = nullptr;
  for (const auto& [key, node] : root) {
    std::string_view k = key.str();
    if (std::find(kTopLevel.begin(), kTopLevel.end(), k) == kTopLevel.end()) {
      ctx_.Error(PosOf(key.source()),
                 fmt::format("unknown table '{}'{}; expected one of {}", k,
                             DidYouMean(k, kTopLevel), TableReader::Alternatives(kTopLevel)));
      continue;
    }
    if (!node.is_table()) {
      ctx_.Error(PosOf(node.source()),
                 fmt::format("'{}' must be a table, got {}", k, internal::TypeName(node.type())));
      continue;
    }
    const toml::table& t = *node.as_table();
    if (k == "system") {
      system_table = &t;
      continue;
    }
    for (const auto& [name_key, def] : t) {
      std::string name(name_key.str());
      std::string path = fmt::format("{}.{}", k, name);
      ctx_.Record(path, PosOf(name_key.source()));
      if (!def.is_table()) {
        ctx_.Error(PosOf(def.source()), fmt::format("{}: expected a table, got {}", path,
                                                    internal::TypeName(def.type())));
        ctx_.MarkBad(path);
        continue;
      }
      TableReader r(ctx_, *def.as_table(), path);
      if (k == "supervisor") {
        sys.supervisors.push_back(ReadSupervisor(r));
        sys.supervisors.back().name = name;
        sys.supervisors.back().pos = PosOf(name_key.source());
      } else if (k == "component") {
        sys.components.push_back(ReadComponent(r));
        sys.components.back().name = name;
        sys.components.back().pos = PosOf(name_key.source());
      } else if (k == "channel") {
        sys.channels.push_back(ReadChannel(r));
        sys.channels.back().name = name;
        sys.channels.back().pos = PosOf(name_key.source());
      } else {
        sys.devices.push_back(ReadDevice(r));
        sys.devices.back().name = name;
        sys.devices.back().pos = PosOf(name_key.source());
      }
      r.Finish();
    }
  }
  // toml++ iterates tables in key order; the model keeps the file's order.
  auto by_pos = [](const auto& a, const auto& b) {
    return std::tie(a.pos.line, a.pos.column) < std::tie(b.pos.line, b.pos.column);
  };
  std::sort(sys.supervisors.begin(), sys.supervisors.end(), by_pos);
  std::sort(sys.components.begin(), sys.components.end(), by_pos);
  std::sort(sys.channels.begin(), sys.channels.end(), by_pos);
  std::sort(sys.devices.begin(), sys.devices.end(), by_pos);
  if (system_table == nullptr) {
    ctx_.Error({1, 1}, "missing [system] table (it names the root supervisor: root = \"...\")");
  } else {
    ReadSystem(*system_table, sys);
  }
}

void Reader::ReadSystem(const toml::table& t, System& sys) {
  TableReader r(ctx_, t, "system");
  ctx_.Record("system", r.pos());
  if (auto v = r.String("name")) sys.name = *v;
  if (auto v = r.String("root")) sys.root = *v;
  if (auto v = r.String("state_dir")) {
    if (v->empty()) {
      r.BadValue("state_dir", "must not be empty");
    } else {
      sys.state_dir = Resolve(*v);
    }
  }
  r.Finish();
}

std::optional<Shutdown> Reader::ReadShutdown(TableReader& r) {
  const toml::node* n = r.Get("shutdown");
  if (n == nullptr) return std::nullopt;
  if (n->is_string()) {
    std::string_view s = n->as_string()->get();
    if (s == "brutal_kill") return Shutdown{Shutdown::Kind::kBrutalKill, {}};
    if (s == "infinity") return Shutdown{Shutdown::Kind::kInfinity, {}};
  }
  if (auto d = r.DurationValue("shutdown", false)) return Shutdown{Shutdown::Kind::kTimeout, *d};
  return std::nullopt;
}

std::optional<Readiness> Reader::ReadReadiness(TableReader& r) {
  auto s = r.String("ready");
  if (!s) return std::nullopt;
  if (*s == "spawn") return Readiness{Readiness::Kind::kSpawn, -1};
  if (*s == "notify") return Readiness{Readiness::Kind::kNotify, -1};
  if (s->starts_with("fd:")) {
    std::string_view digits = std::string_view(*s).substr(3);
    int fd = -1;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), fd);
    if (ec != std::errc() || end != digits.data() + digits.size() || digits.empty()) {
      r.BadValue("ready", fmt::format("'{}': expected fd:N with N a descriptor number", *s));
      return std::nullopt;
    }
    if (fd < 3 || fd > 1023) {
      r.BadValue("ready", fmt::format("'{}': the descriptor must be between 3 and 1023 "
                                      "(0, 1 and 2 are the component's stdio)",
                                      *s));
      return std::nullopt;
    }
    return Readiness{Readiness::Kind::kFd, fd};
  }
  static const std::vector<std::string> kModes{"spawn", "notify", "fd:N"};
  r.BadValue("ready", fmt::format("unknown ready mode '{}' (expected spawn, notify or fd:N){}", *s,
                                  DidYouMean(*s, kModes)));
  return std::nullopt;
}

std::optional<std::vector<std::string>> Reader::ReadCommand(TableReader& r, std::string_view key) {
  auto cmd = r.StringList(key, false);
  if (!cmd) return std::nullopt;
  if ((*cmd)[0].empty()) {
    r.BadValue(key, "the program (first element) must not be empty");
    return std::nullopt;
  }
  (*cmd)[0] = Resolve((*cmd)[0]);
  return cmd;
}

std::optional<StateSpec> Reader::ReadState(TableReader& parent) {
  const toml::table* t = parent.Table("state");
  if (t == nullptr) return std::nullopt;
  TableReader r(ctx_, *t, parent.path() + ".state");
  StateSpec s;
  bool good = true;
  if (auto v = r.Size("size")) {
    s.size = *v;
  } else if (r.Get("size") == nullptr) {
    ctx_.Error(r.pos(), fmt::format("{}: missing required key 'size'", r.path()));
    good = false;
  } else {
    good = false;
  }
  s.checkpoint_every = r.DurationValue("checkpoint_every", false);
  if (auto v = r.Integer("keep", 1, 1000)) s.keep = static_cast<int>(*v);
  if (auto v = r.Enum("durability", kDurabilities, "durability")) s.durability = *v;
  r.Finish();
  if (!good) {
    ctx_.MarkBad(r.path());
    return std::nullopt;
  }
  return s;
}

std::optional<Backoff> Reader::ReadBackoff(TableReader& parent) {
  const toml::table* t = parent.Table("backoff");
  if (t == nullptr) return std::nullopt;
  TableReader r(ctx_, *t, parent.path() + ".backoff");
  Backoff b;
  auto initial = r.DurationValue("initial", false);
  auto max = r.DurationValue("max", false);
  auto factor = r.Number("factor", 1.0, 1000.0);
  r.Finish();
  if (r.Get("initial") == nullptr) {
    ctx_.Error(r.pos(), fmt::format("{}: missing required key 'initial'", r.path()));
    return std::nullopt;
  }
  if (!initial) return std::nullopt;
  b.initial = *initial;
  b.max = max.value_or(std::max<Duration>(*initial, std::chrono::seconds(5)));
  if (factor) b.factor = *factor;
  if (max && *max < *initial) {
    r.BadValue("max", "must not be shorter than 'initial'");
    return std::nullopt;
  }
  return b;
}

std::optional<PersistentFailurePolicy> Reader::ReadLadder(TableReader& parent) {
  const toml::table* t = parent.Table("on_persistent_failure");
  if (t == nullptr) return std::nullopt;
  TableReader r(ctx_, *t, parent.path() + ".on_persistent_failure");
  PersistentFailurePolicy p;
  if (auto v = r.Integer("after", 1, 1000)) p.after = static_cast<int>(*v);
  auto steps = r.StringList("steps", false);
  if (r.Get("steps") == nullptr) {
    ctx_.Error(r.pos(), fmt::format("{}: missing required key 'steps'", r.path()));
  }
  r.Finish();
  if (!steps) {
    ctx_.MarkBad(r.path());
    return std::nullopt;
  }
  std::vector<std::string> names;
  for (const auto& [n, v] : kLadderSteps) names.emplace_back(n);
  bool good = true;
  for (std::size_t i = 0; i < steps->size(); ++i) {
    const std::string& s = (*steps)[i];
    auto it = std::find_if(kLadderSteps.begin(), kLadderSteps.end(),
                           [&](const auto& e) { return e.first == s; });
    if (it == kLadderSteps.end()) {
      ctx_.Error(ctx_.At(fmt::format("{}.steps.{}", r.path(), i)),
                 fmt::format("{}.steps: unknown step '{}' (expected {}){}", r.path(), s,
                             TableReader::Alternatives(names), DidYouMean(s, names)));
      good = false;
      continue;
    }
    p.steps.push_back(it->second);
  }
  if (!good) {
    ctx_.MarkBad(r.path());
    return std::nullopt;
  }
  return p;
}

Supervisor Reader::ReadSupervisor(TableReader& r) {
  Supervisor s;
  if (auto v = r.Enum("strategy", kStrategies, "strategy")) s.strategy = *v;
  if (auto v = r.Integer("intensity", 0, 1'000'000)) s.intensity = static_cast<int>(*v);
  if (auto v = r.DurationValue("period", false)) s.period = *v;
  if (auto v = r.Enum("restart", kRestartTypes, "restart type")) s.restart = *v;
  if (auto v = ReadShutdown(r)) s.shutdown = *v;
  if (auto v = r.Enum("auto_shutdown", kAutoShutdowns, "auto_shutdown value")) {
    s.auto_shutdown = *v;
  }
  if (auto v = r.Bool("significant")) s.significant = *v;
  if (auto v = r.StringList("children", true)) s.children = std::move(*v);
  if (auto v = r.String("template")) s.template_name = *v;
  if (auto v = r.Integer("instances", 0, 100'000)) s.instances = static_cast<int>(*v);
  return s;
}

void Reader::ReadIdentity(TableReader& r, Component& c) {
  // A user or group as the system file names it: a name as useradd takes
  // it, or a number.
  auto read_id = [&r](std::string_view key) -> std::optional<std::string> {
    auto v = r.String(key);
    if (!v) return std::nullopt;
    const bool plausible =
        !v->empty() && v->size() <= 32 && (*v)[0] != '-' &&
        std::all_of(v->begin(), v->end(), [](unsigned char ch) {
          return std::isalnum(ch) != 0 || ch == '_' || ch == '-' || ch == '.' || ch == '$';
        });
    if (!plausible) {
      r.BadValue(key, fmt::format("'{}' is not a {} name or number", *v, key));
      return std::nullopt;
    }
    return v;
  };
  c.user = read_id("user");
  c.group = read_id("group");
  if (c.group && !r.Get("user")) {
    r.BadValue("group", "'group' needs 'user' (the component runs as the runtime otherwise)");
  }
  if (auto names = r.StringList("capabilities", true)) {
    for (const std::string& n : *names) {
      std::optional<int> number = CapabilityNumber(n);
      if (!number) {
        r.BadValue("capabilities",
                   fmt::format("unknown capability '{}'{}", n, DidYouMean(n, CapabilityNames())));
        continue;
      }
      c.capabilities |= std::uint64_t{1} << *number;
    }
  }
  if (auto v = r.Bool("no_new_privs")) c.no_new_privs = *v;
}

void Reader::ReadLimits(TableReader& parent, Component& c) {
  const toml::table* t = parent.Table("limits");
  if (t == nullptr) return;
  TableReader r(ctx_, *t, parent.path() + ".limits");
  if (auto v = r.Integer("nofile", 1, 1 << 20)) c.limits.nofile = static_cast<std::uint64_t>(*v);
  if (auto v = r.Integer("nproc", 1, 1 << 22)) c.limits.nproc = static_cast<std::uint64_t>(*v);
  if (auto v = r.Size("address_space")) c.limits.address_space = *v;
  if (auto v = r.DurationValue("cpu", false)) {
    if (*v < std::chrono::seconds(1)) {
      r.BadValue("cpu", "the CPU limit counts whole seconds: at least 1s");
    } else {
      c.limits.cpu = *v;
    }
  }
  if (auto v = r.Size("memory_max")) {
    if (*v < kMinMemoryMax) {
      r.BadValue("memory_max", "a memory limit below 1MiB leaves no room for any program");
    } else {
      c.limits.memory_max = *v;
    }
  }
  if (auto v = r.Integer("pids_max", 1, 1 << 22))
    c.limits.pids_max = static_cast<std::uint64_t>(*v);
  if (auto v = r.Bool("optional")) {
    if (!t->contains("memory_max") && !t->contains("pids_max")) {
      r.BadValue("optional",
                 "'optional' applies to memory_max and pids_max (cgroup v2), and neither is set");
    } else {
      c.limits.cgroup_optional = *v;
    }
  }
  r.Finish();
}

// `KEY = "MODE"`, or `KEY = { MODE_KEY = "MODE", optional = true }` plus
// whatever other keys `more` reads from the table. A table without MODE_KEY
// takes `table_default`, or is an error without one.
template <typename E>
std::optional<E> Reader::ReadIsolationKey(TableReader& r, std::string_view key,
                                          std::string_view mode_key, const EnumNames<E>& names,
                                          std::string_view what, std::optional<E> table_default,
                                          bool& optional,
                                          const std::function<void(TableReader&)>& more) {
  const toml::node* n = r.Get(key);
  if (n == nullptr) return std::nullopt;
  if (n->is_string()) return r.Enum(key, names, what);
  if (!n->is_table()) {
    r.BadValue(key,
               fmt::format("expected a string or a table, got {}", internal::TypeName(n->type())));
    return std::nullopt;
  }
  TableReader t(ctx_, *n->as_table(), fmt::format("{}.{}", r.path(), key));
  std::optional<E> mode = t.Enum(mode_key, names, what);
  if (!ctx_.Given(fmt::format("{}.{}", t.path(), mode_key))) {
    mode = table_default;
    if (!mode)
      ctx_.Error(t.pos(), fmt::format("{}: missing required key '{}'", t.path(), mode_key));
  }
  if (auto v = t.Bool("optional")) optional = *v;
  if (more) more(t);
  t.Finish();
  return mode;
}

void Reader::ReadIsolation(TableReader& r, Component& c) {
  SeccompSpec& sc = c.seccomp;
  bool extras = false;  // allow or action given
  auto seccomp_table = [&](TableReader& t) {
    if (auto names = t.StringList("allow", true)) {
      for (std::size_t i = 0; i < names->size(); ++i) {
        const std::string& n = (*names)[i];
        if (!IsSyscallName(n)) {
          ctx_.Error(ctx_.At(fmt::format("{}.allow.{}", t.path(), i)),
                     fmt::format("{}.allow: unknown system call '{}'{}", t.path(), n,
                                 DidYouMean(n, SyscallNames())));
          continue;
        }
        sc.allow.push_back(n);
      }
    }
    if (auto v = t.Enum("action", kSeccompActions, "seccomp action")) sc.action = *v;
    extras = ctx_.Given(t.path() + ".allow") || ctx_.Given(t.path() + ".action");
  };
  if (auto v =
          ReadIsolationKey(r, "seccomp", "profile", kSeccompProfiles, "seccomp profile",
                           std::optional(SeccompProfile::kDefault), sc.optional, seccomp_table)) {
    sc.profile = *v;
    if (sc.profile == SeccompProfile::kNone && extras) {
      ctx_.Error(ctx_.At(r.path() + ".seccomp"),
                 fmt::format("{}.seccomp: profile 'none' is no filter at all, so 'allow' and "
                             "'action' do not apply",
                             r.path()));
    }
  }
  if (auto v = ReadIsolationKey(r, "network", "mode", kNetworkModes, "network mode",
                                std::optional<NetworkMode>(), c.network.optional)) {
    c.network.mode = *v;
  }
  if (auto v = ReadIsolationKey(r, "ipc", "mode", kIpcModes, "ipc mode", std::optional<IpcMode>(),
                                c.ipc.optional)) {
    c.ipc.mode = *v;
  }
  if (auto v = ReadIsolationKey(r, "pid", "mode", kPidModes, "pid mode", std::optional<PidMode>(),
                                c.pid.optional)) {
    c.pid.mode = *v;
  }
  if (auto v = ReadIsolationKey(r, "ptrace", "mode", kPtraceModes, "ptrace mode",
                                std::optional<PtraceMode>(), c.ptrace.optional)) {
    c.ptrace.mode = *v;
    c.ptrace.given = true;
  }
  if (auto v =
          ReadIsolationKey(r, "block_devices", "mode", kBlockDevicesModes, "block_devices mode",
                           std::optional<BlockDevicesMode>(), c.block_devices.optional)) {
    c.block_devices.mode = *v;
    c.block_devices.given = true;
  }
  // read_only_root = true | false | { enabled = true, optional = true }.
  ReadOnlyRootSpec& ro = c.read_only_root;
  if (const toml::node* n = r.Get("read_only_root")) {
    if (n->is_boolean()) {
      ro.enabled = r.Bool("read_only_root").value_or(false);
    } else if (n->is_table()) {
      TableReader t(ctx_, *n->as_table(), r.path() + ".read_only_root");
      ro.enabled = t.Bool("enabled").value_or(true);
      if (auto v = t.Bool("optional")) ro.optional = *v;
      t.Finish();
    } else {
      r.BadValue("read_only_root", fmt::format("expected true, false or a table, got {}",
                                               internal::TypeName(n->type())));
    }
  }
  if (auto v = r.StringList("writable", false)) {
    for (const std::string& p : *v) ro.writable.push_back(Resolve(p));
    if (!ro.enabled) {
      ctx_.Error(ctx_.At(r.path() + ".writable"),
                 fmt::format("{}.writable: only with read_only_root = true (without it every "
                             "path is as writable as the host has it)",
                             r.path()));
    }
  }
}

Component Reader::ReadComponent(TableReader& r) {
  Component c;
  if (auto v = ReadCommand(r, "exec")) {
    c.exec = std::move(*v);
  } else if (r.Get("exec") == nullptr) {
    ctx_.Error(r.pos(),
               fmt::format("{}: missing required key 'exec' (the command to run)", r.path()));
  }
  if (auto v = r.Enum("restart", kRestartTypes, "restart type")) c.restart = *v;
  c.shutdown = Shutdown{Shutdown::Kind::kTimeout, std::chrono::seconds(5)};
  if (auto v = ReadShutdown(r)) c.shutdown = *v;
  if (auto v = ReadReadiness(r)) c.ready = *v;
  c.ready_timeout = std::chrono::seconds(90);
  if (auto v = r.DurationValue("ready_timeout", false, true)) {
    c.ready_timeout = *v == Duration::max() ? std::nullopt : std::optional<Duration>(*v);
  }
  c.heartbeat = r.DurationValue("heartbeat", false);
  if (auto v = r.StringMap("env")) {
    for (const auto& [k, val] : *v) {
      if (k.empty() || k.find('=') != std::string::npos) {
        r.BadValue("env", fmt::format("'{}' is not a valid environment variable name", k));
      }
    }
    c.env = std::move(*v);
  }
  if (auto v = r.StringList("devices", true)) c.devices = std::move(*v);
  c.state = ReadState(r);
  if (auto v = ReadCommand(r, "sanitize")) c.sanitize = std::move(*v);
  c.sanitize_timeout = r.DurationValue("sanitize_timeout", false);
  if (c.sanitize_timeout && r.Get("sanitize") == nullptr) {
    r.BadValue("sanitize_timeout",
               "a sanitize_timeout needs a sanitize command (sanitize = [\"bin/fsck\"])");
  }
  c.backoff = ReadBackoff(r);
  c.healthy_after = r.DurationValue("healthy_after", false);
  c.on_persistent_failure = ReadLadder(r);
  if (auto v = r.Integer("standby", 0, 64)) c.standby = static_cast<int>(*v);
  if (auto v = r.Bool("significant")) c.significant = *v;
  if (auto v = r.Bool("critical")) c.critical = *v;
  ReadIdentity(r, c);
  ReadLimits(r, c);
  ReadIsolation(r, c);
  if (const toml::node* n = r.Get("normal_exit_codes")) {
    const toml::array* a = n->as_array();
    if (a == nullptr) {
      r.BadValue("normal_exit_codes", fmt::format("expected an array of exit codes, got {}",
                                                  internal::TypeName(n->type())));
    } else {
      for (const toml::node& e : *a) {
        std::optional<std::int64_t> code = e.value<std::int64_t>();
        if (!e.is_integer() || !code || *code < 0 || *code > 255) {
          ctx_.Error(
              PosOf(e.source()),
              fmt::format("{}.normal_exit_codes: expected an exit code from 0 to 255", r.path()));
          continue;
        }
        c.normal_exit_codes.push_back(static_cast<int>(*code));
      }
    }
  }
  return c;
}

Channel Reader::ReadChannel(TableReader& r) {
  Channel ch;
  for (std::string_view end : {"from", "to"}) {
    auto v = r.String(end);
    if (!v && r.Get(end) == nullptr) {
      ctx_.Error(r.pos(), fmt::format("{}: missing required key '{}'", r.path(), end));
    }
    if (v) (end == "from" ? ch.from : ch.to) = *v;
  }
  if (auto v = r.Integer("capacity", 1, 1 << 24)) ch.capacity = static_cast<std::uint64_t>(*v);
  if (auto v = r.Size("max_message")) {
    if (*v > (64u << 20)) {
      r.BadValue("max_message", fmt::format("must be at most 64MiB, got {}", FormatSize(*v)));
    } else {
      ch.max_message = *v;
    }
  }
  if (auto v = r.Integer("max_deliveries", 1, 1000)) ch.max_deliveries = static_cast<int>(*v);
  return ch;
}

Device Reader::ReadDevice(TableReader& r) {
  Device d;
  if (auto v = ReadCommand(r, "reset")) d.reset = std::move(*v);
  if (auto v = r.DurationValue("reset_timeout", false)) d.reset_timeout = *v;
  if (auto v = ReadCommand(r, "wedge")) d.wedge = std::move(*v);
  return d;
}

ParseResult Finish(std::string path, Context& ctx, std::unique_ptr<System> sys) {
  ParseResult result;
  result.file = std::move(path);
  result.diagnostics = std::move(ctx.diagnostics());
  SortDiagnostics(result.diagnostics);
  if (sys && !HasErrors(result.diagnostics)) result.system = std::move(sys);
  return result;
}

}  // namespace

std::string ParseResult::Report() const {
  std::string out;
  for (const auto& d : diagnostics) {
    out += FormatDiagnostic(d, file);
    out += '\n';
  }
  return out;
}

ParseResult ParseText(std::string_view text, const std::string& path) {
  Context ctx;
  auto sys = std::make_unique<System>();
  std::error_code ec;
  fs::path abs = fs::absolute(fs::path(path), ec);
  if (ec) abs = fs::path(path);
  abs = abs.lexically_normal();
  sys->file = abs.string();
  sys->base_dir = abs.parent_path().string();
  sys->name = abs.stem().string();
  sys->state_dir = (abs.parent_path() / ".slate").string();

  toml::table root;
  try {
    root = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    ctx.Error(PosOf(e.source()), fmt::format("TOML syntax: {}", e.description()));
    return Finish(path, ctx, nullptr);
  }
  Reader reader(ctx, sys->base_dir);
  reader.ReadRoot(root, *sys);
  internal::Validate(*sys, ctx);
  return Finish(path, ctx, std::move(sys));
}

ParseResult ParseFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    ParseResult r;
    r.file = path;
    r.diagnostics.push_back(
        {Severity::kError, 0, 0,
         fmt::format("cannot read: {}", std::system_category().message(errno))});
    return r;
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  return ParseText(buf.str(), path);
}

std::string_view ToString(Strategy s) {
  return NameOf(kStrategies, s);
}
std::string_view ToString(RestartType r) {
  return NameOf(kRestartTypes, r);
}
std::string_view ToString(AutoShutdown a) {
  return NameOf(kAutoShutdowns, a);
}
std::string_view ToString(Durability d) {
  return NameOf(kDurabilities, d);
}
std::string_view ToString(LadderStep s) {
  return NameOf(kLadderSteps, s);
}
std::string_view ToString(SeccompProfile p) {
  return NameOf(kSeccompProfiles, p);
}
std::string_view ToString(SeccompAction a) {
  return NameOf(kSeccompActions, a);
}
std::string_view ToString(NetworkMode m) {
  return NameOf(kNetworkModes, m);
}
std::string_view ToString(IpcMode m) {
  return NameOf(kIpcModes, m);
}

std::string_view ToString(PidMode m) {
  return NameOf(kPidModes, m);
}

std::string_view ToString(PtraceMode m) {
  return NameOf(kPtraceModes, m);
}

std::string_view ToString(BlockDevicesMode m) {
  return NameOf(kBlockDevicesModes, m);
}

}  // namespace slate::spec
