// `slate dlq CHANNEL` through the real runtime (SPEC section 7, "dead
// letters"): a consumer that aborts on message 20 (tests/libslate/peer.cc,
// consume --poison 20) sends it to the dead-letter queue after
// max_deliveries crashes, and the tests list, export, requeue and purge it
// the way an operator would, asserting on output and exit codes.
#include <cstring>

#include <fmt/ranges.h>
#include <gmock/gmock.h>

#include "../runtime/system_under_test.h"

namespace slate::testing {
namespace {

using ::testing::HasSubstr;

constexpr const char* kPoisonSystem = R"(
[supervisor.main]
intensity = 20
children = ["producer", "consumer"]
[component.producer]
exec = ["{peer}", "produce", "--count", "50"]
ready = "notify"
[component.consumer]
exec = ["{peer}", "consume", "--out", "consumer.out", "--poison", "20"]
ready = "notify"
[channel.stream]
from = "producer"
to = "consumer"
max_deliveries = 3
)";

// Starts the system and waits until message 20 is a dead letter and the
// stream has gone on past it.
void StartAndPoison(SystemUnderTest& sut) {
  sut.StartReady();
  ASSERT_TRUE(sut.WaitEvent("message_dead_lettered", "consumer")) << sut.RunLog();
  const std::string out = sut.dir() + "/consumer.out";
  ASSERT_TRUE(SystemUnderTest::WaitUntil(
      [&] {
        std::error_code ec;
        return fs::file_size(out, ec) >= 49 * 8;
      },
      milliseconds(10000)))
      << sut.RunLog();
}

std::vector<Json> JsonLines(const std::string& text) {
  std::vector<Json> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    Json j = Json::parse(line, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << "not JSON: " << line;
    out.push_back(j);
  }
  return out;
}

std::string DecodeBase64(const std::string& in) {
  static const std::string kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=') break;
    acc = (acc << 6) | static_cast<std::uint32_t>(kAlphabet.find(c));
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return out;
}

// The peer's payload: the message's id as 8 bytes, little-endian.
std::uint64_t PayloadId(const Json& letter) {
  std::string payload = DecodeBase64(letter.value("payload_base64", ""));
  EXPECT_EQ(payload.size(), 8u) << letter;
  std::uint64_t id = 0;
  std::memcpy(&id, payload.data(), std::min<std::size_t>(payload.size(), 8));
  return id;
}

Json StatusOfChannel(const SystemUnderTest& sut, const std::string& name) {
  Json st = sut.Status();
  for (const Json& c : st["channels"]) {
    if (c["name"] == name) return c;
  }
  return Json();
}

bool WaitStopped(const SystemUnderTest& sut, const std::string& name) {
  return SystemUnderTest::WaitUntil([&] { return sut.Node(name).value("state", "") == "stopped"; },
                                    milliseconds(10000));
}

TEST(DlqCli, ListsThePoisonedMessage) {
  SystemUnderTest sut(kPoisonSystem);
  StartAndPoison(sut);
  CommandOutput r = sut.Cli({"dlq", "stream"});
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_THAT(r.out, ::testing::ContainsRegex("ID +TIME +DELIVERIES +LENGTH +PAYLOAD"));
  // id, RFC 3339 time, deliveries, length, and the 8 bytes of id 20 escaped.
  // (POSIX extended regular expressions: the newlines are real ones.)
  EXPECT_THAT(r.out, ::testing::ContainsRegex(
                         "\n +20  [0-9T:.-]+Z +3 +8  " +
                         std::string(R"(\\x14\\x00\\x00\\x00\\x00\\x00\\x00\\x00)") + "\n"));
  EXPECT_THAT(r.out, HasSubstr("\n1 dead letter in stream\n"));
}

TEST(DlqCli, JsonAndExportGiveTheDeadLettersAsJsonLines) {
  SystemUnderTest sut(kPoisonSystem);
  StartAndPoison(sut);
  CommandOutput json = sut.Cli({"dlq", "stream", "--json"});
  ASSERT_EQ(json.code, 0) << json.out;
  std::vector<Json> letters = JsonLines(json.out);
  ASSERT_EQ(letters.size(), 1u) << json.out;
  EXPECT_EQ(letters[0]["id"], 20);
  EXPECT_EQ(letters[0]["deliveries"], 3);
  EXPECT_EQ(letters[0]["length"], 8);
  EXPECT_THAT(letters[0].value("time", ""),
              ::testing::MatchesRegex("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z"));
  EXPECT_EQ(PayloadId(letters[0]), 20u);

  CommandOutput exported = sut.Cli({"dlq", "stream", "export"});
  EXPECT_EQ(exported.code, 0) << exported.out;
  EXPECT_EQ(exported.out, json.out);

  const std::string file = sut.dir() + "/dead.jsonl";
  CommandOutput to_file = sut.Cli({"dlq", "stream", "export", "--output", file});
  EXPECT_EQ(to_file.code, 0) << to_file.out;
  EXPECT_THAT(to_file.out, HasSubstr("exported 1 dead letter of stream to " + file));
  std::ifstream in(file);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), json.out);

  CommandOutput unwritable =
      sut.Cli({"dlq", "stream", "export", "--output", sut.dir() + "/no/such/dir/x"});
  EXPECT_EQ(unwritable.code, 1) << unwritable.out;
  EXPECT_THAT(unwritable.out, HasSubstr("cannot write " + sut.dir() + "/no/such/dir/x"));
}

TEST(DlqCli, RequeueWaitsForTheProducerToStopThenPutsTheMessageBack) {
  SystemUnderTest sut(kPoisonSystem);
  StartAndPoison(sut);
  CommandOutput busy = sut.Cli({"dlq", "stream", "requeue", "20"});
  EXPECT_EQ(busy.code, 1) << busy.out;
  EXPECT_THAT(busy.out, HasSubstr("slate dlq stream: "));
  EXPECT_THAT(busy.out, HasSubstr("stop it first (`slate stop producer`)"));
  EXPECT_EQ(JsonLines(sut.Cli({"dlq", "stream", "--json"}).out).size(), 1u);

  // The consumer too, so that the requeued message waits in the queue.
  ASSERT_EQ(sut.Cli({"stop", "producer"}).code, 0);
  ASSERT_EQ(sut.Cli({"stop", "consumer"}).code, 0);
  ASSERT_TRUE(WaitStopped(sut, "producer"));
  ASSERT_TRUE(WaitStopped(sut, "consumer"));
  CommandOutput missing = sut.Cli({"dlq", "stream", "requeue", "999"});
  EXPECT_EQ(missing.code, 1) << missing.out;
  EXPECT_THAT(missing.out, HasSubstr("no dead letter 999"));

  CommandOutput requeued = sut.Cli({"dlq", "stream", "requeue", "20"});
  EXPECT_EQ(requeued.code, 0) << requeued.out;
  EXPECT_THAT(requeued.out, HasSubstr("requeued 1 dead letter(s) of stream"));
  EXPECT_THAT(requeued.out, HasSubstr("(new id 51)"));
  CommandOutput list = sut.Cli({"dlq", "stream"});
  EXPECT_EQ(list.code, 0);
  EXPECT_EQ(list.out, "no dead letters in stream\n");
  Json ch = StatusOfChannel(sut, "stream");
  EXPECT_EQ(ch["dead_letters"], 0);
  EXPECT_EQ(ch["depth"], 1);

  // Message 51 carries message 20's payload: the peer refuses it (its id is
  // not its payload) until it is a dead letter again.
  ASSERT_EQ(sut.Cli({"start", "consumer"}).code, 0);
  ASSERT_TRUE(sut.WaitEvent("message_dead_lettered", "consumer", milliseconds(15000), 2))
      << sut.RunLog();
  std::vector<Json> letters = JsonLines(sut.Cli({"dlq", "stream", "--json"}).out);
  ASSERT_EQ(letters.size(), 1u);
  EXPECT_EQ(letters[0]["id"], 51);
  EXPECT_EQ(letters[0]["deliveries"], 3);
  EXPECT_EQ(PayloadId(letters[0]), 20u);

  CommandOutput purged = sut.Cli({"dlq", "stream", "purge", "51"});
  EXPECT_EQ(purged.code, 0) << purged.out;
  EXPECT_THAT(purged.out, HasSubstr("purged 1 dead letter(s) of stream"));
  EXPECT_EQ(sut.Cli({"dlq", "stream"}).out, "no dead letters in stream\n");
}

TEST(DlqCli, PurgeAllEmptiesTheQueue) {
  SystemUnderTest sut(kPoisonSystem);
  StartAndPoison(sut);
  CommandOutput missing = sut.Cli({"dlq", "stream", "purge", "999"});
  EXPECT_EQ(missing.code, 1) << missing.out;
  EXPECT_THAT(missing.out, HasSubstr("slate dlq stream: not found: no dead letter 999"));

  CommandOutput purged = sut.Cli({"dlq", "stream", "purge", "--all"});
  EXPECT_EQ(purged.code, 0) << purged.out;
  EXPECT_THAT(purged.out, HasSubstr("purged 1 dead letter(s) of stream"));
  CommandOutput list = sut.Cli({"dlq", "stream"});
  EXPECT_EQ(list.code, 0);
  EXPECT_EQ(list.out, "no dead letters in stream\n");
  CommandOutput json = sut.Cli({"dlq", "stream", "--json"});
  EXPECT_EQ(json.code, 0);
  EXPECT_EQ(json.out, "");
  EXPECT_EQ(StatusOfChannel(sut, "stream")["dead_letters"], 0);
}

TEST(DlqCli, AnUnknownChannelIsARuntimeErrorNamingTheKnownOnes) {
  SystemUnderTest sut(kPoisonSystem);
  // Past the poison: no consumer is being restarted (and creating files in
  // the test's folder) when the test ends and its folder is removed.
  StartAndPoison(sut);
  CommandOutput r = sut.Cli({"dlq", "nope"});
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_THAT(r.out, HasSubstr("slate dlq nope: no channel 'nope' (channels: stream)"));
  r = sut.Cli({"dlq", "nope", "purge", "--all"});
  EXPECT_EQ(r.code, 1) << r.out;
}

TEST(DlqCli, NoRunningSystemIsARuntimeError) {
  std::string dir = fs::temp_directory_path() / fmt::format("slate-dlq-none-{}", ::getpid());
  CommandOutput r = Command({kSlate, "dlq", "stream", "--state-dir", dir});
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_THAT(r.out, HasSubstr("slate dlq stream: no system is running at " + dir));
}

TEST(DlqCli, BadUsageExitsTwoBeforeAskingTheRuntime) {
  // No system runs there: only usage checks can answer with 2.
  std::string dir = fs::temp_directory_path() / fmt::format("slate-dlq-none-{}", ::getpid());
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases{
      {{"dlq"}, "CHANNEL is required"},
      {{"dlq", "stream", "frob"}, "unknown action 'frob' (list, export, requeue, purge)"},
      {{"dlq", "stream", "20"}, "unknown action '20'"},
      {{"dlq", "stream", "requeue"}, "requeue needs the ID of a dead letter, or --all"},
      {{"dlq", "stream", "purge"}, "purge needs the ID of a dead letter, or --all"},
      {{"dlq", "stream", "purge", "20", "--all"}, "purge takes an ID or --all, not both"},
      {{"dlq", "stream", "requeue", "twenty"}, "ID must be a dead letter's id, a number"},
      {{"dlq", "stream", "requeue", "20x"}, "ID must be a dead letter's id, a number"},
      {{"dlq", "stream", "--all"}, "ID and --all go with requeue and purge"},
      {{"dlq", "stream", "export", "20"}, "ID and --all go with requeue and purge"},
      {{"dlq", "stream", "--output", "f"}, "--output goes with export"},
      {{"dlq", "stream", "purge", "--all", "--json"}, "--json and --output go with list"},
      {{"dlq", "stream", "list", "1", "2"}, "slate: "},
      {{"dlq", "stream", "--frob"}, "slate: "},
  };
  for (const auto& [args, want] : cases) {
    std::vector<std::string> argv{kSlate};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"--state-dir", dir});
    CommandOutput r = Command(argv);
    std::string line = fmt::format("{}", fmt::join(args, " "));
    EXPECT_EQ(r.code, 2) << line << "\n" << r.out;
    EXPECT_THAT(r.out, HasSubstr(want)) << line;
    EXPECT_THAT(r.out, HasSubstr("slate help dlq")) << line;
  }
}

}  // namespace
}  // namespace slate::testing
