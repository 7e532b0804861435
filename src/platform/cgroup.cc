#include "platform/cgroup.h"

#include <algorithm>
#include <cerrno>
#include <optional>
#include <set>
#include <sstream>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "platform/file_io.h"
#include "platform/pidfd.h"

namespace slate::platform {
namespace {

bool IsOctalDigit(char c) {
  return c >= '0' && c <= '7';
}

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string UnescapeMountField(std::string_view field) {
  std::string out;
  for (size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && i + 3 < field.size() && IsOctalDigit(field[i + 1]) &&
        IsOctalDigit(field[i + 2]) && IsOctalDigit(field[i + 3])) {
      out += static_cast<char>((field[i + 1] - '0') * 64 + (field[i + 2] - '0') * 8 +
                               (field[i + 3] - '0'));
      i += 3;
    } else {
      out += field[i];
    }
  }
  return out;
}

struct MountEntry {
  std::string root;         // path inside the filesystem that is mounted
  std::string mount_point;  // where
};

// Line format (proc(5)): ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [TAGS...] - FSTYPE SRC SUPER
std::vector<MountEntry> FindCgroup2Mounts(const std::string& mountinfo) {
  std::vector<MountEntry> mounts;
  std::istringstream lines(mountinfo);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::vector<std::string> fields;
    for (std::string word; words >> word;) {
      fields.push_back(word);
    }
    const auto dash = std::find(fields.begin(), fields.end(), "-");
    if (fields.size() < 5 || dash == fields.end() || dash + 1 == fields.end() ||
        *(dash + 1) != "cgroup2") {
      continue;
    }
    mounts.push_back({UnescapeMountField(fields[3]), UnescapeMountField(fields[4])});
  }
  return mounts;
}

// The v2 entry of /proc/PID/cgroup is the line "0::PATH".
std::optional<std::string> V2CgroupName(const std::string& proc_cgroup) {
  std::istringstream lines(proc_cgroup);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("0::", 0) == 0) {
      return line.substr(3);
    }
  }
  return std::nullopt;
}

bool IsWithin(std::string_view path, std::string_view dir) {
  if (dir == "/") {
    return !path.empty() && path[0] == '/';
  }
  return path.substr(0, dir.size()) == dir &&
         (path.size() == dir.size() || path[dir.size()] == '/');
}

std::string JoinPath(std::string_view dir, std::string_view name) {
  std::string out(dir);
  if (out.empty() || out.back() != '/') {
    out += '/';
  }
  out += name;
  return out;
}

bool IsValidName(std::string_view name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string_view::npos &&
         name.find('\0') == std::string_view::npos;
}

Result<std::vector<pid_t>> ReadMembers(const CgroupHandle& cgroup) {
  auto text = ReadFileAt(cgroup.dir_fd(), "cgroup.procs");
  if (!text) {
    return MakeError(cgroup.path() + ": " + text.error().message);
  }
  std::vector<pid_t> pids;
  std::istringstream numbers(*text);
  for (pid_t pid = 0; numbers >> pid;) {
    pids.push_back(pid);
  }
  return pids;
}

// Signals `pid` if it is (still) a member. The pidfd pins the process: if the
// signal is delivered, the process was alive since pidfd_open, so the
// membership check in between looked at this process and not a pid reuser.
Status SignalMember(const CgroupHandle& cgroup, pid_t pid, int sig) {
  UniqueFd pidfd(PidfdOpen(pid));
  if (!pidfd.valid()) {
    return errno == ESRCH ? OkStatus() : ErrnoError("pidfd_open " + std::to_string(pid), errno);
  }
  auto member = cgroup.Contains(pid);
  if (!member) {
    return member.error();
  }
  if (*member && PidfdSendSignal(pidfd.get(), sig) != 0 && errno != ESRCH) {
    return ErrnoError("pidfd_send_signal " + std::to_string(pid), errno);
  }
  return OkStatus();
}

Result<Cgroup> MakeCgroupDir(const std::string& path, std::string name) {
  if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
    return ErrnoError("mkdir " + path, errno);
  }
  auto handle = CgroupHandle::Open(path, std::move(name));
  if (!handle) {
    return handle.error();
  }
  return Cgroup(std::move(handle).value());
}

// The words of a space-separated control file (cgroup.controllers,
// cgroup.subtree_control).
Result<std::set<std::string>> ReadWords(int dir_fd, const std::string& dir, const char* file) {
  auto text = ReadFileAt(dir_fd, file);
  if (!text) {
    return MakeError(dir + ": " + text.error().message);
  }
  std::set<std::string> words;
  std::istringstream in(*text);
  for (std::string w; in >> w;) {
    words.insert(w);
  }
  return words;
}

// "+memory +pids" (sign "+"), "-memory -pids" (sign "-"), "memory pids"
// (sign "").
std::string ControllerList(const std::vector<std::string>& names, std::string_view sign) {
  std::string out;
  for (const std::string& n : names) {
    // Piece by piece: GCC 12 at -O3 takes the temporary of " " + sign + n
    // for an overlapping memcpy (a false -Wrestrict, GCC bug 105329).
    if (!out.empty()) out += ' ';
    out.append(sign);
    out.append(n);
  }
  return out;
}

// Moves this process (all its threads) into `cgroup`.
Status MoveSelf(const CgroupHandle& cgroup) {
  auto moved = WriteFileAt(cgroup.dir_fd(), "cgroup.procs", std::to_string(::getpid()));
  return moved ? moved : MakeError(cgroup.path() + ": " + moved.error().message);
}

}  // namespace

Result<Cgroup2Location> LocateCgroup2() {
  auto mountinfo = ReadFile("/proc/self/mountinfo");
  if (!mountinfo) {
    return mountinfo.error();
  }
  auto proc_cgroup = ReadFile("/proc/self/cgroup");
  if (!proc_cgroup) {
    return proc_cgroup.error();
  }
  const auto own = V2CgroupName(*proc_cgroup);
  if (!own) {
    return MakeError("no cgroup v2 entry in /proc/self/cgroup (cgroup v1 only)");
  }
  const auto mounts = FindCgroup2Mounts(*mountinfo);
  if (mounts.empty()) {
    return MakeError("cgroup2 is not mounted");
  }
  // Inside a container the mount may show only a subtree (ROOT != "/").
  for (const MountEntry& m : mounts) {
    if (IsWithin(*own, m.root)) {
      std::string_view rest = *own;
      rest.remove_prefix(m.root == "/" ? 0 : m.root.size());
      while (!rest.empty() && rest.front() == '/') {
        rest.remove_prefix(1);
      }
      return Cgroup2Location{m.mount_point, *own,
                             rest.empty() ? m.mount_point : JoinPath(m.mount_point, rest)};
    }
  }
  return MakeError("our cgroup " + *own + " is not visible under any cgroup2 mount");
}

Result<CgroupHandle> CgroupHandle::Open(std::string path, std::string name) {
  UniqueFd dir(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid()) {
    return ErrnoError("open " + path, errno);
  }
  return CgroupHandle(std::move(dir), std::move(path), std::move(name));
}

Result<CgroupHandle> CgroupHandle::Duplicate() const {
  UniqueFd dir(::fcntl(dir_.get(), F_DUPFD_CLOEXEC, 3));
  if (!dir.valid()) {
    return ErrnoError("dup " + path_, errno);
  }
  return CgroupHandle(std::move(dir), path_, name_);
}

void CgroupHandle::OpenKillFile() {
  kill_.Reset(::openat(dir_.get(), "cgroup.kill", O_WRONLY | O_CLOEXEC | O_NOCTTY));
}

bool CgroupHandle::has_kill_file() const {
  return ::faccessat(dir_.get(), "cgroup.kill", F_OK, 0) == 0;
}

Status CgroupHandle::Kill() const {
  // On a restart's path: the descriptor opened ahead, else one open, not a
  // look first (Linux >= 5.14 has it).
  UniqueFd opened;
  if (!kill_.valid()) {
    opened.Reset(::openat(dir_.get(), "cgroup.kill", O_WRONLY | O_CLOEXEC | O_NOCTTY));
  }
  const int kill_file = kill_.valid() ? kill_.get() : opened.get();
  if (kill_file >= 0) {
    ssize_t n;
    do {
      n = ::write(kill_file, "1", 1);
    } while (n < 0 && errno == EINTR);
    const int error = n < 0 ? errno : EIO;
    if (n == 1) return OkStatus();
    return ErrnoError(path_ + ": write cgroup.kill", error);
  }
  if (const int error = errno; error != ENOENT) {
    return ErrnoError(path_ + ": open cgroup.kill", error);
  }
  // Without cgroup.kill a forking process can add members while we iterate.
  std::set<pid_t> signalled;
  for (int round = 0; round < 16; ++round) {
    auto pids = ReadMembers(*this);
    if (!pids) {
      return pids.error();
    }
    const bool anything_new =
        std::any_of(pids->begin(), pids->end(), [&](pid_t p) { return signalled.count(p) == 0; });
    if (!anything_new) {
      break;
    }
    if (auto status = Signal(SIGKILL); !status) {
      return status;
    }
    signalled.insert(pids->begin(), pids->end());
  }
  return OkStatus();
}

Status CgroupHandle::Signal(int sig) const {
  auto pids = ReadMembers(*this);
  if (!pids) {
    return pids.error();
  }
  Status first = OkStatus();
  for (pid_t pid : *pids) {
    if (auto status = SignalMember(*this, pid, sig); !status && first) {
      first = status;
    }
  }
  return first;
}

Result<bool> CgroupHandle::IsPopulated() const {
  auto text = ReadFileAt(dir_.get(), "cgroup.events");
  if (!text) {
    return MakeError(path_ + ": " + text.error().message);
  }
  std::istringstream lines(*text);
  std::string key;
  int value = 0;
  while (lines >> key >> value) {
    if (key == "populated") {
      return value != 0;
    }
  }
  return MakeError(path_ + "/cgroup.events has no \"populated\" key");
}

Result<bool> CgroupHandle::Contains(pid_t pid) const {
  auto text = ReadFile("/proc/" + std::to_string(pid) + "/cgroup");
  if (!text) {
    // ENOENT: no such process. ESRCH: it exited between open and read.
    return false;
  }
  const auto name = V2CgroupName(*text);
  return name.has_value() && IsWithin(*name, name_);
}

Status CgroupHandle::Write(std::string_view file, std::string_view value) const {
  auto status = WriteFileAt(dir_.get(), std::string(file), value);
  return status ? status : MakeError(path_ + ": " + status.error().message);
}

Result<std::uint64_t> CgroupHandle::MemoryEvents(std::string_view key) const {
  auto text = ReadFileAt(dir_.get(), "memory.events");
  if (!text) {
    return MakeError(path_ + ": " + text.error().message);
  }
  std::istringstream lines(*text);
  std::string name;
  std::uint64_t count = 0;
  while (lines >> name >> count) {
    if (name == key) {
      return count;
    }
  }
  return MakeError(path_ + "/memory.events has no \"" + std::string(key) + "\" key");
}

Cgroup::Cgroup(Cgroup&& other) noexcept
    : handle_(std::move(other.handle_)), owned_(std::exchange(other.owned_, false)) {}

Cgroup& Cgroup::operator=(Cgroup&& other) noexcept {
  if (this != &other) {
    (void)Remove();
    handle_ = std::move(other.handle_);
    owned_ = std::exchange(other.owned_, false);
  }
  return *this;
}

Cgroup::~Cgroup() {
  (void)Remove();
}

Status Cgroup::Remove() {
  if (!owned_) {
    return OkStatus();
  }
  if (::rmdir(handle_.path().c_str()) != 0 && errno != ENOENT) {
    return ErrnoError("rmdir " + handle_.path(), errno);
  }
  owned_ = false;
  return OkStatus();
}

Result<CgroupTree> CgroupTree::Create(std::string_view name) {
  if (!IsValidName(name)) {
    return MakeError("bad cgroup name \"" + std::string(name) + "\"");
  }
  auto location = LocateCgroup2();
  if (!location) {
    return location.error();
  }
  // Moving a process between two cgroups needs write access to cgroup.procs
  // of their common ancestor, which is OWN for OWN -> OWN/TREE/COMPONENT.
  const std::string procs = JoinPath(location->own_dir, "cgroup.procs");
  if (::faccessat(AT_FDCWD, procs.c_str(), W_OK, AT_EACCESS) != 0) {
    return ErrnoError("cgroup not delegated to us: " + procs, errno);
  }
  auto root = MakeCgroupDir(JoinPath(location->own_dir, name), JoinPath(location->own, name));
  if (!root) {
    return root.error();
  }
  return CgroupTree(std::move(location).value(), std::move(root).value());
}

Result<Cgroup> CgroupTree::CreateChild(std::string_view name) const {
  if (!IsValidName(name)) {
    return MakeError("bad cgroup name \"" + std::string(name) + "\"");
  }
  return MakeCgroupDir(JoinPath(handle().path(), name), JoinPath(handle().name(), name));
}

CgroupTree::CgroupTree(CgroupTree&& other) noexcept
    : location_(std::move(other.location_)),
      root_(std::move(other.root_)),
      leaf_(std::exchange(other.leaf_, std::nullopt)),
      enabled_own_(std::exchange(other.enabled_own_, {})),
      enabled_tree_(std::exchange(other.enabled_tree_, {})) {}

CgroupTree::~CgroupTree() {
  RestoreControllers();
}

Status CgroupTree::EnableControllers(const std::vector<std::string>& controllers) {
  if (controllers.empty()) {
    return OkStatus();
  }
  auto own = CgroupHandle::Open(location_.own_dir, location_.own);
  if (!own) {
    return own.error();
  }
  auto available = ReadWords(own->dir_fd(), own->path(), "cgroup.controllers");
  if (!available) {
    return available.error();
  }
  for (const std::string& c : controllers) {
    if (available->count(c) == 0) {
      return MakeError("the " + c + " controller is not available to cgroup " + location_.own +
                       " (its cgroup.controllers: \"" +
                       ControllerList({available->begin(), available->end()}, "") +
                       "\"); it is bound to a cgroup v1 hierarchy, or not delegated");
    }
  }
  auto on_own = ReadWords(own->dir_fd(), own->path(), "cgroup.subtree_control");
  if (!on_own) {
    return on_own.error();
  }
  std::vector<std::string> missing;
  for (const std::string& c : controllers) {
    if (on_own->count(c) == 0) {
      missing.push_back(c);
    }
  }
  auto fail = [this](const Error& e) {
    RestoreControllers();
    return e;
  };
  // Only the root cgroup (it has no cgroup.type) may hold processes and
  // pass controllers down. Elsewhere writing "+memory" with processes in
  // OWN is refused (EBUSY), but "+pids" is not: it turns OWN into a
  // threaded domain, whose children cannot take memory or pids. So we
  // leave OWN first, whatever we enable. (Processes we start without a
  // cgroup of their own, hooks, follow us into TREE/runtime.)
  const bool root = ::faccessat(own->dir_fd(), "cgroup.type", F_OK, 0) != 0;
  auto members = ReadMembers(*own);
  if (!members) {
    return members.error();
  }
  if (!root && !members->empty()) {
    auto leaf =
        MakeCgroupDir(JoinPath(handle().path(), "runtime"), JoinPath(handle().name(), "runtime"));
    if (!leaf) {
      return leaf.error();
    }
    if (auto moved = MoveSelf(leaf->handle()); !moved) {
      return moved.error();
    }
    leaf_.emplace(std::move(leaf).value());
    auto others = ReadMembers(*own);
    if (!others) {
      return fail(others.error());
    }
    if (!others->empty()) {
      std::string pids;
      for (std::size_t i = 0; i < others->size() && i < 5; ++i) {
        pids += (i == 0 ? "" : ", ") + std::to_string((*others)[i]);
      }
      return fail(MakeError(
          "other processes share cgroup " + location_.own + " (pid " + pids +
          (others->size() > 5 ? ", ..." : "") +
          "), and cgroup v2 passes controllers down only from a cgroup without processes: run "
          "slate in a cgroup of its own (e.g. a systemd service with Delegate=yes)"));
    }
  }
  if (!missing.empty()) {
    if (auto enabled = own->Write("cgroup.subtree_control", ControllerList(missing, "+"));
        !enabled) {
      return fail(enabled.error());
    }
    // The root's are the host's: others may come to rely on them, so we
    // leave them on.
    if (!root) {
      enabled_own_ = missing;
    }
  }
  auto on_tree = handle().Write("cgroup.subtree_control", ControllerList(controllers, "+"));
  if (!on_tree) {
    return fail(on_tree.error());
  }
  enabled_tree_ = controllers;
  return OkStatus();
}

void CgroupTree::RestoreControllers() {
  // Children first: a controller can be turned off in a cgroup only while
  // none of its children passes it on.
  if (!enabled_tree_.empty()) {
    (void)handle().Write("cgroup.subtree_control", ControllerList(enabled_tree_, "-"));
    enabled_tree_.clear();
  }
  if (!enabled_own_.empty() || leaf_) {
    auto own = CgroupHandle::Open(location_.own_dir, location_.own);
    if (own && !enabled_own_.empty()) {
      (void)own->Write("cgroup.subtree_control", ControllerList(enabled_own_, "-"));
    }
    enabled_own_.clear();
    if (own && leaf_ && MoveSelf(*own)) {
      leaf_.reset();  // removes TREE/runtime, empty now
    }
  }
}

std::string CgroupTree::Describe() const {
  return "cgroup v2 at " + location_.mount + ", components under " + handle().name() +
         " (cgroup.kill: " + (has_kill_file() ? "yes" : "no, signalling members instead") + ")";
}

}  // namespace slate::platform
