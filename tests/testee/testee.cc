// A component that misbehaves on request, for the integration tests.
//
//   testee [--ready notify|fd:N] [--ready-delay-ms N] [--heartbeat-ms N]
//          [--stop-heartbeat-after-ms N] [--exit-after-ms N] [--code N]
//          [--crash-after-ms N] [--ignore-sigterm] [--sigterm-code N]
//          [--grandchild] [--grandchild-setsid] [--close-stdout]
//          [--print TEXT] [--flood] [--pidfile PATH] [--fail-start-if PATH]
//
// Without options it prints a line and sleeps until signalled.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace {

struct Options {
  std::string ready;
  long ready_delay_ms = 0;
  long heartbeat_ms = 0;
  long stop_heartbeat_after_ms = -1;
  long exit_after_ms = -1;
  int code = 0;
  long crash_after_ms = -1;
  bool ignore_sigterm = false;
  int sigterm_code = -1;
  bool grandchild = false;
  bool grandchild_setsid = false;
  bool close_stdout = false;
  std::string print;
  bool flood = false;
  std::string pidfile;
  std::string fail_start_if;  // exit 1 before readiness while this file exists
};

volatile sig_atomic_t g_sigterm_code = -1;

void OnSigterm(int) {
  _exit(g_sigterm_code);
}

void Notify(std::string_view msg) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr) {
    std::fprintf(stderr, "testee: NOTIFY_SOCKET is not set\n");
    return;
  }
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path, sizeof(addr.sun_path) - 1);
  ::sendto(fd, msg.data(), msg.size(), 0, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  ::close(fd);
}

long Arg(int& i, int argc, char** argv) {
  if (i + 1 >= argc) {
    std::fprintf(stderr, "testee: %s needs a value\n", argv[i]);
    std::exit(64);
  }
  return std::strtol(argv[++i], nullptr, 10);
}

Options Parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto text = [&](std::string& out) {
      if (i + 1 >= argc) Arg(i, argc, argv);  // reports the missing value
      out = argv[++i];
    };
    auto number = [&](long& out) { out = Arg(i, argc, argv); };
    auto code = [&](int& out) { out = static_cast<int>(Arg(i, argc, argv)); };
    if (a == "--ready") {
      text(o.ready);
    } else if (a == "--ready-delay-ms") {
      number(o.ready_delay_ms);
    } else if (a == "--heartbeat-ms") {
      number(o.heartbeat_ms);
    } else if (a == "--stop-heartbeat-after-ms") {
      number(o.stop_heartbeat_after_ms);
    } else if (a == "--exit-after-ms") {
      number(o.exit_after_ms);
    } else if (a == "--code") {
      code(o.code);
    } else if (a == "--crash-after-ms") {
      number(o.crash_after_ms);
    } else if (a == "--ignore-sigterm") {
      o.ignore_sigterm = true;
    } else if (a == "--sigterm-code") {
      code(o.sigterm_code);
    } else if (a == "--grandchild") {
      o.grandchild = true;
    } else if (a == "--grandchild-setsid") {
      o.grandchild = o.grandchild_setsid = true;
    } else if (a == "--close-stdout") {
      o.close_stdout = true;
    } else if (a == "--print") {
      text(o.print);
    } else if (a == "--flood") {
      o.flood = true;
    } else if (a == "--pidfile") {
      text(o.pidfile);
    } else if (a == "--fail-start-if") {
      text(o.fail_start_if);
    } else {
      std::fprintf(stderr, "testee: unknown option %s\n", argv[i]);
      std::exit(64);
    }
  }
  return o;
}

void WritePid(const std::string& path, pid_t pid) {
  if (path.empty()) return;
  FILE* f = std::fopen(path.c_str(), "a");
  if (f == nullptr) return;
  std::fprintf(f, "%d\n", pid);
  std::fclose(f);
}

}  // namespace

int main(int argc, char** argv) {
  Options o = Parse(argc, argv);
  using Clock = std::chrono::steady_clock;
  auto start = Clock::now();
  auto elapsed_ms = [&] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
  };

  if (o.ignore_sigterm) {
    ::signal(SIGTERM, SIG_IGN);
  } else if (o.sigterm_code >= 0) {
    g_sigterm_code = o.sigterm_code;
    ::signal(SIGTERM, OnSigterm);
  }
  WritePid(o.pidfile, ::getpid());
  std::printf("testee %d up%s%s\n", ::getpid(), o.print.empty() ? "" : ": ", o.print.c_str());
  std::fflush(stdout);

  if (o.grandchild) {
    pid_t p = ::fork();
    if (p == 0) {
      if (o.grandchild_setsid) ::setsid();
      ::signal(SIGTERM, SIG_IGN);
      WritePid(o.pidfile, ::getpid());
      for (;;) ::pause();
    }
  }
  if (o.close_stdout) {
    ::close(1);
    ::close(2);
  }
  if (!o.fail_start_if.empty() && ::access(o.fail_start_if.c_str(), F_OK) == 0) {
    std::fprintf(stderr, "testee: %s exists: failing to start\n", o.fail_start_if.c_str());
    return 1;
  }
  if (o.ready_delay_ms > 0)
    std::this_thread::sleep_for(std::chrono::milliseconds(o.ready_delay_ms));
  if (o.ready == "notify") {
    Notify("READY=1\nSTATUS=testee ready");
  } else if (o.ready.rfind("fd:", 0) == 0) {
    int fd = std::atoi(o.ready.c_str() + 3);
    if (::write(fd, "\n", 1) != 1) std::perror("testee: readiness fd");
    ::close(fd);
  }

  for (;;) {
    long t = elapsed_ms();
    if (o.exit_after_ms >= 0 && t >= o.exit_after_ms) return o.code;
    if (o.crash_after_ms >= 0 && t >= o.crash_after_ms) {
      ::signal(SIGSEGV, SIG_DFL);  // a sanitizer build would catch it and abort instead
      ::raise(SIGSEGV);
    }
    bool beating = o.stop_heartbeat_after_ms < 0 || t < o.stop_heartbeat_after_ms;
    if (o.heartbeat_ms > 0 && beating) Notify("WATCHDOG=1");
    if (o.flood) {
      for (int i = 0; i < 1000; ++i) std::printf("flood line %d of many, to fill the pipe\n", i);
      std::fflush(stdout);
      continue;
    }
    long step = o.heartbeat_ms > 0 ? o.heartbeat_ms : 1000;
    if (o.exit_after_ms >= 0) step = std::min(step, std::max(1L, o.exit_after_ms - t));
    if (o.crash_after_ms >= 0) step = std::min(step, std::max(1L, o.crash_after_ms - t));
    std::this_thread::sleep_for(std::chrono::milliseconds(step));
  }
}
