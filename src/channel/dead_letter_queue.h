// DeadLetterQueue: the messages a channel gave up delivering, in an
// append-only file of framed, checksummed records that only the runtime
// opens (docs/channel-format.md, "dead-letters").
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "channel/error.h"
#include "platform/unique_fd.h"

namespace slate::channel {

struct DeadLetter {
  std::uint64_t id = 0;          // the message's id in the channel
  std::uint32_t deliveries = 0;  // consumer crashes it was in flight for
  std::int64_t time_ns = 0;      // CLOCK_REALTIME when it was dead-lettered
  std::vector<std::byte> payload;
};

// Single-threaded; owned by the runtime's ChannelFiles. A dead letter is
// "live" from its record until a later requeued/purged record for its id
// (or PurgeAll). Nothing here drops a record silently: removal is always a
// record of its own or an explicit PurgeAll.
class DeadLetterQueue {
 public:
  // A new file (it must not exist) holding just the file header.
  static ChannelResult<DeadLetterQueue> Create(const std::string& path, std::uint64_t nonce,
                                               std::uint64_t max_message);

  // Opens and checks every record. `committed_end` is the end() the owner
  // recorded after its last change: damage before it is kCorrupt (culprit
  // runtime) and the file is left as it is. Past it, whole records are kept
  // (the owner died before recording them) and the first bad one is a torn
  // append: it and what follows are cut off, and *notes says so.
  static ChannelResult<DeadLetterQueue> Open(const std::string& path, std::uint64_t nonce,
                                             std::uint64_t max_message, std::uint64_t committed_end,
                                             std::vector<std::string>* notes);

  // Appends a dead letter stamped with the current time. kInvalidArgument
  // if the id is already live or the payload is over max_message.
  ChannelStatus Append(std::uint64_t id, std::uint32_t deliveries,
                       std::span<const std::byte> payload);

  std::size_t size() const { return live_.size(); }
  // Where the next record goes: the file's whole length after a change.
  std::uint64_t end() const { return end_; }
  static std::uint64_t EmptySize();  // end() of a file with no records
  bool Contains(std::uint64_t id) const { return live_.contains(id); }
  std::vector<std::uint64_t> Ids() const;  // ascending

  ChannelResult<DeadLetter> Get(std::uint64_t id) const;  // kNotFound if not live
  ChannelResult<std::vector<DeadLetter>> List() const;    // ascending id

  // One JSON object per live dead letter, each on its own line:
  // {"id":7,"time":"2024-05-01T12:00:00.000001Z","deliveries":3,"length":5,
  //  "payload_base64":"aGVsbG8="}
  ChannelResult<std::string> ExportJsonLines() const;

  // Ends a dead letter's life with a record saying why. kNotFound if not live.
  ChannelStatus MarkRequeued(std::uint64_t id);
  ChannelStatus Purge(std::uint64_t id);
  // Drops every record (the file keeps its header).
  ChannelStatus PurgeAll();

 private:
  DeadLetterQueue(platform::UniqueFd fd, std::string path, std::uint64_t nonce,
                  std::uint64_t max_message);
  ChannelStatus Scan(std::uint64_t file_size, std::uint64_t committed_end,
                     std::vector<std::string>* notes);
  ChannelStatus AppendRecord(std::uint32_t kind, std::uint64_t id, std::uint32_t deliveries,
                             std::span<const std::byte> payload);
  ChannelStatus End(std::uint64_t id, std::uint32_t kind);

  platform::UniqueFd fd_;
  std::string path_;
  std::uint64_t nonce_ = 0;
  std::uint64_t max_message_ = 0;
  std::uint64_t end_ = 0;                        // where the next record goes
  std::map<std::uint64_t, std::uint64_t> live_;  // id -> offset of its record
};

}  // namespace slate::channel
