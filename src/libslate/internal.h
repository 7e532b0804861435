// Internal to libslate: the process-wide state and the error plumbing that
// the C functions share.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "channel/consumer.h"
#include "channel/error.h"
#include "channel/producer.h"
#include "slate/slate.h"

namespace slate::lib {

// One end as the runtime handed it (SLATE_CHANNELS).
struct GrantedEnd {
  std::string channel;
  bool tx = false;
  int own = -1;
  int peer = -1;
  int runtime = -1;
  bool opened = false;  // its descriptors now belong to an open end
};

// Set by slate_init; read-only afterwards except `opened` (under a mutex).
struct Process {
  std::string component;
  std::string notify_path;  // "" when the runtime gave no socket
  std::int64_t watchdog_ns = 0;
  std::vector<GrantedEnd> ends;
  // SLATE_STORE="DIR:SIZE:process|power"; empty dir when it has no state.
  std::string store_dir;
  std::uint64_t store_size = 0;
  bool store_power = false;
  // A standby spare: its end of the activation socket (SLATE_STANDBY) until
  // slate_await_activation has been promoted through it; -1 otherwise.
  int activation_fd = -1;
};

// nullptr until slate_init succeeded.
Process* Attached();

// A spare's side of promotion: tells the runtime it is parked, then blocks
// until the runtime hands it its channels and store (slate_await_activation).
int AwaitActivation(Process* p);

// Records the failure for slate_last_error and returns `code`.
int Fail(int code, std::string message);
int FailChannel(std::string_view what, const channel::ChannelError& e);
// The code of the calling thread's last Fail.
int LastCode();

// Sends one sd_notify datagram ("READY=1", ...) to the runtime; false if it
// could not be sent (no socket).
bool Notify(std::string_view message);

}  // namespace slate::lib

// The ends. The tag lets slate_peer_epoch take either.
enum class SlateEndKind : std::uint32_t { kTx = 0x534c5458, kRx = 0x534c5258 };

struct slate_tx {
  SlateEndKind kind = SlateEndKind::kTx;
  std::string channel;
  slate::channel::Producer producer;
  // Request/reply server side: the newest request id already answered on
  // this reply channel (read back from its last message once).
  std::optional<std::uint64_t> answered;
};

struct slate_rx {
  SlateEndKind kind = SlateEndKind::kRx;
  std::string channel;
  slate::channel::Consumer consumer;
  std::vector<std::byte> scratch;  // slate_call's reply buffer
  std::uint64_t served = 0;        // the request slate_serve returned last
};
