#include "channel/error.h"

#include <string>

#include "platform/status.h"

namespace slate::channel {

std::string_view ErrcName(Errc code) {
  switch (code) {
    case Errc::kFull: return "full";
    case Errc::kTooBig: return "too big";
    case Errc::kTimeout: return "timeout";
    case Errc::kBufferTooSmall: return "buffer too small";
    case Errc::kInvalidArgument: return "invalid argument";
    case Errc::kBusy: return "busy";
    case Errc::kCorrupt: return "corrupt";
    case Errc::kGeometryMismatch: return "geometry mismatch";
    case Errc::kNotFound: return "not found";
    case Errc::kPeerDown: return "peer down";
    case Errc::kSystem: return "system error";
  }
  return "unknown";
}

std::string_view CulpritName(Culprit who) {
  switch (who) {
    case Culprit::kNone: return "none";
    case Culprit::kProducer: return "producer";
    case Culprit::kConsumer: return "consumer";
    case Culprit::kRuntime: return "runtime";
  }
  return "unknown";
}

std::string ChannelError::Describe() const {
  std::string out(ErrcName(code));
  if (culprit != Culprit::kNone) {
    out += " (";
    out += CulpritName(culprit);
    out += ")";
  }
  if (!message.empty()) {
    out += ": ";
    out += message;
  }
  return out;
}

ChannelError SystemError(std::string_view what, int err) {
  return MakeChannelError(Errc::kSystem, platform::ErrnoError(what, err).message);
}

}  // namespace slate::channel
