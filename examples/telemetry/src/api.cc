// api: the query service. It keeps every window's Summary from `summaries`
// in its state store and answers requests on `requests` with a Reply on
// `replies` (request/reply: slate::Server). Formats: telemetry.h.
//
//   api              run (ready = "notify"; with standby = 1 a spare waits
//                    in slate_await_activation and takes over without exec)
//   api --sanitize   repair the store (the system file's `sanitize`)
//
// Requests: "latest" answers the highest window held; "window K" answers
// window K, or kNotFound, or kDeadLettered when its summary was dead-lettered
// on its way here (below).
//
// Summaries come at least once; the api keeps the first copy of each window
// and counts the others as duplicates, in the same transaction as the
// channel id it has applied (`last_msg_id`): a summary its predecessor
// committed but did not ack is skipped. The only gaps in channel ids are
// dead letters, so a jump in ids means summaries were dead-lettered: the
// windows between the highest one held and the one that came are marked
// (dl/K) so that a query for them says so instead of "not found".
//
// State (checked_store.h: every value with a CRC and a mirror):
//   meta                 ApiMeta
//   win/NNNNNNNNNNNNNNNN  Summary (16 decimal digits)
//   dl/NNNNNNNNNNNNNNNN   DeadLettered
// Every read, and a scrub of the whole store at start and every second,
// exits 4 on a damaged value.
//
// One loop serves both inputs: it takes the summaries that are waiting, then
// waits a little for requests, so neither starves the other.
#include <algorithm>
#include <charconv>
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

struct ApiMeta {
  std::uint64_t last_msg_id = 0;  // the newest `summaries` message applied
  std::uint64_t latest = 0;       // the highest window held, if has_latest
  std::uint64_t windows_held = 0;
  std::uint64_t duplicates = 0;          // summaries received again and skipped
  std::uint64_t dead_lettered_msgs = 0;  // ids skipped on `summaries`
  std::uint32_t has_latest = 0;
  std::uint32_t padding = 0;
};

struct DeadLettered {
  std::uint64_t window = 0;
  std::uint64_t first_msg_id = 0;  // the ids skipped when it was found missing
  std::uint64_t last_msg_id = 0;
};

// Marking more windows than this at once means a broken stream, not a few
// dead letters; they are then left "not found".
constexpr std::uint64_t kMaxMarked = 100000;

std::string Key(const char* prefix, std::uint64_t window) {
  char key[40];
  (void)std::snprintf(key, sizeof key, "%s/%016" PRIu64, prefix, window);
  return key;
}

void ApplySummary(std::uint64_t msg_id, const telemetry::Summary& summary) {
  auto txn = telemetry::BeginOrExit();
  ApiMeta meta = telemetry::Load<ApiMeta>(txn, "meta").value_or(ApiMeta{});
  if (meta.last_msg_id != 0 && msg_id <= meta.last_msg_id) return;  // applied already
  if (meta.last_msg_id != 0 && msg_id > meta.last_msg_id + 1) {
    meta.dead_lettered_msgs += msg_id - meta.last_msg_id - 1;
    std::uint64_t first = meta.has_latest != 0 ? meta.latest + 1 : 0;
    Log("summaries %" PRIu64 "..%" PRIu64 " were dead-lettered", meta.last_msg_id + 1, msg_id - 1);
    if (summary.window > first && summary.window - first <= kMaxMarked) {
      for (std::uint64_t w = first; w < summary.window; ++w) {
        if (telemetry::Load<telemetry::Summary>(txn, Key("win", w))) continue;
        DeadLettered dl{w, meta.last_msg_id + 1, msg_id - 1};
        telemetry::Store(txn, Key("dl", w), dl);
        Log("window %" PRIu64 " was in a dead-lettered summary", w);
      }
    }
  }
  if (telemetry::Load<telemetry::Summary>(txn, Key("win", summary.window))) {
    ++meta.duplicates;
  } else {
    telemetry::Store(txn, Key("win", summary.window), summary);
    telemetry::ErasePair(txn, Key("dl", summary.window));  // requeued from the dead letters
    ++meta.windows_held;
    if (meta.has_latest == 0 || summary.window > meta.latest) {
      meta.latest = summary.window;
      meta.has_latest = 1;
    }
    if (summary.window % 50 == 0) {
      Log("window %" PRIu64 " stored; %" PRIu64 " held, %" PRIu64 " duplicates skipped",
          summary.window, meta.windows_held, meta.duplicates);
    }
  }
  meta.last_msg_id = msg_id;
  telemetry::Store(txn, "meta", meta);
  telemetry::CommitOrExit(txn);
}

telemetry::Reply Answer(std::string_view request) {
  telemetry::Reply reply;
  ApiMeta meta = telemetry::Load<ApiMeta>("meta").value_or(ApiMeta{});
  reply.latest = meta.latest;
  reply.has_latest = meta.has_latest;
  reply.windows_held = meta.windows_held;
  reply.duplicates = meta.duplicates;
  std::uint64_t window = 0;
  if (request == "latest") {
    if (meta.has_latest == 0) {
      reply.status = telemetry::ReplyStatus::kEmpty;
      return reply;
    }
    window = meta.latest;
  } else if (request.starts_with("window ")) {
    std::string_view digits = request.substr(7);
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), window);
    if (ec != std::errc() || end != digits.data() + digits.size()) {
      reply.status = telemetry::ReplyStatus::kBadRequest;
      return reply;
    }
  } else {
    reply.status = telemetry::ReplyStatus::kBadRequest;
    return reply;
  }
  if (auto summary = telemetry::Load<telemetry::Summary>(Key("win", window))) {
    reply.status = telemetry::ReplyStatus::kOk;
    reply.summary = *summary;
  } else if (telemetry::Load<DeadLettered>(Key("dl", window))) {
    reply.status = telemetry::ReplyStatus::kDeadLettered;
  } else {
    reply.status = telemetry::ReplyStatus::kNotFound;
  }
  return reply;
}

}  // namespace

int main(int argc, char** argv) {
  telemetry::SetProgram("api");
  bool sanitize = argc == 2 && std::string_view(argv[1]) == "--sanitize";
  if (argc > 1 && !sanitize) {
    Log("usage: api [--sanitize]");
    return telemetry::kExitUsage;
  }
  telemetry::AttachOrExit();
  if (sanitize) return telemetry::Sanitize();
  // A standby spare parks here; an ordinary start goes on at once.
  if (auto st = slate::AwaitActivation(); !st) {
    if (st.code() == SLATE_EPEERDOWN) return 0;  // the runtime retired this spare
    telemetry::Fail("await activation", st.error());
  }

  std::size_t pairs = telemetry::ScrubOrExit();
  auto summaries = telemetry::OrExit(slate::Rx::Open("summaries"), "open summaries");
  auto server = telemetry::OrExit(slate::Server::Open("requests", "replies"), "open requests");
  ApiMeta meta = telemetry::Load<ApiMeta>("meta").value_or(ApiMeta{});
  Log("serving; store intact (%zu keys and their mirrors), %" PRIu64 " windows held", pairs,
      meta.windows_held);
  slate::Ready();

  std::array<std::byte, 512> buf{};
  auto next_scrub = std::chrono::steady_clock::now() + 1s;
  unsigned long long answered = 0;
  std::chrono::milliseconds idle_pause = 1ms;
  for (;;) {
    slate::Heartbeat();
    if (std::chrono::steady_clock::now() >= next_scrub) {
      (void)telemetry::ScrubOrExit();
      next_scrub = std::chrono::steady_clock::now() + 1s;
    }
    bool busy = false;
    bool peer_down = false;
    for (int i = 0; i < 64; ++i) {
      auto msg = summaries.Receive(buf, 0ms);
      if (!msg) {
        if (msg.code() == SLATE_ETIMEDOUT) break;
        if (msg.code() == SLATE_EPEERDOWN) {  // the aggregator is stopped
          peer_down = true;
          break;
        }
        telemetry::Fail("receive on summaries", msg.error());
      }
      auto summary = telemetry::RecordFrom<telemetry::Summary>(std::span(buf).first(msg->size));
      if (!summary || !telemetry::Intact(*summary)) {
        Log("message %llu on summaries is not an intact summary: cannot handle it, crashing",
            static_cast<unsigned long long>(msg->id));
        std::abort();
      }
      ApplySummary(msg->id, *summary);
      if (auto st = summaries.Ack(msg->id); !st) telemetry::Fail("ack on summaries", st.error());
      busy = true;
    }
    for (int i = 0; i < 64; ++i) {
      auto req = server.Next(buf, i == 0 && !busy ? 20ms : 0ms);
      if (!req) {
        if (req.code() == SLATE_ETIMEDOUT) break;
        if (req.code() == SLATE_EPEERDOWN) {  // the client is stopped
          peer_down = true;
          break;
        }
        telemetry::Fail("receive on requests", req.error());
      }
      telemetry::Reply reply =
          Answer(std::string_view(reinterpret_cast<const char*>(buf.data()), req->size));
      if (reply.status == telemetry::ReplyStatus::kBadRequest) {
        Log("request %llu is not one this api knows", static_cast<unsigned long long>(req->id));
      }
      if (auto st = server.Reply(req->id, telemetry::BytesOf(reply), 1000ms); !st) {
        telemetry::Fail("reply", st.error());
      }
      if (++answered % 5000 == 0) Log("%llu requests answered since start", answered);
      busy = true;
    }
    // A peer held down makes the calls above return at once: pause, but
    // briefly at first, since a client that is being stopped may still be
    // asking (the load client's final sweep), and longer while nothing comes.
    if (busy) {
      idle_pause = 1ms;
    } else if (peer_down) {
      std::this_thread::sleep_for(idle_pause);
      idle_pause = std::min(idle_pause * 2, std::chrono::milliseconds(20));
    }
  }
}
