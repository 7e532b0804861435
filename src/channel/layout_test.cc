#include "channel/layout.h"

#include <array>
#include <string_view>

#include <gtest/gtest.h>

#include "channel/crc32c.h"

namespace slate::channel {
namespace {

TEST(LayoutTest, GeometryRanges) {
  EXPECT_TRUE(CheckGeometry({1, 0, 1}).ok());
  EXPECT_TRUE(CheckGeometry({kMaxCapacity, 64, 3}).ok());
  EXPECT_TRUE(CheckGeometry({1024, kMaxMessageLimit, 3}).ok());
  EXPECT_EQ(CheckGeometry({0, 64, 3}).error().code, Errc::kInvalidArgument);
  EXPECT_EQ(CheckGeometry({kMaxCapacity + 1, 64, 3}).error().code, Errc::kInvalidArgument);
  EXPECT_EQ(CheckGeometry({16, kMaxMessageLimit + 1, 3}).error().code, Errc::kInvalidArgument);
  EXPECT_EQ(CheckGeometry({16, 64, 0}).error().code, Errc::kInvalidArgument);
  // Each within range, together over the mapping bound.
  auto big = CheckGeometry({kMaxCapacity, kMaxMessageLimit, 3});
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.error().message.find("GiB"), std::string::npos) << big.error().message;
}

TEST(LayoutTest, SlotsAreCacheLineMultiples) {
  EXPECT_EQ(SlotSize(0), 64u);
  EXPECT_EQ(SlotSize(48), 64u);
  EXPECT_EQ(SlotSize(49), 128u);
  EXPECT_EQ(SlotSize(4096), 4160u);
  ChannelGeometry g{4, 100, 3};
  EXPECT_EQ(ProducerFileSize(g), 4096u + 4 * 128);
  EXPECT_EQ(RuntimeFileSize(g), 4096u + 4 * 16);
  EXPECT_EQ(SlotOffset(g, 1), 4096u + 128);
  EXPECT_EQ(SlotOffset(g, 4), 4096u);  // id 4 wraps to slot 0
}

TEST(LayoutTest, RuntimeHeaderDeclaresTheShape) {
  ChannelGeometry g{8, 256, 3};
  auto shape = ShapeFromRuntimeHeader(MakeHeader(kRuntimeMagic, 7, g));
  ASSERT_TRUE(shape.ok()) << shape.error().Describe();
  EXPECT_TRUE(shape->SameShape(g));

  RegionHeader h = MakeHeader(kRuntimeMagic, 7, g);
  h.slot_size += 64;
  EXPECT_EQ(ShapeFromRuntimeHeader(h).error().culprit, Culprit::kRuntime);
  h = MakeHeader(kProducerMagic, 7, g);
  EXPECT_EQ(ShapeFromRuntimeHeader(h).error().code, Errc::kCorrupt);
  h = MakeHeader(kRuntimeMagic, 7, g);
  h.capacity = 0;
  EXPECT_EQ(ShapeFromRuntimeHeader(h).error().culprit, Culprit::kRuntime);
}

TEST(LayoutTest, EndHeaderMustMatchTheRuntimes) {
  ChannelGeometry g{8, 256, 3};
  EXPECT_TRUE(
      CheckEndHeader(MakeHeader(kProducerMagic, 7, g), kProducerMagic, 7, g, Culprit::kProducer)
          .ok());
  auto other_channel =
      CheckEndHeader(MakeHeader(kProducerMagic, 8, g), kProducerMagic, 7, g, Culprit::kProducer);
  EXPECT_EQ(other_channel.error().culprit, Culprit::kProducer);
  auto other_shape = CheckEndHeader(MakeHeader(kConsumerMagic, 7, {8, 128, 3}), kConsumerMagic, 7,
                                    g, Culprit::kConsumer);
  EXPECT_EQ(other_shape.error().culprit, Culprit::kConsumer);
  RegionHeader h = MakeHeader(kConsumerMagic, 7, g);
  h.version = 99;
  EXPECT_EQ(CheckEndHeader(h, kConsumerMagic, 7, g, Culprit::kConsumer).error().code,
            Errc::kCorrupt);
}

Culprit Blame(IndexSnapshot s, std::uint64_t capacity = 4) {
  auto st = CheckIndices(s, capacity);
  return st.ok() ? Culprit::kNone : st.error().culprit;
}

TEST(LayoutTest, IndexRulesBlameTheWriter) {
  // {ack, delivered, write, ack_after, floor}
  EXPECT_EQ(Blame({1, 1, 1, 1, 1}), Culprit::kNone);
  EXPECT_EQ(Blame({3, 4, 7, 3, 1}), Culprit::kNone);      // full ring
  EXPECT_EQ(Blame({3, 3, 7, 5, 4}), Culprit::kNone);      // acks moved on while we read
  EXPECT_EQ(Blame({3, 3, 7, 3, 5}), Culprit::kNone);      // floor above a dead consumer's ack
  EXPECT_EQ(Blame({3, 3, 8, 3, 1}), Culprit::kProducer);  // overruns unconsumed messages
  EXPECT_EQ(Blame({3, 3, 4, 3, 5}), Culprit::kProducer);  // below the floor
  EXPECT_EQ(Blame({1, 1, 0, 1, 1}), Culprit::kProducer);
  EXPECT_EQ(Blame({5, 5, 4, 5, 1}), Culprit::kConsumer);  // acked what was never sent
  EXPECT_EQ(Blame({3, 2, 4, 3, 1}), Culprit::kConsumer);  // delivered below ack
  EXPECT_EQ(Blame({3, 6, 4, 3, 1}), Culprit::kConsumer);  // delivered beyond write
  EXPECT_EQ(Blame({4, 4, 5, 3, 1}), Culprit::kConsumer);  // ack went backwards
  EXPECT_EQ(Blame({0, 1, 1, 1, 1}), Culprit::kConsumer);
  EXPECT_EQ(Blame({1, 1, 1, 1, 0}), Culprit::kRuntime);
  // Huge values must not wrap around into "valid".
  EXPECT_EQ(Blame({1, 1, ~std::uint64_t{0}, 1, 1}), Culprit::kProducer);
  EXPECT_EQ(Blame({~std::uint64_t{0}, ~std::uint64_t{0}, 5, ~std::uint64_t{0}, 1}),
            Culprit::kConsumer);
}

TEST(LayoutTest, Crc32cKnownValue) {
  constexpr std::string_view kCheck = "123456789";
  auto bytes = std::as_bytes(std::span(kCheck.data(), kCheck.size()));
  EXPECT_EQ(internal::Crc32c(0, bytes), 0xe3069283u);
  // Incremental equals one-shot.
  EXPECT_EQ(internal::Crc32c(internal::Crc32c(0, bytes.first(4)), bytes.subspan(4)), 0xe3069283u);
}

TEST(LayoutTest, ErrorsDescribeTheCulprit) {
  EXPECT_EQ(Corrupt(Culprit::kConsumer, "ack 9").Describe(), "corrupt (consumer): ack 9");
  EXPECT_EQ(MakeChannelError(Errc::kFull, "").Describe(), "full");
  EXPECT_EQ(MakeChannelError(Errc::kTooBig, "x").ToError().message, "too big: x");
}

}  // namespace
}  // namespace slate::channel
