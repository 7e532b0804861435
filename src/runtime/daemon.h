// Internal to src/runtime: the daemon's state and handlers. See runtime.h.
#pragma once

#include <ctime>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "channel/channel_files.h"
#include "core/supervision.h"
#include "image/image_store.h"
#include "platform/cgroup.h"
#include "platform/device_filter.h"
#include "platform/event_loop.h"
#include "platform/notify_socket.h"
#include "platform/pipe.h"
#include "platform/process.h"
#include "platform/signal_fd.h"
#include "platform/spawn.h"
#include "platform/timer_fd.h"
#include "runtime/control.h"
#include "runtime/journal.h"
#include "runtime/log_sink.h"
#include "runtime/runtime.h"
#include "runtime/timer_queue.h"
#include "store/checkpoint.h"
#include "store/checkpoint_worker.h"

namespace slate::runtime {

using Time = std::chrono::nanoseconds;

class Daemon {
 public:
  Daemon(std::shared_ptr<const spec::System> system, const RunOptions& options);
  ~Daemon();
  int Run();

 private:
  // A live process of a component.
  struct Child {
    core::Incarnation incarnation;
    std::string name;
    platform::Process process;
    std::optional<platform::ReadinessPipe> readiness;
    std::optional<platform::Cgroup> cgroup;
    // Its cgroup has memory_max (and memory.oom.group): an OOM kill there
    // ends all of it, and the end is `oom`.
    bool memory_limited = false;
    // A promoted spare's: our copy of its output pipe's write end (Spare).
    platform::UniqueFd output_hold;
    // A promoted spare (only those hold their output): its end is on the
    // standby path, where its status is read first and the reap waits until
    // the next spare is promoted.
    bool promoted() const { return output_hold.valid(); }
  };

  // A standby spare (standby.cc): started, not yet promoted.
  struct Spare {
    std::string name;                            // the instance it stands by for
    const spec::Component* component = nullptr;  // its spec
    std::optional<platform::Process> process;
    std::string image;              // the program it runs: promoted only while current
    platform::UniqueFd activation;  // our end of its activation socket
    std::optional<platform::Cgroup> cgroup;
    bool memory_limited = false;  // as Child's
    bool parked = false;          // it said it waits in slate_await_activation
    // Our copy of its output pipe's write end, kept until its end is handled
    // (OnExit, or its Spare dropped): the pipe's EOF at its death does not
    // wake us before its pidfd does, which delayed the promotion that
    // follows (docs/benchmarks.md: 423 -> 331 us pinned to one CPU).
    platform::UniqueFd output_hold;
  };

  // A channel as the runtime keeps it.
  struct ChannelState {
    const spec::Channel* spec = nullptr;
    std::optional<channel::ChannelFiles> files;
    bool repair_producer = false;  // its last process corrupted its file
    bool repair_consumer = false;
    std::optional<Time> last_check;  // of the last check a report caused
  };
  struct EndOf {
    std::string channel;
    channel::EndRole role;
  };
  // A component's store as the runtime keeps it: checkpoints and the worker
  // thread that takes, restores and resets them.
  struct StoreState {
    const spec::Component* component = nullptr;
    std::shared_ptr<store::CheckpointSet> set;
    std::unique_ptr<store::CheckpointWorker> worker;
    std::optional<platform::TimerFd> tick;  // checkpoint_every
    bool checkpoint_in_flight = false;
    std::map<std::uint64_t, std::function<void(const store::JobOutcome&)>> jobs;
  };
  using HookDone = std::function<void(bool ok, const std::string& detail)>;
  // How a hook ended: ok (exit 0), what to say of it, and, when it ended by
  // itself (not at its deadline, not unable to start), its exit code or the
  // signal that killed it.
  struct HookEnd {
    bool ok = false;
    std::string detail;
    std::optional<int> exit_code;
    std::optional<int> signal;
  };
  using HookEnded = std::function<void(const HookEnd&)>;
  struct Hook {
    std::string what;
    platform::Process process;
    platform::TimerFd timer;
    HookEnded done;
    bool timed_out = false;
    Time timeout{};
  };

  // setup.cc
  Result<std::monostate> Setup();
  Result<std::monostate> PrepareStateDir();
  std::string StoreDir(const std::string& component) const;  // state_dir/state/NAME
  void SetUpCgroups();
  void RemoveStaleCgroups(const std::string& parent);
  // Gives `cgroup` (a new one, before the spawn) c's memory_max and
  // pids_max; nothing where it has none, or they are optional and missing
  // (then a failure here is said, and the start goes on). Whether the
  // memory limit is in force.
  Result<bool> ApplyCgroupLimits(const spec::Component& c, const platform::Cgroup* cgroup);
  // Attaches the block-device filter to `cgroup` (a new one, before the
  // spawn) unless c has block_devices = "host". Where it cannot, an Error
  // if c demands it (block_devices = "none" written, not optional); else
  // said, and the start goes on.
  Result<std::monostate> ApplyDeviceFilter(const spec::Component& c,
                                           const platform::Cgroup* cgroup);
  // A new cgroup `label` for a process of c, with its limits and filter
  // (nullopt where there are no cgroups, or it could not be made: said;
  // `ahead` of its start: an error, unsaid).
  struct NewCgroup {
    std::optional<platform::Cgroup> cgroup;
    bool memory_limited = false;
  };
  Result<NewCgroup> MakeCgroup(const std::string& label, const spec::Component& c,
                               bool ahead = false);
  // The cgroup for the next start of `name`: one made ahead (PrepareCgroup)
  // if there is one, else a new one.
  Result<NewCgroup> CgroupForStart(const std::string& name, core::Incarnation inc,
                                   const spec::Component& c);
  // Makes the cgroup of the next start of `name` now, off that start's path
  // (a component that restarted once is likely to again).
  void PrepareCgroup(const std::string& name, const spec::Component& c);
  std::vector<std::string> ComponentEnv(const std::string& name, const spec::Component& c);
  // What of state_dir component `name` (and its hooks) may see: its own
  // store, its notify socket, the images (read-only).
  platform::MountView ViewFor(const std::string& name, const spec::Component& c);
  // The mount namespace with that view, made at the first start and joined
  // by every later one; nullptr where mount namespaces are not available.
  Result<const platform::MountNamespace*> MountsFor(const std::string& name,
                                                    const spec::Component& c);
  void SetUpViews();
  // Standby spares (standby.cc). FillSpares starts spares until the pool of
  // `name` holds c.standby; Promote hands a parked one the start `s` (false:
  // none could be promoted, start a new process).
  void FillSpares(const std::string& name, const spec::Component& c);
  Result<std::unique_ptr<Spare>> SpawnSpare(const std::string& name, const spec::Component& c);
  Spare* FindSpare(int pidfd, std::string* name);
  void OnSpareMessage(int pidfd);
  void OnSpareExit(int pidfd);
  void DropSpare(int pidfd);
  bool Promote(const core::Spawn& s);
  // Refills the pool of `name` (and makes its next cgroup) a little later:
  // on a busy or single CPU the promoted spare, or the new process, runs
  // first.
  void ScheduleRefill(const std::string& name, const spec::Component& c);
  void OnRefillTimer();
  void StopSpares();
  // Stops the spares of `name` (it was stopped or given up) and starts no
  // more until its next start.
  void RetireSpares(const std::string& name);
  // The same for `name` and, for a supervisor, every node below it.
  void RetireSparesUnder(const std::string& name);
  void DropReadyCgroup(const std::string& name);
  // Resolves each component's user and group on this host (identity.cc).
  Result<std::monostate> SetUpIdentities();
  // Sets the request's identity, capabilities and no_new_privs for a process
  // of component `c` (instance `name`), and hands it over (below).
  Result<std::monostate> Privileges(const std::string& name, const spec::Component& c,
                                    platform::SpawnRequest* req);
  // Gives a component that runs as another user its store and notify socket,
  // before each start (a spare's promotion is one: the rest of Privileges was
  // applied when it was spawned).
  Result<std::monostate> HandOver(const std::string& name, const spec::Component& c);
  platform::NotifySocket* NotifyFor(const std::string& name);
  LogSink& LogFor(const std::string& name);
  void NotifyParent(std::string_view message);
  void Teardown();
  void RemoveDeadCgroups();

  // actions.cc: carrying out the core's decisions
  void Feed(core::Actions actions);
  void Do(const core::Action& a);
  void DoSpawn(const core::Spawn& s);
  void SpawnNow(const core::Spawn& s);
  void DoKill(const core::Kill& k);
  void DoEmit(const core::Event& e);
  void WriteJournal(const core::Event& e, Time mono, const timespec& wall);
  void WriteUnwritten();
  void ArmTimer();

  // events.cc: what the loop hears
  void OnSignal();
  void OnTimer();
  void OnExit(core::Incarnation inc);
  void OnOutput(int fd, const std::string& name);
  void OnReadiness(core::Incarnation inc);
  void OnNotify(const std::string& name);

  // hooks.cc: a command run for component `c` with a deadline, seeing what
  // it sees of state_dir; `done` is called once, from the loop.
  // `owner` is the component's name (an instance's, for a template).
  // `as_component`: with the component's user, groups and capabilities
  // (its sanitize command); else with the runtime's (a device's reset).
  void RunHook(const std::string& owner, const spec::Component& c, std::string what,
               const std::vector<std::string>& argv, Time timeout, bool as_component,
               HookEnded done);
  void OnHookExit(int pidfd);
  void OnHookDeadline(int pidfd);

  // state.cc
  Result<std::monostate> SetUpStores();
  bool Healthy(const std::string& name) const;
  void OnCheckpointTick(const std::string& name);
  void OnStoreJobs(const std::string& name);
  void DoApplyStep(const core::ApplyStep& a);
  // After a sanitize: `slate __read-store` as a hook; done(false, why) when
  // the store does not read whole, done(true, note) otherwise (the note says
  // if it could not be read at all, which is no verdict on the store).
  void CheckStore(const std::string& name, const spec::Component& c, const HookDone& done);
  void ResetDevices(const std::string& name, const spec::Component& c, const HookDone& done,
                    std::size_t from = 0);
  nlohmann::json StateJson(const std::string& name) const;

  // images.cc
  struct Probation {
    int failures = 0;
    std::optional<Time> ready_at;  // since when it has run without failing
  };
  Result<std::monostate> SetUpImages();
  // The installed copy of the image `c` runs (exec[0] itself where the
  // store has none); an error when its object cannot be installed.
  Result<std::string> ImagePath(const spec::Component& c);
  void EmitImage(const std::string& type, const std::string& name, std::string detail);
  void OnImageFailure(const std::string& name, const spec::Component& c);
  void OnImageReady(const std::string& name, const spec::Component& c);
  void CheckProbations();
  nlohmann::json HandleUpdate(const nlohmann::json& request);
  // `slate chaos`: one fault into one component, journaled (fault_injected)
  // before it is made, so that a report can pair cause and recovery.
  nlohmann::json HandleInject(const nlohmann::json& request);
  void DoImageStep(const core::ApplyStep& a, const std::function<void()>& finish);
  nlohmann::json ImageJson(const std::string& name) const;

  // channels.cc
  Result<std::monostate> OpenChannels();
  // Adds the component's channel descriptors to `req` (never at `avoid_fd`)
  // and returns SLATE_CHANNELS; `keep` holds our copies until the spawn.
  Result<std::string> GrantChannels(const std::string& component, int avoid_fd,
                                    platform::SpawnRequest* req,
                                    std::vector<platform::UniqueFd>* keep);
  // Called with the core's answer to a consumer's end, before it is carried out.
  void ChargeConsumer(const std::string& component, core::Actions* actions);
  void OnCorruptReport(const std::string& reporter, const std::string& channel_name);
  // Fails the end a kCorrupt names and marks its file for repair; false if
  // the error names no end.
  bool Blame(const std::string& channel_name, const channel::ChannelError& e);
  void SetComponentDown(const std::string& component, bool down);
  nlohmann::json ChannelsJson() const;
  nlohmann::json HandleDlq(const nlohmann::json& request);

  // control.cc's handler, status.cc
  nlohmann::json Handle(const nlohmann::json& request);
  nlohmann::json StatusJson();

  Time Now() const;

  std::shared_ptr<const spec::System> system_;
  RunOptions options_;
  core::Supervision sup_;
  std::optional<platform::EventLoop> loop_;
  std::optional<platform::SignalFd> signals_;
  std::optional<platform::TimerFd> timer_;
  std::optional<Time> timer_armed_at_;
  TimerQueue timers_;
  std::optional<Journal> journal_;
  std::unique_ptr<ControlServer> control_;
  std::optional<platform::CgroupTree> cgroups_;
  // Why components' cgroup limits (memory_max, pids_max) cannot be had here;
  // nullopt when they can, or no component asks for them.
  std::optional<std::string> cgroup_limits_unavailable_;
  // What keeps block devices from components (block_devices = "none"), or
  // why it cannot be had here; both empty when no component wants it.
  std::optional<platform::BlockDeviceFilter> device_filter_;
  std::optional<std::string> device_filter_unavailable_;
  bool views_ = false;              // components get a MountView of state_dir
  bool drop_capabilities_ = false;  // we can drop the bounding set (CAP_SETPCAP)
  std::map<std::string, platform::Identity> identities_;               // by component (spec) name
  std::map<std::string, std::vector<std::unique_ptr<Spare>>> spares_;  // by instance name
  std::uint64_t spare_serial_ = 0;
  std::optional<platform::TimerFd> refill_timer_;
  std::map<std::string, const spec::Component*> refill_pending_;
  bool stopping_spares_ = false;
  std::set<std::string> retired_spares_;  // stopped or given up: no spares until started
  std::set<pid_t> hung_;                  // stopped by `slate chaos` (hang), until they end
  std::set<pid_t> stalled_;  // `slate chaos` stall: its heartbeats go unheard, until it ends
  // Stopped by the operator, still stopping: their peers hear "down" once
  // the process has ended, not while it finishes its work.
  std::set<std::string> down_when_ended_;
  std::map<std::string, platform::MountNamespace> namespaces_;  // by component name
  // Cgroups of processes that ended, removed once empty. Each process gets a
  // fresh cgroup: Linux 6.18 kills a process cloned (CLONE_INTO_CGROUP) into
  // a cgroup that was ever killed through cgroup.kill.
  std::vector<platform::Cgroup> dying_cgroups_;
  // Made ahead for the next start of each component that has restarted
  // (by instance name); dropped with its spares.
  std::map<std::string, NewCgroup> ready_cgroups_;
  std::map<std::string, const spec::Component*> cgroups_to_prepare_;  // a few per timer round
  std::set<std::string> started_before_;                              // instance names
  std::uint64_t ready_serial_ = 0;

  std::map<core::Incarnation, Child> children_;
  std::map<pid_t, core::Incarnation> by_pid_;
  std::map<int, platform::UniqueFd> outputs_;  // read ends of output pipes
  std::map<std::string, LogSink> logs_;
  std::map<std::string, std::unique_ptr<platform::NotifySocket>> notify_;
  std::map<std::string, std::string> status_text_;  // STATUS= per component
  std::map<std::string, ChannelState> channels_;
  std::map<std::string, std::vector<EndOf>> ends_;  // component -> its channel ends
  std::vector<std::pair<std::string, channel::ChannelError>> blame_later_;
  std::map<std::string, StoreState> stores_;
  std::map<int, Hook> hooks_;  // by pidfd
  std::optional<image::ImageStore> images_;
  std::map<std::string, Probation> probation_;      // every component whose image is in probation
  std::map<std::string, std::string> image_paths_;  // the image each component runs
  std::optional<Time> probation_next_;              // the next probation that may end
  std::set<pid_t> hook_pids_;                       // reaped through their pidfds, not as orphans

  std::deque<core::Action> pending_;
  bool feeding_ = false;
  // Journal lines (and their echo) of events emitted while actions are
  // being fed: written after each start and when the feeding ends, so a
  // restart is not behind them, and always before `slate status` (served
  // between feedings) can show what they report (SPEC section 8).
  struct Unwritten {
    core::Event event;
    Time mono{};
    timespec wall{};
  };
  std::vector<Unwritten> unwritten_;
  std::optional<int> exit_code_;
  std::string exit_message_;
  Time started_{};
  std::optional<Time> watchdog_interval_;  // our own WATCHDOG=1 to our parent
  std::optional<Time> watchdog_next_;
  std::uint64_t notify_rejected_ = 0;
};

}  // namespace slate::runtime
