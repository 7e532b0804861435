// ChannelFiles: the runtime's side of one channel — it creates the files,
// re-opens and recovers them after its own restart, hands each end its
// descriptors, charges deliveries when the consumer dies, runs the
// dead-letter queue and reports the numbers of `slate status`.
//
// The runtime reads the ends' regions with pread, never through a mapping,
// so an end that truncates its own file cannot make the runtime fault; it
// maps an end's file only to write it while that end is down (see Requeue).
// Every value read from an end is checked (docs/channel-format.md,
// "Validation"); a violation is kCorrupt naming the end that wrote it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "channel/dead_letter_queue.h"
#include "channel/end.h"
#include "channel/error.h"
#include "channel/layout.h"
#include "channel/region_file.h"
#include "platform/unique_fd.h"

namespace slate::channel {

struct ChannelStats {
  std::uint64_t depth = 0;         // published and not yet consumed (includes in_flight)
  std::uint64_t in_flight = 0;     // handed to the consumer and not acked
  std::uint64_t dead_letters = 0;  // live records in the dead-letter queue
  std::uint64_t next_id = 0;       // the id the producer's next message gets
  std::uint64_t consumed = 0;      // every id below this is acked or dead-lettered
  std::uint64_t producer_epoch = 0;
  std::uint64_t consumer_epoch = 0;
  std::uint64_t runtime_epoch = 0;
};

// What OnConsumerCrashed did.
struct CrashCharge {
  bool in_flight = false;  // a received, unacked message was charged
  std::uint64_t id = 0;    // that message (the first unacked one)
  std::uint32_t deliveries = 0;
  bool dead_lettered = false;  // it reached max_deliveries and moved to the queue
};

enum class EndRole { kProducer, kConsumer };

// Single-threaded; one per channel, in the runtime. Move-only.
class ChannelFiles {
 public:
  // Makes `dir` (its parent is created if missing; `dir` itself must not
  // exist) holding an empty channel. The files are built in a sibling
  // directory and renamed into place, so a crash never leaves half a channel
  // under `dir`. kInvalidArgument for a bad geometry or an existing `dir`.
  static ChannelResult<ChannelFiles> Create(const std::string& dir, const ChannelGeometry& g);

  // Re-opens an existing channel after a restart of the runtime and checks
  // everything: headers, file sizes, the positions of all three parties,
  // every slot holding an unconsumed message, the dead-letter file. It then
  // recovers what a crash of the runtime can leave behind — a torn
  // dead-letter append is cut off, a dead-lettering interrupted between its
  // two steps is finished — and says so in recovery_notes(). max_deliveries
  // is taken from `g`. Errors: kNotFound (no `dir`), kGeometryMismatch (made
  // for another capacity/max_message), kCorrupt (with the party to blame).
  // Call it before starting the channel's ends.
  static ChannelResult<ChannelFiles> Open(const std::string& dir, const ChannelGeometry& g);

  // Open if `dir` exists, else Create.
  static ChannelResult<ChannelFiles> OpenOrCreate(const std::string& dir, const ChannelGeometry& g);

  ChannelFiles(ChannelFiles&&) noexcept = default;
  ChannelFiles& operator=(ChannelFiles&&) noexcept = default;
  ~ChannelFiles() = default;

  // Fresh descriptors (new open file descriptions, O_CLOEXEC) for an end:
  // its own region read-write, the two others O_RDONLY. The runtime passes
  // them to the component and closes its copies.
  ChannelResult<EndFds> ProducerFds() const;
  ChannelResult<EndFds> ConsumerFds() const;

  // The numbers of `slate status --json`, after checking the files again.
  ChannelResult<ChannelStats> Stats() const;

  // Called when the consumer died (not when the runtime stopped it). If a
  // message had been received and not acked, the first such one is charged
  // a delivery; at max_deliveries it is appended to the dead-letter queue
  // and the channel's floor moves past it, so the next consumer starts after
  // it. Each consumer incarnation (epoch) is charged at most once: a repeated
  // call, or one after the runtime restarted, returns an empty CrashCharge.
  // kBusy if a consumer is still attached.
  ChannelResult<CrashCharge> OnConsumerCrashed();

  // Marks the end's component as down for good (given up, or stopped by the
  // operator) or up again. While it is down, its peer's waits end at once
  // with kPeerDown instead of sleeping: the flag is in the runtime region and
  // the peer's futex word is bumped and woken. Call it once the end's process
  // is gone (or going): the bump writes a counter in the end's own file.
  void SetDown(EndRole end, bool down);
  bool IsDown(EndRole end) const;
  // Bumps `end`'s futex word and wakes whoever sleeps on it (its peer), who
  // then looks again. A sleeper is woken once per sleep (wait tokens,
  // docs/channel-format.md), so a bump whose wake never came (its waker
  // died in between) would leave it asleep for good: Open nudges both ends.
  void Nudge(EndRole end) const;

  // Every check Open makes, on the live files: headers, sizes, positions,
  // and each slot holding an unconsumed message. kCorrupt names the culprit.
  // Costs a pread per 64 KiB of unconsumed messages.
  ChannelStatus Check() const;

  // Makes an end's file valid again after that end was caught corrupting it,
  // before its next process attaches; returns what was changed ("" if
  // nothing). The end must be detached (kBusy). Producer: header and size
  // rewritten; the write index moved back to the last whole message after
  // the consumer's position (messages after a damaged slot were written by a
  // faulty process and are dropped, and counted in the note). Consumer:
  // header and size rewritten; an impossible ack falls back to the last one
  // Check or Stats saw valid (redelivery, never loss), delivered = ack.
  ChannelResult<std::string> Repair(EndRole end);

  // Puts a dead letter back at the end of the stream, as a new message (its
  // new id is returned), and ends its dead-letter record. The producer must
  // be detached (kBusy otherwise: the ring has one writer); kFull if the
  // ring has no free slot; kNotFound for an id that is not a dead letter.
  ChannelResult<std::uint64_t> Requeue(std::uint64_t dead_letter_id);

  // `slate chaos`: poisons the next message its consumer will be handed for
  // the first time (the end of the published stream: the next one to come
  // if the channel is empty), so that the consumer aborts each time it is
  // handed it, until max_deliveries dead-letters it (OnConsumerCrashed then
  // clears the mark). Returns its id. A consumer handed it in the very
  // instant of the call may miss the mark (its delivery store and the load
  // of the mark are not fenced, to keep the receive path fast); the message
  // then goes on as usual, and the mark is cleared once the consumer has
  // acked past it (checked at its next crash) or by the next Open. A
  // consumer that receives several messages before acking is charged at its
  // first unacked one (OnConsumerCrashed), so messages before the mark may
  // be dead-lettered first.
  ChannelResult<std::uint64_t> Poison();
  std::uint64_t poisoned() const;  // 0: none

  // Purges one dead letter, or all of them. Record first, then memory.
  ChannelStatus Purge(std::uint64_t dead_letter_id);
  ChannelStatus PurgeAll();

  const DeadLetterQueue& dead_letters() const { return *dlq_; }
  const std::vector<std::string>& recovery_notes() const { return notes_; }
  const std::string& dir() const { return dir_; }
  const ChannelGeometry& geometry() const { return geometry_; }

 private:
  ChannelFiles() = default;
  std::string PathOf(std::string_view file) const;
  ChannelStatus CheckEndFiles() const;
  // Positions as IndexSnapshot says, with `write` the end of the published
  // stream (PublishedEnd in layout.h), checked by CheckIndices.
  ChannelResult<IndexSnapshot> ReadIndices() const;
  // The end of the published stream (PublishedEnd in layout.h): the write
  // index, the slot it names and the index again, read with pread.
  ChannelResult<std::uint64_t> ReadPublishedEnd() const;
  ChannelStatus CheckSlots(std::uint64_t from, std::uint64_t to) const;
  ChannelResult<EndFds> FdsFor(std::string_view own, std::string_view peer) const;
  ChannelStatus DeadLetterHead(std::uint64_t id, std::uint32_t deliveries);
  void CommitDeadLetterEnd();
  std::uint64_t Floor() const;

  std::string dir_;
  ChannelGeometry geometry_;
  std::uint64_t nonce_ = 0;
  platform::UniqueFd producer_fd_;  // the runtime's own read-write descriptions
  platform::UniqueFd consumer_fd_;
  platform::UniqueFd runtime_fd_;
  internal::Mapping runtime_;  // the whole runtime region, read-write
  std::optional<DeadLetterQueue> dlq_;
  std::vector<std::string> notes_;
  mutable std::uint64_t last_good_consumed_ = kFirstId;  // from the last valid ReadIndices
};

}  // namespace slate::channel
