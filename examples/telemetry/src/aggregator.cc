// aggregator: cuts the stream of Readings from `clean` into windows of 100
// seqs (telemetry.h: window k is seqs 100k+1..100k+100) and sends each
// complete window's Summary on `summaries`.
//
//   aggregator              run (ready = "notify")
//   aggregator --sanitize   repair the store (the system file's `sanitize`)
//
// Exactly-once over an at-least-once channel: each Reading is one state
// transaction that checks it against `last_seq` (a redelivery is counted as
// a duplicate and skipped), records the seqs that never came as gaps (what a
// dead-lettered message leaves), adds the reading to its window and moves
// `last_seq`; commit, then ack. A crash before the commit redoes the reading;
// after it, skips it.
//
// A window is complete when its last seq arrives, or a seq of a later window
// does (its last seqs were dead-lettered). Its Summary is sent inside the
// transaction that deletes the window's record, before the commit: a crash in
// between sends it again, and the api keeps the first copy of each window.
//
// State (checked_store.h: every value with a CRC and a mirror):
//   meta                 Meta
//   win/NNNNNNNNNNNNNNNN  WindowStats of the open window (16 decimal digits)
// The store holds only what is not sent yet; the api keeps the history. Every
// read, and a scrub of the whole store at start and every second, exits 4 on
// a damaged value.
#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <slate/slate.hpp>
#include <string>
#include <string_view>
#include <thread>

#include "checked_store.h"
#include "common.h"
#include "telemetry.h"

namespace {

using namespace std::chrono_literals;
using telemetry::Log;
using telemetry::WindowStats;

struct Meta {
  std::uint64_t last_seq = 0;      // every seq up to here is counted or recorded as a gap
  std::uint64_t duplicates = 0;    // redelivered readings skipped
  std::uint64_t readings = 0;      // readings counted
  std::uint64_t gap_seqs = 0;      // seqs recorded as gaps
  std::uint64_t windows_sent = 0;  // summaries sent (a resend after a crash counts once)
};

// A jump further than this (a day of samples) is not a gap but a broken
// stream: crash rather than emit a million empty windows.
constexpr std::uint64_t kMaxWindowJump =
    24ULL * 3600 * telemetry::kSamplesPerSecond / telemetry::kWindowSize;

std::string WindowKey(std::uint64_t window) {
  char key[32];
  (void)std::snprintf(key, sizeof key, "win/%016" PRIu64, window);
  return key;
}

void SendSummary(slate::Tx& summaries, const telemetry::Summary& summary) {
  for (;;) {
    auto id = summaries.Send(telemetry::BytesOf(summary), 100ms);
    slate::Heartbeat();
    if (id) return;
    if (id.code() == SLATE_EFULL) continue;  // the api is behind or restarting
    if (id.code() == SLATE_EPEERDOWN) {      // the api is stopped: returns at once
      std::this_thread::sleep_for(50ms);
      continue;
    }
    telemetry::Fail("send on summaries", id.error());
  }
}

class Aggregator {
 public:
  explicit Aggregator(slate::Tx summaries) : summaries_(std::move(summaries)) {}

  // One reading, one transaction.
  void Apply(const telemetry::Reading& reading) {
    auto txn = telemetry::BeginOrExit();
    Meta meta;
    if (auto stored = telemetry::Load<Meta>(txn, "meta")) {
      meta = *stored;
    } else {
      // An empty store: the first start, or a store the ladder emptied.
      // Start with the window of this seq; earlier windows are not ours.
      meta.last_seq = telemetry::FirstSeq(telemetry::WindowOf(reading.seq)) - 1;
      Log("empty store: starting at window %" PRIu64 " (seq %" PRIu64 ")",
          telemetry::WindowOf(reading.seq), reading.seq);
    }
    if (reading.seq <= meta.last_seq) {
      ++meta.duplicates;
      telemetry::Store(txn, "meta", meta);
      telemetry::CommitOrExit(txn);
      return;
    }
    const std::uint64_t from = meta.last_seq + 1;  // the first seq not accounted for
    const std::uint64_t window = telemetry::WindowOf(reading.seq);
    if (window - telemetry::WindowOf(from) > kMaxWindowJump) {
      Log("seq %" PRIu64 " jumps %" PRIu64 " windows past seq %" PRIu64
          ": cannot handle it, crashing",
          reading.seq, window - telemetry::WindowOf(from), meta.last_seq);
      std::abort();
    }
    if (from + 1 == reading.seq) {
      Log("seq %" PRIu64 " never came: recorded as a gap", from);
    } else if (from < reading.seq) {
      Log("seqs %" PRIu64 "..%" PRIu64 " never came: recorded as gaps", from, reading.seq - 1);
    }
    // Windows before this seq's are complete: what is missing of them is gaps.
    for (std::uint64_t w = telemetry::WindowOf(from); w < window; ++w) {
      WindowStats stats = telemetry::Load<WindowStats>(txn, WindowKey(w)).value_or(WindowStats{});
      MarkGaps(stats, w, std::max(from, telemetry::FirstSeq(w)), telemetry::LastSeq(w) + 1, meta);
      Close(txn, w, stats, meta);
    }
    WindowStats stats =
        telemetry::Load<WindowStats>(txn, WindowKey(window)).value_or(WindowStats{});
    MarkGaps(stats, window, std::max(from, telemetry::FirstSeq(window)), reading.seq, meta);
    telemetry::Accumulate(stats, reading.value_milli, reading.outlier != 0);
    ++meta.readings;
    meta.last_seq = reading.seq;
    if (reading.seq == telemetry::LastSeq(window)) {
      Close(txn, window, stats, meta);
    } else {
      telemetry::Store(txn, WindowKey(window), stats);
    }
    telemetry::Store(txn, "meta", meta);
    telemetry::CommitOrExit(txn);
  }

 private:
  // Seqs [begin, end) of `window` never came.
  static void MarkGaps(WindowStats& stats, std::uint64_t window, std::uint64_t begin,
                       std::uint64_t end, Meta& meta) {
    for (std::uint64_t s = begin; s < end; ++s) {
      telemetry::MarkGap(stats, s - telemetry::FirstSeq(window));
      ++meta.gap_seqs;
    }
  }

  // Sends the summary of a complete window and deletes its record, in `txn`.
  void Close(slate::Txn& txn, std::uint64_t window, const WindowStats& stats, Meta& meta) {
    telemetry::Summary summary;
    summary.window = window;
    summary.stats = stats;
    summary.duplicates = meta.duplicates;
    telemetry::Seal(summary);
    SendSummary(summaries_, summary);
    telemetry::ErasePair(txn, WindowKey(window));
    ++meta.windows_sent;
    std::uint32_t gaps = telemetry::GapCount(stats);
    if (gaps != 0 || window % 50 == 0) {
      Log("window %" PRIu64 " sent: %u readings, %u outliers, %u gaps; %" PRIu64
          " duplicates skipped so far",
          window, stats.count, stats.outliers, gaps, meta.duplicates);
    }
  }

  slate::Tx summaries_;
};

}  // namespace

int main(int argc, char** argv) {
  telemetry::SetProgram("aggregator");
  bool sanitize = argc == 2 && std::string_view(argv[1]) == "--sanitize";
  if (argc > 1 && !sanitize) {
    Log("usage: aggregator [--sanitize]");
    return telemetry::kExitUsage;
  }
  telemetry::AttachOrExit();
  if (sanitize) return telemetry::Sanitize();

  std::size_t pairs = telemetry::ScrubOrExit();
  auto clean = telemetry::OrExit(slate::Rx::Open("clean"), "open clean");
  Aggregator aggregator(telemetry::OrExit(slate::Tx::Open("summaries"), "open summaries"));
  if (auto meta = telemetry::Load<Meta>("meta")) {
    Log("store intact (%zu keys and their mirrors); last seq %" PRIu64 ", %" PRIu64
        " windows sent, %" PRIu64 " duplicates skipped, %" PRIu64 " gap seqs",
        pairs, meta->last_seq, meta->windows_sent, meta->duplicates, meta->gap_seqs);
  }
  slate::Ready();

  std::array<std::byte, 256> buf{};
  auto next_scrub = std::chrono::steady_clock::now() + 1s;
  for (;;) {
    slate::Heartbeat();
    if (std::chrono::steady_clock::now() >= next_scrub) {
      (void)telemetry::ScrubOrExit();
      next_scrub = std::chrono::steady_clock::now() + 1s;
    }
    auto msg = clean.Receive(buf, 100ms);
    if (!msg) {
      if (msg.code() == SLATE_ETIMEDOUT) continue;
      if (msg.code() == SLATE_EPEERDOWN) {  // the filter is stopped: returns at once
        std::this_thread::sleep_for(50ms);
        continue;
      }
      telemetry::Fail("receive on clean", msg.error());
    }
    auto reading = telemetry::RecordFrom<telemetry::Reading>(std::span(buf).first(msg->size));
    if (!reading || !telemetry::Intact(*reading)) {
      Log("message %llu on clean is not an intact reading: cannot handle it, crashing",
          static_cast<unsigned long long>(msg->id));
      std::abort();
    }
    aggregator.Apply(*reading);
    if (auto st = clean.Ack(msg->id); !st) telemetry::Fail("ack on clean", st.error());
  }
}
