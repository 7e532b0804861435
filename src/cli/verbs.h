// The table of `slate` verbs (SPEC section 7). Each verb has a summary for
// `slate --help`, a longer text for `slate help VERB`, its options, and what
// it runs. A verb whose capability has not landed yet is listed with
// `available = false`: its help says when it comes, and running it exits 2.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

namespace slate::cli {

// The exit status of a command line slate cannot act on (one definition for
// main.cc, client.cc and chaos.cc, which may share a unity translation unit).
inline constexpr int kUsageError = 2;

// Options every verb may set; each verb reads only its own.
struct Options {
  std::string file;       // run, check
  std::string name;       // logs, start, stop, restart, kill, update, revert
  std::string path;       // update
  std::string channel;    // dlq
  std::string action;     // dlq: list (when empty), export, requeue, purge
  std::string id;         // dlq requeue, purge: a dead letter's id, checked by RunDlq
  std::string output;     // dlq export: --output FILE
  std::string state_dir;  // client verbs: --state-dir
  std::string signal = "KILL";
  bool json = false;
  bool follow = false;
  bool all = false;        // dlq requeue, purge
  int interval_ms = 1000;  // top: between frames
  int count = 0;           // top: frames to draw; 0 = until interrupted
  int events = 8;          // top: latest events shown
  // chaos
  std::uint64_t seed = 0;  // 0: from the clock (printed)
  int seconds = 60;
  int every_ms = 2000;
  std::vector<std::string> faults;   // default kill, segv, hang
  std::vector<std::string> targets;  // default every component
  std::string at;                    // a schedule: "T:FAULT:NAME,..." (T like 500ms, 2s)
  bool view = false;                 // the live view while injecting
  bool report = false;               // a report at the end
  std::string report_json;           // ... also written here as JSON
  int settle_s = 15;                 // how long the report waits for the system to recover
  long max_recovery_ms = 0;          // >0: exit 1 when a recovery takes longer (or fails)
};

struct Verb {
  std::string_view name;
  std::string_view summary;
  std::string_view details;
  std::string_view arrives_with;  // empty when available
  std::function<void(CLI::App&, Options&)> options;
  std::function<int(const Options&)> run;
};

const std::vector<Verb>& Verbs();

// `slate check FILE`: 0 and the tree, or 2 and every error.
int RunCheck(const Options& o);
// `slate run FILE` (run.cc) and the client verbs (client.cc).
int RunRun(const Options& o);
int RunStatus(const Options& o);
int RunEvents(const Options& o);
int RunLogs(const Options& o);
int RunStart(const Options& o);
int RunStop(const Options& o);
int RunRestart(const Options& o);
int RunKill(const Options& o);
int RunShutdown(const Options& o);
// `slate dlq CHANNEL [ACTION [ID]]`: 0 ok, 1 runtime error, 2 bad usage.
int RunDlq(const Options& o);
int RunUpdate(const Options& o);
int RunRevert(const Options& o);
int RunTop(const Options& o);
int RunChaos(const Options& o);

}  // namespace slate::cli
