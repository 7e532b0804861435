#include "common/bench_util.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

extern char** environ;

namespace slate::bench {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::vector<char*> Pointers(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) == 0) {
      auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(" \t", colon + 1));
    }
  }
  return "unknown";
}

// Processes we started and have not reaped yet, for the signal handler.
constexpr std::size_t kMaxTracked = 64;
std::atomic<pid_t> g_tracked[kMaxTracked];

void Track(pid_t pid) {
  for (auto& slot : g_tracked) {
    pid_t empty = 0;
    if (slot.compare_exchange_strong(empty, pid)) return;
  }
}

void Untrack(pid_t pid) {
  for (auto& slot : g_tracked) {
    pid_t expected = pid;
    if (slot.compare_exchange_strong(expected, 0)) return;
  }
}

// An orderly stop first (a runtime removes its cgroups and stops its
// components on SIGTERM), at most 3 s, then SIGKILL. Only async-signal-safe
// calls here.
void OnFatalSignal(int sig) {
  for (auto& slot : g_tracked) {
    pid_t pid = slot.load();
    if (pid > 0) ::kill(pid, SIGTERM);
  }
  for (int round = 0; round < 300; ++round) {
    bool left = false;
    for (auto& slot : g_tracked) {
      pid_t pid = slot.load();
      if (pid > 0 && ::waitpid(pid, nullptr, WNOHANG) == 0) left = true;
    }
    if (!left) break;
    timespec pause{0, 10'000'000};
    ::nanosleep(&pause, nullptr);
  }
  for (auto& slot : g_tracked) {
    pid_t pid = slot.load();
    if (pid > 0) ::kill(pid, SIGKILL);
  }
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

}  // namespace

void KillChildrenOnFatalSignals() {
  static_assert(std::atomic<pid_t>::is_always_lock_free);
  struct sigaction sa {};
  sa.sa_handler = OnFatalSignal;
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGPIPE}) ::sigaction(sig, &sa, nullptr);
}

std::int64_t MonoNs() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

double Median(std::vector<double> samples) {
  if (samples.empty()) return 0;
  std::sort(samples.begin(), samples.end());
  std::size_t n = samples.size();
  return n % 2 == 1 ? samples[n / 2] : (samples[n / 2 - 1] + samples[n / 2]) / 2;
}

double Percentile(std::vector<double> samples, double p) {
  if (samples.empty()) return 0;
  std::sort(samples.begin(), samples.end());
  auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(samples.size())));
  return samples[std::clamp<std::size_t>(rank, 1, samples.size()) - 1];
}

Json Machine() {
  utsname u{};
  ::uname(&u);
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char date[32];
  std::strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", &tm);
  std::ifstream loadavg("/proc/loadavg");
  double load = -1;
  loadavg >> load;
  return {{"nproc", std::thread::hardware_concurrency()},
          {"kernel", fmt::format("{} {} {}", u.sysname, u.release, u.machine)},
          {"cpu", CpuModel()},
          {"date", date},
          {"loadavg_1min_at_start", load}};
}

std::string MachineLine(const Json& m) {
  return fmt::format("{}, {} CPUs, {}, {} (load average {:.2f})", m["cpu"].get<std::string>(),
                     m["nproc"].get<unsigned>(), m["kernel"].get<std::string>(),
                     m["date"].get<std::string>(), m["loadavg_1min_at_start"].get<double>());
}

bool WriteJson(const std::string& path, const Json& j) {
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  std::ofstream out(path, std::ios::trunc);
  out << j.dump(2) << "\n";
  return static_cast<bool>(out);
}

std::string MakeTempDir(const std::string& prefix, const std::string& base) {
  const char* tmp = std::getenv("TMPDIR");
  std::string under = !base.empty() ? base : tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
  std::string templ = fmt::format("{}/{}-XXXXXX", under, prefix);
  if (::mkdtemp(templ.data()) == nullptr) return "";
  return templ;
}

namespace {

// Whether the ext4 holding `path` keeps a journal: jbd2 lists one directory
// per journal, named after the block device ("vda-8"). Without a journal,
// ext4 passes over inodes freed in the last few seconds when it allocates
// (recently_deleted() in fs/ext4/ialloc.c), which makes creating many files
// slow right after many were deleted. Unknown counts as journaled.
bool Ext4HasJournal(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return true;
  std::ifstream uevent(
      fmt::format("/sys/dev/block/{}:{}/uevent", major(st.st_dev), minor(st.st_dev)));
  std::string line;
  std::string device;
  while (std::getline(uevent, line)) {
    if (line.starts_with("DEVNAME=")) device = line.substr(8);
  }
  if (device.empty()) return true;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/fs/jbd2", ec)) {
    if (entry.path().filename().string().starts_with(device + "-")) return true;
  }
  return false;
}

}  // namespace

std::string FileSystemType(const std::string& path) {
  struct statfs st {};
  if (::statfs(path.c_str(), &st) != 0) return "unknown";
  switch (static_cast<unsigned long>(st.f_type)) {
    case 0xEF53: return Ext4HasJournal(path) ? "ext4" : "ext4/nojournal";
    case 0x01021994: return "tmpfs";
    case 0x58465342: return "xfs";
    case 0x9123683E: return "btrfs";
    case 0x794C7630: return "overlayfs";
    default: return fmt::format("0x{:x}", static_cast<unsigned long>(st.f_type));
  }
}

pid_t StartProcess(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env,
                   const std::string& log) {
  std::vector<std::string> args = argv;
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) env.emplace_back(*e);
  for (const auto& kv : extra_env) {
    std::string key = kv.substr(0, kv.find('=') + 1);
    std::erase_if(env, [&](const std::string& s) { return s.rfind(key, 0) == 0; });
    env.push_back(kv);
  }
  auto argp = Pointers(args);
  auto envp = Pointers(env);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  if (log.empty()) {
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  } else {
    posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  }
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, argp[0], &fa, nullptr, argp.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    fmt::print(stderr, "cannot start {}: {}\n", argv[0], std::strerror(rc));
    return -1;
  }
  Track(pid);
  return pid;
}

std::optional<int> WaitExit(pid_t pid, std::chrono::milliseconds timeout) {
  if (pid <= 0) return std::nullopt;
  auto deadline = Clock::now() + timeout;
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      Untrack(pid);
      return status;
    }
    if (r < 0 && errno != EINTR) return std::nullopt;  // not ours, or already reaped
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

std::chrono::nanoseconds StopProcess(pid_t pid, std::chrono::milliseconds grace) {
  if (pid <= 0) return {};
  auto begin = MonoNs();
  ::kill(pid, SIGTERM);
  if (!WaitExit(pid, grace)) {
    ::kill(pid, SIGKILL);
    WaitExit(pid, std::chrono::milliseconds(5000));
  }
  return std::chrono::nanoseconds(MonoNs() - begin);
}

ChildGuard::~ChildGuard() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    WaitExit(pid_, std::chrono::milliseconds(5000));
  }
}

std::chrono::nanoseconds ChildGuard::Stop(std::chrono::milliseconds grace) {
  auto took = StopProcess(pid_, grace);
  pid_ = -1;
  return took;
}

RunResult RunToEnd(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  RunResult r;
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return r;
  std::vector<std::string> args = argv;
  auto argp = Pointers(args);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  auto begin = MonoNs();
  int rc = ::posix_spawn(&pid, argp[0], &fa, nullptr, argp.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(pipefd[1]);
  if (rc != 0) {
    ::close(pipefd[0]);
    return r;
  }
  Track(pid);
  auto deadline = Clock::now() + timeout;
  char buf[65536];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    pollfd p{pipefd[0], POLLIN, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) == 0) {
      ::kill(pid, SIGKILL);  // too slow: give up on it, but never leave it behind
      break;
    }
    ssize_t n = ::read(pipefd[0], buf, sizeof(buf));
    if (n > 0) {
      r.out.append(buf, static_cast<std::size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  ::close(pipefd[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  r.wall_ns = MonoNs() - begin;
  Untrack(pid);
  r.status = status;
  return r;
}

std::optional<long> ProcStatus(pid_t pid, const std::string& field) {
  std::ifstream in(fmt::format("/proc/{}/status", pid));
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(field + ":", 0) == 0) return std::atol(line.c_str() + field.size() + 1);
  }
  return std::nullopt;
}

std::optional<long> ContextSwitches(pid_t pid) {
  std::error_code ec;
  long total = 0;
  bool any = false;
  for (const auto& task : fs::directory_iterator(fmt::format("/proc/{}/task", pid), ec)) {
    std::ifstream in(task.path() / "status");
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("voluntary_ctxt_switches:", 0) == 0 ||
          line.rfind("nonvoluntary_ctxt_switches:", 0) == 0) {
        total += std::atol(line.c_str() + line.find(':') + 1);
        any = true;
      }
    }
  }
  if (!any) return std::nullopt;
  return total;
}

void BecomeSubreaper() {
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);
}

int KillAllChildren() {
  pid_t self = ::getpid();
  int killed = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    std::string name = e.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(e.path() / "stat");
    std::string content((std::istreambuf_iterator<char>(in)), {});
    auto close = content.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(content.substr(close + 2));
    char state = 0;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid != self || state == 'Z') continue;
    ::kill(static_cast<pid_t>(std::atol(name.c_str())), SIGKILL);
    ++killed;
  }
  auto deadline = Clock::now() + std::chrono::milliseconds(5000);
  while (Clock::now() < deadline) {
    pid_t r = ::waitpid(-1, nullptr, WNOHANG);
    if (r < 0) break;  // ECHILD: none left
    if (r == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return killed;
}

bool Alive(pid_t pid) {
  if (pid <= 0 || ::kill(pid, 0) != 0) return false;
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  std::string content((std::istreambuf_iterator<char>(in)), {});
  auto close = content.rfind(')');
  return close == std::string::npos || content.size() < close + 3 || content[close + 2] != 'Z';
}

LineFollower::LineFollower(std::string path, bool watch_dir) : path_(std::move(path)) {
  inotify_ = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (inotify_ >= 0) {
    std::string target = watch_dir ? fs::path(path_).parent_path().string() : path_;
    ::inotify_add_watch(inotify_, target.c_str(), IN_MODIFY | IN_CREATE | IN_CLOSE_WRITE);
  }
}

LineFollower::~LineFollower() {
  if (inotify_ >= 0) ::close(inotify_);
}

bool LineFollower::ReadMore() {
  int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[65536];
  bool got = false;
  for (;;) {
    ssize_t n = ::pread(fd, buf, sizeof(buf), static_cast<off_t>(offset_));
    if (n <= 0) break;
    buffer_.append(buf, static_cast<std::size_t>(n));
    offset_ += static_cast<std::uint64_t>(n);
    got = true;
  }
  ::close(fd);
  return got;
}

std::optional<std::string> LineFollower::Next(Clock::time_point deadline) {
  for (;;) {
    auto nl = buffer_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return line;
    }
    if (ReadMore()) continue;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return std::nullopt;
    // Without inotify, fall back to a short poll interval.
    int wait_ms = inotify_ >= 0 ? static_cast<int>(std::min<long>(left.count(), 100)) : 2;
    if (inotify_ >= 0) {
      pollfd p{inotify_, POLLIN, 0};
      if (::poll(&p, 1, wait_ms) > 0) {
        char events[4096];
        while (::read(inotify_, events, sizeof(events)) > 0) {
        }
      }
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms));
    }
  }
}

std::optional<std::string> FindOnPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    if (dir.empty()) continue;
    std::string candidate = dir + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return std::nullopt;
}

std::string FormatNs(double ns) {
  if (ns < 1e6) return fmt::format("{:.1f} us", ns / 1e3);
  if (ns < 1e9) return fmt::format("{:.2f} ms", ns / 1e6);
  return fmt::format("{:.2f} s", ns / 1e9);
}

}  // namespace slate::bench
