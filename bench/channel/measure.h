// The two measurements of bench/channel, each between two processes that
// this driver forks and pins to their own CPUs (--cpus) and then only waits
// for (bounded, without polling) and kills on failure:
//   round trip  one end sends a ping, the other answers with a pong of the
//               same size over a second link; each round trip is timed by
//               the pinging end (CLOCK_MONOTONIC), after a warm-up;
//   throughput  one end sends N messages one way as fast as it can, the
//               other receives them; the rate runs from the receiver's
//               message number `capacity` (one lap of the ring: a fresh
//               link's page faults are left out) to its last.
// Every message carries its sequence number in its first 8 bytes and the
// receiving end checks it, so that a contender cannot pass by losing,
// reordering or garbling messages.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace slate::bench {

// links.h: MakeFloorFlagLink, MakeFloorRingLink, MakeChannelLink, ...
enum class Kind { kFloorFlag, kFloorRing, kChannel, kPipe, kSocketPair };

struct Contender {
  Kind kind = Kind::kFloorFlag;
  std::chrono::nanoseconds spin{0};  // channel and floor only
};

struct Options {
  int round_trips = 20000;
  int warmup = 2000;
  long messages_64 = 2000000;
  long messages_4k = 200000;
  int reps = 5;
  int spin_us = 20;
  std::size_t capacity = 1024;
  std::vector<int> cpus;  // the two ends' CPUs; empty: not pinned
  std::string dir;        // where channels are made
  std::string out;

  // Messages per throughput run. Pipes and sockets, several times slower,
  // send a quarter as many, so that the whole run stays short.
  long Messages(std::size_t size, Kind kind) const {
    long n = size <= 64 ? messages_64 : messages_4k;
    return kind == Kind::kPipe || kind == Kind::kSocketPair ? std::max(n / 4, 2L) : n;
  }
};

// "Clean Slate channel, spin 0 (default)", "floor: shm ring + futex, spin 20 us", ...
std::string Name(const Contender& c);
std::string KindName(Kind k);  // "channel", "floor_flag", "floor_ring", "pipe", "socketpair"

// What an end reports about its measured part (warm-up excluded).
struct EndReport {
  std::int64_t first_ns = 0;  // throughput receiver: its first and last message
  std::int64_t last_ns = 0;
  std::int64_t voluntary_cs = 0;  // it slept: futex, read, recv (getrusage)
  std::int64_t involuntary_cs = 0;
  std::int64_t cpu_ns = 0;  // user + system
};

struct RoundTripRow {
  Contender contender;
  std::size_t size = 0;
  std::string status = "ok";  // or "failed: why"
  std::vector<double> samples_ns;
  EndReport pinger;
  EndReport echo;
};

RoundTripRow MeasureRoundTrip(const Options& o, const Contender& c, std::size_t size);

struct ThroughputRun {
  double per_second = 0;
  EndReport sender;
  EndReport receiver;
};

// One repetition; nullopt, with the reason in `why`, on failure.
std::optional<ThroughputRun> MeasureThroughput(const Options& o, const Contender& c,
                                               std::size_t size, std::string& why);

}  // namespace slate::bench
