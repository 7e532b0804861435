// load: the load client, and the system's auditor. It queries the api and
// checks every answer against the sensor's model (telemetry.h), so that the
// report it writes says whether any message or any committed state was lost.
//
//   load --report PATH [--interval-ms 20]   run (ready = "notify")
//   load --sanitize                         repair the store
//
// Every --interval-ms it asks "latest", then a random window up to the
// latest, then the next window of a running sweep that checks each window
// once, in order. A call that gets no reply within 1 s, or an error, is a
// failed request. A window is checked by recomputing it from SensorValue:
// count + gaps must be 100, and count, outliers, sum, min and max must be
// what the seqs not marked as gaps give. Anything else is a state mismatch,
// logged with the window.
//
// The counters live in the state store (key "counters", checked_store.h),
// committed once per round, so a restart of the load client loses at most
// the counts of the round it was in. Every 500 ms they are written to PATH as
// JSON (a temporary file renamed over PATH).
//
// On SIGTERM (the runtime stopping it) it makes a final sweep: it asks for
// every window from 0 to the latest and checks each, writes the final report
// ("final": true) and exits 0. Its shutdown timeout must leave it time.
//
// The report: {"requests_sent", "requests_answered", "requests_failed":
// requests since the store began; "windows_checked": windows answered with
// a summary and checked; "windows_missing": windows below the latest the api
// did not have (committed state lost); "windows_unanswered": in the final
// report, windows the api gave no answer for, which windows_missing counts
// too, since nothing shows they are there (0 while running);
// "windows_dead_lettered": windows the
// api did not have because their summary was dead-lettered; "gap_seqs": seqs
// missing inside the windows checked (each one a message dead-lettered on raw
// or clean); "state_mismatches": answers that failed the check;
// "duplicates_seen": redeliveries skipped by the aggregator and the api;
// "latest_window"; "final"}. In the final report the window counts and
// gap_seqs are those of the final sweep, and state_mismatches adds the
// sweep's to those seen while running.
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <random>
#include <slate/slate.hpp>
#include <string>
#include <string_view>
#include <thread>

#include <sys/stat.h>

#include "checked_store.h"
#include "common.h"
#include "telemetry.h"

namespace {

using namespace std::chrono_literals;
using telemetry::Log;
using telemetry::ReplyStatus;

struct Counters {
  std::uint64_t requests_sent = 0;
  std::uint64_t requests_answered = 0;
  std::uint64_t requests_failed = 0;
  std::uint64_t windows_checked = 0;  // by the running sweep
  std::uint64_t windows_missing = 0;
  std::uint64_t windows_dead_lettered = 0;
  std::uint64_t gap_seqs = 0;
  std::uint64_t state_mismatches = 0;  // every answer that failed its check
  std::uint64_t next_window = 0;       // the running sweep's next window
  std::uint64_t api_duplicates = 0;
  std::uint64_t aggregator_duplicates = 0;
  std::uint64_t latest = 0;
  std::uint32_t has_latest = 0;
  std::uint32_t padding = 0;
};

// What the final sweep finds, afresh.
struct Sweep {
  std::uint64_t checked = 0;
  std::uint64_t missing = 0;
  std::uint64_t dead_lettered = 0;
  std::uint64_t gap_seqs = 0;
  std::uint64_t mismatches = 0;
  std::uint64_t unanswered = 0;  // also counted in missing
};

enum class Outcome { kChecked, kMismatch, kMissing, kDeadLettered, kNoAnswer };

constexpr auto kCallTimeout = 1000ms;

class LoadClient {
 public:
  LoadClient(slate::Client client, std::string report)
      : client_(std::move(client)), report_(std::move(report)) {
    counters_ = telemetry::Load<Counters>("counters").value_or(Counters{});
  }

  // One round: latest, a random window, the sweep's next windows.
  void Round() {
    if (auto reply = Call("latest"); reply && reply->status == ReplyStatus::kOk) {
      counters_.latest = reply->latest;
      counters_.has_latest = 1;
      (void)Check(reply->latest, *reply);
    }
    if (counters_.has_latest != 0) {
      std::uniform_int_distribution<std::uint64_t> pick(0, counters_.latest);
      std::uint64_t w = pick(random_);
      if (auto reply = Ask(w); reply && Check(w, *reply) == Outcome::kMissing) {
        Log("window %" PRIu64 " not found, though the latest is %" PRIu64, w, counters_.latest);
      }
      // Up to 5 windows per round, so the sweep catches up after a pause.
      for (int i = 0; i < 5 && counters_.next_window <= counters_.latest; ++i) {
        auto reply = Ask(counters_.next_window);
        if (!reply) break;  // again next round
        Outcome outcome = Check(counters_.next_window, *reply);
        if (outcome == Outcome::kNoAnswer) break;
        switch (outcome) {
          case Outcome::kChecked:
          case Outcome::kMismatch:
            ++counters_.windows_checked;
            counters_.gap_seqs += telemetry::GapCount(reply->summary.stats);
            break;
          case Outcome::kMissing:
            ++counters_.windows_missing;
            Log("window %" PRIu64 " is missing (latest %" PRIu64 ")", counters_.next_window,
                counters_.latest);
            break;
          case Outcome::kDeadLettered: ++counters_.windows_dead_lettered; break;
          case Outcome::kNoAnswer: break;
        }
        ++counters_.next_window;
      }
    }
    Save();
  }

  // The final sweep over every window, then the final report.
  void Finish(std::chrono::steady_clock::time_point deadline) {
    // The api's latest, or, if it does not answer within 5 s, the latest it
    // answered before: those windows were there, so they are checked too.
    std::optional<telemetry::Reply> latest;
    auto give_up_latest = std::min(deadline, std::chrono::steady_clock::now() + 5s);
    while (!latest && std::chrono::steady_clock::now() < give_up_latest) {
      latest = Call("latest");
      if (latest && latest->status != ReplyStatus::kOk && latest->status != ReplyStatus::kEmpty) {
        latest.reset();
      }
      if (!latest) std::this_thread::sleep_for(100ms);
    }
    if (latest && latest->status == ReplyStatus::kOk) {
      counters_.latest = latest->latest;
      counters_.has_latest = 1;
    } else if (!latest) {
      Log("final sweep: the api does not answer 'latest'; sweeping up to the last latest seen");
    }
    Sweep sweep;
    auto sweep_start = std::chrono::steady_clock::now();
    if (counters_.has_latest != 0) {
      Log("final sweep over windows 0..%" PRIu64, counters_.latest);
      int unanswered_in_a_row = 0;
      for (std::uint64_t w = 0; w <= counters_.latest; ++w) {
        Outcome outcome = Outcome::kNoAnswer;
        std::optional<telemetry::Reply> reply;
        // Once three windows in a row got no answer the api is gone: ask no more.
        for (int attempt = 0;
             attempt < 5 && outcome == Outcome::kNoAnswer && unanswered_in_a_row < 3 &&
             std::chrono::steady_clock::now() < deadline;
             ++attempt) {
          reply = Ask(w);
          if (reply) outcome = Check(w, *reply);
        }
        unanswered_in_a_row = outcome == Outcome::kNoAnswer ? unanswered_in_a_row + 1 : 0;
        switch (outcome) {
          case Outcome::kChecked:
            ++sweep.checked;
            sweep.gap_seqs += telemetry::GapCount(reply->summary.stats);
            break;
          case Outcome::kMismatch:
            ++sweep.checked;
            ++sweep.mismatches;
            sweep.gap_seqs += telemetry::GapCount(reply->summary.stats);
            break;
          case Outcome::kDeadLettered: ++sweep.dead_lettered; break;
          case Outcome::kMissing: ++sweep.missing; break;
          case Outcome::kNoAnswer:
            // Not shown to be there: it counts as missing.
            ++sweep.missing;
            ++sweep.unanswered;
            break;
        }
      }
      if (sweep.unanswered != 0) {
        Log("final sweep: %" PRIu64 " windows got no answer: counted as missing", sweep.unanswered);
      }
    }
    Save();
    WriteReport(&sweep);
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - sweep_start);
    Log("final (sweep took %lld ms): %" PRIu64 " windows checked, %" PRIu64 " missing, %" PRIu64
        " dead-lettered, %" PRIu64 " gap seqs, %" PRIu64 " state mismatches; requests %" PRIu64
        " sent, %" PRIu64 " answered, %" PRIu64 " failed",
        static_cast<long long>(took.count()), sweep.checked, sweep.missing, sweep.dead_lettered,
        sweep.gap_seqs, counters_.state_mismatches + sweep.mismatches, counters_.requests_sent,
        counters_.requests_answered, counters_.requests_failed);
  }

  // Writes the report; `sweep` is the final sweep, or nullptr while running.
  void WriteReport(const Sweep* sweep) const {
    const Counters& c = counters_;
    char json[1024];
    int n = std::snprintf(json, sizeof json,
                          "{\"requests_sent\":%" PRIu64 ",\"requests_answered\":%" PRIu64
                          ",\"requests_failed\":%" PRIu64 ",\"windows_checked\":%" PRIu64
                          ",\"windows_missing\":%" PRIu64 ",\"windows_unanswered\":%" PRIu64
                          ",\"windows_dead_lettered\":%" PRIu64 ",\"state_mismatches\":%" PRIu64
                          ",\"gap_seqs\":%" PRIu64 ",\"duplicates_seen\":%" PRIu64
                          ",\"latest_window\":%" PRIu64 ",\"final\":%s}\n",
                          c.requests_sent, c.requests_answered, c.requests_failed,
                          sweep != nullptr ? sweep->checked : c.windows_checked,
                          sweep != nullptr ? sweep->missing : c.windows_missing,
                          sweep != nullptr ? sweep->unanswered : 0,
                          sweep != nullptr ? sweep->dead_lettered : c.windows_dead_lettered,
                          c.state_mismatches + (sweep != nullptr ? sweep->mismatches : 0),
                          sweep != nullptr ? sweep->gap_seqs : c.gap_seqs,
                          c.api_duplicates + c.aggregator_duplicates, c.latest,
                          sweep != nullptr ? "true" : "false");
    if (n < 0 || static_cast<std::size_t>(n) >= sizeof json) return;
    std::string tmp = report_ + ".tmp";
    std::FILE* f = std::fopen(tmp.c_str(), "we");
    if (f == nullptr) {
      Log("report %s: %s", tmp.c_str(), std::strerror(errno));
      return;
    }
    bool ok = std::fwrite(json, 1, static_cast<std::size_t>(n), f) == static_cast<std::size_t>(n);
    ok = std::fclose(f) == 0 && ok;
    if (!ok || std::rename(tmp.c_str(), report_.c_str()) != 0) {
      Log("report %s: %s", report_.c_str(), std::strerror(errno));
    }
  }

 private:
  std::optional<telemetry::Reply> Ask(std::uint64_t window) {
    return Call("window " + std::to_string(window));
  }

  std::optional<telemetry::Reply> Call(const std::string& request) {
    ++counters_.requests_sent;
    auto n =
        client_.Call(std::as_bytes(std::span(request.data(), request.size())), buf_, kCallTimeout);
    slate::Heartbeat();
    if (!n) {
      ++counters_.requests_failed;
      if (n.code() == SLATE_EPEERDOWN) std::this_thread::sleep_for(50ms);  // fails at once
      Log("'%s': %s", request.c_str(), n.error().text.c_str());
      return std::nullopt;
    }
    auto reply = telemetry::RecordFrom<telemetry::Reply>(std::span(buf_).first(*n));
    if (!reply || reply->magic != telemetry::kReplyMagic) {
      ++counters_.requests_failed;
      Log("'%s': a reply of %zu bytes that is not a Reply", request.c_str(), *n);
      return std::nullopt;
    }
    ++counters_.requests_answered;
    counters_.api_duplicates = reply->duplicates;
    if (reply->status == ReplyStatus::kOk &&
        reply->summary.duplicates > counters_.aggregator_duplicates) {
      counters_.aggregator_duplicates = reply->summary.duplicates;
    }
    return reply;
  }

  // Checks the answer for `window`; a failed check is counted and logged.
  Outcome Check(std::uint64_t window, const telemetry::Reply& reply) {
    switch (reply.status) {
      case ReplyStatus::kOk: break;
      case ReplyStatus::kNotFound: return Outcome::kMissing;
      case ReplyStatus::kDeadLettered: return Outcome::kDeadLettered;
      case ReplyStatus::kEmpty:
      case ReplyStatus::kBadRequest:
      default:
        Log("window %" PRIu64 ": unexpected reply status %u", window,
            static_cast<unsigned>(reply.status));
        return Outcome::kNoAnswer;
    }
    const telemetry::Summary& s = reply.summary;
    const char* why = nullptr;
    telemetry::WindowStats expected = telemetry::ExpectedStats(window, s.stats.gaps);
    if (!telemetry::Intact(s)) {
      why = "its checksum fails";
    } else if (s.window != window) {
      why = "it is another window";
    } else if (s.stats.count + telemetry::GapCount(s.stats) != telemetry::kWindowSize) {
      why = "count + gaps is not 100";
    } else if (s.stats != expected) {
      why = "its values are not what the sensor sent";
    } else {
      return Outcome::kChecked;
    }
    ++counters_.state_mismatches;
    Log("STATE MISMATCH in window %" PRIu64 ": %s. Got window %" PRIu64
        " count %u outliers %u sum %" PRId64 " min %" PRId64 " max %" PRId64
        " gaps %u; expected count %u outliers %u sum %" PRId64 " min %" PRId64 " max %" PRId64,
        window, why, s.window, s.stats.count, s.stats.outliers, s.stats.sum, s.stats.min,
        s.stats.max, telemetry::GapCount(s.stats), expected.count, expected.outliers, expected.sum,
        expected.min, expected.max);
    return Outcome::kMismatch;
  }

  void Save() {
    auto txn = telemetry::BeginOrExit();
    // Read before writing: a damaged value is found (exit 4), not just
    // overwritten, so the damage is reported where it happened.
    (void)telemetry::Load<Counters>(txn, "counters");
    telemetry::Store(txn, "counters", counters_);
    telemetry::CommitOrExit(txn);
  }

  slate::Client client_;
  std::string report_;
  Counters counters_;
  std::array<std::byte, 512> buf_{};
  std::mt19937_64 random_{std::random_device{}()};
};

// mkdir -p of the folder that holds `path`.
void MakeParents(const std::string& path) {
  for (std::size_t slash = path.find('/', 1); slash != std::string::npos;
       slash = path.find('/', slash + 1)) {
    std::string dir = path.substr(0, slash);
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
      Log("mkdir %s: %s", dir.c_str(), std::strerror(errno));
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  telemetry::SetProgram("load");
  telemetry::CatchTermination();
  std::string report;
  long interval_ms = 20;
  bool sanitize = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--report" && i + 1 < argc) {
      report = argv[++i];
    } else if (arg == "--interval-ms" && i + 1 < argc) {
      interval_ms = std::strtol(argv[++i], nullptr, 10);
    } else if (arg == "--sanitize") {
      sanitize = true;
    } else {
      report.clear();
      break;
    }
  }
  if (!sanitize && report.empty()) {
    Log("usage: load --report PATH [--interval-ms N] | load --sanitize");
    return telemetry::kExitUsage;
  }
  if (interval_ms <= 0) interval_ms = 20;
  telemetry::AttachOrExit();
  if (sanitize) return telemetry::Sanitize();

  std::size_t pairs = telemetry::ScrubOrExit();
  MakeParents(report);
  LoadClient load(telemetry::OrExit(slate::Client::Open("requests", "replies"), "open requests"),
                  report);
  Log("running; store intact (%zu keys and their mirrors); report %s", pairs, report.c_str());
  slate::Ready();

  auto next_report = std::chrono::steady_clock::now();
  auto next_scrub = std::chrono::steady_clock::now() + 1s;
  while (!telemetry::TerminationRequested()) {
    slate::Heartbeat();
    auto now = std::chrono::steady_clock::now();
    if (now >= next_scrub) {
      (void)telemetry::ScrubOrExit();
      next_scrub = now + 1s;
    }
    load.Round();
    if (std::chrono::steady_clock::now() >= next_report) {
      load.WriteReport(nullptr);
      next_report = std::chrono::steady_clock::now() + 500ms;
    }
    telemetry::Pause(std::chrono::milliseconds(interval_ms));
  }
  Log("stopping: final sweep");
  // Within the system file's shutdown = "30s", with room to write the report.
  load.Finish(std::chrono::steady_clock::now() + 25s);
  return 0;
}
