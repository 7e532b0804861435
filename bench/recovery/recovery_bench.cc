// Recovery after `kill -9` of a ready component: from the moment of the kill
// (CLOCK_MONOTONIC just before kill(2)) to the replacement's first
// instruction of its own (the probe's constructor reads the same clock).
//
// Contenders, all in one run, each keeping the same probe alive:
//   floor        a minimal respawn loop (fork, exec, waitpid, at once) that
//                this program runs as a separate process: what any
//                supervisor must pay at least;
//   standby floor  the same loop keeping one spare probe parked (the
//                activation protocol of libslate) and waking it once the
//                running one is reaped: what any supervisor with a warm
//                spare must pay at least;
//   Clean Slate  `slate run` on a one-component system (ready = "spawn"),
//                with a standby spare, in a PID namespace of its own (pid =
//                "private": slate-init starts it), without a Landlock domain
//                of its own (ptrace = "host", to show what the default
//                domain costs), and once more with the probe among
//                --siblings idle others;
//   runit, daemontools, s6 where installed (runsv, supervise, s6-supervise).
// Each runs twice: free to use every CPU, and with the whole benchmark
// pinned to one CPU (--pin-cpu), which takes the scheduler's cross-CPU
// wake-up latency (large on some VMs) out of the comparison. In each
// placement the floors and the Clean Slate systems without siblings run at
// once and take turns kill by kill, so that a slow spell of the machine
// weighs on all of them alike; the siblings' system and the external
// supervisors run one after the other.
//
//   slate_bench_recovery [--kills N] [--settle-ms MS] [--external-kills N]
//                        [--external-settle-ms MS] [--pin-cpu CPU|-1] [--siblings N]
//                        [--out FILE] [--only NAME,...] [--slate PATH]
//
// Prints a table (median, p90, ratio of medians to the floor's in the same
// placement), a breakdown (kill -> death handled, -> replacement running)
// for the floor and Clean Slate, and writes every sample to FILE (default
// bench/results/recovery.json).
#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <sched.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include "common/bench_util.h"

namespace slate::bench {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

struct Options {
  int kills = 30;
  int settle_ms = 20;
  // runsv, supervise and s6-supervise wait a second before restarting a
  // service that ran for less than a second; a longer settle keeps them out
  // of that throttle, so what is measured is their restart path.
  int external_kills = 10;
  int external_settle_ms = 1100;
  int pin_cpu = -2;     // -2: the last CPU; -1: no pinned pass
  int siblings = 1000;  // a second Clean Slate system: the probe plus this many; 0: none
  std::string out = SLATE_BENCH_RESULTS "/recovery.json";
  // --only A,B: run only the contenders whose names contain one of these
  // (the floor always runs: every ratio is to it).
  std::vector<std::string> only;
  // --slate PATH: the runtime to measure (another build of it, for an A/B
  // comparison in one script); default the one built with this bench.
  std::string slate = SLATE_BINARY;
};

struct Stamp {
  std::int64_t ns = 0;
  pid_t pid = 0;
};

std::optional<Stamp> ParseStamp(const std::string& line) {
  Stamp s;
  char* end = nullptr;
  s.ns = std::strtoll(line.c_str(), &end, 10);
  if (end == line.c_str() || *end != ' ') return std::nullopt;
  s.pid = static_cast<pid_t>(std::strtol(end + 1, nullptr, 10));
  if (s.ns <= 0 || s.pid <= 0) return std::nullopt;
  return s;
}

struct Contender {
  std::string name;
  std::string placement;
  std::string status = "ok";  // or why there are no (or fewer) samples
  int settle_ms = 0;
  std::vector<std::int64_t> killed_ns;  // CLOCK_MONOTONIC just before each kill
  std::vector<std::int64_t> stamp_ns;   // the replacement's first instruction
  std::vector<double> samples_ns;       // stamp - killed
  // Where the supervisor says it handled each death (floor: waitpid
  // returned; Clean Slate: child_exited journaled), if it says so.
  std::vector<std::int64_t> handled_ns;
  std::string handled_what;
  std::vector<double> detect_ns;   // handled - killed
  std::vector<double> respawn_ns;  // stamp - handled
};

// One contender under measurement: its supervisor runs, and the probe's
// stamps are read from `stamps`. Step waits `settle_ms`, kills the current
// probe and times its replacement. `supervisor` must stay alive.
class Trial {
 public:
  Trial(Contender& c, const std::string& stamps, pid_t supervisor, int settle_ms)
      : c_(c), follower_(stamps), supervisor_(supervisor), settle_ms_(settle_ms) {
    c_.settle_ms = settle_ms;
  }

  // Waits for the first probe; false (and the contender's status says why)
  // if it does not come within `timeout`.
  bool Begin(milliseconds timeout) {
    auto first = follower_.Next(Clock::now() + timeout);
    current_ = first ? ParseStamp(*first) : std::nullopt;
    if (!current_) {
      c_.status = fmt::format("failed: the probe did not start within {} ms", timeout.count());
      return false;
    }
    return true;
  }

  // One kill and its replacement; false (status set) when that failed.
  bool Step() {
    ++kills_;
    std::this_thread::sleep_for(milliseconds(settle_ms_));
    std::int64_t killed_at = MonoNs();
    if (::kill(current_->pid, SIGKILL) != 0) {
      c_.status = fmt::format("failed: kill {}: {}", current_->pid, std::strerror(errno));
      return false;
    }
    std::optional<Stamp> next;
    auto deadline = Clock::now() + milliseconds(3000);
    while (!next || next->pid == current_->pid) {
      auto line = follower_.Next(deadline);
      if (!line) break;
      next = ParseStamp(*line);
    }
    if (!next || next->pid == current_->pid) {
      c_.status = fmt::format("failed: no replacement within 3 s of kill {}{}", kills_,
                              Alive(supervisor_) ? "" : " (the supervisor is gone)");
      return false;
    }
    c_.killed_ns.push_back(killed_at);
    c_.stamp_ns.push_back(next->ns);
    c_.samples_ns.push_back(static_cast<double>(next->ns - killed_at));
    current_ = next;
    return true;
  }

  // The probe running now (-1 before the first), for the caller to make
  // sure it dies.
  pid_t last() const { return current_ ? current_->pid : -1; }

 private:
  Contender& c_;
  LineFollower follower_;
  pid_t supervisor_;
  int settle_ms_;
  int kills_ = 0;
  std::optional<Stamp> current_;
};

// A contender measured on its own, `kills` times; the last probe's pid goes
// to *last so the caller can make sure it dies.
void Measure(Contender& c, const std::string& stamps, pid_t supervisor, int kills, int settle_ms,
             pid_t* last, milliseconds start_timeout = milliseconds(5000)) {
  Trial trial(c, stamps, supervisor, settle_ms);
  if (trial.Begin(start_timeout)) {
    for (int i = 0; i < kills && trial.Step(); ++i) {
    }
  }
  *last = trial.last();
}

// A contender started and ready for its first kill, to be measured in turn
// with others (Interleave); `stop` ends its supervisor afterwards.
struct Started {
  Contender c;
  std::unique_ptr<Trial> trial;  // null: it failed to start (c.status)
  bool failed = false;
  std::function<void(Started&)> stop;
};

// The contenders take turns kill by kill, `kills` each: a slower spell of
// the machine (on this VM the floor moved by a fifth between runs a minute
// apart) then falls on all of them alike, not on whichever ran during it.
std::vector<Contender> Interleave(std::vector<std::unique_ptr<Started>> started, int kills) {
  for (int i = 0; i < kills; ++i) {
    for (auto& s : started) {
      if (s->trial && !s->failed && !s->trial->Step()) s->failed = true;
    }
  }
  std::vector<Contender> out;
  for (auto& s : started) {
    if (s->stop) s->stop(*s);
    out.push_back(std::move(s->c));
  }
  return out;
}

// Splits each recovery at the first `handled` time inside it.
void Breakdown(Contender& c, std::vector<std::int64_t> handled) {
  std::sort(handled.begin(), handled.end());
  for (std::size_t i = 0; i < c.killed_ns.size(); ++i) {
    auto it = std::lower_bound(handled.begin(), handled.end(), c.killed_ns[i]);
    if (it == handled.end() || *it > c.stamp_ns[i]) continue;
    c.handled_ns.push_back(*it);
    c.detect_ns.push_back(static_cast<double>(*it - c.killed_ns[i]));
    c.respawn_ns.push_back(static_cast<double>(c.stamp_ns[i] - *it));
  }
}

std::vector<std::int64_t> ReadNumbers(const std::string& path) {
  std::vector<std::int64_t> out;
  std::ifstream in(path);
  for (std::int64_t v; in >> v;) out.push_back(v);
  return out;
}

// The mono_ns of every child_exited of the probe in a Clean Slate journal.
std::vector<std::int64_t> ExitsInJournal(const std::string& path) {
  std::vector<std::int64_t> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    auto j = Json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.value("event", "") == "child_exited" &&
        j.value("node", "") == "probe") {
      out.push_back(j.value("mono_ns", std::int64_t{0}));
    }
  }
  return out;
}

// The probe may be a grandchild (not ours to reap); it also dies with its
// parent, this makes sure.
void KillProbe(pid_t pid) {
  if (pid > 0) ::kill(pid, SIGKILL);
}

std::string SelfPath() {
  std::error_code ec;
  return fs::read_symlink("/proc/self/exe", ec).string();
}

// (a) The floor: this program as a respawn loop; with `standby`, the
// standby floor: this program keeping one parked spare.
std::unique_ptr<Started> StartFloor(const Options& o, const std::string& dir, bool standby) {
  auto started = std::make_unique<Started>();
  Contender& c = started->c;
  c.name = standby ? "standby floor: spare + waitpid" : "floor: fork+exec+waitpid loop";
  c.handled_what = "waitpid returned";
  const std::string base = dir + (standby ? "/standby-floor" : "/floor");
  std::string stamps = base + ".stamps";
  std::string reaped = base + ".reaped";
  std::ofstream(stamps).close();
  auto loop = std::make_shared<ChildGuard>(
      StartProcess({SelfPath(), standby ? "--standby-loop" : "--respawn-loop",
                    std::to_string(o.kills + 3), SLATE_BENCH_PROBE, reaped},
                   {"PROBE_FILE=" + stamps}));
  if (loop->pid() <= 0) {
    c.status = "failed: cannot start the loop";
    return started;
  }
  // As for Clean Slate's standby: the next spare is parked before a kill.
  started->trial = std::make_unique<Trial>(c, stamps, loop->pid(),
                                           standby ? std::max(o.settle_ms, 20) : o.settle_ms);
  started->failed = !started->trial->Begin(milliseconds(5000));
  started->stop = [loop, reaped](Started& s) {
    loop->Stop(milliseconds(2000));  // SIGTERM: it writes `reaped` and exits
    KillProbe(s.trial->last());
    Breakdown(s.c, ReadNumbers(reaped));
  };
  return started;
}

// (b) Clean Slate, cold: a fresh `slate run` of one component; with
// `siblings` > 0, the probe is the last of that many more (idle probes that
// do not timestamp), to show what the size of the system costs a restart.
// `standby`: with one warm spare (the probe parks as a spare, and stamps
// when promoted). Kills are spaced so that the spare started after each
// promotion is parked before the next kill. `pid_private`: in a PID
// namespace of its own, behind slate-init (the stamp's pid is the init's, so
// the kill ends the namespace). `ptrace_host`: without the Landlock domain
// every component has by default.
std::unique_ptr<Started> StartSlate(const Options& o, const std::string& dir, int siblings,
                                    bool standby = false, bool pid_private = false,
                                    bool ptrace_host = false) {
  auto started = std::make_unique<Started>();
  Contender& c = started->c;
  c.name = standby && pid_private ? "Clean Slate: standby, pid private"
           : standby              ? "Clean Slate: standby = 1"
           : pid_private          ? "Clean Slate: pid = \"private\""
           : ptrace_host          ? "Clean Slate: ptrace = \"host\""
           : siblings == 0        ? "Clean Slate: slate run"
                                  : fmt::format("Clean Slate, {} siblings", siblings);
  c.handled_what = "child_exited journaled";
  std::string sub = fmt::format("{}/slate-{}{}{}{}", dir, siblings, standby ? "-standby" : "",
                                pid_private ? "-pid" : "", ptrace_host ? "-ptrace" : "");
  std::error_code ec;
  fs::create_directories(sub, ec);
  std::string stamps = sub + "/stamps";
  std::ofstream(stamps).close();
  std::string children;
  std::string components;
  for (int i = 0; i < siblings; ++i) {
    children += fmt::format("\"s{}\", ", i);
    components += fmt::format(
        "[component.s{}]\nexec = [\"{}\"]\nready = \"spawn\"\nshutdown = \"brutal_kill\"\n\n", i,
        SLATE_BENCH_PROBE);
  }
  std::string file = sub + "/system.toml";
  std::ofstream(file) << fmt::format(
      "[system]\nname = \"bench-recovery\"\nroot = \"main\"\nstate_dir = \"state\"\n\n"
      "[supervisor.main]\nstrategy = \"one_for_one\"\nintensity = 100000\nperiod = \"1s\"\n"
      "children = [{}\"probe\"]\n\n"
      "[component.probe]\nexec = [\"{}\"]\nready = \"spawn\"\nshutdown = \"brutal_kill\"\n"
      "env = {{ PROBE_FILE = \"{}\" }}\n{}\n{}",
      children, SLATE_BENCH_PROBE, stamps,
      fmt::format("{}{}{}", standby ? "standby = 1\n" : "",
                  pid_private ? "pid = \"private\"\n" : "",
                  ptrace_host ? "ptrace = \"host\"\n" : ""),
      components);
  auto slate =
      std::make_shared<ChildGuard>(StartProcess({o.slate, "run", file}, {}, sub + "/run.log"));
  if (slate->pid() <= 0) {
    c.status = "failed: cannot start slate run";
    return started;
  }
  started->trial = std::make_unique<Trial>(c, stamps, slate->pid(),
                                           standby ? std::max(o.settle_ms, 20) : o.settle_ms);
  started->failed = !started->trial->Begin(milliseconds(5000 + 20 * siblings));
  started->stop = [slate, sub](Started& s) {
    if (s.c.status != "ok") {
      std::ifstream log(sub + "/run.log");
      std::string text((std::istreambuf_iterator<char>(log)), {});
      fmt::print(stderr, "slate run's output:\n{}\n", text);
    }
    slate->Stop(milliseconds(10000));
    KillProbe(s.trial->last());
    Breakdown(s.c, ExitsInJournal(sub + "/state/events.jsonl"));
  };
  return started;
}

// runit, daemontools, s6: a service directory whose ./run is the probe
// itself (no shell in between), supervised by `program DIR`.
Contender RunExternal(const Options& o, const std::string& dir, const std::string& label,
                      const std::string& program, const std::string& package) {
  Contender c;
  c.name = fmt::format("{}: {}", label, program);
  auto path = FindOnPath(program);
  if (!path) {
    c.status = fmt::format("not installed (apt-get install {})", package);
    return c;
  }
  std::string svc = dir + "/" + program;
  std::error_code ec;
  fs::create_directories(svc, ec);
  fs::create_symlink(SLATE_BENCH_PROBE, svc + "/run", ec);
  if (ec) {
    c.status = "failed: " + ec.message();
    return c;
  }
  std::string stamps = dir + "/" + program + ".stamps";
  std::ofstream(stamps).close();
  ChildGuard sup(
      StartProcess({*path, svc}, {"PROBE_FILE=" + stamps}, dir + "/" + program + ".log"));
  if (sup.pid() <= 0) {
    c.status = "failed: cannot start " + *path;
    return c;
  }
  pid_t last = -1;
  Measure(c, stamps, sup.pid(), o.external_kills, o.external_settle_ms, &last);
  sup.Stop(milliseconds(2000));
  KillProbe(last);
  return c;
}

// supervisord: one [program] that is the probe, restarted at once
// (startsecs = 0, so every run counts as started; autorestart).
Contender RunSupervisord(const Options& o, const std::string& dir) {
  Contender c;
  c.name = "supervisord";
  auto path = FindOnPath("supervisord");
  if (!path) {
    c.status = "not installed (apt-get install supervisor)";
    return c;
  }
  std::string sub = dir + "/supervisord";
  std::error_code ec;
  fs::create_directories(sub, ec);
  std::string stamps = sub + "/stamps";
  std::ofstream(stamps).close();
  std::string conf = sub + "/supervisord.conf";
  std::ofstream(conf) << fmt::format(
      "[supervisord]\nnodaemon=true\nlogfile={0}/supervisord.log\npidfile={0}/supervisord.pid\n"
      "childlogdir={0}\n\n[program:probe]\ncommand={1}\nautorestart=true\nstartsecs=0\n"
      "startretries=1000000\nenvironment=PROBE_FILE=\"{2}\"\n",
      sub, SLATE_BENCH_PROBE, stamps);
  ChildGuard sup(StartProcess({*path, "-n", "-c", conf}, {}, sub + "/run.log"));
  if (sup.pid() <= 0) {
    c.status = "failed: cannot start " + *path;
    return c;
  }
  pid_t last = -1;
  Measure(c, stamps, sup.pid(), o.external_kills, o.external_settle_ms, &last);
  sup.Stop(milliseconds(5000));
  KillProbe(last);
  return c;
}

// Erlang/OTP: a supervisor (one_for_one, a high intensity) whose one worker
// runs the probe through a port and exits when the port reports the
// probe's exit, so the supervisor starts a new worker and a new probe.
constexpr const char* kErlangProbeSup = R"(-module(probe_sup).
-behaviour(supervisor).
-export([main/1, init/1, start_worker/1, worker/1]).

main([Probe, Stamps]) ->
    {ok, _} = supervisor:start_link({local, probe_sup}, probe_sup, [Probe, Stamps]),
    receive stop -> ok end.

init(Args) ->
    Flags = #{strategy => one_for_one, intensity => 1000000, period => 1},
    Child = #{id => probe, start => {probe_sup, start_worker, [Args]},
              restart => permanent, shutdown => brutal_kill},
    {ok, {Flags, [Child]}}.

start_worker(Args) -> {ok, spawn_link(probe_sup, worker, [Args])}.

worker([Probe, Stamps]) ->
    Port = open_port({spawn_executable, Probe},
                     [exit_status, {env, [{"PROBE_FILE", Stamps}]}]),
    receive {Port, {exit_status, Status}} -> exit({probe_exited, Status}) end.
)";

Contender RunErlang(const Options& o, const std::string& dir) {
  Contender c;
  c.name = "Erlang/OTP: supervisor + port";
  auto erl = FindOnPath("erl");
  auto erlc = FindOnPath("erlc");
  if (!erl || !erlc) {
    c.status = "not installed (apt-get install erlang-base)";
    return c;
  }
  std::string sub = dir + "/erlang";
  std::error_code ec;
  fs::create_directories(sub, ec);
  std::ofstream(sub + "/probe_sup.erl") << kErlangProbeSup;
  RunResult built = RunToEnd({*erlc, "-o", sub, sub + "/probe_sup.erl"}, milliseconds(60000));
  if (!WIFEXITED(built.status) || WEXITSTATUS(built.status) != 0) {
    c.status = "failed: erlc: " + built.out;
    return c;
  }
  std::string stamps = sub + "/stamps";
  std::ofstream(stamps).close();
  ChildGuard sup(StartProcess({*erl, "-noshell", "-noinput", "-pa", sub, "-run", "probe_sup",
                               "main", SLATE_BENCH_PROBE, stamps},
                              {}, sub + "/run.log"));
  if (sup.pid() <= 0) {
    c.status = "failed: cannot start " + *erl;
    return c;
  }
  pid_t last = -1;
  // The VM takes a while to boot: a longer wait for the first probe.
  Measure(c, stamps, sup.pid(), o.kills, o.settle_ms, &last, milliseconds(20000));
  sup.Stop(milliseconds(5000));
  KillProbe(last);
  return c;
}

volatile sig_atomic_t g_stop = 0;

void OnStop(int) {
  g_stop = 1;
}

// The floor's supervisor. Records when each waitpid returned in memory (no
// syscall on the restart path) and writes them to `reaped` when told to
// stop (SIGTERM) or after `max` spawns.
int RespawnLoop(int max, const char* probe, const char* reaped) {
  pid_t parent = ::getppid();
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) return 1;
  struct sigaction sa {};
  sa.sa_handler = OnStop;  // no SA_RESTART: waitpid returns EINTR
  ::sigaction(SIGTERM, &sa, nullptr);
  std::vector<std::int64_t> reaped_ns;
  reaped_ns.reserve(static_cast<std::size_t>(max));
  for (int i = 0; i < max && g_stop == 0; ++i) {
    pid_t pid = ::fork();
    if (pid < 0) break;
    if (pid == 0) {
      char* argv[] = {const_cast<char*>(probe), nullptr};
      ::execv(probe, argv);
      ::_exit(127);
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR && g_stop == 0) {
    }
    if (g_stop == 0) reaped_ns.push_back(MonoNs());
  }
  std::ofstream out(reaped);
  for (std::int64_t t : reaped_ns) out << t << "\n";
  return 0;  // a probe still running dies with us (its PR_SET_PDEATHSIG)
}

// One spare of the standby floor: the probe, started with SLATE_STANDBY on
// descriptor 3, parked (its "P" received). Returns its pid and our end of
// the activation socket; pid <= 0 if it could not be started.
struct FloorSpare {
  pid_t pid = -1;
  int socket = -1;
};

FloorSpare StartFloorSpare(const char* probe) {
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) return {};
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(pair[0]);
    ::close(pair[1]);
    return {};
  }
  if (pid == 0) {
    if (::dup2(pair[1], 3) != 3) ::_exit(127);  // dup2 clears FD_CLOEXEC
    ::setenv("SLATE_STANDBY", "3", 1);
    char* argv[] = {const_cast<char*>(probe), nullptr};
    ::execv(probe, argv);
    ::_exit(127);
  }
  ::close(pair[1]);
  char parked = 0;
  while (::recv(pair[0], &parked, 1, 0) < 0 && errno == EINTR && g_stop == 0) {
  }
  if (parked != 'P') {
    ::close(pair[0]);
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return {};
  }
  return {pid, pair[0]};
}

// The standby floor's supervisor: the least a supervisor with a warm spare
// can do. It keeps one probe parked as a spare (the activation protocol of
// libslate, which the probe speaks), waits for the running one with
// waitpid and, once it is reaped, wakes the spare with one message, then
// starts the next spare 2 ms later (as Clean Slate refills its pool). No
// descriptors, no state, no journal: what any standby must pay at least,
// on this machine, to learn of a death and wake a process.
int StandbyLoop(int max, const char* probe, const char* reaped) {
  pid_t parent = ::getppid();
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) return 1;
  struct sigaction sa {};
  sa.sa_handler = OnStop;
  ::sigaction(SIGTERM, &sa, nullptr);
  std::vector<std::int64_t> reaped_ns;
  reaped_ns.reserve(static_cast<std::size_t>(max));
  FloorSpare running = StartFloorSpare(probe);
  if (running.pid <= 0) return 1;
  ::send(running.socket, "A", 1, MSG_NOSIGNAL);  // the first one runs at once
  ::close(running.socket);
  FloorSpare spare;
  for (int i = 0; i < max && g_stop == 0; ++i) {
    spare = StartFloorSpare(probe);
    if (spare.pid <= 0) break;
    int status = 0;
    while (::waitpid(running.pid, &status, 0) < 0 && errno == EINTR && g_stop == 0) {
    }
    if (g_stop != 0) break;
    reaped_ns.push_back(MonoNs());
    ::send(spare.socket, "A", 1, MSG_NOSIGNAL);
    ::close(spare.socket);
    running = spare;
    spare = {};
    ::usleep(2000);
  }
  // A spare never woken is no replacement: it goes now, unstamped.
  if (spare.pid > 0) {
    ::kill(spare.pid, SIGKILL);
    ::close(spare.socket);
    ::waitpid(spare.pid, nullptr, 0);
  }
  std::ofstream out(reaped);
  for (std::int64_t t : reaped_ns) out << t << "\n";
  return 0;  // the probes die with us (their PR_SET_PDEATHSIG)
}

// Pins this thread (and so every process it starts) to `cpu`, or to all
// CPUs for cpu < 0.
bool Pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::size_t n = std::max(1U, std::thread::hardware_concurrency());
  for (std::size_t i = 0; i < n; ++i) {
    if (cpu < 0 || i == static_cast<std::size_t>(cpu)) CPU_SET(i, &set);
  }
  return ::sched_setaffinity(0, sizeof(set), &set) == 0;
}

bool ParseArgs(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    bool has_value = i + 1 < argc;
    if (a == "--kills" && has_value) {
      o.kills = std::atoi(argv[++i]);
    } else if (a == "--settle-ms" && has_value) {
      o.settle_ms = std::atoi(argv[++i]);
    } else if (a == "--external-kills" && has_value) {
      o.external_kills = std::atoi(argv[++i]);
    } else if (a == "--external-settle-ms" && has_value) {
      o.external_settle_ms = std::atoi(argv[++i]);
    } else if (a == "--siblings" && has_value) {
      o.siblings = std::clamp(std::atoi(argv[++i]), 0, 5000);
    } else if (a == "--pin-cpu" && has_value) {
      o.pin_cpu = std::atoi(argv[++i]);
    } else if (a == "--out" && has_value) {
      o.out = argv[++i];
    } else if (a == "--slate" && has_value) {
      o.slate = argv[++i];
    } else if (a == "--only" && has_value) {
      std::string list = argv[++i];
      for (std::size_t from = 0; from <= list.size();) {
        std::size_t comma = std::min(list.find(',', from), list.size());
        if (comma > from) o.only.push_back(list.substr(from, comma - from));
        from = comma + 1;
      }
    } else {
      fmt::print(stderr,
                 "usage: {} [--kills N] [--settle-ms MS] [--external-kills N] "
                 "[--external-settle-ms MS] [--pin-cpu CPU|-1] [--siblings N] [--out FILE] "
                 "[--only NAME,...] [--slate PATH]\n",
                 argv[0]);
      return false;
    }
  }
  int cpus = static_cast<int>(std::max(1U, std::thread::hardware_concurrency()));
  o.kills = std::clamp(o.kills, 1, 10000);
  o.external_kills = std::clamp(o.external_kills, 1, 1000);
  o.settle_ms = std::clamp(o.settle_ms, 0, 10000);
  o.external_settle_ms = std::clamp(o.external_settle_ms, 0, 10000);
  if (o.pin_cpu == -2) o.pin_cpu = cpus - 1;
  if (o.pin_cpu >= cpus) o.pin_cpu = -1;
  return true;
}

Json ToJson(const Contender& c, double floor) {
  Json j{{"name", c.name}, {"placement", c.placement}, {"status", c.status}};
  if (c.samples_ns.empty()) return j;
  double median = Median(c.samples_ns);
  j["n"] = c.samples_ns.size();
  j["settle_ms"] = c.settle_ms;
  j["samples_ns"] = c.samples_ns;
  j["median_ns"] = median;
  j["p90_ns"] = Percentile(c.samples_ns, 90);
  if (floor > 0) j["ratio_to_floor"] = median / floor;
  if (!c.detect_ns.empty()) {
    j["breakdown"] = {{"handled", c.handled_what},
                      {"kill_to_handled_ns", c.detect_ns},
                      {"handled_to_first_instruction_ns", c.respawn_ns},
                      {"kill_to_handled_median_ns", Median(c.detect_ns)},
                      {"handled_to_first_instruction_median_ns", Median(c.respawn_ns)}};
  }
  return j;
}

int Main(int argc, char** argv) {
  if (argc == 5 && std::string(argv[1]) == "--respawn-loop") {
    return RespawnLoop(std::clamp(std::atoi(argv[2]), 1, 100000), argv[3], argv[4]);
  }
  if (argc == 5 && std::string(argv[1]) == "--standby-loop") {
    return StandbyLoop(std::clamp(std::atoi(argv[2]), 1, 100000), argv[3], argv[4]);
  }
  Options o;
  if (!ParseArgs(argc, argv, o)) return 2;
  BecomeSubreaper();
  KillChildrenOnFatalSignals();
  std::string dir = MakeTempDir("slate-bench-recovery");
  if (dir.empty()) {
    fmt::print(stderr, "cannot create a temporary directory\n");
    return 1;
  }
  Json machine = Machine();
  fmt::print("machine: {}\n", MachineLine(machine));
  fmt::print(
      "recovery after kill -9 of a ready component: kill(2) -> the replacement's first "
      "instruction (CLOCK_MONOTONIC), {} kills, {} ms settle\n\n",
      o.kills, o.settle_ms);

  std::vector<std::pair<std::string, int>> placements{{"all CPUs", -1}};
  if (o.pin_cpu >= 0)
    placements.emplace_back(fmt::format("pinned to CPU {}", o.pin_cpu), o.pin_cpu);

  fmt::print("{:<32} {:<16} {:>4} {:>10} {:>10} {:>7}\n", "contender", "placement", "n", "median",
             "p90", "ratio");
  Json contenders = Json::array();
  std::vector<Contender> broken_down;
  bool ok = true;
  for (const auto& [placement, cpu] : placements) {
    if (!Pin(cpu)) fmt::print(stderr, "cannot set the CPU affinity for {}\n", placement);
    std::string sub = dir + "/" + (cpu < 0 ? std::string("all") : fmt::format("cpu{}", cpu));
    std::error_code ec;
    fs::create_directories(sub, ec);
    // The contenders whose restarts take at most milliseconds are started
    // together and take turns kill by kill (Interleave); the rest run one
    // after the other: the siblings' system (its 1000 idle probes would
    // weigh on the others), and the external supervisors, whose settle is a
    // second long.
    auto wanted = [&](const std::string& name, bool floor) {
      return floor || o.only.empty() ||
             std::any_of(o.only.begin(), o.only.end(),
                         [&](const std::string& w) { return name.find(w) != std::string::npos; });
    };
    auto skipped = [](const std::string& name) {
      Contender c;
      c.name = name;
      c.status = "skipped (--only)";
      return c;
    };
    std::vector<std::unique_ptr<Started>> together;
    std::vector<std::size_t> slots;  // where each row of `all` comes from
    std::vector<Contender> all;
    auto start = [&](const std::string& name, bool floor,
                     const std::function<std::unique_ptr<Started>()>& run) {
      if (!wanted(name, floor)) {
        all.push_back(skipped(name));
        return;
      }
      slots.push_back(all.size());
      all.emplace_back();
      together.push_back(run());
    };
    start("floor", true, [&] { return StartFloor(o, sub, false); });
    start("standby floor", true, [&] { return StartFloor(o, sub, true); });  // all[1]
    start("slate run", false, [&] { return StartSlate(o, sub, 0); });
    start("standby = 1", false, [&] { return StartSlate(o, sub, 0, true); });
    start("pid private", false, [&] { return StartSlate(o, sub, 0, false, true); });
    start("standby, pid private", false, [&] { return StartSlate(o, sub, 0, true, true); });
    start("ptrace host", false, [&] { return StartSlate(o, sub, 0, false, false, true); });
    std::vector<Contender> measured = Interleave(std::move(together), o.kills);
    for (std::size_t i = 0; i < slots.size(); ++i) all[slots[i]] = std::move(measured[i]);
    // One after the other, unless --only leaves one out.
    auto add = [&](const std::string& name, const std::function<Contender()>& run) {
      all.push_back(wanted(name, false) ? run() : skipped(name));
    };
    if (o.siblings > 0) {
      add("siblings", [&] {
        std::vector<std::unique_ptr<Started>> alone;
        alone.push_back(StartSlate(o, sub, o.siblings));
        return std::move(Interleave(std::move(alone), o.kills).front());
      });
    }
    if (cpu < 0) {  // the external supervisors once, unpinned: they are slow to run
      add("runit", [&] { return RunExternal(o, sub, "runit", "runsv", "runit"); });
      add("daemontools",
          [&] { return RunExternal(o, sub, "daemontools", "supervise", "daemontools"); });
      add("s6", [&] { return RunExternal(o, sub, "s6", "s6-supervise", "s6"); });
      add("supervisord", [&] { return RunSupervisord(o, sub); });
      add("erlang", [&] { return RunErlang(o, sub); });
    }
    double floor = Median(all[0].samples_ns);
    double standby_floor = Median(all[1].samples_ns);
    for (Contender& c : all) {
      c.placement = placement;
      // A contender with a warm spare is also compared with the standby floor.
      const bool warm = &c != &all[1] && c.name.find("standby") != std::string::npos;
      if (!c.samples_ns.empty()) {
        double median = Median(c.samples_ns);
        std::string ratio = floor > 0 ? fmt::format("{:.2f}x", median / floor) : "-";
        std::string note =
            c.settle_ms != o.settle_ms ? fmt::format("  (settle {} ms)", c.settle_ms) : "";
        if (warm && standby_floor > 0)
          note += fmt::format("  ({:.2f}x the standby floor)", median / standby_floor);
        fmt::print("{:<32} {:<16} {:>4} {:>10} {:>10} {:>7}{}\n", c.name, placement,
                   c.samples_ns.size(), FormatNs(median), FormatNs(Percentile(c.samples_ns, 90)),
                   ratio, note);
      } else {
        fmt::print("{:<32} {:<16} {}\n", c.name, placement, c.status);
      }
      if (c.status.rfind("failed", 0) == 0) ok = false;
      contenders.push_back(ToJson(c, floor));
      if (warm && standby_floor > 0 && !c.samples_ns.empty())
        contenders.back()["ratio_to_standby_floor"] = Median(c.samples_ns) / standby_floor;
      if (!c.detect_ns.empty()) broken_down.push_back(c);
    }
    std::fflush(stdout);
  }
  Pin(-1);

  fmt::print("\nwhere the time goes (medians)    {:<16} {:>20} {:>26}\n", "placement",
             "kill -> death handled", "-> replacement's 1st instr");
  for (const Contender& c : broken_down) {
    fmt::print("{:<32} {:<16} {:>20} {:>26}   (handled = {})\n", c.name, c.placement,
               FormatNs(Median(c.detect_ns)), FormatNs(Median(c.respawn_ns)), c.handled_what);
  }

  Json result{{"benchmark", "recovery"},
              {"what",
               "kill(SIGKILL) of a ready component -> the replacement's first instruction "
               "(the probe's constructor), CLOCK_MONOTONIC"},
              {"machine", machine},
              {"config",
               {{"kills", o.kills},
                {"settle_ms", o.settle_ms},
                {"external_kills", o.external_kills},
                {"external_settle_ms", o.external_settle_ms},
                {"pin_cpu", o.pin_cpu},
                {"siblings", o.siblings}}},
              {"contenders", contenders}};
  if (!WriteJson(o.out, result)) {
    fmt::print(stderr, "cannot write {}\n", o.out);
    ok = false;
  } else {
    fmt::print("\nwrote {}\n", o.out);
  }
  std::error_code ec;
  if (ok) {
    fs::remove_all(dir, ec);
  } else {
    fmt::print(stderr, "kept {} for inspection\n", dir);
  }
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace slate::bench

int main(int argc, char** argv) {
  int rc = slate::bench::Main(argc, argv);
  // Whatever is left (an orphaned probe, a runtime that would not stop)
  // goes now; a clean run leaves nothing to kill.
  if (int n = slate::bench::KillAllChildren(); n > 0) {
    fmt::print(stderr, "killed {} leftover process(es)\n", n);
  }
  return rc;
}
