// sensor: the driver of the (simulated) device imu. It reads the device
// before every sample and sends one Sample every 2 ms on channel `raw`.
//
//   sensor [--device dev/imu] [--period-ms 2] [--ready-fd 3]
//
// The device is a file: "ok" when it answers, "wedged" when it hangs (see
// imu.cc). A wedged device blocks its driver, which then stops heartbeating:
// the runtime sees a hang, kills the sensor, resets the device (its reset
// runs before every start) and starts a fresh sensor. Readiness (a newline on
// --ready-fd, ready = "fd:3") comes only once the device answered "ok".
//
// A sample's seq is the id its message gets on `raw` (Tx::NextId before the
// send): ids carry on across restarts of either end, and a message is
// published whole or not at all, so every seq is sent exactly once with no
// state kept here. Its value is SensorValue(seq), so anyone can recompute it.
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <slate/slate.hpp>
#include <string>
#include <string_view>
#include <thread>

#include <fcntl.h>
#include <unistd.h>

#include "common.h"
#include "telemetry.h"

namespace {

using namespace std::chrono_literals;
using telemetry::Log;

enum class Device { kOk, kWedged, kBroken };

// What the device answers; `detail` says why it is broken.
Device ReadDevice(const std::string& path, std::string* detail) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *detail = std::strerror(errno);
    return Device::kBroken;
  }
  char buf[32];
  ssize_t n = ::read(fd, buf, sizeof buf);
  ::close(fd);
  if (n < 0) {
    *detail = std::strerror(errno);
    return Device::kBroken;
  }
  std::string_view text(buf, static_cast<std::size_t>(n));
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  if (text == "ok") return Device::kOk;
  if (text == "wedged") return Device::kWedged;
  *detail = "answers '" + std::string(text) + "'";
  return Device::kBroken;
}

// Blocks while the device is wedged, as a driver stuck in a read would:
// without heartbeats. Exits if the device is broken.
void AwaitDevice(const std::string& path) {
  std::string detail;
  Device d = ReadDevice(path, &detail);
  if (d == Device::kWedged) {
    Log("device %s is wedged: blocked until it answers (no heartbeats meanwhile)", path.c_str());
    while ((d = ReadDevice(path, &detail)) == Device::kWedged) std::this_thread::sleep_for(50ms);
    if (d == Device::kOk) Log("device %s answers again", path.c_str());
  }
  if (d == Device::kBroken) {
    Log("device %s: %s", path.c_str(), detail.c_str());
    std::exit(telemetry::kExitError);
  }
}

void SignalReady(int fd) {
  // s6 style: a newline, then close the descriptor.
  if (::write(fd, "\n", 1) != 1) Log("readiness on fd %d: %s", fd, std::strerror(errno));
  ::close(fd);
}

// Sends `sample`, waiting (and heartbeating) while `raw` is full.
void SendSample(slate::Tx& raw, const telemetry::Sample& sample) {
  for (;;) {
    auto id = raw.Send(telemetry::BytesOf(sample), 100ms);
    slate::Heartbeat();
    if (id) {
      if (*id != sample.seq) {
        Log("sample seq %llu went out as message %llu", static_cast<unsigned long long>(sample.seq),
            static_cast<unsigned long long>(*id));
      }
      return;
    }
    if (id.code() == SLATE_EFULL) continue;  // the filter is behind or restarting
    if (id.code() == SLATE_EPEERDOWN) {      // the filter is stopped: returns at once
      std::this_thread::sleep_for(50ms);
      continue;
    }
    telemetry::Fail("send on raw", id.error());
  }
}

}  // namespace

int main(int argc, char** argv) {
  telemetry::SetProgram("sensor");
  std::string device = "dev/imu";
  long period_ms = 2;
  int ready_fd = 3;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--device" && i + 1 < argc) {
      device = argv[++i];
    } else if (arg == "--period-ms" && i + 1 < argc) {
      period_ms = std::strtol(argv[++i], nullptr, 10);
    } else if (arg == "--ready-fd" && i + 1 < argc) {
      ready_fd = static_cast<int>(std::strtol(argv[++i], nullptr, 10));
    } else {
      Log("usage: sensor [--device PATH] [--period-ms N] [--ready-fd FD]");
      return telemetry::kExitUsage;
    }
  }
  if (period_ms <= 0) period_ms = 2;
  telemetry::AttachOrExit();
  auto raw = telemetry::OrExit(slate::Tx::Open("raw"), "open raw");
  AwaitDevice(device);
  SignalReady(ready_fd);
  Log("device %s ok; one sample every %ld ms, from seq %llu", device.c_str(), period_ms,
      static_cast<unsigned long long>(raw.NextId()));

  const std::chrono::milliseconds period(period_ms);
  auto next = std::chrono::steady_clock::now();
  for (;;) {
    slate::Heartbeat();
    AwaitDevice(device);
    telemetry::Sample sample;
    sample.seq = raw.NextId();
    sample.value_milli = telemetry::SensorValue(sample.seq);
    telemetry::Seal(sample);
    SendSample(raw, sample);
    if (sample.seq % (10 * telemetry::kSamplesPerSecond) == 0) {
      Log("sent seq %llu", static_cast<unsigned long long>(sample.seq));
    }
    // A steady rate; after a stall (a full channel) carry on from now
    // rather than send a burst to catch up.
    next += period;
    auto now = std::chrono::steady_clock::now();
    if (next < now - 10 * period) next = now;
    std::this_thread::sleep_until(next);
  }
}
