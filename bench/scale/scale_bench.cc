// How the runtime scales with the number of components: for N = 10, 100,
// 1000 components (the probe, not timestamping; ready = "spawn") it measures
//   start     `slate run` spawned -> `system_started` in the journal (the
//             event's own mono_ns, so the driver's wake-up is not counted);
//   RSS       the runtime's VmRSS once started;
//   status    median wall time of `slate status --json` over 20 calls, next
//             to the baseline: /bin/true through the same spawn code,
//             interleaved call by call, so the process-spawn cost is visible;
//   idle      the runtime's context switches (voluntary + nonvoluntary, all
//             threads) over 2 s of idleness right after start;
//   shutdown  SIGTERM -> `slate run` has exited.
// The runtime creates two files per component under state_dir (its log and
// its notify socket), so start-up depends on the file system: each size is
// measured with state_dir under every directory of --dirs (default: $TMPDIR
// or /tmp, and /dev/shm when that is another file system type).
//
//   slate_bench_scale [--sizes 10,100,1000] [--dirs DIR,DIR] [--status-calls N]
//                     [--idle-ms MS] [--out FILE]
#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <sys/wait.h>

#include <fmt/format.h>

#include "common/bench_util.h"

namespace slate::bench {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

struct Options {
  std::vector<int> sizes{10, 100, 1000};
  std::vector<std::string> dirs;  // where the systems' directories go
  int status_calls = 20;
  int idle_ms = 2000;
  std::string out = SLATE_BENCH_RESULTS "/scale.json";
};

struct Row {
  int n = 0;
  std::string fs_type;
  std::string status = "ok";
  double start_ns = 0;           // spawn -> system_started (runtime's mono_ns)
  double start_observed_ns = 0;  // spawn -> the driver read the event
  long rss_kb = 0;
  long idle_switches = 0;
  std::vector<double> status_ns;
  std::vector<double> true_ns;
  std::size_t status_bytes = 0;
  double shutdown_ns = 0;
  double group_restart_ns = 0;  // kill of c0 -> the last of the N replacements stamped
};

// One one_for_all supervisor of N probes; each stamps into `stamps` when it
// starts (for the group restart).
std::string SystemFile(int n, const std::string& stamps) {
  std::string children;
  std::string components;
  for (int i = 0; i < n; ++i) {
    children += fmt::format("{}\"c{}\"", i == 0 ? "" : ", ", i);
    components += fmt::format(
        "[component.c{}]\nexec = [\"{}\"]\nready = \"spawn\"\nshutdown = \"2s\"\n"
        "env = {{ PROBE_FILE = \"{}\" }}\n\n",
        i, SLATE_BENCH_PROBE, stamps);
  }
  return fmt::format(
      "[system]\nname = \"bench-scale-{}\"\nroot = \"main\"\nstate_dir = \"state\"\n\n"
      "[supervisor.main]\nstrategy = \"one_for_all\"\nintensity = 10\nperiod = \"5s\"\n"
      "children = [{}]\n\n{}",
      n, children, components);
}

// Stamps ("<ns> <pid>") in `path` later than `after`: how many, and the latest.
std::pair<int, std::int64_t> StampsAfter(const std::string& path, std::int64_t after) {
  std::ifstream in(path);
  int count = 0;
  std::int64_t latest = 0;
  for (std::int64_t ns; in >> ns;) {
    long pid = 0;
    in >> pid;
    if (ns > after) {
      ++count;
      latest = std::max(latest, ns);
    }
  }
  return {count, latest};
}

std::string Tail(const std::string& path, std::size_t max) {
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  return text.size() > max ? text.substr(text.size() - max) : text;
}

// Measures N components with the system's directory under `base`. The
// directory is left for the caller to remove (after every size: removing it
// at once would make ext4 skip those recently freed inodes in the next run).
Row Measure(const Options& o, int n, const std::string& base, std::string& dir) {
  Row r;
  r.n = n;
  r.fs_type = FileSystemType(base);
  dir = MakeTempDir(fmt::format("slate-bench-scale-{}", n), base);
  if (dir.empty()) {
    r.status = "failed: cannot create a directory under " + base;
    return r;
  }
  std::string file = dir + "/system.toml";
  std::string state = dir + "/state";
  const std::string stamps = dir + "/stamps";
  std::ofstream(file) << SystemFile(n, stamps);
  std::error_code ec;
  fs::create_directories(state, ec);
  LineFollower journal(state + "/events.jsonl", /*watch_dir=*/true);

  std::int64_t spawned_at = MonoNs();
  ChildGuard slate(StartProcess({SLATE_BINARY, "run", file}, {}, dir + "/run.log"));
  if (slate.pid() <= 0) {
    r.status = "failed: cannot start slate run";
    return r;
  }
  // Bounded: 60 s for the whole start, checked every 200 ms.
  auto deadline = Clock::now() + milliseconds(60000);
  bool started = false;
  while (!started && Clock::now() < deadline && Alive(slate.pid())) {
    auto line = journal.Next(std::min(deadline, Clock::now() + milliseconds(200)));
    if (!line) continue;
    auto j = Json::parse(*line, nullptr, false);
    if (j.is_discarded() || j.value("event", "") != "system_started") continue;
    r.start_observed_ns = static_cast<double>(MonoNs() - spawned_at);
    r.start_ns = static_cast<double>(j.value("mono_ns", std::int64_t{0}) - spawned_at);
    started = true;
  }
  if (!started) {
    r.status = Alive(slate.pid()) ? "failed: no system_started within 60 s"
                                  : "failed: slate run exited before system_started";
    fmt::print(stderr, "N={}: {}; slate run's output ends with:\n{}\n", n, r.status,
               Tail(dir + "/run.log", 2000));
    return r;  // the guard kills it; dir kept for inspection
  }
  r.rss_kb = ProcStatus(slate.pid(), "VmRSS").value_or(-1);

  auto before = ContextSwitches(slate.pid());
  std::this_thread::sleep_for(milliseconds(o.idle_ms));
  auto after = ContextSwitches(slate.pid());
  r.idle_switches = before && after ? *after - *before : -1;

  pid_t first_pid = 0;
  for (int i = 0; i < o.status_calls; ++i) {
    RunResult t = RunToEnd({"/bin/true"}, milliseconds(5000));
    RunResult s =
        RunToEnd({SLATE_BINARY, "status", "--json", "--state-dir", state}, milliseconds(10000));
    if (!WIFEXITED(s.status) || WEXITSTATUS(s.status) != 0) {
      r.status = fmt::format("failed: slate status exited with wait status {}", s.status);
      break;
    }
    if (i == 0) {
      auto j = Json::parse(s.out, nullptr, false);
      std::size_t nodes = j.is_discarded() ? 0 : j["nodes"].size();
      if (nodes != static_cast<std::size_t>(n) + 1) {
        r.status = fmt::format("failed: status lists {} nodes, expected {}", nodes, n + 1);
        break;
      }
      r.status_bytes = s.out.size();
      for (const Json& node : j["nodes"]) {
        if (node.value("name", "") == "c0" && node["pid"].is_number()) first_pid = node["pid"];
      }
    }
    r.true_ns.push_back(static_cast<double>(t.wall_ns));
    r.status_ns.push_back(static_cast<double>(s.wall_ns));
  }
  // A failure of one child: one_for_all stops the other N - 1 and starts
  // all N again. Done when the last replacement has stamped.
  if (r.status == "ok" && first_pid > 0) {
    const std::int64_t killed_at = MonoNs();
    ::kill(first_pid, SIGKILL);
    const auto until = Clock::now() + milliseconds(60000);
    std::pair<int, std::int64_t> seen{0, 0};
    while ((seen = StampsAfter(stamps, killed_at)).first < n && Clock::now() < until) {
      std::this_thread::sleep_for(milliseconds(2));
    }
    if (seen.first >= n) {
      r.group_restart_ns = static_cast<double>(seen.second - killed_at);
    } else {
      r.status = fmt::format("failed: {} of {} restarted within 60 s", seen.first, n);
    }
  }
  r.shutdown_ns = static_cast<double>(slate.Stop(milliseconds(30000)).count());
  return r;
}

bool ParseArgs(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    bool has_value = i + 1 < argc;
    if (a == "--sizes" && has_value) {
      o.sizes.clear();
      std::stringstream list(argv[++i]);
      for (std::string item; std::getline(list, item, ',');) {
        o.sizes.push_back(std::clamp(std::atoi(item.c_str()), 1, 5000));
      }
    } else if (a == "--dirs" && has_value) {
      std::stringstream list(argv[++i]);
      for (std::string item; std::getline(list, item, ',');) {
        if (!item.empty()) o.dirs.push_back(item);
      }
    } else if (a == "--status-calls" && has_value) {
      o.status_calls = std::clamp(std::atoi(argv[++i]), 1, 1000);
    } else if (a == "--idle-ms" && has_value) {
      o.idle_ms = std::clamp(std::atoi(argv[++i]), 0, 60000);
    } else if (a == "--out" && has_value) {
      o.out = argv[++i];
    } else {
      fmt::print(stderr,
                 "usage: {} [--sizes 10,100,1000] [--dirs DIR,DIR] [--status-calls N] "
                 "[--idle-ms MS] [--out FILE]\n",
                 argv[0]);
      return false;
    }
  }
  if (o.dirs.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    o.dirs.push_back(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp");
    std::error_code ec;
    if (fs::is_directory("/dev/shm", ec) &&
        FileSystemType("/dev/shm") != FileSystemType(o.dirs[0])) {
      o.dirs.push_back("/dev/shm");
    }
  }
  return !o.sizes.empty();
}

// How each figure grows with N: one bar per row, scaled to the figure's
// largest value (log scale: each mark is a factor of 10^(1/8) = 1.33).
void Plot(const std::vector<Row>& rows) {
  struct Figure {
    const char* name;
    double (*value)(const Row&);
    std::string (*text)(double);
  };
  const Figure figures[] = {
      {"start (all ready)", [](const Row& r) { return r.start_ns; }, FormatNs},
      {"runtime RSS", [](const Row& r) { return static_cast<double>(r.rss_kb) * 1024; },
       [](double v) { return fmt::format("{:.1f} MiB", v / 1048576); }},
      {"status --json", [](const Row& r) { return Median(r.status_ns); }, FormatNs},
      {"group restart", [](const Row& r) { return r.group_restart_ns; }, FormatNs},
      {"shutdown", [](const Row& r) { return r.shutdown_ns; }, FormatNs},
  };
  fmt::print("\nhow each figure grows with N (log scale, one '#' per factor of 1.33)\n");
  for (const Figure& f : figures) {
    double low = 0;
    for (const Row& r : rows) {
      const double v = f.value(r);
      if (v > 0 && (low == 0 || v < low)) low = v;
    }
    fmt::print("{}\n", f.name);
    for (const Row& r : rows) {
      const double v = f.value(r);
      const int marks = v > 0 && low > 0 ? 1 + static_cast<int>(8 * std::log10(v / low)) : 0;
      fmt::print("  N={:<5} {:<15} {:<40} {}\n", r.n, r.fs_type,
                 std::string(static_cast<std::size_t>(marks), '#'), f.text(v));
    }
  }
}

int Main(int argc, char** argv) {
  Options o;
  if (!ParseArgs(argc, argv, o)) return 2;
  BecomeSubreaper();
  KillChildrenOnFatalSignals();
  Json machine = Machine();
  fmt::print("machine: {}\n", MachineLine(machine));
  fmt::print(
      "scale: N components (the probe, ready = \"spawn\") under one one_for_all "
      "supervisor; group restart: kill -9 of one -> all N replaced\n\n");
  fmt::print("{:>5} {:<26} {:>10} {:>9} {:>14} {:>12} {:>7} {:>10} {:>10} {:>10}\n", "N",
             "state_dir on", "start", "RSS", "status --json", "/bin/true", "ratio",
             fmt::format("idle cs/{:g}s", o.idle_ms / 1000.0), "group rst", "shutdown");
  Json rows = Json::array();
  std::vector<Row> plotted;
  std::vector<std::string> made;
  bool ok = true;
  for (const std::string& base : o.dirs) {
    for (int n : o.sizes) {
      std::string dir;
      Row r = Measure(o, n, base, dir);
      if (!dir.empty()) made.push_back(dir);
      double status = Median(r.status_ns);
      double baseline = Median(r.true_ns);
      std::string where = fmt::format("{} ({})", base, r.fs_type);
      if (r.status == "ok") {
        fmt::print(
            "{:>5} {:<26} {:>10} {:>5.1f} MiB {:>14} {:>12} {:>6.1f}x {:>10} {:>10} {:>10}\n", n,
            where, FormatNs(r.start_ns), static_cast<double>(r.rss_kb) / 1024.0, FormatNs(status),
            FormatNs(baseline), baseline > 0 ? status / baseline : 0, r.idle_switches,
            FormatNs(r.group_restart_ns), FormatNs(r.shutdown_ns));
        plotted.push_back(r);
      } else {
        ok = false;
        fmt::print("{:>5} {:<26} {}\n", n, where, r.status);
      }
      std::fflush(stdout);
      Json j{{"n", n},
             {"state_dir_under", base},
             {"fs_type", r.fs_type},
             {"status", r.status},
             {"start_ns", r.start_ns},
             {"start_observed_ns", r.start_observed_ns},
             {"rss_kb", r.rss_kb},
             {"idle_ms", o.idle_ms},
             {"idle_context_switches", r.idle_switches},
             {"status_json_bytes", r.status_bytes},
             {"status_samples_ns", r.status_ns},
             {"status_median_ns", status},
             {"status_p90_ns", Percentile(r.status_ns, 90)},
             {"true_samples_ns", r.true_ns},
             {"true_median_ns", baseline},
             {"status_to_true_ratio", baseline > 0 ? status / baseline : 0},
             {"group_restart_ns", r.group_restart_ns},
             {"shutdown_ns", r.shutdown_ns}};
      rows.push_back(std::move(j));
    }
  }
  Plot(plotted);
  // Failed runs keep their directory (and run.log) for inspection.
  if (ok) {
    for (const std::string& dir : made) {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  }
  Json result{
      {"benchmark", "scale"},
      {"machine", machine},
      {"config", {{"status_calls", o.status_calls}, {"idle_ms", o.idle_ms}, {"dirs", o.dirs}}},
      {"rows", rows}};
  if (!WriteJson(o.out, result)) {
    fmt::print(stderr, "cannot write {}\n", o.out);
    return 1;
  }
  fmt::print("\nwrote {}\n", o.out);
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
