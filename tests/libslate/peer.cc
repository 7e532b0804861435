// slate_peer: a libslate component for the integration tests, one mode per
// behaviour a test needs. Every mode uses only what a component gets from
// the runtime (environment and descriptors), through <slate/slate.hpp>,
// except `scribble`, which misuses its own descriptors as a hostile
// component would.
//
//   produce --count N [--size B] [--pace-us U]
//       sends messages 1..N (payload: the id as 8 bytes, padded to B bytes),
//       resuming after a restart from the channel's next id; then idles.
//   consume --out FILE [--poison ID] [--slow-us U]
//       appends each new id to FILE (8 bytes, O_APPEND) and acks it; ids at
//       or below the last one in FILE are duplicates, counted and skipped
//       (the dedupe that turns at-least-once into exactly-once). Checks that
//       ids arrive in order and that the payload matches. Aborts on ID.
//   scribble --after N --what write|slot [--once MARKER]
//       produces N messages, then writes garbage over its own write index
//       (write) or the next unconsumed slot (slot), and keeps sending.
//   serve [--crash-before-reply K] [--crash-after-reply K] [--markers DIR] [--mute yes]
//       answers each request with "re:" + request on channels req/rep and
//       prints "served ID"; aborts at the K-th request of an incarnation
//       before (or after) replying, once per marker in DIR; --mute: never answers.
//   call --count N [--timeout-ms T]
//       calls the server N times, checks each answer, prints a summary.
//   call-once [--timeout-ms T]
//       one call; prints the result code name and exits 0.
//   count --out FILE [--pace-us U]
//       increments n in the state store, one transaction per turn, and
//       appends each committed value to FILE.
//   checked / checked-sanitize
//       a counter in the state store whose value carries a check; a value
//       that fails it ends the process with code 4; the sanitize mode drops it.
//   hold-read
//       holds a read transaction of its store (an LMDB reader slot) for ever.
//   stateful [--trigger FILE] / sanitize
//       a counter in the state store that poisons its state when FILE
//       appears; `sanitize` removes the poison.
//   drive [--device FILE] [--trigger FILE] / device-reset FILE
//       a driver of a simulated device (a file; "wedged" persists across
//       restarts of the driver until the reset hook runs).
//   grants
//       prints its open descriptors and what opening ungranted ends gives.
//   crash [tx:CHANNEL] [rx:CHANNEL] [state]
//       opens those, then exits with 3 at once.
//   reach KIND:PATH...
//       tries each path below $SLATE_STATE_DIR as KIND says (r: open to
//       read; w: create a file in that directory; s: connect a stream
//       socket; d: send a datagram; u: unmount it; x: open it through
//       /proc/PID/root of any other process; b: open the absolute PATH, a
//       block device, to read; m: write "0" to the absolute PATH, a
//       cgroup.procs) and prints "reach KIND:PATH: ok"
//       or the error; then idles.
//   isolation --port P --shm-key K
//       prints its network interfaces ("interfaces: lo:down"), whether it
//       can connect to 127.0.0.1:P ("host: ok" or the error), to a listener
//       of its own on 127.0.0.1 ("self: ..."), and whether it sees the
//       System V shared memory segment K ("shm: ..."); then idles.
//
// Hostile modes (tests/libslate/hostile_it_test.cc); each carries its
// arguments in its argv, so that the test finds all of its processes (and
// its forks) by a marker there.
//   fork-bomb --marker M [--hold-ms H] [--code C]
//       forks as fast as it can, and so do all its forks, retrying when the
//       kernel refuses; after H ms the first process exits with code C,
//       leaving the others forking.
//   hog [--chunk-kib K] [--pace-us U]
//       allocates (and touches) K KiB every U us; when malloc fails it says
//       "hog: malloc failed after N MiB" and aborts.
//   notify-flood [--victim NAME]
//       READY=1, then sends sd_notify datagrams to $NOTIFY_SOCKET as fast as
//       it can (READY=1, WATCHDOG=1, garbage STATUS=, binary, empty and
//       oversize datagrams, descriptors); and READY=1, WATCHDOG=1 and
//       STATUS= to NAME's notify socket, reached through /proc/PID/root of
//       its processes. Prints "flood: ..." counts each second.
//   mute --marker FILE [--hold-ms H]
//       the first time (FILE absent): creates FILE, is ready, heartbeats
//       for H ms, then goes on without heartbeats. Later: heartbeats but
//       never says it is ready.
//   stubborn --marker M [--main-ignores yes]
//       forks a child that calls setsid() and ignores SIGTERM, which forks
//       a grandchild that does the same; prints their pids; then idles
//       (the first process dies of SIGTERM as usual, or with --main-ignores
//       ignores it too).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <slate/slate.hpp>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace {

using std::chrono::milliseconds;

std::string Arg(int argc, char** argv, std::string_view name, std::string fallback = "") {
  for (int i = 2; i + 1 < argc; ++i) {
    if (name == argv[i]) return argv[i + 1];
  }
  return fallback;
}

long long Num(int argc, char** argv, std::string_view name, long long fallback) {
  std::string v = Arg(argc, argv, name);
  return v.empty() ? fallback : std::atoll(v.c_str());
}

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "peer: %s\n", what.c_str());
  std::exit(1);
}

void Init() {
  if (auto st = slate::Init(); !st) Die(st.error().text);
  // A standby spare waits here for its promotion; any other process goes on.
  if (auto st = slate::AwaitActivation(); !st) Die(st.error().text);
}

[[noreturn]] void Idle() {
  slate::Ready();
  for (;;) {
    slate::Heartbeat();
    std::this_thread::sleep_for(milliseconds(50));
  }
}

int Produce(int argc, char** argv) {
  Init();
  const auto count = static_cast<std::uint64_t>(Num(argc, argv, "--count", 1000));
  const auto size = static_cast<std::size_t>(Num(argc, argv, "--size", 8));
  const auto pace = Num(argc, argv, "--pace-us", 0);
  auto tx = slate::Tx::Open(Arg(argc, argv, "--channel", "stream"));
  if (!tx) Die(tx.error().text);
  slate::Ready();
  std::vector<std::byte> msg(std::max<std::size_t>(size, 8));
  for (std::uint64_t id = tx->NextId(); id <= count; id = tx->NextId()) {
    std::memcpy(msg.data(), &id, 8);
    auto sent = tx->Send(msg, milliseconds(200));
    slate::Heartbeat();
    if (!sent) {
      if (sent.code() == SLATE_EFULL || sent.code() == SLATE_EPEERDOWN) continue;
      Die(sent.error().text);
    }
    if (*sent != id) Die("sent id " + std::to_string(*sent) + " expected " + std::to_string(id));
    if (pace > 0) std::this_thread::sleep_for(std::chrono::microseconds(pace));
  }
  std::printf("produced up to %llu\n", static_cast<unsigned long long>(count));
  std::fflush(stdout);
  Idle();
}

// The last id in FILE: what this consumer's predecessors have processed.
std::uint64_t LastRecorded(int fd) {
  off_t size = ::lseek(fd, 0, SEEK_END);
  if (size < 8) return 0;
  std::uint64_t last = 0;
  // A torn final record cannot happen (8-byte O_APPEND writes), but be safe.
  off_t at = size - size % 8 - 8;
  if (::pread(fd, &last, 8, at) != 8) Die("read the output file");
  return last;
}

int Consume(int argc, char** argv) {
  Init();
  const std::string out = Arg(argc, argv, "--out");
  const auto poison = static_cast<std::uint64_t>(Num(argc, argv, "--poison", 0));
  const auto slow = Num(argc, argv, "--slow-us", 0);
  int fd = ::open(out.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) Die("open " + out);
  std::uint64_t last = LastRecorded(fd);
  auto rx = slate::Rx::Open(Arg(argc, argv, "--channel", "stream"));
  if (!rx) Die(rx.error().text);
  slate::Ready();
  std::vector<std::byte> buf(rx->MaxMessage());
  std::uint64_t duplicates = 0;
  std::uint64_t expected = 0;  // the id the next message must have, once known
  for (;;) {
    auto msg = rx->Receive(buf, milliseconds(100));
    slate::Heartbeat();
    if (!msg) {
      if (msg.code() == SLATE_ETIMEDOUT || msg.code() == SLATE_EPEERDOWN) continue;
      if (msg.code() == SLATE_ECORRUPT) {
        // The producer broke the channel; the runtime fails and repairs it,
        // and this end heals when its successor attaches.
        std::this_thread::sleep_for(milliseconds(10));
        continue;
      }
      Die(msg.error().text);
    }
    if (expected != 0 && msg->id != expected) {
      Die("out of order: got " + std::to_string(msg->id) + " expected " + std::to_string(expected));
    }
    expected = msg->id + 1;
    std::uint64_t payload = 0;
    if (msg->size < 8) Die("short message");
    std::memcpy(&payload, buf.data(), 8);
    if (payload != msg->id) {
      Die("message " + std::to_string(msg->id) + " carries " + std::to_string(payload));
    }
    if (msg->id == poison) std::abort();
    if (msg->id <= last) {
      ++duplicates;
    } else {
      if (msg->id != last + 1 && last != 0) {
        // A gap is only allowed for dead-lettered messages; record it.
        std::printf("gap: %llu after %llu\n", static_cast<unsigned long long>(msg->id),
                    static_cast<unsigned long long>(last));
      }
      if (::write(fd, &msg->id, 8) != 8) Die("write the output file");
      last = msg->id;
    }
    if (slow > 0) std::this_thread::sleep_for(std::chrono::microseconds(slow));
    if (auto st = rx->Ack(msg->id); !st) Die(st.error().text);
    if (duplicates > 0 && msg->id % 10000 == 0) {
      std::printf("duplicates so far %llu\n", static_cast<unsigned long long>(duplicates));
      std::fflush(stdout);
    }
  }
}

// The descriptors the runtime handed this process for `channel`.
std::vector<int> EndFds(const std::string& channel) {
  const char* env = std::getenv("SLATE_CHANNELS");
  std::string text = env != nullptr ? env : "";
  std::size_t at = text.find(channel + ":");
  if (at == std::string::npos) Die("no " + channel + " in SLATE_CHANNELS");
  std::vector<int> fds;
  std::string rest = text.substr(at + channel.size() + 4);
  for (int i = 0; i < 3; ++i) {
    fds.push_back(std::atoi(rest.c_str()));
    rest = rest.substr(
        rest.find_first_of(":,") == std::string::npos ? rest.size() : rest.find_first_of(":,") + 1);
  }
  return fds;
}

int Scribble(int argc, char** argv) {
  Init();
  const auto after = static_cast<std::uint64_t>(Num(argc, argv, "--after", 10));
  const std::string what = Arg(argc, argv, "--what", "write");
  const std::string channel = Arg(argc, argv, "--channel", "stream");
  const std::string once = Arg(argc, argv, "--once");
  if (!once.empty() && ::access(once.c_str(), F_OK) == 0) {
    // A successor: behave.
    auto tx = slate::Tx::Open(channel);
    if (!tx) Die(tx.error().text);
    slate::Ready();
    std::vector<std::byte> msg(8);
    for (;;) {
      std::uint64_t id = tx->NextId();
      std::memcpy(msg.data(), &id, 8);
      (void)tx->Send(msg, milliseconds(100));
      slate::Heartbeat();
      std::this_thread::sleep_for(milliseconds(5));
    }
  }
  if (!once.empty()) ::close(::open(once.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
  // Map our own region before libslate takes the descriptors.
  int own = EndFds(channel)[0];
  struct stat sb {};
  if (::fstat(own, &sb) != 0) Die("stat own region");
  void* map = ::mmap(nullptr, static_cast<std::size_t>(sb.st_size), PROT_READ | PROT_WRITE,
                     MAP_SHARED, own, 0);
  if (map == MAP_FAILED) Die("mmap own region");
  auto* base = static_cast<unsigned char*>(map);
  std::uint64_t capacity = 0;
  std::uint64_t slot_size = 0;
  std::memcpy(&capacity, base + 24, 8);  // the region header (docs/channel-format.md)
  std::memcpy(&slot_size, base + 40, 8);
  auto tx = slate::Tx::Open(channel);
  if (!tx) Die(tx.error().text);
  slate::Ready();
  std::vector<std::byte> msg(8);
  for (std::uint64_t id = tx->NextId(); id <= after; id = tx->NextId()) {
    std::memcpy(msg.data(), &id, 8);
    if (!tx->Send(msg, milliseconds(200))) continue;
  }
  if (what == "write") {
    const std::uint64_t garbage = 0x7fff'ffff'ffffULL;
    std::memcpy(base + 64, &garbage, 8);  // the write index
  } else {
    // Publish a message whose slot claims an impossible length.
    const std::uint64_t id = after + 1;
    const std::uint32_t length = 0xffffffffU;
    unsigned char* slot = base + 4096 + (id % capacity) * slot_size;
    std::memcpy(slot, &id, 8);
    std::memcpy(slot + 8, &length, 4);
    const std::uint64_t write = id + 1;
    __atomic_store_n(reinterpret_cast<std::uint64_t*>(base + 64), write, __ATOMIC_SEQ_CST);
  }
  std::printf("scribbled over %s\n", what.c_str());
  std::fflush(stdout);
  for (;;) {
    std::uint64_t id = tx->NextId();
    std::memcpy(msg.data(), &id, 8);
    (void)tx->Send(msg, milliseconds(100));
    slate::Heartbeat();
    std::this_thread::sleep_for(milliseconds(20));
  }
}

int Serve(int argc, char** argv) {
  Init();
  // Each crash happens once in the system's life (a marker file beside the
  // state records it), so that successors serve on.
  const std::string markers = Arg(argc, argv, "--markers", ".");
  auto first_time = [&](const std::string& what) {
    std::string path = markers + "/crashed-" + what;
    if (::access(path.c_str(), F_OK) == 0) return false;
    ::close(::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
    return true;
  };
  const auto crash_before = Num(argc, argv, "--crash-before-reply", 0);
  const auto crash_after = Num(argc, argv, "--crash-after-reply", 0);
  const bool mute = Arg(argc, argv, "--mute") == "yes";
  auto server = slate::Server::Open("req", "rep");
  if (!server) Die(server.error().text);
  slate::Ready();
  std::vector<std::byte> buf(4096);
  long long served = 0;
  for (;;) {
    auto req = server->Next(buf, milliseconds(100));
    slate::Heartbeat();
    if (!req) {
      if (req.code() == SLATE_ETIMEDOUT || req.code() == SLATE_EPEERDOWN) continue;
      Die(req.error().text);
    }
    ++served;
    if (mute) continue;  // never answers, never acks
    if (crash_before > 0 && served == crash_before && first_time("before")) std::abort();
    std::string answer = "re:" + std::string(reinterpret_cast<const char*>(buf.data()), req->size);
    auto st = server->Reply(req->id, std::as_bytes(std::span(answer.data(), answer.size())));
    if (!st) Die(st.error().text);
    std::printf("served %llu\n", static_cast<unsigned long long>(req->id));
    std::fflush(stdout);
    if (crash_after > 0 && served == crash_after && first_time("after")) std::abort();
  }
}

int Call(int argc, char** argv) {
  Init();
  const auto count = Num(argc, argv, "--count", 100);
  const auto timeout = milliseconds(Num(argc, argv, "--timeout-ms", 10000));
  auto client = slate::Client::Open("req", "rep");
  if (!client) Die(client.error().text);
  slate::Ready();
  std::vector<std::byte> reply(4096);
  long long ok = 0;
  for (long long i = 1; i <= count; ++i) {
    std::string q = std::string("q").append(std::to_string(i));
    auto n = client->Call(std::as_bytes(std::span(q.data(), q.size())), reply, timeout);
    if (!n) Die("call " + std::to_string(i) + ": " + n.error().text);
    std::string got(reinterpret_cast<const char*>(reply.data()), *n);
    if (got != "re:" + q) Die("call " + std::to_string(i) + " answered '" + got + "'");
    ++ok;
  }
  std::printf("calls answered: %lld of %lld\n", ok, count);
  std::fflush(stdout);
  Idle();
}

int CallOnce(int argc, char** argv) {
  Init();
  const auto timeout = milliseconds(Num(argc, argv, "--timeout-ms", 10000));
  auto client = slate::Client::Open("req", "rep");
  if (!client) Die(client.error().text);
  slate::Ready();
  std::vector<std::byte> reply(4096);
  const auto start = std::chrono::steady_clock::now();
  std::string q = "hello";
  auto n = client->Call(std::as_bytes(std::span(q.data(), q.size())), reply, timeout);
  const auto ms =
      std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - start);
  std::printf("call-once: %s after %lld ms\n", n ? "SLATE_OK" : slate_strerror(n.code()),
              static_cast<long long>(ms.count()));
  std::fflush(stdout);
  Idle();
}

// A counter in the state store: each turn one transaction reads n, writes
// n + 1 and a record log/<n+1> = pid; after the commit, n + 1 is appended to
// FILE. So FILE never holds a value the store did not commit, and the store
// holds one log record per increment.
int Count(int argc, char** argv) {
  Init();
  const std::string out = Arg(argc, argv, "--out");
  const auto pace = Num(argc, argv, "--pace-us", 0);
  int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) Die("open " + out);
  slate::Ready();
  for (;;) {
    auto txn = slate::Txn::Begin();
    if (!txn) Die(txn.error().text);
    std::uint64_t n = 0;
    if (auto v = txn->Get("n"); v) {
      if (v->size() != 8) Die("n has " + std::to_string(v->size()) + " bytes");
      std::memcpy(&n, v->data(), 8);
    } else if (v.code() != SLATE_ENOTFOUND) {
      Die(v.error().text);
    }
    ++n;
    char key[32];
    std::snprintf(key, sizeof key, "log/%012llu", static_cast<unsigned long long>(n));
    std::string pid = std::to_string(::getpid());
    if (auto st = txn->Put("n", std::string_view(reinterpret_cast<const char*>(&n), 8)); !st) {
      Die(st.error().text);
    }
    if (auto st = txn->Put(key, pid); !st) Die(st.error().text);
    if (auto st = txn->Commit(); !st) Die(st.error().text);
    if (::write(fd, &n, 8) != 8) Die("write " + out);
    slate::Heartbeat();
    if (pace > 0) std::this_thread::sleep_for(std::chrono::microseconds(pace));
  }
}

// A stateful component that can poison its own state: it counts in its
// store ("n", one increment per turn); when the file TRIGGER appears it
// writes "poison" and crashes. A process that finds "poison" at start
// crashes too, so only a remedy of the state (rollback, sanitize, reset)
// lets it run again.
// A reader that never finishes: puts "n" if it is missing, says it is
// ready, then holds a read transaction (a reader slot of LMDB's, under its
// pid) for ever, inside a ForEach whose visitor never returns. Killed, it
// leaves the slot behind for the next opener of the store to clear.
int HoldRead() {
  Init();
  if (auto v = slate::State::Get("n"); !v) {
    if (auto st = slate::State::Put("n", "1"); !st) Die(st.error().text);
  }
  slate::Ready();
  auto held = slate::State::ForEach("", [](std::string_view, std::string_view) {
    Idle();
    return false;
  });
  Die(held ? "hold-read: the visitor returned" : held.error().text);
}

int Stateful(int argc, char** argv) {
  Init();
  const std::string trigger = Arg(argc, argv, "--trigger", "poison-now");
  if (auto p = slate::State::Get("poison"); p) {
    std::fprintf(stderr, "peer: my state is poisoned\n");
    std::abort();
  }
  slate::Ready();
  for (;;) {
    std::uint64_t n = 0;
    if (auto v = slate::State::Get("n"); v && v->size() == 8) std::memcpy(&n, v->data(), 8);
    ++n;
    if (auto st = slate::State::Put("n", std::string_view(reinterpret_cast<const char*>(&n), 8));
        !st) {
      Die(st.error().text);
    }
    if (::access(trigger.c_str(), F_OK) == 0) {
      ::unlink(trigger.c_str());
      if (auto st = slate::State::Put("poison", "yes"); !st) Die(st.error().text);
      std::fprintf(stderr, "peer: poisoned my state at n=%llu\n",
                   static_cast<unsigned long long>(n));
      std::abort();
    }
    slate::Heartbeat();
    std::this_thread::sleep_for(milliseconds(10));
  }
}

// The sanitize command of a stateful component: removes the poison.
int Sanitize(int argc, char** argv) {
  (void)argc;
  (void)argv;
  Init();
  auto st = slate::State::Del("poison");
  if (!st && st.code() != SLATE_ENOTFOUND) Die(st.error().text);
  std::printf("sanitized\n");
  return 0;
}

// A driver of a simulated device: the device is a file whose content is its
// state; "wedged" (which persists across restarts of the driver) makes the
// driver fail until the device is reset. The file TRIGGER wedges it.
int Drive(int argc, char** argv) {
  Init();
  const std::string device = Arg(argc, argv, "--device", "sim.dev");
  const std::string trigger = Arg(argc, argv, "--trigger", "wedge-now");
  auto wedged = [&] {
    std::ifstream in(device);
    std::string state;
    std::getline(in, state);
    return state == "wedged";
  };
  slate::Ready();
  for (;;) {
    if (::access(trigger.c_str(), F_OK) == 0) {
      ::unlink(trigger.c_str());
      std::ofstream(device) << "wedged\n";
    }
    if (wedged()) {
      std::fprintf(stderr, "peer: device %s is wedged\n", device.c_str());
      return 3;
    }
    slate::Heartbeat();
    std::this_thread::sleep_for(milliseconds(10));
  }
}

// The reset hook of the simulated device.
int DeviceReset(int argc, char** argv) {
  const std::string device = argc > 2 ? argv[2] : "sim.dev";
  std::ofstream(device) << "ok\n";
  std::printf("device %s reset\n", device.c_str());
  return 0;
}

int Grants(int argc, char** argv) {
  Init();
  // Every descriptor and what it is, one per line.
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] == '.' || std::atoi(e->d_name) == ::dirfd(d)) continue;
      char target[512] = {};
      std::string link = std::string("/proc/self/fd/") + e->d_name;
      ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
      std::printf("fd %s -> %s\n", e->d_name, n > 0 ? target : "?");
    }
    ::closedir(d);
  }
  for (int i = 2; i < argc; ++i) {
    std::string name = argv[i];
    auto tx = slate::Tx::Open(name);
    std::printf("tx %s: %s\n", name.c_str(), tx ? "open" : slate_strerror(tx.error().code));
    auto rx = slate::Rx::Open(name);
    std::printf("rx %s: %s\n", name.c_str(), rx ? "open" : slate_strerror(rx.error().code));
    if (!tx) std::printf("why: %s\n", tx.error().text.c_str());
  }
  std::fflush(stdout);
  Idle();
}

// 0, or the errno of the attempt.
// Through /proc/PID/root of every other process: how a process that shares
// our privileges sees the file system, its own mount view included.
int TryReachThroughProc(const std::string& path) {
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return errno;
  int error = ENOENT;
  const std::string self = std::to_string(::getpid());
  while (dirent* e = ::readdir(proc)) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9' || self == e->d_name) continue;
    const std::string via = std::string("/proc/") + e->d_name + "/root" + path;
    int fd = ::open(via.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      ::close(fd);
      error = 0;
      break;
    }
    if (errno != ENOENT) error = errno;  // the most telling one
  }
  ::closedir(proc);
  return error;
}

// 0, or the errno of writing "0" (ourselves) to the cgroup.procs `path`.
int TryMove(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  const int error = ::write(fd, "0", 1) == 1 ? 0 : errno;
  ::close(fd);
  return error;
}

int TryReach(char kind, const std::string& path) {
  if (kind == 'x') return TryReachThroughProc(path);
  if (kind == 'u') return ::umount2(path.c_str(), MNT_DETACH) == 0 ? 0 : errno;
  if (kind == 'r' || kind == 'w') {
    std::string target = kind == 'w' ? path + "/probe" : path;
    int fd = ::open(target.c_str(),
                    kind == 'w' ? O_WRONLY | O_CREAT | O_CLOEXEC : O_RDONLY | O_CLOEXEC, 0600);
    if (fd < 0) return errno;
    ::close(fd);
    return 0;
  }
  int fd = ::socket(AF_UNIX, (kind == 's' ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  int rc = kind == 's' ? ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr)
                       : static_cast<int>(::sendto(
                             fd, "X=1", 3, 0, reinterpret_cast<sockaddr*>(&addr), sizeof addr));
  int error = rc < 0 ? errno : 0;
  ::close(fd);
  return error;
}

int Reach(int argc, char** argv) {
  Init();
  const char* dir = std::getenv("SLATE_STATE_DIR");
  if (dir == nullptr) Die("no SLATE_STATE_DIR");
  std::printf("reach as uid %u gid %u\n", ::getuid(), ::getgid());
  for (int i = 2; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.size() < 2 || arg[1] != ':') Die("reach: KIND:PATH, not " + arg);
    // b: an absolute path (a block device), opened to read; m: an absolute
    // cgroup.procs, to move itself there.
    int error = arg[0] == 'b'   ? TryReach('r', arg.substr(2))
                : arg[0] == 'm' ? TryMove(arg.substr(2))
                                : TryReach(arg[0], std::string(dir) + "/" + arg.substr(2));
    std::printf("reach %s: %s\n", arg.c_str(), error == 0 ? "ok" : std::strerror(error));
  }
  std::printf("reach done\n");
  std::fflush(stdout);
  Idle();
}

// Opens what it is granted (channel ends, its store), then exits with 3 at
// once: a component that fails as fast as it can, for the leak test.
int Crash(int argc, char** argv) {
  Init();
  for (int i = 2; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg.starts_with("tx:")) {
      if (auto tx = slate::Tx::Open(std::string(arg.substr(3))); !tx) Die(tx.error().text);
    } else if (arg.starts_with("rx:")) {
      if (auto rx = slate::Rx::Open(std::string(arg.substr(3))); !rx) Die(rx.error().text);
    } else if (arg == "state") {
      if (auto v = slate::State::Get("n"); !v && v.code() != SLATE_ENOTFOUND) {
        Die(v.error().text);
      }
    }
  }
  std::exit(3);
}

// 0, or the errno of connecting to 127.0.0.1:port.
int ConnectLoopback(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  int error = rc < 0 ? errno : 0;
  ::close(fd);
  return error;
}

// 0, or the errno of listening on 127.0.0.1 and connecting to that.
int ReachSelf() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  int error = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 1) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    error = errno;
  } else {
    error = ConnectLoopback(ntohs(addr.sin_port));
  }
  ::close(fd);
  return error;
}

int Isolation(int argc, char** argv) {
  Init();
  std::string interfaces;
  if (struct if_nameindex* names = ::if_nameindex()) {
    int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    for (struct if_nameindex* i = names; i->if_index != 0; ++i) {
      ifreq request{};
      (void)std::snprintf(request.ifr_name, sizeof request.ifr_name, "%s", i->if_name);
      bool up =
          fd >= 0 && ::ioctl(fd, SIOCGIFFLAGS, &request) == 0 && (request.ifr_flags & IFF_UP) != 0;
      interfaces +=
          std::string(interfaces.empty() ? "" : " ") + i->if_name + (up ? ":up" : ":down");
    }
    if (fd >= 0) ::close(fd);
    ::if_freenameindex(names);
  }
  auto text = [](int error) { return error == 0 ? "ok" : std::strerror(error); };
  std::printf("interfaces: %s\n", interfaces.c_str());
  std::printf("host: %s\n", text(ConnectLoopback(static_cast<int>(Num(argc, argv, "--port", 0)))));
  std::printf("self: %s\n", text(ReachSelf()));
  const auto key = static_cast<key_t>(Num(argc, argv, "--shm-key", 0));
  std::printf("shm: %s\n", text(::shmget(key, 0, 0) >= 0 ? 0 : errno));
  std::printf("isolation done\n");
  (void)std::fflush(stdout);
  Idle();
}

// A counter whose value carries its own check: "n" is 8 bytes of n and 8
// of ~n. A value that fails the check (corrupted by `slate chaos`) makes it
// exit with code 4, at start or within 10 ms while it runs; checked-sanitize
// deletes such a value (its sanitize command).
bool CheckedValue(const std::optional<std::string>& v, std::uint64_t* n) {
  if (!v) return true;  // none yet
  std::uint64_t check = 0;
  if (v->size() != 16) return false;
  std::memcpy(n, v->data(), 8);
  std::memcpy(&check, v->data() + 8, 8);
  return check == ~*n;
}

int Checked() {
  Init();
  slate::Ready();
  for (;;) {
    std::uint64_t n = 0;
    auto v = slate::State::Get("n");
    std::optional<std::string> value;
    if (v) {
      value = *v;
    } else if (v.code() != SLATE_ENOTFOUND) {
      Die(v.error().text);
    }
    if (!CheckedValue(value, &n)) {
      std::fprintf(stderr, "peer: the value of n fails its check\n");
      return 4;
    }
    ++n;
    char buf[16];
    const std::uint64_t check = ~n;
    std::memcpy(buf, &n, 8);
    std::memcpy(buf + 8, &check, 8);
    if (auto st = slate::State::Put("n", std::string_view(buf, 16)); !st) Die(st.error().text);
    slate::Heartbeat();
    std::this_thread::sleep_for(milliseconds(10));
  }
}

int CheckedSanitize() {
  Init();
  std::uint64_t n = 0;
  auto v = slate::State::Get("n");
  std::optional<std::string> value;
  if (v) {
    value = *v;
  } else if (v.code() != SLATE_ENOTFOUND) {
    Die(v.error().text);
  }
  if (!CheckedValue(value, &n)) {
    if (auto st = slate::State::Del("n"); !st) Die(st.error().text);
    std::printf("sanitize: dropped a value of n that failed its check\n");
  }
  return 0;
}

bool Elapsed(std::chrono::steady_clock::time_point t0, long long ms) {
  return std::chrono::steady_clock::now() - t0 >= milliseconds(ms);
}

int ForkBomb(int argc, char** argv) {
  const long long hold = Num(argc, argv, "--hold-ms", 1000);
  const int code = static_cast<int>(Num(argc, argv, "--code", 7));
  const auto t0 = std::chrono::steady_clock::now();
  bool first = true;
  long long forked = 0;
  bool told = false;
  for (;;) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      first = false;  // a fork bombs on, and never exits
      continue;
    }
    if (pid > 0) {
      ++forked;
    } else {
      if (first && !told) {
        std::printf("fork-bomb: refused after %lld forks: %s\n", forked, std::strerror(errno));
        (void)std::fflush(stdout);
        told = true;
      }
      std::this_thread::sleep_for(milliseconds(2));
    }
    if (first && Elapsed(t0, hold)) {
      std::printf("fork-bomb: exits with %d\n", code);
      (void)std::fflush(stdout);
      std::_Exit(code);
    }
  }
}

std::vector<void*> hoard;  // what the hog holds, so that nothing is optimized away

int Hog(int argc, char** argv) {
  const auto chunk = static_cast<std::size_t>(Num(argc, argv, "--chunk-kib", 1024)) * 1024;
  const auto pace = Num(argc, argv, "--pace-us", 1000);
  std::printf("hog: starts\n");
  (void)std::fflush(stdout);
  for (;;) {
    void* p = std::malloc(chunk);
    if (p == nullptr) {
      std::printf("hog: malloc failed after %zu MiB\n", hoard.size() * chunk >> 20);
      (void)std::fflush(stdout);
      std::abort();
    }
    std::memset(p, 0xa5, chunk);
    hoard.push_back(p);
    if (pace > 0) std::this_thread::sleep_for(std::chrono::microseconds(pace));
  }
}

sockaddr_un UnixAddress(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  return addr;
}

// One datagram to `to`, with descriptor `fd` attached if >= 0; 0 or errno.
int SendDatagram(int sock, const std::string& to, std::string_view what, int fd = -1) {
  sockaddr_un addr = UnixAddress(to);
  iovec iov{const_cast<char*>(what.data()), what.size()};
  msghdr msg{};
  msg.msg_name = &addr;
  msg.msg_namelen = sizeof addr;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  if (fd >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
  }
  return ::sendmsg(sock, &msg, MSG_NOSIGNAL) >= 0 ? 0 : errno;
}

// NAME's notify socket as other processes' mount views show it, through
// /proc/PID/root: the paths that exist now.
std::vector<std::string> VictimSockets(const std::string& name) {
  std::vector<std::string> out;
  const char* dir = std::getenv("SLATE_STATE_DIR");
  if (dir == nullptr || name.empty()) return out;
  const std::string path = std::string(dir) + "/run/" + name + ".notify";
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return out;
  const std::string self = std::to_string(::getpid());
  while (dirent* e = ::readdir(proc)) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9' || self == e->d_name) continue;
    std::string via = std::string("/proc/") + e->d_name + "/root" + path;
    struct stat st {};
    if (::stat(via.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) out.push_back(std::move(via));
  }
  ::closedir(proc);
  return out;
}

int NotifyFlood(int argc, char** argv) {
  const char* own = std::getenv("NOTIFY_SOCKET");
  if (own == nullptr) Die("no NOTIFY_SOCKET");
  const std::string victim = Arg(argc, argv, "--victim");
  int sock = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (sock < 0) Die("socket");
  int big = 4 << 20;
  (void)::setsockopt(sock, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
  int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  while (SendDatagram(sock, own, "READY=1") == EAGAIN) {
    std::this_thread::sleep_for(milliseconds(1));
  }
  std::string garbage(4000, '\0');
  for (std::size_t i = 0; i < garbage.size(); ++i) {
    garbage[i] = static_cast<char>((i * 7919 + 13) & 0xff);
  }
  const std::vector<std::string> messages{
      "READY=1",
      "WATCHDOG=1",
      "READY=1\nWATCHDOG=1\nSTATUS=" + std::string(3000, 'S'),
      "STATUS=" + garbage,
      garbage,
      std::string(),
      std::string("\0\0\0READY=1", 10),
      "MAINPID=1\nWATCHDOG_USEC=1\nEXTEND_TIMEOUT_USEC=1\nERRNO=12\nSTOPPING=1\nRELOADING=1",
      "WATCHDOG=trigger\nFDSTORE=1\nFDNAME=x\nBARRIER=1",
      "STATUS=" + std::string(60000, 'X'),   // large
      "STATUS=" + std::string(300000, 'Y'),  // beyond any buffer: EMSGSIZE
      std::string(1 << 16, '='),
  };
  std::vector<std::string> targets;
  auto rescan = std::chrono::steady_clock::now() - std::chrono::seconds(1);
  auto report = std::chrono::steady_clock::now();
  long long sent = 0, full = 0, refused = 0, forged = 0, fds = 0;
  for (std::size_t i = 0;; ++i) {
    if (Elapsed(rescan, 50)) {
      targets = VictimSockets(victim);
      rescan = std::chrono::steady_clock::now();
    }
    const int err = i % 64 == 0 ? SendDatagram(sock, own, "FDSTORE=1", devnull)
                                : SendDatagram(sock, own, messages[i % messages.size()]);
    if (err == 0) {
      ++sent;
      fds += i % 64 == 0;
    } else if (err == EAGAIN) {
      ++full;
    } else {
      ++refused;
    }
    if (i % 16 == 0) {
      for (const auto& t : targets) {
        for (const char* m : {"READY=1", "WATCHDOG=1", "STATUS=forged by the flood"}) {
          if (SendDatagram(sock, t, m) == 0) ++forged;
        }
      }
    }
    if (Elapsed(report, 1000)) {
      std::printf(
          "flood: sent %lld (with a descriptor %lld), full %lld, refused %lld, forged %lld to %zu "
          "sockets of %s\n",
          sent, fds, full, refused, forged, targets.size(), victim.c_str());
      (void)std::fflush(stdout);
      report = std::chrono::steady_clock::now();
    }
  }
}

int Mute(int argc, char** argv) {
  Init();
  const std::string marker = Arg(argc, argv, "--marker");
  const long long hold = Num(argc, argv, "--hold-ms", 500);
  const bool again = ::access(marker.c_str(), F_OK) == 0;
  if (!again) {
    if (int fd = ::open(marker.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644); fd >= 0) ::close(fd);
    slate::Ready();
    const auto t0 = std::chrono::steady_clock::now();
    while (!Elapsed(t0, hold)) {
      slate::Heartbeat();
      std::this_thread::sleep_for(milliseconds(20));
    }
    std::printf("mute: no more heartbeats\n");
    (void)std::fflush(stdout);
    for (;;) std::this_thread::sleep_for(milliseconds(1000));
  }
  std::printf("mute: never ready\n");
  (void)std::fflush(stdout);
  for (;;) {
    slate::Heartbeat();
    std::this_thread::sleep_for(milliseconds(20));
  }
}

[[noreturn]] void Linger() {
  for (;;) ::pause();
}

int Stubborn(int argc, char** argv) {
  // The marker is for whoever reads our command line.
  if (Arg(argc, argv, "--main-ignores") == "yes") ::signal(SIGTERM, SIG_IGN);
  const pid_t child = ::fork();
  if (child < 0) Die("fork");
  if (child == 0) {
    ::setsid();
    ::signal(SIGTERM, SIG_IGN);
    const pid_t grandchild = ::fork();
    if (grandchild == 0) {
      ::setsid();
      Linger();
    }
    std::printf("stubborn: child %d, grandchild %d\n", ::getpid(), grandchild);
    (void)std::fflush(stdout);
    Linger();
  }
  Linger();
}

}  // namespace

int main(int argc, char** argv) {
  std::string_view mode = argc > 1 ? argv[1] : "";
  if (mode == "produce") return Produce(argc, argv);
  if (mode == "consume") return Consume(argc, argv);
  if (mode == "scribble") return Scribble(argc, argv);
  if (mode == "serve") return Serve(argc, argv);
  if (mode == "call") return Call(argc, argv);
  if (mode == "call-once") return CallOnce(argc, argv);
  if (mode == "grants") return Grants(argc, argv);
  if (mode == "count") return Count(argc, argv);
  if (mode == "stateful") return Stateful(argc, argv);
  if (mode == "hold-read") return HoldRead();
  if (mode == "sanitize") return Sanitize(argc, argv);
  if (mode == "drive") return Drive(argc, argv);
  if (mode == "device-reset") return DeviceReset(argc, argv);
  if (mode == "reach") return Reach(argc, argv);
  if (mode == "crash") return Crash(argc, argv);
  if (mode == "isolation") return Isolation(argc, argv);
  if (mode == "checked") return Checked();
  if (mode == "checked-sanitize") return CheckedSanitize();
  if (mode == "fork-bomb") return ForkBomb(argc, argv);
  if (mode == "hog") return Hog(argc, argv);
  if (mode == "notify-flood") return NotifyFlood(argc, argv);
  if (mode == "mute") return Mute(argc, argv);
  if (mode == "stubborn") return Stubborn(argc, argv);
  std::fprintf(stderr, "usage: slate_peer produce|consume|scribble|serve|call|call-once|grants\n");
  return 2;
}
