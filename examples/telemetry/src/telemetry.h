// The telemetry example's shared vocabulary: the records on its channels, the
// checksum they carry, the windows the aggregator cuts the stream into, and
// the sensor's model of its device, which is deterministic so that the load
// client can recompute every aggregate the system stores.
//
// Every record is fixed-size and trivially copyable; it travels as its bytes
// (the components are built together and run on one machine, so no byte
// order conversion). Its last field is a CRC-32C of the bytes before it, so
// a record damaged on its way or at rest is told from a good one.
#ifndef SLATE_EXAMPLES_TELEMETRY_TELEMETRY_H_
#define SLATE_EXAMPLES_TELEMETRY_TELEMETRY_H_

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string_view>
#include <type_traits>

namespace telemetry {

// ---- CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) ----

inline constexpr std::array<std::uint32_t, 256> kCrcTable = [] {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1U) != 0 ? (c >> 1) ^ 0x82F63B78U : c >> 1;
    table[i] = c;
  }
  return table;
}();

// The CRC-32C of `bytes`, continuing from `crc` (the CRC of what came
// before): Crc32c(b, Crc32c(a)) is the CRC of a followed by b.
inline std::uint32_t Crc32c(std::span<const std::byte> bytes, std::uint32_t crc = 0) {
  crc = ~crc;
  for (std::byte b : bytes)
    crc = kCrcTable[(crc ^ std::to_integer<std::uint32_t>(b)) & 0xFFU] ^ (crc >> 8);
  return ~crc;
}
inline std::uint32_t Crc32c(std::string_view text, std::uint32_t crc = 0) {
  return Crc32c(std::as_bytes(std::span(text.data(), text.size())), crc);
}

// A record's bytes, and a record read back from bytes (nullopt if the size
// is wrong).
template <typename T>
std::span<const std::byte> BytesOf(const T& record) {
  static_assert(std::is_trivially_copyable_v<T>);
  return std::as_bytes(std::span(&record, 1));
}
template <typename T>
std::optional<T> RecordFrom(std::span<const std::byte> bytes) {
  static_assert(std::is_trivially_copyable_v<T>);
  if (bytes.size() != sizeof(T)) return std::nullopt;
  T record;
  std::memcpy(&record, bytes.data(), sizeof(T));
  return record;
}
template <typename T>
std::optional<T> RecordFrom(std::string_view bytes) {
  return RecordFrom<T>(std::as_bytes(std::span(bytes.data(), bytes.size())));
}

// The CRC of a record's bytes before its `crc` member, which must be last
// but for padding. Records zero their padding, so equal records have equal
// bytes.
template <typename T>
std::uint32_t RecordCrc(const T& record) {
  return Crc32c(BytesOf(record).first(offsetof(T, crc)));
}
template <typename T>
void Seal(T& record) {
  record.crc = RecordCrc(record);
}
template <typename T>
bool Intact(const T& record) {
  return record.crc == RecordCrc(record);
}

// ---- The device model ----

// One sample every 2 ms.
inline constexpr std::uint64_t kSamplesPerSecond = 500;

// The value the sensor reads for sample `seq`, in thousandths of a unit: a
// slow triangle wave between -2000 and +2000 (a period of 5000 samples, 10 s),
// plus up to +-50 of jitter, and about one sample in 1000 an outlier of
// 6000 to 8999 either side (a glitch of the device). A pure function of
// `seq`: the load client recomputes it to check the aggregates.
inline std::int64_t SensorValue(std::uint64_t seq) {
  // splitmix64: a well-mixed hash of the sequence number.
  std::uint64_t h = seq + 0x9E3779B97F4A7C15ULL;
  h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9ULL;
  h = (h ^ (h >> 27)) * 0x94D049BB133111EBULL;
  h ^= h >> 31;
  if (h % 1000 == 0) {
    auto size = static_cast<std::int64_t>(6000 + (h >> 10) % 3000);
    return ((h >> 40) & 1U) != 0 ? size : -size;
  }
  auto phase = static_cast<std::int64_t>(seq % 5000);
  std::int64_t triangle = phase < 2500 ? phase : 5000 - phase;  // 0..2500
  std::int64_t wave = triangle * 8 / 5 - 2000;                  // -2000..2000
  std::int64_t jitter = static_cast<std::int64_t>((h >> 20) % 101) - 50;
  return wave + jitter;
}

// The filter's rule: a reading beyond the device's physical range is an
// outlier. It is flagged, not dropped, so every sample reaches the
// aggregator and can be accounted for.
inline constexpr std::int64_t kOutlierMilli = 4000;
inline bool IsOutlier(std::int64_t value_milli) {
  return value_milli > kOutlierMilli || value_milli < -kOutlierMilli;
}

// ---- Channel records ----

// Channel `raw` (sensor -> filter). seq is the message's channel id.
struct Sample {
  std::uint64_t seq = 0;
  std::int64_t value_milli = 0;
  std::uint32_t crc = 0;  // of seq and value_milli
  std::uint32_t padding = 0;
};
static_assert(sizeof(Sample) == 24 && std::is_trivially_copyable_v<Sample>);

// Channel `clean` (filter -> aggregator): the sample, checked and flagged.
struct Reading {
  std::uint64_t seq = 0;
  std::int64_t value_milli = 0;
  std::uint8_t outlier = 0;  // 0 or 1
  std::array<std::uint8_t, 3> padding{};
  std::uint32_t crc = 0;  // of the fields before it
};
static_assert(sizeof(Reading) == 24 && std::is_trivially_copyable_v<Reading>);

// ---- Windows ----

// Window k holds the seqs 100k+1 .. 100k+100 (seqs start at 1, as channel
// ids do): window 0 is seqs 1..100, window 1 is 101..200, and so on.
inline constexpr std::uint64_t kWindowSize = 100;
inline std::uint64_t WindowOf(std::uint64_t seq) {
  return (seq - 1) / kWindowSize;
}
inline std::uint64_t FirstSeq(std::uint64_t window) {
  return window * kWindowSize + 1;
}
inline std::uint64_t LastSeq(std::uint64_t window) {
  return (window + 1) * kWindowSize;
}

// What a window holds. `count` samples arrived (outliers included);
// `outliers` of them are flagged; sum, min and max are over the others (0
// when there are none). `gaps` has bit (seq - FirstSeq) set for each seq
// that never arrived: a dead-lettered message leaves one. count plus the
// number of gaps is 100 once the window is complete.
struct WindowStats {
  std::uint32_t count = 0;
  std::uint32_t outliers = 0;
  std::int64_t sum = 0;
  std::int64_t min = 0;
  std::int64_t max = 0;
  std::array<std::uint64_t, 2> gaps{};

  bool operator==(const WindowStats&) const = default;
};
static_assert(sizeof(WindowStats) == 48 && std::is_trivially_copyable_v<WindowStats>);

inline void Accumulate(WindowStats& w, std::int64_t value_milli, bool outlier) {
  bool first_clean = w.count == w.outliers;
  ++w.count;
  if (outlier) {
    ++w.outliers;
    return;
  }
  w.sum += value_milli;
  w.min = first_clean || value_milli < w.min ? value_milli : w.min;
  w.max = first_clean || value_milli > w.max ? value_milli : w.max;
}
inline void MarkGap(WindowStats& w, std::uint64_t offset) {
  w.gaps[offset / 64] |= std::uint64_t{1} << (offset % 64);
}
inline bool IsGap(const WindowStats& w, std::uint64_t offset) {
  return (w.gaps[offset / 64] >> (offset % 64) & 1U) != 0;
}
inline std::uint32_t GapCount(const WindowStats& w) {
  return static_cast<std::uint32_t>(std::popcount(w.gaps[0]) + std::popcount(w.gaps[1]));
}

// What window `window` must hold if exactly the seqs not marked in `gaps`
// arrived, each once: computed from the device model, not from anything the
// system stored.
inline WindowStats ExpectedStats(std::uint64_t window, const std::array<std::uint64_t, 2>& gaps) {
  WindowStats w;
  w.gaps = gaps;
  for (std::uint64_t offset = 0; offset < kWindowSize; ++offset) {
    if (IsGap(w, offset)) continue;
    std::int64_t v = SensorValue(FirstSeq(window) + offset);
    Accumulate(w, v, IsOutlier(v));
  }
  return w;
}

// Channel `summaries` (aggregator -> api): a complete window.
struct Summary {
  std::uint64_t window = 0;
  WindowStats stats;
  // The aggregator's count of redelivered readings it skipped, when it
  // closed this window (information only: not part of the check).
  std::uint64_t duplicates = 0;
  std::uint32_t crc = 0;  // of the fields before it
  std::uint32_t padding = 0;
};
static_assert(sizeof(Summary) == 72 && std::is_trivially_copyable_v<Summary>);

// ---- Request/reply: channels `requests` (load -> api), `replies` ----

// A request is text: "latest" (the highest window the api holds) or
// "window K" (K in decimal). A reply is one Reply record.
enum class ReplyStatus : std::uint32_t {
  kOk = 0,            // `summary` is the window asked for
  kNotFound = 1,      // no such window (yet)
  kDeadLettered = 2,  // its summary was dead-lettered on its way to the api
  kEmpty = 3,         // "latest", and the api holds no window yet
  kBadRequest = 4,    // not a request this api knows
};

inline constexpr std::uint32_t kReplyMagic = 0x544C4D31;  // "TLM1"

struct Reply {
  std::uint32_t magic = kReplyMagic;
  ReplyStatus status = ReplyStatus::kBadRequest;
  std::uint64_t latest = 0;        // the highest window held; valid if has_latest
  std::uint64_t windows_held = 0;  // how many windows the api holds
  std::uint64_t duplicates = 0;    // summaries the api received twice and skipped
  std::uint32_t has_latest = 0;
  std::uint32_t padding = 0;
  Summary summary;  // valid if status is kOk
};
static_assert(sizeof(Reply) == 112 && std::is_trivially_copyable_v<Reply>);

}  // namespace telemetry

#endif  // SLATE_EXAMPLES_TELEMETRY_TELEMETRY_H_
