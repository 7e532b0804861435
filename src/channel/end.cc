#include "channel/end.h"

#include <cerrno>
#include <cstring>
#include <utility>

#include <fcntl.h>

#include <fmt/format.h>

namespace slate::channel::internal {

namespace {

RegionHeader HeaderOf(const Mapping& m) {
  RegionHeader h;
  std::memcpy(&h, m.data(), sizeof h);  // one copy, then checked: no double fetch
  return h;
}

}  // namespace

ChannelResult<Regions> MapRegions(EndFds fds, Role role) {
  const bool producer = role == Role::kProducer;
  const Culprit own_culprit = producer ? Culprit::kProducer : Culprit::kConsumer;
  const Culprit peer_culprit = producer ? Culprit::kConsumer : Culprit::kProducer;
  const std::string_view own_file = producer ? kProducerFile : kConsumerFile;
  const std::string_view peer_file = producer ? kConsumerFile : kProducerFile;

  Regions r;
  r.own_fd = std::move(fds.own);
  r.peer_fd = std::move(fds.peer);
  r.runtime_fd = std::move(fds.runtime);
  if (!r.own_fd.valid() || !r.peer_fd.valid() || !r.runtime_fd.valid()) {
    return MakeChannelError(Errc::kInvalidArgument, "an end needs three descriptors");
  }
  int flags = ::fcntl(r.own_fd.get(), F_GETFL);
  if (flags < 0) return SystemError(fmt::format("fcntl {}", own_file), errno);
  if ((flags & O_ACCMODE) != O_RDWR) {
    return MakeChannelError(Errc::kInvalidArgument,
                            fmt::format("{} must be open read-write", own_file));
  }

  // The runtime region first: it says what every other file must look like.
  auto rt_size = FileSize(r.runtime_fd.get(), kRuntimeFile);
  if (!rt_size) return rt_size.error();
  if (*rt_size < kPageSize) {
    return Corrupt(Culprit::kRuntime, fmt::format("{} is only {} bytes", kRuntimeFile, *rt_size));
  }
  auto rt = Mapping::Map(r.runtime_fd.get(), kPageSize, false, kRuntimeFile);
  if (!rt) return rt.error();
  r.runtime = std::move(*rt);
  RegionHeader rt_header = HeaderOf(r.runtime);
  auto shape = ShapeFromRuntimeHeader(rt_header);
  if (!shape) return shape.error();
  r.shape = *shape;
  r.slot_size = SlotSize(r.shape.max_message);
  r.nonce = rt_header.nonce;
  if (auto st = CheckFileSize(r.runtime_fd.get(), RuntimeFileSize(r.shape), Culprit::kRuntime,
                              kRuntimeFile);
      !st) {
    return st.error();
  }

  const std::uint64_t own_size = producer ? ProducerFileSize(r.shape) : ConsumerFileSize();
  const std::uint64_t peer_size = producer ? ConsumerFileSize() : ProducerFileSize(r.shape);
  if (auto st = CheckFileSize(r.own_fd.get(), own_size, own_culprit, own_file); !st) {
    return st.error();
  }
  if (auto st = CheckFileSize(r.peer_fd.get(), peer_size, peer_culprit, peer_file); !st) {
    return st.error();
  }
  auto locked = TryLock(r.own_fd.get(), own_file);
  if (!locked) return locked.error();
  if (!*locked) {
    return ChannelError{
        Errc::kBusy, Culprit::kNone,
        fmt::format("another {} is attached to this channel", producer ? "producer" : "consumer"),
        0};
  }

  auto own = Mapping::Map(r.own_fd.get(), own_size, true, own_file);
  if (!own) return own.error();
  r.own = std::move(*own);
  auto peer = Mapping::Map(r.peer_fd.get(), peer_size, false, peer_file);
  if (!peer) return peer.error();
  r.peer = std::move(*peer);

  const std::uint64_t own_magic = producer ? kProducerMagic : kConsumerMagic;
  const std::uint64_t peer_magic = producer ? kConsumerMagic : kProducerMagic;
  if (auto st = CheckEndHeader(HeaderOf(r.own), own_magic, r.nonce, r.shape, own_culprit); !st) {
    return st.error();
  }
  if (auto st = CheckEndHeader(HeaderOf(r.peer), peer_magic, r.nonce, r.shape, peer_culprit); !st) {
    return st.error();
  }
  return r;
}

}  // namespace slate::channel::internal
