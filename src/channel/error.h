// Errors of channel operations. Unlike base/result.h's Error, a channel error
// carries a code (libslate maps it to a SLATE_E* value) and, for kCorrupt,
// the party whose memory held the garbage: an end that wrote it is treated
// as failed by the runtime.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "base/result.h"

namespace slate::channel {

enum class Errc {
  kFull,              // Send: no free slot before the timeout
  kTooBig,            // Send: message longer than max_message
  kTimeout,           // Receive: nothing arrived before the timeout
  kBufferTooSmall,    // Receive: the next message does not fit; nothing was consumed
  kInvalidArgument,   // a bad geometry, or Ack of an id not yet received
  kBusy,              // the end is attached by someone else (or still attached)
  kCorrupt,           // a region failed validation; `culprit` wrote it
  kGeometryMismatch,  // files on disk were made for another capacity/max_message
  kNotFound,          // no such channel directory, or no such dead letter
  kPeerDown,          // the other end's component is down for good (given up or stopped)
  kSystem,            // a system call failed; the message has errno's text
};

// Who owns (and so wrote) the memory that failed validation.
enum class Culprit { kNone, kProducer, kConsumer, kRuntime };

std::string_view ErrcName(Errc code);       // "full", "corrupt", ...
std::string_view CulpritName(Culprit who);  // "producer", "consumer", "runtime", "none"

struct ChannelError {
  Errc code = Errc::kSystem;
  Culprit culprit = Culprit::kNone;
  std::string message;
  std::size_t needed = 0;  // kBufferTooSmall: the size of the waiting message

  // "corrupt (producer): write index 99 beyond ack 3 + capacity 4".
  std::string Describe() const;
  Error ToError() const { return MakeError(Describe()); }
};

// Result of a channel operation: the value or a ChannelError. No exceptions.
template <typename T>
using ChannelResult = Result<T, ChannelError>;

using ChannelStatus = ChannelResult<std::monostate>;

inline ChannelStatus Ok() {
  return std::monostate{};
}

inline ChannelError MakeChannelError(Errc code, std::string message) {
  return ChannelError{code, Culprit::kNone, std::move(message), 0};
}

inline ChannelError Corrupt(Culprit who, std::string message) {
  return ChannelError{Errc::kCorrupt, who, std::move(message), 0};
}

// "what: strerror(err)" with code kSystem.
ChannelError SystemError(std::string_view what, int err);

}  // namespace slate::channel
