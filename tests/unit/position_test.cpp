// position.hpp: the encodings sort bytewise in each source's order, and
// moves_forward() is the one rule every store's fence applies.

#include <widget_consumer/position.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace widget_consumer {
namespace {

TEST(position, fifo_sequence_numbers_sort_as_numbers) {
  // SequenceNumbers have no fixed width: "9" < "10" only once padded.
  EXPECT_LT(fifo_position("9"), fifo_position("10"));
  EXPECT_LT(fifo_position("18850000000000000009"), fifo_position("18850000000000000010"));
  EXPECT_LT(fifo_position("999999999999999999999"), fifo_position("1000000000000000000000"));
  EXPECT_EQ(fifo_position("12"), "fifo:" + std::string(38, '0') + "12");
}

TEST(position, a_fifo_sequence_number_that_is_not_one_gives_no_position) {
  EXPECT_EQ(fifo_position(""), "");
  EXPECT_EQ(fifo_position("12a"), "");
  EXPECT_EQ(fifo_position(std::string(41, '1')), "");
}

TEST(position, standard_positions_sort_by_sent_time_then_message_id) {
  EXPECT_LT(standard_position("999", "zzz"), standard_position("1000", "aaa"));
  // The same message delivered twice is the same position: not newer.
  EXPECT_FALSE(moves_forward(standard_position("1700000000000", "m-1"),
                             standard_position("1700000000000", "m-1")));
  EXPECT_EQ(standard_position("", "m"), "");
  EXPECT_EQ(standard_position("17x", "m"), "");
  EXPECT_EQ(standard_position("1", ""), "");
}

TEST(position, standard_messages_of_one_millisecond_apply_in_arrival_order) {
  const auto a = standard_position("1700000000000", "b-later-id");
  const auto b = standard_position("1700000000000", "a-earlier-id");
  EXPECT_TRUE(moves_forward(a, b));
  EXPECT_TRUE(moves_forward(b, a));
  EXPECT_FALSE(moves_forward(a, a));
  EXPECT_FALSE(moves_forward(a, standard_position("1700000000001", "0")));
  EXPECT_EQ(position_tie_group(a), "std:0001700000000000:");
  EXPECT_EQ(position_tie_group("s3:std:0001700000000000:x"), "");
  EXPECT_EQ(position_tie_group(fifo_position("1")), "");
}

TEST(position, s3_keys_and_file_names_keep_their_own_order) {
  std::vector<std::string> keys{"requests/2", "requests/10", "requests/1"};
  std::vector<std::string> positions;
  for (const auto& key : keys)
    positions.push_back(s3_key_position(key));
  std::ranges::sort(keys);
  std::ranges::sort(positions);
  for (std::size_t i = 0; i < keys.size(); ++i)
    EXPECT_EQ(positions[i], s3_key_position(keys[i]));
  EXPECT_EQ(file_position("1.json"), "dir:1.json");
}

TEST(position, moves_forward_only_past_a_stored_position_of_its_kind) {
  EXPECT_TRUE(moves_forward("s3:b", "s3:a"));
  EXPECT_FALSE(moves_forward("s3:a", "s3:a"));
  EXPECT_FALSE(moves_forward("s3:a", "s3:b"));
  // Nothing to compare with, or nothing to compare.
  EXPECT_TRUE(moves_forward("s3:a", ""));
  EXPECT_TRUE(moves_forward("", "s3:b"));
  // Another kind of source: not comparable, so never frozen.
  EXPECT_TRUE(moves_forward(fifo_position("1"), "s3:z"));
  EXPECT_TRUE(moves_forward("s3:a", fifo_position("99")));
  EXPECT_EQ(position_kind("s3:requests/1"), "s3:");
  EXPECT_EQ(position_kind("no kind"), "");
}

}  // namespace
}  // namespace widget_consumer
