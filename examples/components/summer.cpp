// summer: a component in C++. It receives numbers on channel "numbers",
// keeps a running sum, prints it every --every messages, and acks each
// message once it is counted.
//
// A message received and not acked when this process dies comes again to
// its successor, in order; here a restart starts the sum afresh (the state
// store of issue 5 is where a sum that survives would live).
#include <array>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <slate/slate.hpp>
#include <string_view>
#include <thread>

int main(int argc, char** argv) {
  unsigned long every = 10;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--every") == 0) every = std::strtoul(argv[i + 1], nullptr, 10);
  }
  if (auto st = slate::Init(); !st) {
    std::fprintf(stderr, "summer: %s\n", st.error().text.c_str());
    return 2;
  }
  auto in = slate::Rx::Open("numbers");
  if (!in) {
    std::fprintf(stderr, "summer: %s\n", in.error().text.c_str());
    return 2;
  }
  slate::Ready();
  std::array<std::byte, 64> buf{};
  unsigned long long sum = 0;
  unsigned long count = 0;
  for (;;) {
    auto msg = in->Receive(buf, std::chrono::milliseconds(500));
    slate::Heartbeat();
    if (!msg) {
      if (msg.code() == SLATE_ETIMEDOUT) continue;
      if (msg.code() == SLATE_EPEERDOWN) {  // a stopped counter: it returns at once, so pause
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        continue;
      }
      std::fprintf(stderr, "summer: %s\n", msg.error().text.c_str());
      return 1;
    }
    std::string_view text(reinterpret_cast<const char*>(buf.data()), msg->size);
    unsigned long long n = 0;
    std::from_chars(text.data(), text.data() + text.size(), n);
    sum += n;
    if (++count % every == 0) {
      std::printf("message %llu: %llu, sum of the %lu received so far %llu\n",
                  static_cast<unsigned long long>(msg->id), n, count, sum);
      std::fflush(stdout);
    }
    if (auto st = in->Ack(msg->id); !st) {
      std::fprintf(stderr, "summer: %s\n", st.error().text.c_str());
      return 1;
    }
  }
}
