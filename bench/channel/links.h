// One-way message links between two processes: what bench/channel times.
// A Clean Slate channel, a pipe, a Unix socket pair, and the floor (the
// least shared memory and futexes can do: no files, no validation).
//
// A link is made in the driver before it forks the two ends. The sending
// process then calls BecomeSender and the receiving one BecomeReceiver;
// each end closes or ignores what belongs to the other. The driver keeps
// its copy until both ends have exited, then destroys it (a channel's
// directory goes with it).
//
// Messages have one size per run: Receive returns when one whole message of
// buffer.size() bytes is in `buffer` and fails on any other size. Send and
// Receive block without a deadline (the driver bounds the run and kills the
// ends); a failure says why on stderr and returns false, ending the run.
// Not thread-safe; one thread per end.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <span>
#include <string>

namespace slate::bench {

class Link {
 public:
  virtual ~Link() = default;
  virtual bool BecomeSender() = 0;
  virtual bool BecomeReceiver() = 0;
  virtual bool Send(std::span<const std::byte> message) = 0;
  virtual bool Receive(std::span<std::byte> buffer) = 0;
};

struct LinkOptions {
  std::size_t message_size = 64;
  std::size_t capacity = 1024;       // channel and floor ring: messages in flight
  std::chrono::nanoseconds spin{0};  // channel and floor: polling before a futex sleep
  std::string dir;                   // channel: its directory is made under this one
};

// Each returns nullptr, having said why on stderr, if it cannot be made.

// A Clean Slate channel (src/channel) of `capacity` messages with
// max_message = message_size, made by ChannelFiles::Create under `dir`;
// each end attaches with AttachOptions{spin}. The receiver acks every
// message (cumulative Ack of its id) as soon as Receive has returned it.
std::unique_ptr<Link> MakeChannelLink(const LinkOptions& o);

// pipe2(2): one write(2) per message; read(2) until a whole message is in.
std::unique_ptr<Link> MakePipeLink(const LinkOptions& o);

// socketpair(AF_UNIX, SOCK_SEQPACKET): one send(2) and one recv(2) per
// message, boundaries kept by the kernel.
std::unique_ptr<Link> MakeSocketPairLink(const LinkOptions& o);

// The round-trip floor: one MAP_SHARED anonymous mapping, a cache line with
// a sequence word (the futex) and a "waiting" flag, the payload after it.
// Send copies the payload in, bumps the word and wakes the receiver only if
// its flag is up; Receive polls for `spin`, then raises the flag, looks
// again and FUTEX_WAITs. It never waits for space: a second Send before the
// peer's Receive overwrites the first, which is safe only in a ping-pong,
// where the reply proves the peer has taken the message.
std::unique_ptr<Link> MakeFloorFlagLink(const LinkOptions& o);

// The throughput floor: a single-producer single-consumer ring in a
// MAP_SHARED anonymous mapping, with the channel's geometry (`capacity`
// slots of round_up(16 + message_size, 64) bytes) and its handshake (the
// index on one cache line per end, "wants" flags, futex sleeps after the
// optional spin), and nothing else: no files, no checks, no ack apart
// from the read index. One difference: a waker makes the wake-up system
// call once per sleep of its peer, where a channel end makes it for every
// message until the sleeper has run again and lowered its flag.
std::unique_ptr<Link> MakeFloorRingLink(const LinkOptions& o);

}  // namespace slate::bench
