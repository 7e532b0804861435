// The runtime's side of channels (SPEC section 5): it creates and re-opens
// them under state_dir/channels, hands each component the descriptors of the
// ends its system file grants and no others, charges a delivery when a
// consumer fails (dead-lettering at max_deliveries), checks a channel when an
// end reports corruption and fails the end that wrote it, and answers
// `slate dlq` and the channel part of `slate status`.
#include <algorithm>
#include <filesystem>

#include <fmt/format.h>

#include "runtime/daemon.h"
#include "runtime/say.h"

namespace slate::runtime {

namespace fs = std::filesystem;
using channel::EndRole;

namespace {

channel::ChannelGeometry GeometryOf(const spec::Channel& c) {
  channel::ChannelGeometry g;
  g.capacity = c.capacity;
  g.max_message = c.max_message;
  g.max_deliveries = static_cast<std::uint32_t>(c.max_deliveries);
  return g;
}

std::string_view RoleName(EndRole r) {
  return r == EndRole::kProducer ? "producer" : "consumer";
}

}  // namespace

Result<std::monostate> Daemon::OpenChannels() {
  for (const spec::Channel& c : system_->channels) {
    std::string dir = (fs::path(system_->state_dir) / "channels" / c.name).string();
    auto files = channel::ChannelFiles::OpenOrCreate(dir, GeometryOf(c));
    if (!files) {
      return MakeError(fmt::format("channel {} ({}): {}", c.name, dir, files.error().Describe()));
    }
    for (const std::string& note : files->recovery_notes()) {
      Say("channel {}: recovered: {}", c.name, note);
    }
    ChannelState& st = channels_[c.name];
    st.spec = &c;
    st.files.emplace(std::move(files).value());
    ends_[c.from].push_back({c.name, EndRole::kProducer});
    ends_[c.to].push_back({c.name, EndRole::kConsumer});
  }
  return std::monostate{};
}

Result<std::string> Daemon::GrantChannels(const std::string& component, int avoid_fd,
                                          platform::SpawnRequest* req,
                                          std::vector<platform::UniqueFd>* keep) {
  auto it = ends_.find(component);
  if (it == ends_.end()) return std::string();
  std::string env;
  int next = 3;
  auto target = [&] {
    while (next == avoid_fd || next == 0 || next == 1 || next == 2) ++next;
    return next++;
  };
  for (const EndOf& end : it->second) {
    ChannelState& st = channels_.at(end.channel);
    bool& repair = end.role == EndRole::kProducer ? st.repair_producer : st.repair_consumer;
    if (repair) {
      // Its last process was caught corrupting the channel: make the end's
      // file valid before the next one attaches.
      auto what = st.files->Repair(end.role);
      if (!what) {
        return MakeError(fmt::format("channel {}: repairing the {}'s file: {}", end.channel,
                                     RoleName(end.role), what.error().Describe()));
      }
      Say("channel {}: repaired the {}'s file{}", end.channel, RoleName(end.role),
          what->empty() ? "" : ": " + *what);
      repair = false;
    }
    st.files->SetDown(end.role, false);
    auto fds = end.role == EndRole::kProducer ? st.files->ProducerFds() : st.files->ConsumerFds();
    if (!fds) {
      return MakeError(fmt::format("channel {}: {}", end.channel, fds.error().Describe()));
    }
    int own = target();
    int peer = target();
    int rt = target();
    req->fds.push_back({fds->own.get(), own});
    req->fds.push_back({fds->peer.get(), peer});
    req->fds.push_back({fds->runtime.get(), rt});
    keep->push_back(std::move(fds->own));
    keep->push_back(std::move(fds->peer));
    keep->push_back(std::move(fds->runtime));
    if (!env.empty()) env += ',';
    env += fmt::format("{}:{}:{}:{}:{}", end.channel, end.role == EndRole::kProducer ? "tx" : "rx",
                       own, peer, rt);
  }
  return env;
}

void Daemon::ChargeConsumer(const std::string& component, core::Actions* actions) {
  auto it = ends_.find(component);
  if (it == ends_.end()) return;
  // Only a failure is charged: an end the runtime asked for (a stop, a group
  // restart) is not the message's fault. The core reports a failure, and
  // only a failure, as child_exited.
  auto exited = std::find_if(actions->begin(), actions->end(), [&](const core::Action& a) {
    auto* e = std::get_if<core::Emit>(&a);
    return e != nullptr && e->event.event == "child_exited" && e->event.node == component &&
           !(e->event.reason && e->event.reason->kind == core::ExitReason::Kind::kNormal);
  });
  if (exited == actions->end()) return;
  std::size_t at = static_cast<std::size_t>(exited - actions->begin()) + 1;
  const std::string supervisor = std::get<core::Emit>(*exited).event.supervisor;
  for (const EndOf& end : it->second) {
    if (end.role != EndRole::kConsumer) continue;
    ChannelState& st = channels_.at(end.channel);
    auto charge = st.files->OnConsumerCrashed();
    if (!charge) {
      Say("channel {}: charging the consumer's crash: {}", end.channel, charge.error().Describe());
      if (charge.error().code == channel::Errc::kCorrupt &&
          charge.error().culprit == channel::Culprit::kConsumer) {
        st.repair_consumer = true;  // it is dead already: repair before its restart
      } else {
        blame_later_.emplace_back(end.channel, charge.error());  // after this Feed
      }
      continue;
    }
    if (!charge->dead_lettered) continue;
    core::Event e;
    e.event = "message_dead_lettered";
    e.node = component;
    e.supervisor = supervisor;
    e.channel = end.channel;
    e.msg_id = charge->id;
    e.deliveries = charge->deliveries;
    actions->insert(actions->begin() + static_cast<std::ptrdiff_t>(at++), core::Emit{e});
  }
}

void Daemon::OnCorruptReport(const std::string& reporter, const std::string& channel_name) {
  auto it = channels_.find(channel_name);
  if (it == channels_.end()) return;
  ChannelState& st = it->second;
  // A report only makes us look; the files themselves decide who is to
  // blame, so one component cannot get another killed by crying wolf. A
  // component that cries often costs at most one check per 100 ms.
  Time now = Now();
  if (st.last_check && now - *st.last_check < std::chrono::milliseconds(100)) return;
  st.last_check = now;
  auto check = st.files->Check();
  if (check) return;
  if (!Blame(channel_name, check.error())) {
    Say("channel {}: check after a report by {}: {}", channel_name, reporter,
        check.error().Describe());
  }
}

bool Daemon::Blame(const std::string& channel_name, const channel::ChannelError& e) {
  ChannelState& st = channels_.at(channel_name);
  if (e.code != channel::Errc::kCorrupt ||
      (e.culprit != channel::Culprit::kProducer && e.culprit != channel::Culprit::kConsumer)) {
    return false;
  }
  const bool producer = e.culprit == channel::Culprit::kProducer;
  const std::string& culprit = producer ? st.spec->from : st.spec->to;
  (producer ? st.repair_producer : st.repair_consumer) = true;
  core::ExitReason reason{core::ExitReason::Kind::kSignal, 0, SIGKILL, false,
                          fmt::format("channel {}: {}", channel_name, e.Describe())};
  // Already gone (it was the one that died): the repair before its next
  // start is all there is to do.
  Feed(sup_.Fault(sup_.IncarnationOf(culprit), std::move(reason), Now()));
  return true;
}

void Daemon::SetComponentDown(const std::string& component, bool down) {
  auto it = ends_.find(component);
  if (it == ends_.end()) return;
  for (const EndOf& end : it->second) channels_.at(end.channel).files->SetDown(end.role, down);
}

nlohmann::json Daemon::ChannelsJson() const {
  nlohmann::json out = nlohmann::json::array();
  for (const spec::Channel& c : system_->channels) {
    const ChannelState& st = channels_.at(c.name);
    nlohmann::json j;
    j["name"] = c.name;
    j["from"] = c.from;
    j["to"] = c.to;
    j["capacity"] = c.capacity;
    j["max_message"] = c.max_message;
    auto stats = st.files->Stats();
    if (stats) {
      j["depth"] = stats->depth;
      j["in_flight"] = stats->in_flight;
      j["dead_letters"] = stats->dead_letters;
      j["next_id"] = stats->next_id;
      j["producer_epoch"] = stats->producer_epoch;
      j["consumer_epoch"] = stats->consumer_epoch;
    } else {
      j["error"] = stats.error().Describe();
    }
    j["producer_down"] = st.files->IsDown(EndRole::kProducer);
    j["consumer_down"] = st.files->IsDown(EndRole::kConsumer);
    out.push_back(std::move(j));
  }
  return out;
}

nlohmann::json Daemon::HandleDlq(const nlohmann::json& request) {
  auto fail = [](std::string message) {
    return nlohmann::json{{"ok", false}, {"error", std::move(message)}};
  };
  std::string name = request.value("channel", "");
  auto it = channels_.find(name);
  if (it == channels_.end()) {
    std::string known;
    for (const auto& [n, st] : channels_) known += (known.empty() ? "" : ", ") + n;
    return fail(
        fmt::format("no channel '{}' (channels: {})", name, known.empty() ? "none" : known));
  }
  channel::ChannelFiles& files = *it->second.files;
  std::string action = request.value("action", "list");
  if (action == "list" || action == "export") {
    auto lines = files.dead_letters().ExportJsonLines();
    if (!lines) return fail(lines.error().Describe());
    return {{"ok", true}, {"channel", name}, {"lines", *lines}};
  }
  const bool all = request.value("all", false);
  std::vector<std::uint64_t> ids;
  if (all) {
    ids = files.dead_letters().Ids();
  } else if (request.contains("id") && request["id"].is_number_unsigned()) {
    ids.push_back(request["id"].get<std::uint64_t>());
  } else {
    return fail(fmt::format("dlq {} needs an \"id\" or \"all\": true", action));
  }
  if (action == "purge") {
    auto st = all ? files.PurgeAll() : files.Purge(ids.front());
    if (!st) return fail(st.error().Describe());
    return {{"ok", true},
            {"message", fmt::format("purged {} dead letter(s) of {}", ids.size(), name)}};
  }
  if (action == "requeue") {
    // The ring has one writer: requeue while the producer is not attached.
    std::vector<std::uint64_t> new_ids;
    for (std::uint64_t id : ids) {
      auto r = files.Requeue(id);
      if (!r) {
        std::string why = r.error().Describe();
        if (r.error().code == channel::Errc::kBusy) {
          why = fmt::format(
              "the producer ({}) is running; stop it first (`slate stop {}`), "
              "requeue, then start it",
              it->second.spec->from, it->second.spec->from);
        }
        return fail(fmt::format(
            "requeue of {} on {}: {}{}", id, name, why,
            new_ids.empty() ? "" : fmt::format(" ({} requeued before it)", new_ids.size())));
      }
      new_ids.push_back(*r);
    }
    return {{"ok", true},
            {"message", fmt::format("requeued {} dead letter(s) of {} as new message(s)",
                                    new_ids.size(), name)},
            {"ids", new_ids}};
  }
  return fail(fmt::format("unknown dlq action '{}' (list, export, requeue, purge)", action));
}

}  // namespace slate::runtime
