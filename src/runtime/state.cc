// The error kernel's state side (SPEC sections 5 and 6): periodic
// checkpoints of each component's store, taken on a worker thread while the
// component is healthy, and the ladder steps the core hands the runtime
// (ApplyStep): rollback, reset and sanitize of state, device resets. Device
// resets also run before every start of their owner.
#include <cinttypes>
#include <cstdio>
#include <filesystem>

#include <fmt/format.h>

#include "runtime/daemon.h"
#include "runtime/runtime.h"
#include "runtime/say.h"

namespace slate::runtime {

namespace fs = std::filesystem;

namespace {

// How long a sanitize command may take without a sanitize_timeout.
constexpr Time kSanitizeTimeout = std::chrono::seconds(60);

std::chrono::system_clock::time_point WallOf(Time mono, Time now) {
  return std::chrono::system_clock::now() -
         std::chrono::duration_cast<std::chrono::system_clock::duration>(now - mono);
}

}  // namespace

Result<std::monostate> Daemon::SetUpStores() {
  for (const spec::Component& c : system_->components) {
    if (!c.state) continue;
    std::string dir = StoreDir(c.name);
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return MakeError(fmt::format("cannot create {}: {}", dir, ec.message()));
    auto set = store::CheckpointSet::Open(dir, c.state->keep);
    if (!set) {
      return MakeError(
          fmt::format("{}: checkpoints in {}: {}", c.name, dir, set.error().ToError().message));
    }
    auto worker = store::CheckpointWorker::Start();
    if (!worker) return MakeError(fmt::format("{}: {}", c.name, worker.error().ToError().message));
    StoreState& st = stores_[c.name];
    st.component = &c;
    st.set = std::shared_ptr<store::CheckpointSet>(std::move(set).value());
    st.worker = std::move(worker).value();
    const int fd = st.worker->fd();
    const std::string name = c.name;
    if (auto r = loop_->Add(fd, EPOLLIN, [this, name](std::uint32_t) { OnStoreJobs(name); }); !r) {
      return r.error();
    }
    if (c.state->checkpoint_every) {
      auto tick = platform::TimerFd::Create();
      if (!tick) return tick.error();
      st.tick.emplace(std::move(tick).value());
      (void)st.tick->ArmAt(Now() + *c.state->checkpoint_every);
      if (auto r = loop_->Add(st.tick->fd(), EPOLLIN,
                              [this, name](std::uint32_t) { OnCheckpointTick(name); });
          !r) {
        return r.error();
      }
    }
  }
  return std::monostate{};
}

bool Daemon::Healthy(const std::string& name) const {
  auto n = sup_.StatusOf(name);
  return n && n->state == "running" && !n->in_episode;
}

void Daemon::OnCheckpointTick(const std::string& name) {
  StoreState& st = stores_.at(name);
  std::uint64_t expirations = 0;
  (void)::read(st.tick->fd(), &expirations, sizeof expirations);
  (void)st.tick->ArmAt(Now() + *st.component->state->checkpoint_every);
  // Only a healthy store is worth keeping, and one copy at a time.
  if (st.checkpoint_in_flight || !Healthy(name)) return;
  st.checkpoint_in_flight = true;
  std::uint64_t id =
      st.worker->Submit(store::OpenAndCheckpointJob(st.component->state->size, st.set));
  st.jobs[id] = [this, name](const store::JobOutcome& outcome) {
    StoreState& s = stores_.at(name);
    s.checkpoint_in_flight = false;
    if (!outcome) {
      Say("{}: checkpoint: {}", name, outcome.error().ToError().message);
      return;
    }
    if (!outcome->has_value()) return;
    core::Event e;
    e.event = "state_checkpointed";
    e.node = name;
    e.checkpoint = (*outcome)->seq;
    e.bytes = (*outcome)->bytes;
    DoEmit(e);
  };
}

void Daemon::OnStoreJobs(const std::string& name) {
  StoreState& st = stores_.at(name);
  for (store::Completion& c : st.worker->Collect()) {
    auto it = st.jobs.find(c.id);
    if (it == st.jobs.end()) continue;
    auto done = std::move(it->second);
    st.jobs.erase(it);
    done(c.outcome);
  }
}

void Daemon::DoApplyStep(const core::ApplyStep& a) {
  const std::uint64_t token = a.token;
  const std::string name = a.name;
  auto finish = [this, token] { Feed(sup_.StepDone(token, Now())); };
  auto event = [this, name](std::string type, std::string detail = "",
                            std::optional<std::uint64_t> checkpoint = std::nullopt) {
    core::Event e;
    e.event = std::move(type);
    e.node = name;
    if (!detail.empty()) e.detail = std::move(detail);
    e.checkpoint = checkpoint;
    DoEmit(e);
  };
  auto reset = [this, name, event, finish](const std::string& why) {
    StoreState& st = stores_.at(name);
    std::uint64_t id = st.worker->Submit(store::ResetJob(st.set));
    st.jobs[id] = [event, finish, why](const store::JobOutcome& outcome) {
      if (!outcome) {
        event("state_reset",
              fmt::format("{}; the reset failed: {}", why, outcome.error().ToError().message));
      } else {
        event("state_reset", why);
      }
      finish();
    };
  };
  const bool has_store = stores_.contains(name);
  switch (a.step) {
    case spec::LadderStep::kRollbackState: {
      if (!has_store) break;
      StoreState& st = stores_.at(name);
      std::uint64_t id =
          st.worker->Submit(store::RollbackJob(st.set, WallOf(a.streak_began, Now())));
      st.jobs[id] = [event, finish, reset](const store::JobOutcome& outcome) {
        if (!outcome) {
          // SPEC: a state that cannot be restored is reset.
          reset(fmt::format("rollback failed: {}", outcome.error().ToError().message));
          return;
        }
        if (!outcome->has_value()) {
          event("state_reset", "no checkpoint taken before the streak began");
        } else {
          // The newer checkpoints it had to pass over, if any, are named.
          std::string detail;
          for (const std::string& p : (*outcome)->passed_over) {
            detail += (detail.empty() ? "passed over " : "; ") + p;
          }
          event("state_rolled_back", detail, (*outcome)->seq);
        }
        finish();
      };
      return;
    }
    case spec::LadderStep::kResetState:
      if (!has_store) break;
      reset("reset_state");
      return;
    case spec::LadderStep::kSanitizeState: {
      if (!has_store) break;
      if (a.component->sanitize.empty()) {
        reset("no sanitize command: reset instead");
        return;
      }
      RunHook(name, *a.component, "sanitize", a.component->sanitize,
              a.component->sanitize_timeout.value_or(kSanitizeTimeout), true,
              [this, name, c = a.component, event, finish, reset](const HookEnd& end) {
                if (!end.ok) return reset(end.detail);  // SPEC: a failed sanitize is a reset
                const std::string& detail = end.detail;
                // It says it repaired the store: the store must read whole,
                // or the sanitize failed all the same.
                CheckStore(
                    name, *c, [event, finish, reset, detail](bool reads, const std::string& why) {
                      if (!reads) {
                        return reset(
                            fmt::format("the sanitize command exited 0 but the store does not "
                                        "read whole ({})",
                                        why));
                      }
                      event("state_sanitized", why.empty() ? detail : detail + "; " + why);
                      finish();
                    });
              });
      return;
    }
    case spec::LadderStep::kResetDevice:
      // Every start resets the component's devices first (DoSpawn), the
      // restart this step precedes included: resetting here too would reset
      // each device twice. The device_reset events come from that start.
      break;
    case spec::LadderStep::kRevertImage:
    case spec::LadderStep::kReinstallImage: DoImageStep(a, finish); return;
    case spec::LadderStep::kEscalate:
    case spec::LadderStep::kGiveUp: break;  // the core's own
  }
  finish();
}

void Daemon::CheckStore(const std::string& name, const spec::Component& c, const HookDone& done) {
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) {
    // Not a verdict on the store: it is trusted, and the component's start
    // will tell.
    return done(true, fmt::format("the store was not read: {}", ec.message()));
  }
  RunHook(name, c, "the store's read",
          {self.string(), std::string(kReadStoreCommand), StoreDir(name),
           std::to_string(c.state->size)},
          c.sanitize_timeout.value_or(kSanitizeTimeout), true, [done](const HookEnd& end) {
            if (end.ok) return done(true, "");
            // It read and found damage, or died reading: the store is bad.
            // Anything else (it could not be started) says nothing of it.
            if (end.exit_code == kStoreUnreadable || end.signal) {
              return done(false, end.detail + "; why is in the component's log");
            }
            done(true, fmt::format("the store was not read: {}", end.detail));
          });
}

int ReadStoreMain(int argc, char** argv) {
  std::uint64_t size = 0;
  if (argc != 4 || std::sscanf(argv[3], "%" SCNu64, &size) != 1 || size == 0) {
    fmt::print(stderr, "usage: slate {} DIR SIZE (the runtime's, not a verb)\n", kReadStoreCommand);
    return 2;
  }
  if (auto read = store::ReadWholeStore(argv[2], size); !read) {
    fmt::print(stderr, "slate: the store {} does not read whole: {}\n", argv[2],
               read.error().ToError().message);
    return kStoreUnreadable;
  }
  return 0;
}

void Daemon::ResetDevices(const std::string& name, const spec::Component& c, const HookDone& done,
                          std::size_t from) {
  // One device after another, in the order the component lists them; the
  // first failure ends the sequence.
  for (std::size_t i = from; i < c.devices.size(); ++i) {
    const spec::Device* d = system_->FindDevice(c.devices[i]);
    if (d == nullptr || d->reset.empty()) continue;
    std::string device = d->name;
    RunHook(name, c, fmt::format("reset of device {}", device), d->reset, d->reset_timeout, false,
            [this, name, &c, device, done, i](const HookEnd& end) {
              const bool ok = end.ok;
              const std::string& detail = end.detail;
              core::Event e;
              e.event = "device_reset";
              e.node = name;
              e.device = device;
              if (!ok) e.detail = detail;
              e.ok = ok;
              DoEmit(e);
              if (!ok) return done(false, detail);
              ResetDevices(name, c, done, i + 1);
            });
    return;
  }
  done(true, "");
}

nlohmann::json Daemon::StateJson(const std::string& name) const {
  auto it = stores_.find(name);
  if (it == stores_.end()) return nullptr;
  nlohmann::json j;
  j["dir"] = StoreDir(name);
  nlohmann::json list = nlohmann::json::array();
  if (auto cps = it->second.set->List(); cps) {
    for (const store::CheckpointInfo& cp : *cps) {
      list.push_back({{"seq", cp.seq},
                      {"bytes", cp.bytes},
                      {"created_unix_ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                                              cp.created.time_since_epoch())
                                              .count()}});
    }
  }
  j["checkpoints"] = std::move(list);
  return j;
}

}  // namespace slate::runtime
