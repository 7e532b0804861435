// Runs `slate run` on a system file written by the test, in a fresh state
// directory, and gives the test the journal, `slate status --json` and the
// CLI. Everything the tests assert goes through what a user sees: the
// journal, the status, exit codes.
#pragma once

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

extern char** environ;

namespace slate::testing {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using std::chrono::milliseconds;

inline const std::string kSlate = SLATE_BINARY;
inline const std::string kTestee = SLATE_TESTEE;
#ifdef SLATE_PEER
inline const std::string kPeer = SLATE_PEER;  // tests/libslate's component
#endif

struct CommandOutput {
  int code = -1;
  std::string out;
};

// Runs a command to completion, capturing stdout and stderr together.
inline CommandOutput Command(const std::vector<std::string>& argv) {
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return {};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
  posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(pipefd[1]);
  CommandOutput r;
  if (rc != 0) {
    ::close(pipefd[0]);
    return r;
  }
  char buf[4096];
  ssize_t n;
  while ((n = ::read(pipefd[0], buf, sizeof(buf))) > 0) r.out.append(buf, static_cast<size_t>(n));
  ::close(pipefd[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

// The 8-byte little-endian numbers a test component appended to `path`.
inline std::vector<std::uint64_t> ReadNumbers(const std::string& path) {
  std::vector<std::uint64_t> out;
  std::ifstream in(path, std::ios::binary);
  std::uint64_t v = 0;
  while (in.read(reinterpret_cast<char*>(&v), sizeof v)) out.push_back(v);
  return out;
}

class SystemUnderTest {
 public:
  // `toml` may use {testee} for the testee's path (and {peer} for
  // slate_peer's where SLATE_PEER is defined); state_dir is set here.
  explicit SystemUnderTest(const std::string& toml) {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    // Short enough for the sockets under it (108 bytes for a Unix socket path).
    std::string test = fmt::format("{}-{}", info->test_suite_name(), info->name());
    for (char& ch : test) {
      if (ch == '/') ch = '-';
    }
    if (test.size() > 40) test = test.substr(0, 40);
    dir_ = fs::temp_directory_path() / fmt::format("slate-it-{}-{}", test, ::getpid());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    file_ = (dir_ / "system.toml").string();
    std::string text = toml;
    std::vector<std::pair<std::string_view, std::string>> paths{{"{testee}", kTestee}};
#ifdef SLATE_PEER
    paths.emplace_back("{peer}", kPeer);
#endif
    for (const auto& [name, path] : paths) {
      for (std::size_t at; (at = text.find(name)) != std::string::npos;) {
        text.replace(at, name.size(), path);
      }
    }
    std::ofstream(file_) << "[system]\nname = \"it\"\nroot = \"main\"\nstate_dir = \"state\"\n"
                         << text;
  }

  ~SystemUnderTest() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      // Its components outlive a killed runtime (until the next one cleans
      // up): end them, so that nothing writes into the directory below.
      for (const std::string& root :
           {std::string("/sys/fs/cgroup/unified"), std::string("/sys/fs/cgroup"), cgroup_}) {
        std::error_code ec;
        fs::path tree = fs::path(root) / fmt::format("slate-{}", pid_);
        for (const auto& leaf : fs::directory_iterator(tree, ec)) {
          std::ofstream(leaf.path() / "cgroup.kill") << "1";
        }
      }
    }
    std::error_code ec;
    if (!::testing::Test::HasFailure()) fs::remove_all(dir_, ec);
  }

  std::string state_dir() const {
    return (dir_ / "state").string();
  }
  std::string dir() const {
    return dir_.string();
  }
  pid_t pid() const {
    return pid_;
  }

  // Starts `slate run` in the background; its output goes to run.log. With
  // `cgroup` (a cgroup v2 directory), in that cgroup.
  void Start(const std::string& cgroup = "") {
    std::string log = (dir_ / "run.log").string();
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    std::vector<std::string> argv{kSlate, "run", file_};
    if (!cgroup.empty()) {
      cgroup_ = cgroup;
      argv.insert(argv.begin(),
                  {"/bin/sh", "-c", R"(echo $$ > "$0/cgroup.procs" && exec "$@")", cgroup});
    }
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    ASSERT_EQ(posix_spawn(&pid_, args[0], &fa, nullptr, args.data(), environ), 0);
    posix_spawn_file_actions_destroy(&fa);
  }

  // Starts and waits for this run's system_started (the journal keeps the
  // earlier runs' lines).
  void StartReady(milliseconds timeout = milliseconds(10000)) {
    const std::size_t before = Events("system_started").size();
    Start();
    ASSERT_TRUE(WaitEvent("system_started", "", timeout, before + 1)) << RunLog();
  }

  // Waits for `slate run` to end; its exit code, or nullopt on timeout.
  std::optional<int> Wait(milliseconds timeout = milliseconds(20000)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(milliseconds(5));
    }
    return std::nullopt;
  }

  std::vector<Json> Events() const {
    std::vector<Json> out;
    std::ifstream in(fs::path(state_dir()) / "events.jsonl");
    for (std::string line; std::getline(in, line);) {
      auto j = Json::parse(line, nullptr, false);
      if (!j.is_discarded()) out.push_back(j);
    }
    return out;
  }

  // Events of one kind (and node, if given).
  std::vector<Json> Events(const std::string& event, const std::string& node = "") const {
    std::vector<Json> out;
    for (auto& e : Events()) {
      if (e["event"] == event && (node.empty() || e.value("node", "") == node)) out.push_back(e);
    }
    return out;
  }

  bool WaitEvent(const std::string& event, const std::string& node = "",
                 milliseconds timeout = milliseconds(10000), std::size_t count = 1) const {
    return WaitUntil([&] { return Events(event, node).size() >= count; }, timeout);
  }

  static bool WaitUntil(const std::function<bool()>& pred, milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (pred()) return true;
      std::this_thread::sleep_for(milliseconds(5));
    }
    return pred();
  }

  CommandOutput Cli(std::vector<std::string> args) const {
    args.insert(args.begin(), kSlate);
    args.push_back("--state-dir");
    args.push_back(state_dir());
    return Command(args);
  }

  Json Status() const {
    CommandOutput r = Cli({"status", "--json"});
    auto j = Json::parse(r.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.out;
    return j;
  }

  // One status request straight on the control socket, without the CLI's
  // process start-up: how long the runtime takes to answer, or -1 ms.
  milliseconds AskStatus() const {
    auto t0 = std::chrono::steady_clock::now();
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::string path = state_dir() + "/control.sock";
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    std::string reply;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
      std::string req = "{\"verb\":\"status\"}\n";
      (void)!::write(fd, req.data(), req.size());
      char buf[65536];
      ssize_t n;
      while ((n = ::read(fd, buf, sizeof(buf))) > 0) reply.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    if (reply.find("\"ok\":true") == std::string::npos) return milliseconds(-1);
    return std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - t0);
  }

  Json Node(const std::string& name) const {
    Json status = Status();  // not a temporary: the loop below refers into it
    for (auto& n : status["nodes"]) {
      if (n["name"] == name) return n;
    }
    return Json();
  }

  // A component's log, state_dir/logs/NAME.log, as it is now.
  std::string ComponentLog(const std::string& name) const {
    std::ifstream in(fs::path(state_dir()) / "logs" / (name + ".log"));
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  std::string RunLog() const {
    std::ifstream in(dir_ / "run.log");
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  std::string file() const {
    return file_;
  }

  // Replaces the first `what` in the system file, for values known only
  // once the test's folder exists.
  void Replace(const std::string& what, const std::string& with) {
    std::ifstream in(file_);
    std::stringstream b;
    b << in.rdbuf();
    std::string text = b.str();
    auto at = text.find(what);
    ASSERT_NE(at, std::string::npos) << what;
    text.replace(at, what.size(), with);
    std::ofstream(file_) << text;
  }

 private:
  fs::path dir_;
  std::string file_;
  std::string cgroup_;  // where Start put `slate run`, if not in ours
  pid_t pid_ = -1;
};

// The whole of /proc/PID/NAME, or "" once the process is gone. read(2), not
// a stream: a process that ends while it is read makes read(2) fail with
// ESRCH, which libstdc++'s filebuf throws as an exception.
inline std::string ProcFile(pid_t pid, const char* name) {
  std::string out;
  const int fd = ::open(fmt::format("/proc/{}/{}", pid, name).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  char buf[4096];
  ssize_t n = 0;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  return n < 0 ? std::string() : out;
}

inline bool Alive(pid_t pid) {
  if (::kill(pid, 0) != 0) return false;
  // A zombie still answers kill(0); count it as dead. So is a process
  // reaped since kill(0), whose stat reads as "".
  const std::string content = ProcFile(pid, "stat");
  if (content.empty()) return false;
  auto close = content.rfind(')');
  return close == std::string::npos || content.size() < close + 3 || content[close + 2] != 'Z';
}

inline std::vector<pid_t> ReadPids(const std::string& file) {
  std::vector<pid_t> out;
  std::ifstream in(file);
  for (pid_t p; in >> p;) out.push_back(p);
  return out;
}

inline int CountFds(pid_t pid) {
  int n = 0;
  for ([[maybe_unused]] auto& e : fs::directory_iterator(fmt::format("/proc/{}/fd", pid))) ++n;
  return n;
}

// Zombie children of `pid`.
inline int Zombies(pid_t parent) {
  int n = 0;
  for (auto& e : fs::directory_iterator("/proc")) {
    std::string name = e.path().filename();
    if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) continue;
    std::ifstream in(e.path() / "stat");
    std::string content((std::istreambuf_iterator<char>(in)), {});
    auto close = content.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(content.substr(close + 2));
    char state = 0;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid == parent && state == 'Z') ++n;
  }
  return n;
}

}  // namespace slate::testing
