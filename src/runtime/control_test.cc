#include "runtime/control.h"

#include <atomic>
#include <filesystem>
#include <thread>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <fmt/format.h>
#include <gtest/gtest.h>

namespace slate::runtime {
namespace {

namespace fs = std::filesystem;

TEST(ParseRequest, AcceptsObjectsWithAVerb) {
  EXPECT_TRUE(ParseRequest(R"({"verb":"status"})").ok());
  EXPECT_EQ(ParseRequest("not json").error().message, "request is not valid JSON");
  EXPECT_EQ(ParseRequest("[1]").error().message, "request must be a JSON object");
  EXPECT_EQ(ParseRequest(R"({"verb":3})").error().message, "request needs a string \"verb\"");
  EXPECT_EQ(ParseRequest(R"({"verb":"stop","name":[]})").error().message,
            "\"name\" must be a string");
}

class ControlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / fmt::format("slate-control-{}", ::getpid());
    fs::create_directories(dir_);
    path_ = (dir_ / "control.sock").string();
    auto loop = platform::EventLoop::Create();
    ASSERT_TRUE(loop.ok());
    loop_.emplace(std::move(loop).value());
    auto server = ControlServer::Listen(path_, *loop_, [](const nlohmann::json& r) {
      return nlohmann::json{{"ok", true}, {"echo", r["verb"]}};
    });
    ASSERT_TRUE(server.ok()) << server.error().message;
    server_ = std::move(server).value();
  }
  void TearDown() override {
    server_.reset();
    fs::remove_all(dir_);
  }

  // Runs the loop while `client` runs on another thread.
  template <typename F>
  auto WithLoop(F client) {
    std::optional<decltype(client())> result;
    std::thread t([&] { result.emplace(client()); });
    for (int i = 0; i < 200 && !done_; ++i) (void)loop_->RunOnce(std::chrono::milliseconds(5));
    t.join();
    return std::move(*result);
  }

  // One request, no retry of a busy reply (Call would retry it).
  Result<nlohmann::json> RawCall(const std::string& line) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, path_.c_str());
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      ::close(fd);
      return MakeError("connect");
    }
    (void)::send(fd, line.data(), line.size(), MSG_NOSIGNAL);
    std::string reply;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof(buf))) > 0) reply.append(buf, static_cast<std::size_t>(n));
    ::close(fd);
    auto j = nlohmann::json::parse(reply, nullptr, false);
    if (j.is_discarded()) return MakeError("bad reply: " + reply);
    return j;
  }

  fs::path dir_;
  std::string path_;
  std::optional<platform::EventLoop> loop_;
  std::unique_ptr<ControlServer> server_;
  std::atomic<bool> done_{false};
};

TEST_F(ControlTest, SocketIsPrivate) {
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(ControlTest, AnswersARequest) {
  auto reply = WithLoop([&] {
    auto r = Call(path_, {{"verb", "status"}});
    done_ = true;
    return r;
  });
  ASSERT_TRUE(reply.ok()) << reply.error().message;
  EXPECT_EQ((*reply)["echo"], "status");
}

TEST_F(ControlTest, MalformedAndOversizedRequestsGetAnErrorAndTheServerGoesOn) {
  auto raw = [&](const std::string& data) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, path_.c_str());
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    (void)::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    std::string reply;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof(buf))) > 0) reply.append(buf, static_cast<std::size_t>(n));
    ::close(fd);
    return reply;
  };
  std::string bad = WithLoop([&] {
    auto r = raw("garbage\n");
    done_ = true;
    return r;
  });
  EXPECT_NE(bad.find("request is not valid JSON"), std::string::npos) << bad;
  done_ = false;
  std::string big = WithLoop([&] {
    auto r = raw(std::string(ControlServer::kMaxRequest + 10, 'x'));
    done_ = true;
    return r;
  });
  EXPECT_NE(big.find("request longer than"), std::string::npos) << big;
  EXPECT_EQ(server_->refused(), 2u);
  done_ = false;
  auto reply = WithLoop([&] {
    auto r = Call(path_, {{"verb", "status"}});
    done_ = true;
    return r;
  });
  ASSERT_TRUE(reply.ok());
}

TEST_F(ControlTest, AFloodOfRequestsIsToldBusyAndTheServerGoesOn) {
  // A server that allows 20 requests per second in bursts of 10, and 600
  // requests as fast as one client can make them (raw: Call would retry a
  // busy one): the burst and about 20 per second are served, the rest are
  // told "busy", however slow this machine is.
  server_.reset();
  auto limited = ControlServer::Listen(path_, *loop_,
                                       [](const nlohmann::json& r) {
                                         return nlohmann::json{{"ok", true}, {"echo", r["verb"]}};
                                       },
                                       {20, 10});
  ASSERT_TRUE(limited.ok()) << limited.error().message;
  server_ = std::move(limited).value();
  int served = 0;
  int busy = 0;
  const auto began = std::chrono::steady_clock::now();
  std::thread client([&] {
    for (int i = 0; i < 600; ++i) {
      auto r = RawCall(R"({"verb":"status"})"
                       "\n");
      if (r.ok() && (*r)["ok"] == true) ++served;
      if (r.ok() && (*r)["ok"] == false &&
          (*r)["error"].get<std::string>().starts_with("busy: more than 20 requests")) {
        ++busy;
      }
    }
    done_ = true;
  });
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!done_ && std::chrono::steady_clock::now() < give_up) {
    (void)loop_->RunOnce(std::chrono::milliseconds(5));
  }
  client.join();
  EXPECT_EQ(served + busy, 600);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
  EXPECT_GE(served, 10);
  EXPECT_LE(served, 10 + static_cast<int>(20 * seconds) + 1) << seconds << " s";
  EXPECT_GT(busy, 0);
  EXPECT_EQ(server_->refused(), static_cast<std::uint64_t>(busy));
  // After a pause the bucket has room again.
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  done_ = false;
  auto reply = WithLoop([&] {
    auto r = Call(path_, {{"verb", "status"}});
    done_ = true;
    return r;
  });
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ((*reply)["ok"], true);
}

TEST_F(ControlTest, NoServerIsAClearError) {
  server_.reset();
  auto r = Call(path_, {{"verb", "status"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, fmt::format("no system is running at {}", path_));
}

}  // namespace
}  // namespace slate::runtime
