// What an end of a channel is handed, and how it maps it.
#pragma once

#include <chrono>
#include <cstdint>

#include "channel/error.h"
#include "channel/layout.h"
#include "channel/region_file.h"
#include "platform/unique_fd.h"

namespace slate::channel {

// The three descriptors of one end, as ChannelFiles hands them out:
//   own      its own region, O_RDWR (the only file it may write)
//   peer     the other end's region, O_RDONLY
//   runtime  the runtime region, O_RDONLY
// Each must be a fresh open file description (not a dup of one another end
// holds): an attached end holds an flock on `own`'s description, which is
// how a second attach, and the runtime, see that it is there.
struct EndFds {
  platform::UniqueFd own;
  platform::UniqueFd peer;
  platform::UniqueFd runtime;
};

// How long an end polls the peer's index before it sleeps on the futex, by
// default. A round trip between ends on their own CPUs then never sleeps
// (about 0.3 us instead of about 11 us through two futex wake-ups, see
// docs/benchmarks.md), and an end that waits longer burns at most this
// much CPU time per wait before it sleeps.
inline constexpr std::chrono::nanoseconds kDefaultSpin = std::chrono::microseconds(2);

struct AttachOptions {
  // Before sleeping on a futex, poll the peer's index for this long; 0
  // sleeps at once.
  std::chrono::nanoseconds spin = kDefaultSpin;
};

namespace internal {

enum class Role { kProducer, kConsumer };

// The mappings of an attached end, checked: the runtime region's header
// declares the shape and nonce; both end regions have the size that shape
// needs and headers that match it; `own` is locked (kBusy if another end
// holds it) and mapped writable; peer and runtime are mapped read-only.
struct Regions {
  ChannelGeometry shape;
  std::uint64_t slot_size = 0;  // SlotSize(shape.max_message)
  std::uint64_t nonce = 0;
  platform::UniqueFd own_fd;
  platform::UniqueFd peer_fd;
  platform::UniqueFd runtime_fd;
  Mapping own;
  Mapping peer;
  Mapping runtime;  // its first page only: the ends need nothing after it
};

ChannelResult<Regions> MapRegions(EndFds fds, Role role);

}  // namespace internal
}  // namespace slate::channel
