// `slate chaos`: faults into a running system, at random or on a schedule,
// optionally under a live view, and then a report that pairs each fault with
// its detection, remedy and recovery, read back from the journal.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "cli/client.h"
#include "cli/verbs.h"
#include "runtime/control.h"

namespace slate::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr int kFailed = 1;

const std::vector<std::string>& KnownFaults() {
  static const std::vector<std::string> kFaults = {"kill",   "segv",          "abort",
                                                   "hang",   "stall",         "bad_image",
                                                   "poison", "corrupt_state", "wedge_device"};
  return kFaults;
}

bool Known(const std::string& fault) {
  return std::find(KnownFaults().begin(), KnownFaults().end(), fault) != KnownFaults().end();
}

// "500ms", "2s", "1.5s" -> milliseconds; nullopt when malformed.
std::optional<long> Millis(std::string_view text) {
  double v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  // A day at most (and no inf or nan): a schedule is for one run.
  if (ec != std::errc() || !std::isfinite(v) || v < 0) return std::nullopt;
  std::string_view unit(end, static_cast<std::size_t>(text.data() + text.size() - end));
  const double ms = unit == "ms" ? v : unit == "s" ? v * 1000 : -1;
  if (ms < 0 || ms > 86'400'000) return std::nullopt;
  return static_cast<long>(ms);
}

struct Injection {
  long at_ms = 0;
  std::string fault;
  std::string name;
};

// One line of the journal, as the report needs it.
struct Event {
  std::int64_t mono_ns = 0;
  std::string event;
  std::string node;
  nlohmann::json raw;
};

// The journal's events after byte `from` (a line cut by a writer is skipped).
std::vector<Event> ReadJournal(const std::string& path, std::streamoff from) {
  std::vector<Event> out;
  std::ifstream in(path);
  in.seekg(from);
  for (std::string line; std::getline(in, line);) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_object() || !j.contains("mono_ns") || !j["mono_ns"].is_number()) continue;
    out.push_back({j["mono_ns"].get<std::int64_t>(), j.value("event", ""), j.value("node", ""),
                   std::move(j)});
  }
  return out;
}

std::streamoff JournalSize(const std::string& path) {
  std::error_code ec;
  auto size = fs::file_size(path, ec);
  return ec ? 0 : static_cast<std::streamoff>(size);
}

// An end the supervisor counts as a failure (not an orderly stop).
bool IsFailure(const Event& e) {
  if (e.event != "child_exited") return false;
  const std::string kind = e.raw.contains("reason") && e.raw["reason"].is_object()
                               ? e.raw["reason"].value("kind", "")
                               : "";
  return kind != "shutdown" && kind != "normal";
}

std::string Reason(const Event& e) {
  const nlohmann::json r = e.raw.value("reason", nlohmann::json::object());
  std::string kind = r.value("kind", "?");
  if (kind == "exit") return fmt::format("exit {}", r.value("code", -1));
  if (kind == "signal") {
    const int sig = r.value("signal", 0);
    const char* abbrev = sig > 0 ? ::sigabbrev_np(sig) : nullptr;
    return abbrev != nullptr ? fmt::format("SIG{}", abbrev) : fmt::format("signal {}", sig);
  }
  return kind;
}

// What the report says about one injection.
struct Outcome {
  std::string fault;
  std::string node;
  std::string what;  // the channel or device, when the fault names one
  double at_s = 0;   // since the first injection
  std::optional<double> detected_ms;
  std::string detected_by;
  std::optional<double> recovered_ms;
  std::vector<std::string> remedy;
};

constexpr std::int64_t kStableNs = 1'000'000'000;  // ready this long without failing: recovered

// Pairs each fault_injected with what followed it for its node: the first
// failure (detection), the runtime's remedies, and the first readiness the
// node kept for a second (recovery).
std::vector<Outcome> Pair(const std::vector<Event>& events) {
  std::vector<Outcome> out;
  std::optional<std::int64_t> first;
  for (std::size_t i = 0; i < events.size(); ++i) {
    const Event& f = events[i];
    if (f.event != "fault_injected") continue;
    if (!first) first = f.mono_ns;
    Outcome o;
    o.fault = f.raw.value("detail", "");
    o.node = f.node;
    o.what = f.raw.value("channel", f.raw.value("device", ""));
    o.at_s = static_cast<double>(f.mono_ns - *first) / 1e9;
    auto ms = [&](const Event& e) { return static_cast<double>(e.mono_ns - f.mono_ns) / 1e6; };
    // The window ends at the next fault into the same node.
    std::size_t end = events.size();
    for (std::size_t k = i + 1; k < events.size(); ++k) {
      if (events[k].event == "fault_injected" && events[k].node == f.node) {
        end = k;
        break;
      }
    }
    // Detected: the component's first failure; or the faulty process was
    // stopped first, by a restart of its group (a sibling's failure), which
    // cures a fault as well.
    const auto pid = f.raw.value("pid", std::int64_t{0});
    std::size_t detected = end;
    for (std::size_t k = i + 1; k < end; ++k) {
      const Event& e = events[k];
      if (e.node != f.node || (e.event != "child_exited" && e.event != "child_terminated")) {
        continue;
      }
      const bool failure = IsFailure(e);
      // (An update stops the process itself: not a cure.)
      if (!failure && (o.fault == "bad_image" || e.raw.value("pid", std::int64_t{0}) != pid)) {
        continue;
      }
      detected = k;
      o.detected_ms = ms(e);
      o.detected_by = failure ? Reason(e) : "stopped by a group restart";
      break;
    }
    std::size_t recovered = end;
    if (detected < end) {
      int failures = 0;
      for (std::size_t k = detected; k < end; ++k) {
        const Event& e = events[k];
        if (e.node == f.node && IsFailure(e)) ++failures;
        if (e.node != f.node || e.event != "child_ready") continue;
        bool kept = true;
        // Kept until the next fault into it, or for a second.
        for (std::size_t m = k + 1; m < end && events[m].mono_ns - e.mono_ns < kStableNs; ++m) {
          if (events[m].node == f.node && IsFailure(events[m])) kept = false;
        }
        if (kept) {
          recovered = k;
          o.recovered_ms = ms(e);
          break;
        }
      }
      if (failures > 1) o.detected_by += fmt::format(" (failed {} times)", failures);
    }
    // The remedies: what the runtime did for the node in between.
    const std::size_t last = std::min(recovered == end ? end : recovered + 1, events.size());
    int restarts = 0;
    bool standby = false;
    std::set<std::string> others;
    for (std::size_t k = i + 1; k < last; ++k) {
      const Event& e = events[k];
      if (e.event == "child_restarting") {
        if (e.node == f.node) {
          ++restarts;
        } else if (k > detected) {
          others.insert(e.node);
        }
        continue;
      }
      if (e.node != f.node) continue;
      if (e.event == "standby_promoted") {
        standby = true;
      } else if (e.event == "persistent_failure_step") {
        o.remedy.push_back(e.raw.value("step", e.raw.value("detail", "ladder step")));
      } else if (e.event == "device_reset" && e.raw.value("ok", false)) {
        o.remedy.push_back("device reset");
      } else if (e.event == "message_dead_lettered") {
        o.remedy.push_back(fmt::format("dead-lettered {}#{}", e.raw.value("channel", "?"),
                                       e.raw.value("msg_id", 0)));
      } else if (e.event == "image_reverted") {
        o.remedy.push_back("image reverted");
      }
    }
    if (restarts > 0) {
      o.remedy.insert(o.remedy.begin(),
                      fmt::format("restart{}{}", restarts > 1 ? fmt::format(" x{}", restarts) : "",
                                  standby ? " (standby)" : ""));
    }
    if (!others.empty()) o.remedy.push_back(fmt::format("with {}", fmt::join(others, ",")));
    out.push_back(std::move(o));
  }
  return out;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  // Nearest rank.
  const auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(v.size())));
  return v[std::min(v.size(), std::max<std::size_t>(rank, 1)) - 1];
}

std::string Ms(std::optional<double> v) {
  if (!v) return "-";
  return *v < 10 ? fmt::format("{:.2f} ms", *v) : fmt::format("{:.0f} ms", *v);
}

// Waits until every fault since byte `start` of the journal has been
// detected and recovered from, every component is running, and no failure
// came for a second; or until `limit`. False when the system is gone.
bool Settle(const Options& o, const std::string& journal, std::streamoff start,
            std::chrono::seconds limit, const std::function<void()>& meanwhile) {
  const auto deadline = Clock::now() + limit;
  bool calm = false;
  Clock::time_point calm_since = Clock::now();
  std::streamoff seen = JournalSize(journal);
  while (Clock::now() < deadline) {
    auto st = runtime::Call(SocketPath(o), {{"verb", "status"}});
    if (!st) return false;
    bool all_running = true;
    for (const auto& n : (*st)["status"]["nodes"]) {
      if (n.value("kind", "") == "component" && n.value("state", "") != "running") {
        all_running = false;
      }
    }
    const std::streamoff size = JournalSize(journal);
    bool failed = false;
    for (const Event& e : ReadJournal(journal, seen)) failed = failed || IsFailure(e);
    seen = size;
    // A hang shows only once its heartbeat is overdue, damage only when the
    // component reads it: wait for each fault's own outcome.
    const std::vector<Outcome> outcomes = Pair(ReadJournal(journal, start));
    const bool all_recovered = std::all_of(outcomes.begin(), outcomes.end(),
                                           [](const Outcome& oc) { return oc.recovered_ms; });
    if (!all_running || failed || !all_recovered) {
      calm = false;
    } else if (!calm) {
      calm = true;
      calm_since = Clock::now();
    } else if (Clock::now() - calm_since >= std::chrono::seconds(1)) {
      return true;
    }
    meanwhile();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return true;
}

struct Report {
  std::string text;
  nlohmann::json json;
  bool passed = true;
};

Report MakeReport(const Options& o, const std::vector<Event>& events,
                  const nlohmann::json& status) {
  Report r;
  std::vector<Outcome> outcomes = Pair(events);
  std::vector<double> recoveries;
  int unrecovered = 0;
  int undetected = 0;
  std::string& t = r.text;
  t += fmt::format("\nchaos report: {} faults\n", outcomes.size());
  t += fmt::format("{:>8}  {:<13} {:<22} {:<24} {:>10}  {:>10}  {}\n", "at", "fault", "into",
                   "detected as", "detected", "recovered", "remedy");
  nlohmann::json faults = nlohmann::json::array();
  for (const Outcome& oc : outcomes) {
    const std::string into = oc.what.empty() ? oc.node : fmt::format("{} ({})", oc.node, oc.what);
    t += fmt::format("{:>7.3f}s  {:<13} {:<22} {:<24} {:>10}  {:>10}  {}\n", oc.at_s, oc.fault,
                     into, oc.detected_ms ? oc.detected_by : "not detected", Ms(oc.detected_ms),
                     Ms(oc.recovered_ms),
                     oc.remedy.empty() ? "-" : fmt::format("{}", fmt::join(oc.remedy, ", ")));
    if (oc.recovered_ms) {
      recoveries.push_back(*oc.recovered_ms);
    } else if (oc.detected_ms) {
      ++unrecovered;
    } else {
      ++undetected;
    }
    nlohmann::json j = {{"at_s", oc.at_s},
                        {"fault", oc.fault},
                        {"node", oc.node},
                        {"detected_by", oc.detected_by},
                        {"remedy", oc.remedy}};
    if (!oc.what.empty()) j["target"] = oc.what;
    j["detected_ms"] = oc.detected_ms ? nlohmann::json(*oc.detected_ms) : nlohmann::json(nullptr);
    j["recovered_ms"] =
        oc.recovered_ms ? nlohmann::json(*oc.recovered_ms) : nlohmann::json(nullptr);
    faults.push_back(std::move(j));
  }
  const double p50 = Percentile(recoveries, 0.5);
  const double p99 = Percentile(recoveries, 0.99);
  const double worst =
      recoveries.empty() ? 0 : *std::max_element(recoveries.begin(), recoveries.end());
  t += fmt::format("\nrecovered {} of {} ({} not detected, {} not recovered)", recoveries.size(),
                   outcomes.size(), undetected, unrecovered);
  if (!recoveries.empty()) {
    t += fmt::format("; recovery p50 {}, p99 {}, max {}", Ms(p50), Ms(p99), Ms(worst));
  }
  t += "\n";
  // Dead letters: where the poison went.
  std::uint64_t dead = 0;
  nlohmann::json per_channel = nlohmann::json::object();
  if (status.contains("channels") && status["channels"].is_array()) {
    for (const auto& ch : status["channels"]) {
      const std::uint64_t n = ch.value("dead_letters", std::uint64_t{0});
      dead += n;
      per_channel[ch.value("name", "?")] = n;
    }
  }
  std::vector<std::string> gave_up;
  for (const Event& e : events) {
    if (e.event == "child_gave_up" || e.event == "supervisor_intensity_exceeded") {
      gave_up.push_back(fmt::format("{} ({})", e.node, e.event));
    }
  }
  t += fmt::format("dead letters: {}{}\n", dead,
                   dead > 0 ? fmt::format(" ({})", per_channel.dump()) : "");
  t += fmt::format("gave up: {}\n",
                   gave_up.empty() ? "nothing" : fmt::format("{}", fmt::join(gave_up, ", ")));

  r.json = {{"faults", faults},
            {"injected", outcomes.size()},
            {"recovered", recoveries.size()},
            {"not_detected", undetected},
            {"not_recovered", unrecovered},
            {"recovery_p50_ms", p50},
            {"recovery_p99_ms", p99},
            {"recovery_max_ms", worst},
            {"dead_letters", dead},
            {"dead_letters_by_channel", per_channel},
            {"gave_up", gave_up}};
  // The verdict, when asked for one.
  std::vector<std::string> failures;
  if (!gave_up.empty()) failures.push_back("the system gave up on something");
  if (o.max_recovery_ms > 0) {
    if (outcomes.empty()) failures.push_back("no fault was injected");
    if (undetected > 0) {
      failures.push_back(
          fmt::format("{} fault(s) never detected (the component went on as if "
                      "nothing happened, or the fault missed)",
                      undetected));
    }
    if (unrecovered > 0) failures.push_back(fmt::format("{} fault(s) not recovered", unrecovered));
    if (worst > static_cast<double>(o.max_recovery_ms)) {
      failures.push_back(
          fmt::format("a recovery took {}, over the bound of {} ms", Ms(worst), o.max_recovery_ms));
    }
  }
  r.passed = failures.empty();
  r.json["passed"] = r.passed;
  r.json["failures"] = failures;
  if (!failures.empty()) t += fmt::format("FAILED: {}\n", fmt::join(failures, "; "));
  return r;
}

}  // namespace

int RunChaos(const Options& o) {
  std::vector<std::string> faults =
      o.faults.empty() ? std::vector<std::string>{"kill", "segv", "hang"} : o.faults;
  for (const std::string& f : faults) {
    if (!Known(f)) {
      fmt::print(stderr, "slate chaos: unknown fault '{}' ({})\n", f,
                 fmt::join(KnownFaults(), ", "));
      return kUsageError;
    }
  }
  std::vector<Injection> schedule;
  if (!o.at.empty()) {
    std::string_view rest = o.at;
    while (!rest.empty()) {
      std::string_view item = rest.substr(0, rest.find(','));
      rest = item.size() < rest.size() ? rest.substr(item.size() + 1) : std::string_view{};
      const std::size_t c1 = item.find(':');
      const std::size_t c2 = c1 == std::string_view::npos ? c1 : item.find(':', c1 + 1);
      std::optional<long> at =
          c1 == std::string_view::npos ? std::nullopt : Millis(item.substr(0, c1));
      if (!at || c2 == std::string_view::npos || c2 + 1 >= item.size()) {
        fmt::print(stderr, "slate chaos: --at entry '{}' is not TIME:FAULT:NAME\n", item);
        return kUsageError;
      }
      schedule.push_back(
          {*at, std::string(item.substr(c1 + 1, c2 - c1 - 1)), std::string(item.substr(c2 + 1))});
      if (!Known(schedule.back().fault)) {
        fmt::print(stderr, "slate chaos: unknown fault '{}'\n", schedule.back().fault);
        return kUsageError;
      }
    }
    std::stable_sort(schedule.begin(), schedule.end(),
                     [](const Injection& a, const Injection& b) { return a.at_ms < b.at_ms; });
  }
  const std::uint64_t seed =
      o.seed != 0 ? o.seed
                  : static_cast<std::uint64_t>(Clock::now().time_since_epoch().count()) | 1;
  std::mt19937_64 rng(seed);
  auto status = runtime::Call(SocketPath(o), {{"verb", "status"}});
  if (!status) {
    fmt::print(stderr, "slate chaos: {}\n", status.error().message);
    return kFailed;
  }
  const std::string journal = (fs::path(StateDir(o)) / "events.jsonl").string();
  const std::streamoff journal_start = JournalSize(journal);
  const std::string plan = schedule.empty()
                               ? fmt::format("seed {}, {} s, a fault every ~{} ms from {}", seed,
                                             o.seconds, o.every_ms, fmt::join(faults, ","))
                               : fmt::format("{} scheduled faults", schedule.size());
  const bool terminal = ::isatty(STDOUT_FILENO) == 1;
  if (!o.view) fmt::print("slate chaos: {}\n", plan);

  // The live view: the tree and the latest injections, redrawn every
  // second (in place on a terminal, frame after frame otherwise).
  std::deque<std::string> recent;
  auto last_frame = Clock::time_point{};
  int frames = 0;
  auto draw = [&](bool force) {
    if (!o.view || (!force && Clock::now() - last_frame < std::chrono::seconds(1))) return;
    last_frame = Clock::now();
    auto st = runtime::Call(SocketPath(o), {{"verb", "status"}}, 2000);
    if (!st) return;
    std::string text = fmt::format("slate chaos: {}\n\n", plan);
    text += TopFrame((*st)["status"], journal, 6);
    text += "\nlatest faults\n";
    for (const std::string& line : recent) text += line + "\n";
    if (terminal) {
      fmt::print("\x1b[H\x1b[2J{}", text);
    } else {
      fmt::print("{}{}", frames > 0 ? "----\n" : "", text);
    }
    ++frames;
    (void)std::fflush(stdout);
  };

  std::map<std::string, int> made;
  int refused = 0;
  auto inject = [&](long at_ms, const std::string& fault, const std::string& name) {
    nlohmann::json request = {{"verb", "inject"}, {"name", name}, {"fault", fault}};
    // Which value to corrupt, or which of its input channels to poison.
    if (fault == "corrupt_state" || fault == "poison") request["seed"] = rng();
    auto r = runtime::Call(SocketPath(o), request);
    const bool ok = r && (*r).value("ok", false);
    const std::string said = !r   ? r.error().message
                             : ok ? (*r).value("message", "")
                                  : "refused: " + (*r).value("error", "");
    std::string line = fmt::format("{:>8.3f}s  {:<13} {:<20} {}", static_cast<double>(at_ms) / 1000,
                                   fault, name, said);
    if (o.view) {
      recent.push_back(std::move(line));
      if (recent.size() > 8) recent.pop_front();
    } else {
      fmt::print("{}\n", line);
      (void)std::fflush(stdout);
    }
    if (ok) {
      ++made[fault];
    } else {
      ++refused;
    }
    return ok;
  };
  const auto start = Clock::now();
  auto elapsed_ms = [&] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
  };
  // Sleeps until `t`, drawing the view meanwhile.
  auto wait_until = [&](Clock::time_point t) {
    while (Clock::now() < t) {
      draw(false);
      std::this_thread::sleep_until(std::min(t, Clock::now() + std::chrono::milliseconds(100)));
    }
  };
  bool gone = false;
  if (!schedule.empty()) {
    for (const Injection& i : schedule) {
      wait_until(start + std::chrono::milliseconds(i.at_ms));
      inject(elapsed_ms(), i.fault, i.name);
    }
  } else {
    std::uniform_real_distribution<double> jitter(0.5, 1.5);
    const auto end = start + std::chrono::seconds(o.seconds);
    for (;;) {
      const auto next =
          Clock::now() + std::chrono::milliseconds(static_cast<long>(o.every_ms * jitter(rng)));
      if (next >= end) break;
      wait_until(next);
      // The components running now, of those targeted.
      auto st = runtime::Call(SocketPath(o), {{"verb", "status"}});
      if (!st) {
        fmt::print("slate chaos: the system is gone ({})\n", st.error().message);
        gone = true;
        break;
      }
      std::vector<std::string> running;
      for (const auto& n : (*st)["status"]["nodes"]) {
        const std::string name = n.value("name", "");
        if (n.value("kind", "") != "component" || n.value("state", "") != "running") continue;
        if (!o.targets.empty() &&
            std::find(o.targets.begin(), o.targets.end(), name) == o.targets.end()) {
          continue;
        }
        running.push_back(name);
      }
      if (running.empty()) continue;
      const std::string name = running[rng() % running.size()];
      // A fault the target cannot take (a hang without a heartbeat) is
      // refused: the next one in the list is tried.
      const std::size_t first = rng() % faults.size();
      for (std::size_t k = 0; k < faults.size(); ++k) {
        if (inject(elapsed_ms(), faults[(first + k) % faults.size()], name)) break;
      }
    }
  }
  std::string summary;
  for (const auto& [fault, n] : made) summary += fmt::format(" {} {}", fault, n);
  const std::string injected =
      fmt::format("slate chaos: injected{}{}", summary.empty() ? " nothing" : summary,
                  refused > 0 ? fmt::format(" ({} refused)", refused) : "");
  if (!o.report && o.max_recovery_ms == 0 && o.report_json.empty()) {
    draw(true);
    fmt::print("{}\n", injected);
    return gone ? kFailed : 0;
  }
  // The report: first let the system come back (or give up trying).
  if (!gone) {
    Settle(o, journal, journal_start, std::chrono::seconds(o.settle_s), [&] { draw(false); });
  }
  draw(true);
  auto final_status = runtime::Call(SocketPath(o), {{"verb", "status"}});
  Report report = MakeReport(o, ReadJournal(journal, journal_start),
                             final_status ? (*final_status)["status"] : nlohmann::json::object());
  fmt::print("{}\n{}", injected, report.text);
  report.json["seed"] = seed;
  report.json["refused"] = refused;
  report.json["system_running"] = static_cast<bool>(final_status);
  if (!o.report_json.empty()) {
    const std::string tmp = o.report_json + ".tmp";
    std::ofstream(tmp) << report.json.dump(2) << "\n";
    std::error_code ec;
    fs::rename(tmp, o.report_json, ec);
    if (ec) fmt::print(stderr, "slate chaos: cannot write {}: {}\n", o.report_json, ec.message());
  }
  return gone || !final_status || !report.passed ? kFailed : 0;
}

}  // namespace slate::cli
