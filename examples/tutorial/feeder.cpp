// feeder: sends the numbers 1, 2, 3, ... on channel "numbers", five a second.
// Number n travels as message n: the channel's next id survives restarts, so
// a feeder restarted after a crash goes on where its predecessor stopped.
#include <cstdio>
#include <slate/slate.hpp>
#include <string>
#include <thread>

int main() {
  using namespace std::chrono_literals;
  if (auto st = slate::Init(); !st) {
    std::fprintf(stderr, "feeder: %s\n", st.error().text.c_str());
    return 2;
  }
  auto out = slate::Tx::Open("numbers");
  if (!out) {
    std::fprintf(stderr, "feeder: %s\n", out.error().text.c_str());
    return 2;
  }
  slate::Ready();
  for (;;) {
    auto sent = out->Send(std::to_string(out->NextId()), 1s);
    slate::Heartbeat();
    if (!sent) {
      if (sent.code() == SLATE_EFULL) continue;  // waited 1 s for room: try again
      if (sent.code() == SLATE_EPEERDOWN) {      // full, and tally is stopped
        std::this_thread::sleep_for(200ms);
        continue;
      }
      std::fprintf(stderr, "feeder: %s\n", sent.error().text.c_str());
      return 1;  // let it crash: the supervisor starts a fresh one
    }
    std::this_thread::sleep_for(200ms);
  }
}
