// Messages between two processes, for 64 B and 4 KiB messages: a Clean Slate
// channel (src/channel) against a pipe, a Unix socket pair and the floor —
// the least shared memory and futexes can do with the channel's protocol,
// written here (floor_links.cc). Round-trip latency (p50, p99) and one-way
// throughput (median of --reps repetitions, interleaved across contenders);
// measure.h says how. The channel and the floor run with spin 0 (sleep on
// the futex at once), with the default spin of AttachOptions (2 us of
// polling first; the goals are judged there) and with --spin-us; pipes and
// sockets always sleep in the kernel.
//
//   slate_bench_channel [--round-trips 20000] [--warmup 2000] [--messages-64 2000000]
//                       [--messages-4k 200000] [--reps 5] [--spin-us 20] [--capacity 1024]
//                       [--cpus 0,1|none] [--dir /dev/shm] [--out FILE]
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <numeric>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "channel/end.h"
#include "channel/measure.h"
#include "common/bench_util.h"

namespace slate::bench {
namespace {

using std::chrono::nanoseconds;

constexpr std::size_t kSizes[] = {64, 4096};

// The goals of issue 4, item 6, for the channel.
constexpr double kMaxRoundTripVsFloor = 1.5;
constexpr double kMinSocketPairVsChannel = 3.0;
constexpr double kMin64ByteRate = 5e6;

// Spin 0, the default, and --spin-us (when it is not the default).
std::vector<nanoseconds> Spins(const Options& o) {
  std::vector<nanoseconds> spins = {nanoseconds(0), channel::kDefaultSpin};
  nanoseconds extra = std::chrono::microseconds(o.spin_us);
  if (extra != channel::kDefaultSpin) spins.push_back(extra);
  return spins;
}

// The round trip adds the ring floor as a diagnostic: between the flag
// (the floor) and the channel, it shows what a ring's second index costs.
std::vector<Contender> RoundTripContenders(const Options& o) {
  std::vector<Contender> all;
  for (nanoseconds spin : Spins(o)) {
    for (Kind k : {Kind::kFloorFlag, Kind::kFloorRing, Kind::kChannel}) all.push_back({k, spin});
  }
  all.push_back({Kind::kPipe, nanoseconds(0)});
  all.push_back({Kind::kSocketPair, nanoseconds(0)});
  return all;
}

std::vector<Contender> ThroughputContenders(const Options& o) {
  std::vector<Contender> all;
  for (nanoseconds spin : Spins(o)) {
    for (Kind k : {Kind::kFloorRing, Kind::kChannel}) all.push_back({k, spin});
  }
  all.push_back({Kind::kPipe, nanoseconds(0)});
  all.push_back({Kind::kSocketPair, nanoseconds(0)});
  return all;
}

// The index of the contender of that kind and spin in `all`; all.size() if none.
std::size_t IndexOf(const std::vector<Contender>& all, Kind kind, nanoseconds spin) {
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (all[i].kind == kind && all[i].spin == spin) return i;
  }
  return all.size();
}

// The floor a contender is compared with: the first floor of `all` (the
// flag for round trips, the ring for throughput) with its spin; pipes and
// sockets sleep at once, like spin 0.
std::size_t FloorIndex(const std::vector<Contender>& all, const Contender& c) {
  Kind floor = all.front().kind;
  std::size_t i = IndexOf(all, floor, c.spin);
  return i < all.size() ? i : IndexOf(all, floor, nanoseconds(0));
}

std::string Spin(nanoseconds spin) {
  return spin.count() == 0 ? "spin 0" : fmt::format("spin {} us", spin.count() / 1000);
}

// Microseconds with two decimals: round trips with a spin take well under one.
std::string Micros(double ns) {
  return fmt::format("{:.2f} us", ns / 1e3);
}

std::string Size(std::size_t size) {
  return size >= 1024 ? fmt::format("{} KiB", size / 1024) : fmt::format("{} B", size);
}

std::string Rate(double per_second) {
  return per_second >= 1e6 ? fmt::format("{:.2f} M/s", per_second / 1e6)
                           : fmt::format("{:.0f} k/s", per_second / 1e3);
}

Json Report(const EndReport& r) {
  return {
      {"voluntary_cs", r.voluntary_cs}, {"involuntary_cs", r.involuntary_cs}, {"cpu_ns", r.cpu_ns}};
}

struct ThroughputRow {
  Contender contender;
  std::size_t size = 0;
  std::string status = "ok";
  std::vector<ThroughputRun> runs;

  std::vector<double> Rates() const {
    std::vector<double> r;
    for (const auto& run : runs) r.push_back(run.per_second);
    return r;
  }
};

bool ParseArgs(int argc, char** argv, Options& o) {
  bool pin = true;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    bool has_value = i + 1 < argc;
    if (a == "--round-trips" && has_value) {
      o.round_trips = std::clamp(std::atoi(argv[++i]), 1, 10'000'000);
    } else if (a == "--warmup" && has_value) {
      o.warmup = std::clamp(std::atoi(argv[++i]), 0, 10'000'000);
    } else if (a == "--messages-64" && has_value) {
      o.messages_64 = std::clamp(std::atol(argv[++i]), 2L, 1'000'000'000L);
    } else if (a == "--messages-4k" && has_value) {
      o.messages_4k = std::clamp(std::atol(argv[++i]), 2L, 1'000'000'000L);
    } else if (a == "--reps" && has_value) {
      o.reps = std::clamp(std::atoi(argv[++i]), 1, 100);
    } else if (a == "--spin-us" && has_value) {
      o.spin_us = std::clamp(std::atoi(argv[++i]), 1, 1'000'000);
    } else if (a == "--capacity" && has_value) {
      o.capacity = static_cast<std::size_t>(std::clamp(std::atol(argv[++i]), 1L, 1L << 24));
    } else if (a == "--cpus" && has_value) {
      std::string list = argv[++i];
      pin = list != "none";
      std::stringstream in(list);
      for (std::string item; pin && std::getline(in, item, ',');) {
        o.cpus.push_back(std::atoi(item.c_str()));
      }
      if (pin && o.cpus.size() != 2) return false;
    } else if (a == "--dir" && has_value) {
      o.dir = argv[++i];
    } else if (a == "--out" && has_value) {
      o.out = argv[++i];
    } else {
      fmt::print(stderr,
                 "usage: {} [--round-trips N] [--warmup N] [--messages-64 N] [--messages-4k N] "
                 "[--reps N] [--spin-us US] [--capacity N] [--cpus A,B|none] [--dir DIR] "
                 "[--out FILE]\n",
                 argv[0]);
      return false;
    }
  }
  // The two ends on the last two CPUs; with one CPU there is nothing to pin.
  int cpus = static_cast<int>(std::thread::hardware_concurrency());
  if (pin && o.cpus.empty() && cpus >= 2) o.cpus = {cpus - 2, cpus - 1};
  if (o.dir.empty()) {
    std::error_code ec;
    const char* tmp = std::getenv("TMPDIR");
    o.dir = std::filesystem::is_directory("/dev/shm", ec) ? "/dev/shm"
            : tmp != nullptr && *tmp != '\0'              ? tmp
                                                          : "/tmp";
  }
  if (o.out.empty()) o.out = SLATE_BENCH_RESULTS "/channel.json";
  return true;
}

// The round-trip table; returns the rows' JSON.
Json RoundTrips(const Options& o, const std::vector<Contender>& all,
                std::vector<RoundTripRow>& rows, bool& ok) {
  fmt::print(
      "round trip: ping -> pong between two processes, {} after {} warm-up; ratio = p50 / "
      "the floor's p50 at the same spin\n\n",
      o.round_trips, o.warmup);
  fmt::print("{:<40} {:>7} {:>10} {:>10} {:>9} {:>9}\n", "contender", "size", "p50", "p99",
             "vs floor", "sleeps/rt");
  Json out = Json::array();
  for (std::size_t size : kSizes) {
    std::vector<double> p50(all.size());
    for (std::size_t i = 0; i < all.size(); ++i) {
      rows.push_back(MeasureRoundTrip(o, all[i], size));
      const RoundTripRow& r = rows.back();
      std::string name = Name(all[i]);
      if (r.status != "ok") {
        ok = false;
        fmt::print("{:<40} {:>7} {}\n", name, Size(size), r.status);
        out.push_back({{"contender", name}, {"size", size}, {"status", r.status}});
        continue;
      }
      p50[i] = Percentile(r.samples_ns, 50);
      double floor = p50[FloorIndex(all, all[i])];
      double ratio = floor > 0 ? p50[i] / floor : 0;
      double sleeps = static_cast<double>(r.pinger.voluntary_cs + r.echo.voluntary_cs) /
                      static_cast<double>(o.round_trips);
      double p99 = Percentile(r.samples_ns, 99);
      fmt::print("{:<40} {:>7} {:>10} {:>10} {:>8.2f}x {:>9.2f}\n", name, Size(size),
                 Micros(p50[i]), Micros(p99), ratio, sleeps);
      std::fflush(stdout);
      double mean = std::accumulate(r.samples_ns.begin(), r.samples_ns.end(), 0.0) /
                    static_cast<double>(r.samples_ns.size());
      out.push_back({{"contender", name},
                     {"kind", KindName(all[i].kind)},
                     {"spin_ns", all[i].spin.count()},
                     {"size", size},
                     {"status", r.status},
                     {"round_trips", o.round_trips},
                     {"p50_ns", p50[i]},
                     {"p90_ns", Percentile(r.samples_ns, 90)},
                     {"p99_ns", p99},
                     {"p999_ns", Percentile(r.samples_ns, 99.9)},
                     {"max_ns", *std::max_element(r.samples_ns.begin(), r.samples_ns.end())},
                     {"mean_ns", mean},
                     {"p50_vs_floor", ratio},
                     {"sleeps_per_round_trip", sleeps},
                     {"pinger", Report(r.pinger)},
                     {"echo", Report(r.echo)}});
    }
  }
  return out;
}

// The throughput table; repetitions go round the contenders and sizes so
// that a slow phase of the machine hits all of them alike.
Json Throughputs(const Options& o, const std::vector<Contender>& all,
                 std::vector<ThroughputRow>& rows, bool& ok) {
  fmt::print(
      "\none way throughput: producer and consumer in separate processes, {} x 64 B and "
      "{} x 4 KiB messages\n(pipe and socketpair: a quarter as many), timed after the "
      "first {}; median of {} repetitions\n(min - max), interleaved; ratio = median / the "
      "floor's at the same spin\n\n",
      o.messages_64, o.messages_4k, o.capacity, o.reps);
  for (std::size_t size : kSizes) {
    for (const Contender& c : all) rows.push_back({c, size, "ok", {}});
  }
  for (int rep = 0; rep < o.reps; ++rep) {
    for (ThroughputRow& row : rows) {
      if (row.status != "ok") continue;
      std::string why;
      auto run = MeasureThroughput(o, row.contender, row.size, why);
      if (run) {
        row.runs.push_back(*run);
      } else {
        row.status = "failed: " + why;
        ok = false;
      }
    }
  }
  fmt::print("{:<40} {:>7} {:>10} {:>21} {:>9} {:>9} {:>10}\n", "contender", "size", "median",
             "min - max", "MB/s", "vs floor", "sleeps/msg");
  Json out = Json::array();
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const ThroughputRow& r = rows[i];
    std::string name = Name(r.contender);
    if (r.status != "ok") {
      fmt::print("{:<40} {:>7} {}\n", name, Size(r.size), r.status);
      out.push_back({{"contender", name}, {"size", r.size}, {"status", r.status}});
      continue;
    }
    std::vector<double> rates = r.Rates();
    double median = Median(rates);
    std::size_t first_of_size = i / all.size() * all.size();
    const ThroughputRow& floor = rows[first_of_size + FloorIndex(all, r.contender)];
    double floor_median = floor.status == "ok" ? Median(floor.Rates()) : 0;
    double ratio = floor_median > 0 ? median / floor_median : 0;
    double n = static_cast<double>(o.Messages(r.size, r.contender.kind));
    std::vector<double> sleeps;
    Json runs = Json::array();
    for (const ThroughputRun& run : r.runs) {
      sleeps.push_back(static_cast<double>(run.sender.voluntary_cs + run.receiver.voluntary_cs) /
                       n);
      runs.push_back({{"per_second", run.per_second},
                      {"sender", Report(run.sender)},
                      {"receiver", Report(run.receiver)}});
    }
    auto [lo, hi] = std::minmax_element(rates.begin(), rates.end());
    fmt::print("{:<40} {:>7} {:>10} {:>21} {:>9.0f} {:>8.2f}x {:>10.3f}\n", name, Size(r.size),
               Rate(median), fmt::format("{} - {}", Rate(*lo), Rate(*hi)),
               median * static_cast<double>(r.size) / 1e6, ratio, Median(sleeps));
    out.push_back({{"contender", name},
                   {"kind", KindName(r.contender.kind)},
                   {"spin_ns", r.contender.spin.count()},
                   {"size", r.size},
                   {"status", r.status},
                   {"messages", o.Messages(r.size, r.contender.kind)},
                   {"per_second", rates},
                   {"median_per_second", median},
                   {"median_vs_floor", ratio},
                   {"median_sleeps_per_message", Median(sleeps)},
                   {"runs", runs}});
  }
  return out;
}

// The goals, for the channel at each spin; printed and returned as JSON.
Json Goals(const Options& o, const std::vector<RoundTripRow>& trips,
           const std::vector<ThroughputRow>& rates) {
  fmt::print("\ngoals for the Clean Slate channel (judged at the default spin, {})\n",
             Spin(channel::kDefaultSpin));
  Json out = Json::array();
  auto note = [&](const std::string& goal, std::size_t size, nanoseconds spin, double value,
                  const std::string& shown, double target, bool met) {
    const bool judged = spin == channel::kDefaultSpin;
    fmt::print("  {:<44} {:>7} {:<11} {:>12}  {}\n", goal, Size(size), Spin(spin), shown,
               judged ? (met ? "met" : "MISSED") : (met ? "(met)" : "(missed)"));
    out.push_back({{"goal", goal},
                   {"size", size},
                   {"spin_ns", spin.count()},
                   {"default_spin", judged},
                   {"value", value},
                   {"target", target},
                   {"met", met}});
  };
  auto p50 = [&](std::size_t size, Kind kind, nanoseconds spin) -> double {
    for (const RoundTripRow& r : trips) {
      if (r.size == size && r.contender.kind == kind && r.contender.spin == spin &&
          r.status == "ok") {
        return Percentile(r.samples_ns, 50);
      }
    }
    return 0;
  };
  for (std::size_t size : kSizes) {
    for (nanoseconds spin : Spins(o)) {
      double mine = p50(size, Kind::kChannel, spin);
      double floor = p50(size, Kind::kFloorFlag, spin);
      double sockets = p50(size, Kind::kSocketPair, nanoseconds(0));
      double vs_floor = floor > 0 ? mine / floor : 0;
      double vs_sockets = mine > 0 ? sockets / mine : 0;
      note("round-trip p50 <= 1.5x the floor's", size, spin, vs_floor,
           fmt::format("{:.2f}x", vs_floor), kMaxRoundTripVsFloor,
           mine > 0 && vs_floor <= kMaxRoundTripVsFloor);
      note("round-trip p50 >= 3x faster than socketpair", size, spin, vs_sockets,
           fmt::format("{:.2f}x", vs_sockets), kMinSocketPairVsChannel,
           vs_sockets >= kMinSocketPairVsChannel);
    }
  }
  for (const ThroughputRow& r : rates) {
    if (r.size != 64 || r.contender.kind != Kind::kChannel) continue;
    double median = r.status == "ok" ? Median(r.Rates()) : 0;
    note(">= 5 M messages/s one way", r.size, r.contender.spin, median, Rate(median),
         kMin64ByteRate, median >= kMin64ByteRate);
  }
  return out;
}

int Main(int argc, char** argv) {
  Options o;
  if (!ParseArgs(argc, argv, o)) return 2;
  BecomeSubreaper();
  KillChildrenOnFatalSignals();
  const std::int64_t began = MonoNs();
  Json machine = Machine();
  std::string placement = o.cpus.empty()
                              ? std::string("not pinned")
                              : fmt::format("pinned to CPUs {} and {}", o.cpus[0], o.cpus[1]);
  fmt::print("machine: {}\n", MachineLine(machine));
  fmt::print(
      "ends: two processes, {}; channel: capacity {}, max_message = the message size, files "
      "in {} ({});\nthe receiver acks every message; {} is AttachOptions' default; goals in "
      "(parentheses) "
      "are for information, not judged\n\n",
      placement, o.capacity, o.dir, FileSystemType(o.dir), Spin(channel::kDefaultSpin));

  bool ok = true;
  std::vector<RoundTripRow> trips;
  std::vector<ThroughputRow> rates;
  Json trip_json = RoundTrips(o, RoundTripContenders(o), trips, ok);
  Json rate_json = Throughputs(o, ThroughputContenders(o), rates, ok);
  Json goals = Goals(o, trips, rates);
  double took = static_cast<double>(MonoNs() - began) / 1e9;
  fmt::print("\n{:.1f} s\n", took);

  Json result{{"benchmark", "channel"},
              {"machine", machine},
              {"config",
               {{"round_trips", o.round_trips},
                {"warmup", o.warmup},
                {"messages_64", o.messages_64},
                {"messages_4k", o.messages_4k},
                {"reps", o.reps},
                {"spin_us", o.spin_us},
                {"capacity", o.capacity},
                {"cpus", o.cpus},
                {"dir", o.dir},
                {"dir_fs_type", FileSystemType(o.dir)},
                {"socketpair", "AF_UNIX SOCK_SEQPACKET"},
                {"ack", "every message, right after Receive"},
                {"seconds", took}}},
              {"round_trip", trip_json},
              {"throughput", rate_json},
              {"goals", goals}};
  if (!WriteJson(o.out, result)) {
    fmt::print(stderr, "cannot write {}\n", o.out);
    return 1;
  }
  fmt::print("wrote {}\n", o.out);
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace slate::bench

int main(int argc, char** argv) {
  int rc = slate::bench::Main(argc, argv);
  if (int n = slate::bench::KillAllChildren(); n > 0) {
    fmt::print(stderr, "killed {} leftover process(es)\n", n);
  }
  return rc;
}
