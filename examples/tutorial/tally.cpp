// tally: receives numbers on channel "numbers" and adds them up. The count,
// the sum and the id of the last message counted live in the state store, so
// a new process goes on where the last one stopped, and counts each number
// exactly once.
//
// For the tutorial (docs/tutorial.md), two files in its working directory
// (the system file's folder) make it misbehave:
//   hang   it deletes the file and stops heartbeating, as a stuck loop would
//   crash  it exits 1, and so does every new process while the file is there
#include <array>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <slate/slate.hpp>
#include <string>
#include <system_error>
#include <thread>

#include <unistd.h>

namespace {

// Numbers are stored as decimal text. A key not there yet reads as 0; any
// other failure ends the process: let it crash.
std::uint64_t Number(const slate::Result<std::string>& text) {
  if (!text) {
    if (text.code() == SLATE_ENOTFOUND) return 0;
    std::fprintf(stderr, "tally: %s\n", text.error().text.c_str());
    std::exit(1);
  }
  std::uint64_t value = 0;
  std::from_chars(text->data(), text->data() + text->size(), value);
  return value;
}

bool Exists(const char* path) {
  std::error_code ec;
  return std::filesystem::exists(path, ec);
}

}  // namespace

int main() {
  using namespace std::chrono_literals;
  if (auto st = slate::Init(); !st) {
    std::fprintf(stderr, "tally: %s\n", st.error().text.c_str());
    return 2;
  }
  auto in = slate::Rx::Open("numbers");
  if (!in) {
    std::fprintf(stderr, "tally: %s\n", in.error().text.c_str());
    return 2;
  }
  std::printf("tally: pid %d starts at count %llu, sum %llu\n", static_cast<int>(getpid()),
              static_cast<unsigned long long>(Number(slate::State::Get("count"))),
              static_cast<unsigned long long>(Number(slate::State::Get("sum"))));
  std::fflush(stdout);
  slate::Ready();

  std::array<std::byte, 32> buf{};  // the channel's max_message
  for (;;) {
    if (Exists("crash")) {
      std::fprintf(stderr, "tally: found ./crash, exiting 1\n");
      return 1;
    }
    if (Exists("hang")) {
      std::error_code ec;
      std::filesystem::remove("hang", ec);
      std::printf("tally: found ./hang, no more heartbeats\n");
      std::fflush(stdout);
      for (;;) std::this_thread::sleep_for(1h);
    }
    auto msg = in->Receive(buf, 500ms);  // well inside the 2 s heartbeat
    slate::Heartbeat();
    if (!msg) {
      if (msg.code() == SLATE_ETIMEDOUT) continue;
      if (msg.code() == SLATE_EPEERDOWN) {  // nothing queued, and feeder is stopped
        std::this_thread::sleep_for(200ms);
        continue;
      }
      std::fprintf(stderr, "tally: %s\n", msg.error().text.c_str());
      return 1;
    }
    auto text = reinterpret_cast<const char*>(buf.data());
    std::uint64_t n = 0;
    std::from_chars(text, text + msg->size, n);

    auto txn = slate::Txn::Begin();
    if (!txn) {
      std::fprintf(stderr, "tally: %s\n", txn.error().text.c_str());
      return 1;
    }
    if (msg->id <= Number(txn->Get("last"))) {  // counted, then a crash came before the ack
      std::printf("tally: message %llu again, counted already\n",
                  static_cast<unsigned long long>(msg->id));
    } else {
      std::uint64_t count = Number(txn->Get("count")) + 1;
      std::uint64_t sum = Number(txn->Get("sum")) + n;
      // The three together or not at all.
      if (!txn->Put("count", std::to_string(count)) || !txn->Put("sum", std::to_string(sum)) ||
          !txn->Put("last", std::to_string(msg->id)) || !txn->Commit()) {
        std::fprintf(stderr, "tally: %s\n", slate_last_error());
        return 1;
      }
      if (count % 10 == 0) {
        std::printf("tally: count %llu, sum %llu\n", static_cast<unsigned long long>(count),
                    static_cast<unsigned long long>(sum));
      }
    }
    std::fflush(stdout);
    if (auto st = in->Ack(msg->id); !st) {  // after the commit, never before
      std::fprintf(stderr, "tally: %s\n", st.error().text.c_str());
      return 1;
    }
  }
}
