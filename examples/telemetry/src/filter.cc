// filter: checks each Sample from `raw` and forwards it as a Reading on
// `clean`, flagging outliers (never dropping them: every seq reaches the
// aggregator, so every seq can be accounted for).
//
// A sample that fails its checksum is a poison message: the filter cannot
// handle it, so it crashes, naming the seq. The message is delivered again
// to the next filter, which crashes too; after max_deliveries (3) crashes
// the runtime moves it to the dead-letter queue of `raw` and the stream goes
// on without it. The aggregator records the missing seq as a gap.
//
// Delivery is at least once: the filter acks a sample only after the
// Reading is sent, so a crash between the two forwards that seq again, and
// the aggregator skips the duplicate.
#include <chrono>
#include <cstdlib>
#include <slate/slate.hpp>
#include <thread>

#include "common.h"
#include "telemetry.h"

namespace {

using namespace std::chrono_literals;
using telemetry::Log;

void Forward(slate::Tx& clean, const telemetry::Reading& reading) {
  for (;;) {
    auto id = clean.Send(telemetry::BytesOf(reading), 100ms);
    slate::Heartbeat();
    if (id) return;
    if (id.code() == SLATE_EFULL) continue;  // the aggregator is behind or restarting
    if (id.code() == SLATE_EPEERDOWN) {      // the aggregator is stopped: returns at once
      std::this_thread::sleep_for(50ms);
      continue;
    }
    telemetry::Fail("send on clean", id.error());
  }
}

}  // namespace

int main() {
  telemetry::SetProgram("filter");
  telemetry::AttachOrExit();
  auto raw = telemetry::OrExit(slate::Rx::Open("raw"), "open raw");
  auto clean = telemetry::OrExit(slate::Tx::Open("clean"), "open clean");
  slate::Ready();

  std::array<std::byte, 256> buf{};
  unsigned long long forwarded = 0;
  unsigned long long outliers = 0;
  for (;;) {
    auto msg = raw.Receive(buf, 200ms);
    slate::Heartbeat();
    if (!msg) {
      if (msg.code() == SLATE_ETIMEDOUT) continue;
      if (msg.code() == SLATE_EPEERDOWN) {  // the sensor is stopped: returns at once
        std::this_thread::sleep_for(50ms);
        continue;
      }
      telemetry::Fail("receive on raw", msg.error());
    }
    auto sample = telemetry::RecordFrom<telemetry::Sample>(std::span(buf).first(msg->size));
    if (!sample) {
      Log("message %llu on raw is %zu bytes, not a sample: cannot handle it, crashing",
          static_cast<unsigned long long>(msg->id), msg->size);
      std::abort();
    }
    if (!telemetry::Intact(*sample)) {
      Log("sample seq %llu (message %llu) fails its checksum: cannot handle it, crashing",
          static_cast<unsigned long long>(sample->seq), static_cast<unsigned long long>(msg->id));
      std::abort();
    }
    telemetry::Reading reading;
    reading.seq = sample->seq;
    reading.value_milli = sample->value_milli;
    reading.outlier = telemetry::IsOutlier(sample->value_milli) ? 1 : 0;
    telemetry::Seal(reading);
    Forward(clean, reading);
    if (auto st = raw.Ack(msg->id); !st) telemetry::Fail("ack on raw", st.error());
    outliers += reading.outlier;
    if (++forwarded % (10 * telemetry::kSamplesPerSecond) == 0) {
      Log("forwarded %llu samples since start (%llu outliers flagged), last seq %llu", forwarded,
          outliers, static_cast<unsigned long long>(reading.seq));
    }
  }
}
