// The control socket, state_dir/control.sock: how `slate status`, `stop`,
// `kill`, ... reach a running system. Protocol (docs/control-protocol.md):
// the client connects, writes one JSON object on one line, and reads one
// JSON object on one line; then the connection is closed.
//
// The socket file is mode 0600 and each peer's credentials are checked
// (SO_PEERCRED): only our own uid and root are served. A request longer than
// kMaxRequest, a line that is not a JSON object, or a peer that sends more
// than one line gets an error reply (when possible) and is disconnected;
// none of this disturbs the runtime. At most kMaxClients connections are
// open at once; a new one beyond that displaces the oldest. Beyond the
// RateLimit a request gets a "busy" reply and is not handled (Call retries
// such a request for a while).
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <string>

#include <sys/types.h>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "platform/event_loop.h"
#include "platform/unique_fd.h"

namespace slate::runtime {

// Requests handled per second, with bursts: a client that floods the
// socket gets "busy" replies instead of the runtime's time.
struct ControlRateLimit {
  double per_second = 1000;
  double burst = 200;
};

class ControlServer {
 public:
  static constexpr std::size_t kMaxRequest = std::size_t{64} * 1024;
  static constexpr std::size_t kMaxClients = 32;
  using RateLimit = ControlRateLimit;

  // Answers one well-formed request (an object with a string "verb").
  using Handler = std::function<nlohmann::json(const nlohmann::json& request)>;

  // Binds and listens at `path` (replacing a stale socket file) and registers
  // with `loop`.
  static Result<std::unique_ptr<ControlServer>> Listen(const std::string& path,
                                                       platform::EventLoop& loop, Handler handler,
                                                       RateLimit rate = {});
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Requests refused (bad peer, malformed, oversized), for status.
  std::uint64_t refused() const { return refused_; }

 private:
  struct Client {
    platform::UniqueFd fd;
    std::string buffer;
    bool busy = false;  // accepted over the rate: answered "busy"
  };

  ControlServer(std::string path, platform::UniqueFd fd, platform::EventLoop& loop, Handler handler,
                RateLimit rate);
  void Accept();
  void Readable(int fd);
  void Reply(int fd, const nlohmann::json& reply);
  void Drop(int fd);

  std::string path_;
  platform::UniqueFd listen_fd_;
  platform::EventLoop& loop_;
  Handler handler_;
  std::map<int, Client> clients_;
  std::deque<int> order_;  // oldest first
  std::uint64_t refused_ = 0;
  RateLimit rate_;
  double tokens_ = 0;  // the rate limit's bucket
  std::chrono::steady_clock::time_point refilled_ = std::chrono::steady_clock::now();
};

// Parses one request line. Errors say what is wrong, for the reply.
Result<nlohmann::json> ParseRequest(std::string_view line);

// The client side: sends `request` to the socket at `path` and returns the
// reply. Errors name the socket and the reason ("no system is running
// there" for ENOENT/ECONNREFUSED).
Result<nlohmann::json> Call(const std::string& path, const nlohmann::json& request,
                            int timeout_ms = 5000);

}  // namespace slate::runtime
