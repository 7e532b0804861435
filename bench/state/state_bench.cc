// The state store as a component sees it: puts, gets and commits per second
// through libslate's C API against raw LMDB doing the same work in the same
// process (throughput.h), and what rolling back a ~100 MiB store costs
// (rollback.h). The process sets up the environment the runtime would give a
// component with state (SLATE_COMPONENT, SLATE_STORE="DIR:SIZE:process")
// and calls slate_init(), as a component does.
//
//   slate_bench_state [--keys 100000] [--order sorted|random] [--seconds 0.5]
//                     [--reps 6] [--store-mib 100] [--rollback-reps 5] [--dir DIR]
//                     [--out FILE]
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "common/bench_util.h"
#include "slate/slate.h"
#include "state/rollback.h"
#include "state/throughput.h"

namespace slate::bench {
namespace {

namespace fs = std::filesystem;
using state::RollbackResult;
using state::ThroughputRow;

constexpr std::uint64_t kMiB = std::uint64_t{1} << 20;
constexpr std::uint64_t kMapSize = 1024 * kMiB;
constexpr double kGoal = 1.2;

struct Options {
  int keys = 100000;
  double seconds = 0.5;
  int reps = 6;
  int store_mib = 100;
  int rollback_reps = 5;
  bool random_order = false;
  std::string dir;  // default: $TMPDIR or /tmp
  std::string out = std::string(SLATE_BENCH_RESULTS) + "/state.json";
};

bool ParseArgs(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    if (a == "--keys" && (v = next())) {
      o.keys = std::atoi(v);
    } else if (a == "--seconds" && (v = next())) {
      o.seconds = std::atof(v);
    } else if (a == "--reps" && (v = next())) {
      o.reps = std::atoi(v);
    } else if (a == "--store-mib" && (v = next())) {
      o.store_mib = std::atoi(v);
    } else if (a == "--rollback-reps" && (v = next())) {
      o.rollback_reps = std::atoi(v);
    } else if (a == "--order" && (v = next()) &&
               (std::string(v) == "sorted" || std::string(v) == "random")) {
      o.random_order = std::string(v) == "random";
    } else if (a == "--dir" && (v = next())) {
      o.dir = v;
    } else if (a == "--out" && (v = next())) {
      o.out = v;
    } else {
      fmt::print(stderr,
                 "usage: slate_bench_state [--keys N] [--order sorted|random] [--seconds S]\n"
                 "                         [--reps N] [--store-mib N] [--rollback-reps N]\n"
                 "                         [--dir DIR] [--out FILE]\n");
      return false;
    }
  }
  if (o.keys < 1000 || o.seconds <= 0 || o.reps < 1 || o.store_mib < 1 || o.rollback_reps < 1) {
    fmt::print(stderr, "slate_bench_state: --keys >= 1000, the others > 0\n");
    return false;
  }
  return true;
}

std::string Rate(double ops_per_s) {
  if (ops_per_s >= 1e6) return fmt::format("{:.2f} M/s", ops_per_s / 1e6);
  return fmt::format("{:.1f} k/s", ops_per_s / 1e3);
}

Json ThroughputJson(const ThroughputRow& row) {
  std::vector<double> paired;
  for (std::size_t i = 0; i < row.raw_rate.size(); ++i) {
    paired.push_back(row.raw_rate[i] / row.slate_rate[i]);
  }
  const double raw = Median(row.raw_rate);
  const double slate = Median(row.slate_rate);
  return Json{{"workload", row.name},
              {"libslate_calls", row.slate_calls},
              {"raw_lmdb_calls", row.raw_calls},
              {"ops_per_sample", row.ops},
              {"raw_ops_per_s", row.raw_rate},
              {"libslate_ops_per_s", row.slate_rate},
              {"raw_ran_first", row.raw_first},
              {"raw_median_ops_per_s", raw},
              {"libslate_median_ops_per_s", slate},
              {"ratio_of_medians", raw / slate},
              {"paired_ratios", paired},
              {"paired_ratio_median", Median(paired)},
              {"extra_ns_per_op", 1e9 / slate - 1e9 / raw},
              {"within_goal", raw / slate <= kGoal}};
}

void PrintThroughput(const Options& o, const std::vector<ThroughputRow>& rows) {
  fmt::print("{:<46} {:>10} {:>11} {:>11} {:>8} {:>8} {:>9} {:>6}\n", "workload", "ops/sample",
             "raw LMDB", "libslate", "raw/lib", "paired", "+ns/op", "goal");
  for (const ThroughputRow& row : rows) {
    const Json j = ThroughputJson(row);
    fmt::print("{:<46} {:>10} {:>11} {:>11} {:>7.2f}x {:>7.2f}x {:>+9.0f} {:>6}\n", row.name,
               row.ops, Rate(j["raw_median_ops_per_s"]), Rate(j["libslate_median_ops_per_s"]),
               j["ratio_of_medians"].get<double>(), j["paired_ratio_median"].get<double>(),
               j["extra_ns_per_op"].get<double>(), j["within_goal"].get<bool>() ? "ok" : "MISSED");
  }
  fmt::print(
      "(medians of {} samples per side, each ~{:g} s of raw LMDB; paired: the median of the\n"
      " per-sample ratios; +ns/op: libslate's extra time per operation; goal: within {}x)\n",
      o.reps, o.seconds, kGoal);
}

Json RollbackJson(const RollbackResult& r) {
  auto ms = [](const std::vector<double>& v) {
    return Json{{"samples_ms", v}, {"median_ms", Median(v)}};
  };
  return Json{{"entries", r.entries},
              {"used_bytes", r.used_bytes},
              {"checkpoint_bytes", r.checkpoint_bytes},
              {"fill_s", r.fill_s},
              {"checkpoint_take", ms(r.take_ms)},
              {"checkpoint_baseline_copy", ms(r.take_copy_ms)},
              {"restore", ms(r.restore_ms)},
              {"rollback_job", ms(r.rollback_ms)},
              {"restore_baseline_copy", ms(r.restore_copy_ms)},
              {"reopen_and_get", ms(r.reopen_ms)}};
}

void PrintRollback(const RollbackResult& r, int reps) {
  const double used = static_cast<double>(r.used_bytes) / kMiB;
  fmt::print(
      "\nrollback: a store of {:.1f} MiB in use ({} keys of 16 bytes, 100-byte values; "
      "filled in {:.2f} s), checkpoint {:.1f} MiB; medians of {}\n",
      used, r.entries, r.fill_s, static_cast<double>(r.checkpoint_bytes) / kMiB, reps);
  const double take_base = Median(r.take_copy_ms);
  const double restore_base = Median(r.restore_copy_ms);
  fmt::print("{:<62} {:>10} {:>16} {:>7}\n", "operation", "median", "baseline copy", "ratio");
  auto line = [](const char* what, const std::vector<double>& v, double base) {
    const double m = Median(v);
    if (base > 0) {
      fmt::print("{:<62} {:>7.1f} ms {:>13.1f} ms {:>6.2f}x\n", what, m, base, m / base);
    } else {
      fmt::print("{:<62} {:>7.2f} ms\n", what, m);
    }
  };
  line("checkpoint: CheckpointSet::Take (as-is, keep 1)", r.take_ms, take_base);
  line("restore: CheckpointSet::Restore", r.restore_ms, restore_base);
  line("rollback_state: RollbackJob on a CheckpointWorker", r.rollback_ms, restore_base);
  line("reopen after a restore: StateStore::Open + one get", r.reopen_ms, 0);
  fmt::print(
      "(baseline copy: the same file by hand: copy_file_range, fsync, rename over the\n"
      " previous copy, fsync of the directory; interleaved with the operations)\n");
}

int Run(const Options& o, const std::string& tmp) {
  const std::string slate_dir = tmp + "/libslate";
  // What `slate run` hands a component with state = { size = "1GiB" }.
  ::setenv("SLATE_COMPONENT", "bench", 1);
  ::setenv("SLATE_STORE", fmt::format("{}:{}:process", slate_dir, kMapSize).c_str(), 1);
  ::unsetenv("SLATE_CHANNELS");
  ::unsetenv("NOTIFY_SOCKET");
  ::unsetenv("WATCHDOG_USEC");
  if (slate_init() != SLATE_OK) {
    fmt::print(stderr, "slate_init: {}\n", slate_last_error());
    return 1;
  }

  const Json machine = Machine();
  const std::string fs_type = FileSystemType(tmp);
  fmt::print("machine: {}\n", MachineLine(machine));
  fmt::print(
      "state: libslate's C API against raw LMDB in the same process, both MDB_NOTLS |\n"
      "MDB_NOSYNC (durability \"process\"), read-only map, 1 GiB map; {} keys of 16 bytes\n"
      "walked {}, 100-byte values; stores under {} ({})\n\n",
      o.keys, o.random_order ? "in a fixed random order" : "in key order", tmp, fs_type);

  state::ThroughputOptions to{slate_dir, tmp + "/raw", kMapSize,      o.keys,
                              o.seconds, o.reps,       o.random_order};
  std::vector<ThroughputRow> rows;
  if (!state::MeasureThroughput(to, &rows)) return 1;
  PrintThroughput(o, rows);

  state::RollbackOptions ro{tmp + "/rollback", kMapSize,
                            static_cast<std::uint64_t>(o.store_mib) * kMiB, o.rollback_reps};
  RollbackResult rr;
  if (!state::MeasureRollback(ro, &rr)) return 1;
  PrintRollback(rr, o.rollback_reps);

  Json throughput = Json::array();
  for (const ThroughputRow& row : rows) throughput.push_back(ThroughputJson(row));
  Json result{{"benchmark", "state"},
              {"machine", machine},
              {"config",
               {{"keys", o.keys},
                {"key_bytes", state::kKeyLen},
                {"value_bytes", state::kValueLen},
                {"key_order", o.random_order ? "random" : "sorted"},
                {"map_size", kMapSize},
                {"durability", "process"},
                {"seconds_per_sample", o.seconds},
                {"reps", o.reps},
                {"store_mib", o.store_mib},
                {"rollback_reps", o.rollback_reps},
                {"fs_type", fs_type},
                {"goal_ratio", kGoal}}},
              {"throughput", throughput},
              {"rollback", RollbackJson(rr)}};
  if (!WriteJson(o.out, result)) {
    fmt::print(stderr, "cannot write {}\n", o.out);
    return 1;
  }
  fmt::print("\nwrote {}\n", o.out);
  return 0;
}

int Main(int argc, char** argv) {
  Options o;
  if (!ParseArgs(argc, argv, o)) return 2;
  const std::string tmp = MakeTempDir("slate-bench-state", o.dir);
  if (tmp.empty()) return 1;
  const int rc = Run(o, tmp);
  std::error_code ec;
  fs::remove_all(tmp, ec);  // ~250 MiB of stores and copies
  return rc;
}

}  // namespace
}  // namespace slate::bench

int main(int argc, char** argv) {
  return slate::bench::Main(argc, argv);
}
