// The S3 store's fence (destination/s3_bucket.hpp, detail/s3_widget_fence.hpp)
// against moto (plain and "iam", which verifies every signature, metadata
// headers included), and its refusal of s3rver, which ignores conditional
// writes.

#include <widget_consumer/destination/s3_bucket.hpp>

#include "support/emulator.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <variant>
#include <vector>

namespace widget_consumer {
namespace {

using widget_consumer::testing::emulator;
using widget_consumer::testing::unique_name;

aws::client_config config_for(const emulator& server) {
  auto config = widget_consumer::testing::client_config_for(server);
  config.max_attempts = 1;
  return config;
}

widget_request parsed(const std::string& body) {
  auto result = parse_request(body);
  if (auto* invalid = std::get_if<validation_error>(&result))
    throw std::runtime_error("test request is invalid: " + invalid->message());
  return std::get<widget_request>(result);
}

widget_request create(const std::string& id, const std::string& label,
                      const std::string& owner = "Sue Smith") {
  return parsed(R"({"type":"create","requestId":"c","widgetId":")" + id + R"(","owner":")" + owner +
                R"(","label":")" + label + R"("})");
}

widget_request update(const std::string& id, const std::string& label,
                      const std::string& owner = "Sue Smith") {
  return parsed(R"({"type":"update","requestId":"u","widgetId":")" + id + R"(","owner":")" + owner +
                R"(","label":")" + label + R"(","description":")" + label + R"("})");
}

widget_request remove(const std::string& id, const std::string& owner = "Sue Smith") {
  return parsed(R"({"type":"delete","requestId":"d","widgetId":")" + id + R"(","owner":")" + owner +
                R"("})");
}

fencing_options unfenced_options() {
  fencing_options options;
  options.enabled = false;
  return options;
}

// Positions of the S3 source, in its order.
std::string at(int n) {
  char name[32];
  std::snprintf(name, sizeof name, "requests/%04d.json", n);
  return s3_key_position(name);
}

class s3_store_fencing_test : public ::testing::TestWithParam<bool> {
 protected:
  s3_store_fencing_test()
      : server_(GetParam() ? widget_consumer::testing::iam_emulator()
                           : widget_consumer::testing::plain_emulator()),
        s3_(config_for(server_)),
        bucket_(unique_name("fenced")),
        store_(s3_, bucket_) {
    s3_.create_bucket(bucket_);
  }

  std::optional<std::string> body(const std::string& id) {
    return s3_.get_object(bucket_, "widgets/sue-smith/" + id);
  }

  // The position the object holds in its metadata; nullopt when there is no
  // object.
  std::optional<std::string> position_of(const std::string& key) {
    const auto info = s3_.head_object(bucket_, key);
    if (!info)
      return std::nullopt;
    const auto found = info->metadata.find("wc-position");
    return found == info->metadata.end() ? std::string{} : found->second;
  }

  std::vector<std::string> keys_under(const std::string& prefix) {
    aws::s3_list_options options;
    options.prefix = prefix;
    return s3_.list_objects_v2(bucket_, options).keys;
  }

  emulator server_;
  aws::s3_client s3_;
  std::string bucket_;
  s3_bucket_store store_;
};

TEST_P(s3_store_fencing_test, replays_at_an_older_or_equal_position_are_stale) {
  ASSERT_EQ(store_.apply(create("w", "first"), at(2)).outcome, apply_outcome::applied);
  const auto created = body("w");
  EXPECT_EQ(position_of("widgets/sue-smith/w"), at(2));

  for (const int replay : {2, 1}) {
    const auto outcome = store_.apply(create("w", "replayed"), at(replay));
    EXPECT_EQ(outcome.outcome, apply_outcome::stale) << replay;
    EXPECT_EQ(outcome.stored_position, at(2));
    EXPECT_EQ(body("w"), created);
  }

  ASSERT_EQ(store_.apply(update("w", "second"), at(5)).outcome, apply_outcome::applied);
  const auto updated = body("w");
  ASSERT_NE(updated, created);
  for (const int replay : {5, 3}) {
    EXPECT_EQ(store_.apply(update("w", "replayed"), at(replay)).outcome, apply_outcome::stale);
    EXPECT_EQ(store_.apply(remove("w"), at(replay)).outcome, apply_outcome::stale);
    EXPECT_EQ(body("w"), updated) << replay;
  }
  EXPECT_TRUE(keys_under("tombstones/").empty());

  ASSERT_EQ(store_.apply(remove("w"), at(6)).outcome, apply_outcome::applied);
  EXPECT_FALSE(body("w"));
  // The same delete again finds its own tombstone: equal, so stale (the
  // tombstone is read when no widget is found).
  const auto again = store_.apply(remove("w"), at(6));
  EXPECT_EQ(again.outcome, apply_outcome::stale);
  EXPECT_EQ(again.stored_position, at(6));
}

TEST_P(s3_store_fencing_test, a_late_create_after_a_delete_is_refused_and_a_newer_one_applies) {
  ASSERT_EQ(store_.apply(create("w", "first"), at(1)).outcome, apply_outcome::applied);
  ASSERT_EQ(store_.apply(remove("w"), at(3)).outcome, apply_outcome::applied);
  EXPECT_FALSE(body("w"));
  // The tombstone: beside the widgets, not under their prefix.
  EXPECT_EQ(keys_under("tombstones/"), std::vector<std::string>{"tombstones/sue-smith/w"});
  EXPECT_EQ(position_of("tombstones/sue-smith/w"), at(3));
  EXPECT_TRUE(keys_under("widgets/").empty());

  const auto late = store_.apply(create("w", "late"), at(2));
  EXPECT_EQ(late.outcome, apply_outcome::stale);
  EXPECT_EQ(late.stored_position, at(3));
  EXPECT_FALSE(body("w"));

  const auto newer = create("w", "newer");
  ASSERT_EQ(store_.apply(newer, at(4)).outcome, apply_outcome::applied);
  EXPECT_EQ(body("w"), to_json(make_widget(newer)));
  // The widget prefix holds only widget bodies.
  const auto widgets = keys_under("widgets/");
  ASSERT_EQ(widgets, std::vector<std::string>{"widgets/sue-smith/w"});
  EXPECT_EQ(widget_from_json(*s3_.get_object(bucket_, widgets[0])), make_widget(newer));

  // A second delete moves the tombstone on (it exists already).
  ASSERT_EQ(store_.apply(remove("w"), at(7)).outcome, apply_outcome::applied);
  EXPECT_EQ(position_of("tombstones/sue-smith/w"), at(7));
  EXPECT_EQ(store_.apply(create("w", "late"), at(5)).outcome, apply_outcome::stale);
  EXPECT_FALSE(body("w"));
}

TEST_P(s3_store_fencing_test, a_not_found_update_or_delete_does_not_advance_the_position) {
  EXPECT_EQ(store_.apply(update("w", "x"), at(9)).outcome, apply_outcome::not_found);
  EXPECT_EQ(store_.apply(remove("w"), at(9)).outcome, apply_outcome::not_found);
  EXPECT_TRUE(keys_under("tombstones/").empty());
  ASSERT_EQ(store_.apply(create("w", "first"), at(2)).outcome, apply_outcome::applied);

  // Another owner under the same key (owners fold): not found, not moved.
  EXPECT_EQ(store_.apply(update("w", "stolen", "SUE SMITH"), at(8)).outcome,
            apply_outcome::not_found);
  EXPECT_EQ(store_.apply(remove("w", "SUE SMITH"), at(8)).outcome, apply_outcome::not_found);
  EXPECT_EQ(position_of("widgets/sue-smith/w"), at(2));
  EXPECT_TRUE(keys_under("tombstones/").empty());

  ASSERT_EQ(store_.apply(update("w", "second"), at(3)).outcome, apply_outcome::applied);
  EXPECT_EQ(position_of("widgets/sue-smith/w"), at(3));
  EXPECT_EQ(store_.load("Sue Smith", "w")->label, "second");
  EXPECT_EQ(store_.apply(update("w", "replayed"), at(3)).outcome, apply_outcome::stale);
}

// A delete that wrote its tombstone and then stopped (a crash) is delivered
// again: it completes; meanwhile an older create is refused.
TEST_P(s3_store_fencing_test, a_delete_interrupted_after_its_tombstone_completes_when_redelivered) {
  ASSERT_EQ(store_.apply(create("w", "first"), at(1)).outcome, apply_outcome::applied);
  ASSERT_TRUE(s3_.put_object_if(bucket_, "tombstones/sue-smith/w", "",
                                {.if_match = {}, .if_none_match = true}, "text/plain",
                                {{"wc-position", at(4)}}));
  EXPECT_EQ(store_.apply(create("w", "older"), at(2)).outcome, apply_outcome::stale);
  EXPECT_EQ(store_.load("Sue Smith", "w")->label, "first");
  EXPECT_EQ(store_.apply(remove("w"), at(4)).outcome, apply_outcome::applied);
  EXPECT_FALSE(body("w"));
  EXPECT_EQ(position_of("tombstones/sue-smith/w"), at(4));
}

// Two stores, as two consumers that both hold the widget's requests, apply
// them at once in different orders: the widget ends as the greatest
// position left it. Store one applies that one first, so without the fence
// any later write would undo it.
TEST_P(s3_store_fencing_test, two_stores_racing_end_at_the_greatest_position) {
  s3_bucket_store other(s3_, bucket_);
  constexpr int count = 24;
  auto request_at = [](int n) {
    const std::string label = "v" + std::to_string(n);
    if (n == count)
      return create("w", label);
    switch (n % 3) {
      case 0:
        return create("w", label);
      case 1:
        return update("w", label);
      default:
        return remove("w");
    }
  };
  std::vector<int> first{count};
  std::vector<int> second;
  for (int n = 1; n < count; ++n)
    (n % 2 ? second : first).push_back(n);
  std::mt19937 random(7);
  std::shuffle(first.begin() + 1, first.end(), random);
  std::shuffle(second.begin(), second.end(), random);

  auto run = [&](s3_bucket_store& store, const std::vector<int>& order) {
    for (const int n : order)
      store.apply(request_at(n), at(n));
  };
  std::thread one([&] { run(store_, first); });
  std::thread two([&] { run(other, second); });
  one.join();
  two.join();

  EXPECT_EQ(body("w"), to_json(make_widget(request_at(count))));
  EXPECT_EQ(position_of("widgets/sue-smith/w"), at(count));
}

TEST_P(s3_store_fencing_test, two_stores_racing_updates_end_at_the_greatest_position) {
  ASSERT_EQ(store_.apply(create("w", "v0"), at(0)).outcome, apply_outcome::applied);
  s3_bucket_store other(s3_, bucket_);
  constexpr int count = 30;
  std::vector<int> first{count};
  std::vector<int> second;
  for (int n = 1; n < count; ++n)
    (n % 2 ? second : first).push_back(n);
  std::mt19937 random(11);
  std::shuffle(first.begin() + 1, first.end(), random);
  std::shuffle(second.begin(), second.end(), random);
  auto run = [&](s3_bucket_store& store, const std::vector<int>& order) {
    for (const int n : order)
      store.apply(update("w", "v" + std::to_string(n)), at(n));
  };
  std::thread one([&] { run(store_, first); });
  std::thread two([&] { run(other, second); });
  one.join();
  two.join();

  const auto stored = store_.load("Sue Smith", "w");
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->label, "v" + std::to_string(count));
  EXPECT_EQ(stored->description, "v" + std::to_string(count));
  EXPECT_EQ(position_of("widgets/sue-smith/w"), at(count));
}

// A position is any byte string (an S3 key: spaces, '%', UTF-8): it goes to
// the metadata as printable ASCII and comes back exactly.
TEST_P(s3_store_fencing_test, awkward_positions_round_trip_through_the_metadata) {
  const std::string position = "s3:requests/ünï côde 100%\t\"x\".json";
  ASSERT_EQ(store_.apply(create("w", "first"), position).outcome, apply_outcome::applied);
  EXPECT_EQ(position_of("widgets/sue-smith/w"),
            "s3:requests/%C3%BCn%C3%AF%20c%C3%B4de%20100%25%09\"x\".json");
  const auto replay = store_.apply(create("w", "replayed"), position);
  EXPECT_EQ(replay.outcome, apply_outcome::stale);
  EXPECT_EQ(replay.stored_position, position);
  // Beyond what S3 metadata can hold: refused, not applied unfenced.
  try {
    store_.apply(create("w", "long"), "s3:" + std::string(2000, 'k'));
    FAIL() << "no error";
  } catch (const store_error& e) {
    EXPECT_EQ(e.failure(), store_failure::bad_request) << e.what();
  }
  EXPECT_EQ(store_.load("Sue Smith", "w")->label, "first");
}

TEST_P(s3_store_fencing_test, fencing_off_writes_no_metadata_nor_tombstones_and_replays_apply) {
  s3_bucket_store unfenced(s3_, bucket_, {}, unfenced_options());
  ASSERT_EQ(unfenced.apply(create("w", "first"), at(2)).outcome, apply_outcome::applied);
  const auto replay = create("w", "replayed");
  EXPECT_EQ(unfenced.apply(replay, at(1)).outcome, apply_outcome::applied);
  EXPECT_EQ(body("w"), to_json(make_widget(replay)));
  EXPECT_EQ(s3_.head_object(bucket_, "widgets/sue-smith/w")->metadata.size(), 0u);
  EXPECT_EQ(unfenced.apply(update("w", "older"), at(1)).outcome, apply_outcome::applied);
  EXPECT_EQ(s3_.head_object(bucket_, "widgets/sue-smith/w")->metadata.size(), 0u);
  EXPECT_EQ(unfenced.apply(remove("w"), at(3)).outcome, apply_outcome::applied);
  EXPECT_EQ(unfenced.apply(create("w", "late"), at(1)).outcome, apply_outcome::applied);
  EXPECT_EQ(store_.load("Sue Smith", "w")->label, "late");
  EXPECT_EQ(keys_under(""), std::vector<std::string>{"widgets/sue-smith/w"});
  // An empty widget prefix is fine without tombstones.
  EXPECT_NO_THROW(
      s3_bucket_store(s3_, bucket_, {.prefix = "", .owner_in_key = true}, unfenced_options()));
}

TEST_P(s3_store_fencing_test, tombstones_cannot_share_the_widget_prefix) {
  EXPECT_THROW(s3_bucket_store(s3_, bucket_, {.prefix = "", .owner_in_key = true}),
               std::invalid_argument);
  EXPECT_THROW(s3_bucket_store(s3_, bucket_, {}, {}, "widgets/tombstones/"), std::invalid_argument);
  s3_bucket_store flat(s3_, bucket_, {.prefix = "flat/", .owner_in_key = false}, {}, "gone/");
  ASSERT_EQ(flat.apply(create("w", "first"), at(1)).outcome, apply_outcome::applied);
  ASSERT_EQ(flat.apply(remove("w"), at(2)).outcome, apply_outcome::applied);
  EXPECT_EQ(keys_under(""), std::vector<std::string>{"gone/w"});
  EXPECT_EQ(flat.apply(create("w", "late"), at(1)).outcome, apply_outcome::stale);
}

TEST_P(s3_store_fencing_test, check_ready_passes_and_leaves_nothing) {
  EXPECT_NO_THROW(store_.check_ready());
  EXPECT_TRUE(keys_under("").empty());
}

INSTANTIATE_TEST_SUITE_P(servers, s3_store_fencing_test, ::testing::Bool(),
                         [](const auto& param) { return param.param ? "iam" : "plain"; });

// s3rver lets every conditional write through: the fence would not hold.
TEST(s3_store_fencing_on_s3rver, check_ready_refuses_naming_no_fencing) {
  const emulator server = widget_consumer::testing::s3rver_emulator();
  aws::s3_client s3(config_for(server));
  const std::string bucket = unique_name("fenced");
  s3.create_bucket(bucket);

  s3_bucket_store fenced(s3, bucket);
  try {
    fenced.check_ready();
    FAIL() << "no error";
  } catch (const unrecoverable_error& e) {
    EXPECT_NE(std::string(e.what()).find("--no-fencing"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("conditional writes"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(s3.list_objects_v2(bucket).keys.empty());

  s3_bucket_store unfenced(s3, bucket, {}, unfenced_options());
  EXPECT_NO_THROW(unfenced.check_ready());
}

}  // namespace
}  // namespace widget_consumer
