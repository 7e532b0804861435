#include "cli/verbs.h"

namespace slate::cli {
namespace {

void FileArg(CLI::App& app, Options& o) {
  app.add_option("FILE", o.file, "the system file")->required();
}

void StateDirOpt(CLI::App& app, Options& o) {
  app.add_option("--state-dir", o.state_dir,
                 "the running system's state_dir (default: $SLATE_STATE_DIR, else ./.slate)");
}

void NameArg(CLI::App& app, Options& o) {
  StateDirOpt(app, o);
  app.add_option("NAME", o.name, "a component or supervisor")->required();
}

}  // namespace

const std::vector<Verb>& Verbs() {
  static const std::vector<Verb> verbs{
      {"run", "run the system in the foreground",
       "Starts every child of the root supervisor in order and supervises them until\n"
       "`slate shutdown`, SIGTERM or SIGINT. Works as PID 1 in a container and speaks\n"
       "sd_notify to its own parent. Exit: 0 orderly shutdown, 1 runtime error,\n"
       "2 the system could not start, 3 the system gave up.",
       "", FileArg, RunRun},
      {"check", "validate a system file and print its tree",
       "Reads FILE, reports every error as FILE:LINE:COL: message and exits 2, or\n"
       "prints the supervision tree, channels and devices and exits 0. Warnings\n"
       "are printed but do not fail the check.",
       "", FileArg, RunCheck},
      {"status", "show the tree: state, pid, uptime, restarts, streak, image",
       "Asks the running system (through state_dir/control.sock) for its tree.", "",
       [](CLI::App& app, Options& o) {
         StateDirOpt(app, o);
         app.add_flag("--json", o.json, "machine-readable output");
       },
       RunStatus},
      {"top", "a live view of the tree: states, restarts, streaks, latest events",
       "Draws `slate status` and the latest journal events every --interval, in place\n"
       "on a terminal (like top), one frame after another otherwise. Ends with\n"
       "Ctrl-C, after --count frames, or when the system stops.\n"
       "Exit: 0, or 1 when no system is running.",
       "",
       [](CLI::App& app, Options& o) {
         StateDirOpt(app, o);
         app.add_option("--interval", o.interval_ms, "milliseconds between frames (default 1000)")
             ->check(CLI::Range(50, 3600000));
         app.add_option("--count,-n", o.count, "stop after this many frames (default: never)")
             ->check(CLI::NonNegativeNumber);
         app.add_option("--events", o.events, "how many of the latest events (default 8)")
             ->check(CLI::Range(0, 100));
       },
       RunTop},
      {"chaos", "inject faults into a running system, at random or on a schedule",
       "Injects faults for --seconds: every --every-ms (+-50%, at random) a random fault\n"
       "of --faults into a random running component of --targets, drawn from --seed\n"
       "(the same seed, the same draws); or, with --at, exactly the faults listed there\n"
       "(\"500ms:segv:api,2s:hang:sensor\"). Faults: kill (SIGKILL), segv (SIGSEGV),\n"
       "abort (SIGABRT), hang (SIGSTOP; only components with a heartbeat), stall (its\n"
       "heartbeats go unheard while it runs on; a heartbeat needed too), bad_image\n"
       "(an update to a program that fails at once; probation reverts it), poison (the\n"
       "next message of a channel the component consumes aborts it on each delivery,\n"
       "until it is dead-lettered), corrupt_state (bits flipped in one value of its\n"
       "store), wedge_device (its device's `wedge` command). Each is a fault_injected\n"
       "event in the journal, before the fault. --report pairs each with its detection,\n"
       "remedy and recovery; --view shows the live view meanwhile.\n"
       "Exit: 0; 1 when no system is running, it went away, or --max-recovery-ms\n"
       "failed; 2 bad usage.",
       "",
       [](CLI::App& app, Options& o) {
         StateDirOpt(app, o);
         app.add_option("--seed", o.seed, "seed of the random draws (default: from the clock)");
         app.add_option("--seconds", o.seconds, "how long to inject (default 60)")
             ->check(CLI::Range(1, 86400));
         app.add_option("--every-ms", o.every_ms, "mean time between faults (default 2000)")
             ->check(CLI::Range(10, 3600000));
         app.add_option("--faults", o.faults, "which faults (default kill,segv,hang)")
             ->delimiter(',');
         app.add_option("--targets", o.targets, "which components (default all)")->delimiter(',');
         app.add_option("--at", o.at, "a schedule instead: T:FAULT:NAME,... (T: 500ms, 2s)");
         app.add_flag("--view", o.view, "show the live view (as slate top) while injecting");
         app.add_flag("--report", o.report,
                      "at the end, wait for the system to settle and pair each fault with its "
                      "detection, remedy and recovery");
         app.add_option("--report-json", o.report_json, "also write the report to FILE as JSON");
         app.add_option("--settle", o.settle_s,
                        "seconds the report waits for every component to run (default 15)")
             ->check(CLI::Range(0, 3600));
         app.add_option("--max-recovery-ms", o.max_recovery_ms,
                        "exit 1 if a fault was not recovered from within this bound, or "
                        "something was given up")
             ->check(CLI::Range(1L, 3600000L));
       },
       RunChaos},
      {"events", "print the event journal",
       "Prints state_dir/events.jsonl; --follow keeps printing new events.", "",
       [](CLI::App& app, Options& o) {
         StateDirOpt(app, o);
         app.add_flag("--json", o.json, "one JSON object per line, as stored");
         app.add_flag("--follow,-f", o.follow, "keep printing new events");
       },
       RunEvents},
      {"logs", "print a component's captured stdout and stderr",
       "Prints state_dir/logs/NAME.log; --follow keeps printing new lines.", "",
       [](CLI::App& app, Options& o) {
         NameArg(app, o);
         app.add_flag("--follow,-f", o.follow, "keep printing new output");
       },
       RunLogs},
      {"start", "start a stopped child (operator control)",
       "Starts NAME again after `slate stop`. Not counted as a failure.", "", NameArg, RunStart},
      {"stop", "stop a child (operator control)",
       "Stops NAME honouring its shutdown; it stays stopped until `slate start`.\n"
       "Not counted as a failure.",
       "", NameArg, RunStop},
      {"restart", "restart a child (operator control)",
       "Stops and starts NAME. Not counted as a failure.", "", NameArg, RunRestart},
      {"kill", "inject a fault: signal a child as if it crashed",
       "Sends SIG (default KILL) to NAME's process. Unlike stop, this is a failure:\n"
       "it counts against intensity and the streak.",
       "",
       [](CLI::App& app, Options& o) {
         NameArg(app, o);
         app.add_option("--signal,-s", o.signal, "signal name or number (default KILL)");
       },
       RunKill},
      {"update", "run a component on a new image, in probation",
       "Imports PATH into the content-addressed image store (state_dir/images) and\n"
       "restarts NAME on it, in probation: a failure streak before it has run for\n"
       "healthy_after (10 s without one) reverts to the previous image by itself.\n"
       "Exit: 0 ok, 1 runtime error (no such component, unreadable PATH), 2 bad usage.",
       "",
       [](CLI::App& app, Options& o) {
         NameArg(app, o);
         app.add_option("PATH", o.path, "the new program")->required();
       },
       RunUpdate},
      {"revert", "go back to a component's previous image",
       "Restarts NAME on its previous known-good image (the one before the last update).\n"
       "Exit: 0 ok, 1 runtime error (no previous image), 2 bad usage.",
       "", NameArg, RunRevert},
      {"dlq", "list, export, requeue or purge a channel's dead letters",
       "The messages CHANNEL gave up delivering after max_deliveries consumer crashes.\n"
       "  slate dlq CHANNEL                  a table: id, time, deliveries, length, payload\n"
       "  slate dlq CHANNEL --json           one JSON object per line (as export)\n"
       "  slate dlq CHANNEL export [--output FILE]\n"
       "                                     JSON lines, payload in base64, to stdout or FILE\n"
       "  slate dlq CHANNEL requeue ID|--all back at the end of the stream as new messages;\n"
       "                                     stop the channel's producer first\n"
       "  slate dlq CHANNEL purge ID|--all   drop them for good\n"
       "Exit: 0 ok, 1 runtime error (an error reply, no system running), 2 bad usage.",
       "",
       [](CLI::App& app, Options& o) {
         StateDirOpt(app, o);
         app.add_option("CHANNEL", o.channel, "a channel")->required();
         app.add_option("ACTION", o.action, "list (default), export, requeue or purge");
         app.add_option("ID", o.id, "the dead letter to requeue or purge");
         app.add_flag("--all", o.all, "requeue or purge every dead letter");
         app.add_flag("--json", o.json, "list as JSON lines, as export does");
         app.add_option("--output,-o", o.output, "export: write to FILE instead of stdout")
             ->type_name("FILE");
       },
       RunDlq},
      {"shutdown", "stop the whole system in order",
       "Stops every child in reverse start order; `slate run` then exits 0.", "", StateDirOpt,
       RunShutdown},
  };
  return verbs;
}

}  // namespace slate::cli
