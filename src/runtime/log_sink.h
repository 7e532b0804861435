// A component's captured output: appended to state_dir/logs/NAME.log (rotated
// to NAME.log.1 past a size), and echoed to the runtime's stderr as
// "NAME | line". The echo never blocks: when stderr cannot take a line at
// once (a slow terminal, a full pipe) the line is dropped from the echo and
// counted, so a component that floods its output cannot slow supervision.
// The echo is also limited to kEchoPerSecond lines per second per component
// (what is left out is counted and said). The log file keeps everything.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace slate::runtime {

class LogSink {
 public:
  static constexpr std::uint64_t kRotateAt = 8u << 20;  // bytes per file
  static constexpr std::size_t kMaxLine = 4096;         // longer lines are split
  static constexpr double kEchoPerSecond = 200;         // lines echoed per second

  LogSink(std::string name, std::string path, bool echo);
  LogSink(LogSink&& other) noexcept;
  LogSink& operator=(LogSink&&) = delete;
  LogSink(const LogSink&) = delete;
  LogSink& operator=(const LogSink&) = delete;
  ~LogSink();

  // Appends raw output; complete lines are written out, a partial one waits
  // for its end (or kMaxLine).
  void Write(std::string_view data);
  // Writes out a pending partial line (the writer is gone).
  void Flush();

  std::uint64_t echo_dropped() const { return echo_dropped_; }

 private:
  void Line(std::string_view line);
  bool Echo(std::string_view text);
  void OpenFile();
  void Rotate();

  std::string name_;
  std::string path_;
  bool echo_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
  std::string partial_;
  std::uint64_t echo_dropped_ = 0;
  std::uint64_t echo_dropped_reported_ = 0;
  double echo_tokens_ = kEchoPerSecond;
  std::int64_t echo_refilled_ns_ = 0;
};

}  // namespace slate::runtime
