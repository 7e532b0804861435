// The validated model of a system file (SPEC section 2).
//
// A `System` is produced only by `spec::Parse` after every check has passed;
// it is immutable afterwards and shared as `std::shared_ptr<const System>`.
// Every name it holds refers to something that exists: children, channel ends,
// devices and templates are resolved and checked for cycles and double owners.
// All paths are absolute.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace slate::spec {

using Duration = std::chrono::nanoseconds;

// Where a definition stands in the system file, for messages that come later
// (the runtime names the line of a component whose image cannot be started).
struct SourcePos {
  int line = 0;
  int column = 0;
};

enum class Strategy { kOneForOne, kOneForAll, kRestForOne, kSimpleOneForOne };
enum class RestartType { kPermanent, kTransient, kTemporary };
enum class AutoShutdown { kNever, kAnySignificant, kAllSignificant };
enum class Durability { kProcess, kPower };

enum class LadderStep {
  kRollbackState,
  kResetState,
  kSanitizeState,
  kRevertImage,
  kReinstallImage,
  kResetDevice,
  kEscalate,
  kGiveUp,
};

// How a child is stopped: SIGTERM then SIGKILL after `timeout`, SIGKILL at
// once, or SIGTERM and wait as long as it takes (OTP's shutdown values).
struct Shutdown {
  enum class Kind { kTimeout, kBrutalKill, kInfinity };
  Kind kind = Kind::kTimeout;
  Duration timeout{};  // meaningful for kTimeout only

  friend bool operator==(const Shutdown&, const Shutdown&) = default;
};

// How a component says it is ready: at once after spawn, by sd_notify
// READY=1, or by writing a newline to descriptor `fd` (s6 style).
struct Readiness {
  enum class Kind { kSpawn, kNotify, kFd };
  Kind kind = Kind::kSpawn;
  int fd = -1;  // meaningful for kFd only

  friend bool operator==(const Readiness&, const Readiness&) = default;
};

// Delay before restart n of a streak: 0 for n = 1, then
// min(max, initial * factor^(n-2)) with +-10% jitter (SPEC section 4).
struct Backoff {
  Duration initial{};
  Duration max{};
  double factor = 2.0;
};

struct PersistentFailurePolicy {
  int after = 3;  // streak length that triggers the next step
  std::vector<LadderStep> steps;
};

struct StateSpec {
  std::uint64_t size = 0;                    // bytes; the store's map size
  std::optional<Duration> checkpoint_every;  // none: no periodic checkpoints
  int keep = 3;                              // checkpoints kept
  Durability durability = Durability::kProcess;
};

// Isolation a component asks for beyond its user and capabilities. Each
// is `optional` or not: where the host lacks it, an optional one is left
// out (the runtime says so at start) and any other stops the start.
enum class SeccompProfile { kNone, kDefault };
enum class SeccompAction { kKill, kErrno };
enum class NetworkMode { kHost, kNone, kLoopback };
enum class IpcMode { kHost, kPrivate };
enum class PidMode { kHost, kPrivate };
enum class PtraceMode { kOwn, kHost };
enum class BlockDevicesMode { kNone, kHost };

// A system-call allow-list: the profile plus `allow` (libseccomp's names).
struct SeccompSpec {
  SeccompProfile profile = SeccompProfile::kNone;  // kNone: no filter at all
  std::vector<std::string> allow;
  SeccompAction action = SeccompAction::kKill;  // what a call outside the list does
  bool optional = false;
};

struct NetworkSpec {
  NetworkMode mode = NetworkMode::kHost;
  bool optional = false;
};

struct IpcSpec {
  IpcMode mode = IpcMode::kHost;
  bool optional = false;
};

// A PID namespace of its own, with its own /proc: it sees no process but
// its own tree, and so no other component's /proc/PID/root.
struct PidSpec {
  PidMode mode = PidMode::kHost;
  bool optional = false;
};

// Which processes it may trace, or look into through /proc/PID (root, cwd,
// fd, mem, environ, maps, ...): kOwn, only its own tree's (a Landlock
// domain of its own, which also takes mount(2) from it); kHost, any the
// kernel lets it (its user's, or all with CAP_SYS_PTRACE). Not `given`,
// kOwn where the host can give it and kHost, with a warning, where not;
// given, kOwn is demanded like the namespaces (or `optional`).
struct PtraceSpec {
  PtraceMode mode = PtraceMode::kOwn;
  bool given = false;
  bool optional = false;
};

// Whether it may open block devices (disks: reading one raw reads every
// file on it): kNone, none (a cgroup device filter, checked by the kernel
// whatever its user and capabilities); kHost, as its user may. Defaults and
// `given` as PtraceSpec's.
struct BlockDevicesSpec {
  BlockDevicesMode mode = BlockDevicesMode::kNone;
  bool given = false;
  bool optional = false;
};

// A read-only view of the whole file system but for `writable` (absolute,
// resolved against the system file's folder), /dev, /proc and what the
// runtime keeps writable (its store, its notify socket).
struct ReadOnlyRootSpec {
  bool enabled = false;
  std::vector<std::string> writable;
  bool optional = false;
};

struct Component {
  std::string name;
  SourcePos pos;
  std::vector<std::string> exec;  // exec[0] is absolute
  RestartType restart = RestartType::kPermanent;
  Shutdown shutdown;
  Readiness ready;
  std::optional<Duration> ready_timeout;  // none: wait forever
  std::optional<Duration> heartbeat;      // none: no hang detection
  std::map<std::string, std::string> env;
  std::vector<std::string> devices;
  std::optional<StateSpec> state;
  std::vector<std::string> sanitize;         // sanitize[0] is absolute when present
  std::optional<Duration> sanitize_timeout;  // none: 60 s
  std::optional<Backoff> backoff;
  std::optional<Duration> healthy_after;
  std::optional<PersistentFailurePolicy> on_persistent_failure;
  int standby = 0;
  bool significant = false;
  bool critical = false;
  std::vector<int> normal_exit_codes;  // besides 0
  // Who it runs as: a user name or number, and a group name or number;
  // none: the runtime's own. Resolved on the host by the runtime at start.
  std::optional<std::string> user;
  std::optional<std::string> group;  // none: the user's primary group
  // The capabilities it keeps, 1 << CAP_* each; every other one is dropped.
  std::uint64_t capabilities = 0;
  bool no_new_privs = true;
  // Resource limits (setrlimit, soft = hard), each optional.
  struct Limits {
    std::optional<std::uint64_t> nofile;         // RLIMIT_NOFILE: open descriptors
    std::optional<std::uint64_t> nproc;          // RLIMIT_NPROC: processes of its user
    std::optional<std::uint64_t> address_space;  // RLIMIT_AS: bytes
    std::optional<Duration> cpu;                 // RLIMIT_CPU: whole seconds of CPU time
    // cgroup v2 limits on the component's own cgroup, each optional:
    std::optional<std::uint64_t> memory_max;  // memory.max: bytes; beyond it, an `oom` end
    std::optional<std::uint64_t> pids_max;    // pids.max: its processes and threads
    // `optional`: where the host cannot give the two above, run without them.
    bool cgroup_optional = false;
    bool wants_cgroup() const { return memory_max.has_value() || pids_max.has_value(); }
  } limits;
  SeccompSpec seccomp;
  NetworkSpec network;  // a network namespace of its own, or the host's
  IpcSpec ipc;          // an IPC namespace of its own, or the host's
  PidSpec pid;          // a PID namespace of its own, or the host's
  PtraceSpec ptrace;    // whose processes it may reach into
  BlockDevicesSpec block_devices;
  ReadOnlyRootSpec read_only_root;
};

struct Supervisor {
  std::string name;
  SourcePos pos;
  Strategy strategy = Strategy::kOneForOne;
  int intensity = 1;
  Duration period = std::chrono::seconds(5);
  RestartType restart = RestartType::kPermanent;
  Shutdown shutdown{Shutdown::Kind::kInfinity, {}};
  AutoShutdown auto_shutdown = AutoShutdown::kNever;
  bool significant = false;
  std::vector<std::string> children;  // start order; empty for simple_one_for_one
  std::string template_name;          // simple_one_for_one only: a component
  int instances = 0;                  // simple_one_for_one only
};

struct Channel {
  std::string name;
  SourcePos pos;
  std::string from;                  // producing component
  std::string to;                    // consuming component
  std::uint64_t capacity = 1024;     // messages
  std::uint64_t max_message = 4096;  // bytes
  int max_deliveries = 3;
};

struct Device {
  std::string name;
  SourcePos pos;
  std::vector<std::string> reset;  // reset[0] is absolute; may be empty
  Duration reset_timeout = std::chrono::seconds(5);
  // How `slate chaos` wedges it (a simulated device, for testing); may be
  // empty. Runs under reset_timeout, as the runtime.
  std::vector<std::string> wedge;
};

struct System {
  std::string file;      // absolute path of the system file
  std::string base_dir;  // its directory; relative paths are resolved here
  std::string name;
  std::string root;       // a supervisor
  std::string state_dir;  // absolute

  // Declaration order, as in the file.
  std::vector<Supervisor> supervisors;
  std::vector<Component> components;
  std::vector<Channel> channels;
  std::vector<Device> devices;

  const Supervisor* FindSupervisor(std::string_view name) const;
  const Component* FindComponent(std::string_view name) const;
  const Channel* FindChannel(std::string_view name) const;
  const Device* FindDevice(std::string_view name) const;
};

std::string_view ToString(Strategy s);
std::string_view ToString(RestartType r);
std::string_view ToString(AutoShutdown a);
std::string_view ToString(Durability d);
std::string_view ToString(LadderStep s);
std::string_view ToString(SeccompProfile p);
std::string_view ToString(SeccompAction a);
std::string_view ToString(NetworkMode m);
std::string_view ToString(IpcMode m);
std::string_view ToString(PidMode m);
std::string_view ToString(PtraceMode m);
std::string_view ToString(BlockDevicesMode m);

}  // namespace slate::spec
