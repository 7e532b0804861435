// Images (SPEC section 6): every component runs from a content-addressed
// copy of its program under state_dir/images. The system file's exec[0] is
// imported at start; `slate update` imports a new one and restarts the
// component on it in probation, and a failure streak in probation reverts to
// the previous known-good image by itself. The ladder's revert_image and
// reinstall_image steps act on the same store.
#include <filesystem>

#include <fmt/format.h>

#include "runtime/daemon.h"
#include "runtime/say.h"

namespace slate::runtime {

namespace fs = std::filesystem;

namespace {

// Failures in probation that revert an update: the ladder's `after` when the
// component has one, else 2 (one crash can be bad luck; two in a row are not).
int ProbationLimit(const spec::Component& c) {
  return c.on_persistent_failure ? c.on_persistent_failure->after : 2;
}

// How long an updated component must run without failing to be accepted.
Time ProbationWindow(const spec::Component& c) {
  return c.healthy_after ? *c.healthy_after : std::chrono::seconds(10);
}

}  // namespace

Result<std::monostate> Daemon::SetUpImages() {
  auto store = image::ImageStore::Open((fs::path(system_->state_dir) / "images").string());
  if (!store) return MakeError(fmt::format("images: {}", store.error().ToError().message));
  images_.emplace(std::move(store).value());
  std::map<std::string, std::string> imported;  // exec[0] -> digest: one hash per program
  std::vector<std::pair<std::string, std::string>> first_runs;  // (name, digest): one sync
  for (const spec::Component& c : system_->components) {
    const std::string& program = c.exec.at(0);
    auto known = imported.find(program);
    if (known == imported.end()) {
      auto digest = images_->Import(program);
      if (!digest) {
        // Not there yet (check allows that): its start fails with a
        // start_error naming the program; it is imported once it exists.
        Say("{}: image {} not imported: {}", c.name, program, digest.error().ToError().message);
        continue;
      }
      known = imported.emplace(program, *digest).first;
    }
    const std::string& digest = known->second;
    auto history = images_->History(c.name);
    if (!history) {
      first_runs.emplace_back(c.name, digest);
    } else if (history->current != digest && history->previous != digest) {
      // The program at exec[0] changed since the last run: a new version,
      // tried in probation like an update.
      if (auto st = images_->BeginUpdate(c.name, digest, std::chrono::system_clock::now()); !st) {
        return MakeError(fmt::format("{}: {}", c.name, st.error().ToError().message));
      }
      Say("{}: {} changed since the last run ({}); running it in probation", c.name, program,
          digest.substr(0, 19));
      probation_[c.name] = Probation{};
      EmitImage("image_updated", c.name, fmt::format("{} changed since the last run", program));
    } else if (history->in_probation()) {
      probation_[c.name] = Probation{};  // an update the last run did not see through
    }
  }
  if (auto st = images_->SetInitialAll(first_runs); !st) {
    return MakeError(fmt::format("images: {}", st.error().ToError().message));
  }
  // Images no component's history names any more (older updates, programs
  // of components taken out of the file keep theirs until forgotten).
  if (auto pruned = images_->Prune(); pruned && !pruned->empty()) {
    Say("images: removed {} no longer referenced", pruned->size());
  }
  return std::monostate{};
}

Result<std::string> Daemon::ImagePath(const spec::Component& c) {
  if (!images_) return c.exec.at(0);
  // Every restart spawns: no file read for an image that has not changed.
  if (auto cached = image_paths_.find(c.name); cached != image_paths_.end()) {
    return cached->second;
  }
  auto digest = images_->Current(c.name);
  if (!digest) {
    // A program that did not exist at start: import it now, if it exists
    // (if not, its start fails naming exec[0]).
    auto imported = images_->Import(c.exec.at(0));
    if (!imported || !images_->SetInitial(c.name, *imported)) return c.exec.at(0);
    digest = imported;
  }
  // What runs is the installed copy, made from the object the first time:
  // a damaged object is refused here, and the start fails with why.
  auto path = images_->Install(*digest);
  if (!path) return MakeError(fmt::format("image: {}", path.error().ToError().message));
  image_paths_[c.name] = *path;
  return *path;
}

void Daemon::EmitImage(const std::string& type, const std::string& name, std::string detail) {
  core::Event e;
  e.event = type;
  e.node = name;
  image_paths_.erase(name);  // every change of image is emitted here
  if (auto digest = images_->Current(name); digest) e.image = *digest;
  if (!detail.empty()) e.detail = std::move(detail);
  DoEmit(e);
}

void Daemon::OnImageFailure(const std::string& name, const spec::Component& c) {
  auto in_probation = probation_.find(name);
  if (!images_ || in_probation == probation_.end()) return;
  Probation& p = in_probation->second;
  p.ready_at.reset();
  ++p.failures;
  // A start the supervisor will not retry (the operator's restart that an
  // update makes) leaves the child stopped: revert at once, or it stays down.
  auto status = sup_.StatusOf(name);
  const bool stays_down = status && status->state == "stopped";
  if (p.failures < ProbationLimit(c) && !stays_down) return;
  const int failures = p.failures;
  auto reverted = images_->Revert(name);
  if (!reverted) {
    Say("{}: reverting its image: {}", name, reverted.error().ToError().message);
    return;
  }
  probation_.erase(name);
  EmitImage("image_reverted", name,
            fmt::format("{} failure{} in probation", failures, failures == 1 ? "" : "s"));
  if (stays_down) Feed(sup_.StartChild(name, Now()).actions);
}

void Daemon::OnImageReady(const std::string& name, const spec::Component& c) {
  auto in_probation = probation_.find(name);
  if (!images_ || in_probation == probation_.end()) return;
  in_probation->second.ready_at = Now();
  probation_next_ = probation_next_ ? std::min(*probation_next_, Now() + ProbationWindow(c))
                                    : Now() + ProbationWindow(c);
}

void Daemon::CheckProbations() {
  probation_next_.reset();
  const Time now = Now();
  for (auto it = probation_.begin(); it != probation_.end();) {
    const spec::Component* c = system_->FindComponent(it->first);
    if (c == nullptr || !it->second.ready_at) {
      ++it;
      continue;
    }
    Time due = *it->second.ready_at + ProbationWindow(*c);
    if (now < due) {
      probation_next_ = probation_next_ ? std::min(*probation_next_, due) : due;
      ++it;
      continue;
    }
    if (auto st = images_->EndProbation(it->first); !st) {
      Say("{}: ending probation: {}", it->first, st.error().ToError().message);
    } else {
      EmitImage("image_accepted", it->first, "ran through probation");
    }
    it = probation_.erase(it);
  }
}

nlohmann::json Daemon::HandleUpdate(const nlohmann::json& request) {
  auto fail = [](std::string message) {
    return nlohmann::json{{"ok", false}, {"error", std::move(message)}};
  };
  std::string name = request.value("name", "");
  const spec::Component* c = system_->FindComponent(name);
  if (c == nullptr) return fail(fmt::format("no component named '{}'", name));
  if (!images_) return fail("the image store is not available");
  std::string verb = request.value("verb", "");
  if (verb == "update") {
    std::string path = request.value("path", "");
    if (path.empty() || path[0] != '/') return fail("update needs an absolute \"path\"");
    auto digest = images_->Import(path);
    if (!digest) return fail(digest.error().ToError().message);
    if (auto cur = images_->Current(name); cur && *cur == *digest) {
      return fail(fmt::format("{} already runs {}", name, *digest));
    }
    if (auto st = images_->BeginUpdate(name, *digest, std::chrono::system_clock::now()); !st) {
      return fail(st.error().ToError().message);
    }
    probation_[name] = Probation{};
    EmitImage("image_updated", name, fmt::format("from {}, in probation", path));
  } else {
    auto reverted = images_->Revert(name);
    if (!reverted) return fail(reverted.error().ToError().message);
    probation_.erase(name);
    EmitImage("image_reverted", name, "by the operator");
  }
  core::CommandResult r = sup_.RestartChild(name, Now());
  Feed(std::move(r.actions));
  auto current = images_->Current(name);
  std::string digest = current ? *current : "?";
  if (!r.ok) {
    return {{"ok", true},
            {"message",
             fmt::format("{} now has image {}; not restarted: {}", name, digest, r.message)}};
  }
  return {{"ok", true}, {"message", fmt::format("{} restarting on image {}", name, digest)}};
}

void Daemon::DoImageStep(const core::ApplyStep& a, const std::function<void()>& finish) {
  if (!images_) {
    finish();
    return;
  }
  if (a.step == spec::LadderStep::kRevertImage) {
    auto reverted = images_->Revert(a.name);
    if (reverted) {
      probation_.erase(a.name);
      EmitImage("image_reverted", a.name, "ladder step revert_image");
    } else {
      // SPEC: no previous known-good version, nothing to revert to: skip.
      core::Event e;
      e.event = "image_reverted";
      e.node = a.name;
      e.ok = false;
      e.detail = fmt::format("skipped: {}", reverted.error().ToError().message);
      DoEmit(e);
    }
    finish();
    return;
  }
  // reinstall_image (SPEC section 6): the copy the component runs is
  // restored from the store's object, whose hash is checked as it is
  // copied. An object that is damaged too is first restored from the
  // system file's program, when that still has the same hash.
  auto digest = images_->Current(a.name);
  if (!digest) {
    finish();
    return;
  }
  auto path = images_->InstalledPath(*digest);
  if (!path) {
    finish();
    return;
  }
  auto before = images_->VerifyInstalled(*digest);
  std::string was = before ? "the installed copy was intact"
                           : fmt::format("{}", before.error().ToError().message);
  auto restored = images_->Reinstall(*digest, *path);
  std::string from = "from the store";
  if (!restored && restored.error().code == image::ImageErrc::kCorrupt) {
    auto again = images_->Import(a.component->exec.at(0));
    if (again && *again == *digest) {
      restored = images_->Reinstall(*digest, *path);
      from = fmt::format("from {}, the store's object being damaged", a.component->exec.at(0));
    }
  }
  core::Event e;
  e.event = "image_reinstalled";
  e.node = a.name;
  e.image = *digest;
  e.ok = restored.ok();
  if (restored) {
    e.detail = fmt::format("{}; reinstalled {}", was, from);
  } else {
    e.detail = fmt::format("{}; not reinstalled: {}", was, restored.error().ToError().message);
  }
  image_paths_.erase(a.name);
  // Spares were started from the copy as it was: none of them is promoted.
  if (!before) RetireSpares(a.name);
  DoEmit(e);
  finish();
}

nlohmann::json Daemon::ImageJson(const std::string& name) const {
  if (!images_) return nullptr;
  auto history = images_->History(name);
  if (!history) return nullptr;
  nlohmann::json j;
  j["digest"] = history->current;
  j["previous"] = history->previous ? nlohmann::json(*history->previous) : nlohmann::json(nullptr);
  j["probation"] = history->in_probation();
  return j;
}

}  // namespace slate::runtime
