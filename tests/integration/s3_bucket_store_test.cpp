#include <widget_consumer/destination/s3_bucket.hpp>

#include "support/emulator.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

// Against both local servers ("plain" and "iam", which verifies every
// signature, where awkward keys would show an encoding mistake).

namespace widget_consumer {
namespace {

using widget_consumer::testing::emulator;
using widget_consumer::testing::unique_name;

// One attempt per call: failures show at once instead of after retries.
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

std::string json_string(const std::string& text) {
  return boost::json::serialize(boost::json::value(text));
}

widget_request create(const std::string& id, const std::string& owner,
                      const std::string& extra = R"("label":"Blue")") {
  return parsed(R"({"type":"create","requestId":"c","widgetId":)" + json_string(id) +
                R"(,"owner":)" + json_string(owner) + "," + extra + "}");
}

widget_request update(const std::string& id, const std::string& owner, const std::string& extra) {
  return parsed(R"({"type":"update","requestId":"u","widgetId":)" + json_string(id) +
                R"(,"owner":)" + json_string(owner) + "," + extra + "}");
}

widget_request remove(const std::string& id, const std::string& owner) {
  return parsed(R"({"type":"delete","requestId":"d","widgetId":)" + json_string(id) +
                R"(,"owner":)" + json_string(owner) + "}");
}

class s3_bucket_store_test : public ::testing::TestWithParam<bool> {
 protected:
  s3_bucket_store_test()
      : server_(GetParam() ? widget_consumer::testing::iam_emulator()
                           : widget_consumer::testing::plain_emulator()),
        s3_(config_for(server_)),
        bucket_(unique_name("widgets")),
        store_(s3_, bucket_) {
    s3_.create_bucket(bucket_);
  }

  emulator server_;
  aws::s3_client s3_;
  std::string bucket_;
  s3_bucket_store store_;
};

TEST_P(s3_bucket_store_test, create_writes_the_document_at_the_widget_key) {
  const auto request =
      create("w-1", "Mary Anne Miller",
             R"("label":"Blue","description":"","otherAttributes":[{"name":"size","value":"3"}])");
  EXPECT_EQ(store_.apply(request), apply_outcome::applied);
  EXPECT_EQ(store_.key_of("Mary Anne Miller", "w-1"), "widgets/mary-anne-miller/w-1");
  const auto body = s3_.get_object(bucket_, "widgets/mary-anne-miller/w-1");
  ASSERT_TRUE(body);
  // Written out, not make_widget(request): a create's "" is data (DESIGN.md).
  EXPECT_EQ(*body,
            R"({"widgetId":"w-1","owner":"Mary Anne Miller","label":"Blue","description":"",)"
            R"("otherAttributes":[{"name":"size","value":"3"}]})");
  EXPECT_EQ(widget_from_json(*body), make_widget(request));

  // A second create replaces it.
  const auto again = create("w-1", "Mary Anne Miller", R"("description":"new")");
  EXPECT_EQ(store_.apply(again), apply_outcome::applied);
  EXPECT_EQ(store_.load("Mary Anne Miller", "w-1"), make_widget(again));
}

// "id" is reserved by the DynamoDB layout only; here it is an attribute like
// any other.
TEST_P(s3_bucket_store_test, an_attribute_named_id_is_stored) {
  const auto request =
      create("w-9", "Sue Smith", R"("otherAttributes":[{"name":"id","value":"x"}])");
  EXPECT_EQ(store_.apply(request), apply_outcome::applied);
  EXPECT_EQ(s3_.get_object(bucket_, "widgets/sue-smith/w-9"),
            R"({"widgetId":"w-9","owner":"Sue Smith","label":null,"description":null,)"
            R"("otherAttributes":[{"name":"id","value":"x"}]})");
}

TEST_P(s3_bucket_store_test, update_changes_only_what_it_mentions) {
  const auto original = create(
      "w-2", "Sue Smith",
      R"("label":"Blue","description":"Round","otherAttributes":[{"name":"size","value":"3"},{"name":"color","value":"red"}])");
  ASSERT_EQ(store_.apply(original), apply_outcome::applied);
  const auto change = update(
      "w-2", "Sue Smith",
      R"("label":"","description":null,"otherAttributes":[{"name":"size","value":""},{"name":"weight","value":"9"}])");
  EXPECT_EQ(store_.apply(change), apply_outcome::applied);
  widget expected = make_widget(original);
  apply_update(expected, change);
  EXPECT_EQ(store_.load("Sue Smith", "w-2"), expected);
  EXPECT_FALSE(expected.label);
  EXPECT_EQ(expected.description, "Round");
}

TEST_P(s3_bucket_store_test, update_of_a_missing_widget_or_another_owners_is_not_found) {
  EXPECT_EQ(store_.apply(update("nobody", "Sue Smith", R"("label":"x")")),
            apply_outcome::not_found);
  EXPECT_FALSE(s3_.get_object(bucket_, "widgets/sue-smith/nobody"));

  ASSERT_EQ(store_.apply(create("w-3", "Sue Smith")), apply_outcome::applied);
  // The same key (owners fold to sue-smith), a different owner.
  EXPECT_EQ(store_.apply(update("w-3", "sue smith", R"("label":"stolen")")),
            apply_outcome::not_found);
  EXPECT_EQ(store_.load("Sue Smith", "w-3")->label, "Blue");
  // A different key altogether.
  EXPECT_EQ(store_.apply(update("w-3", "John Jones", R"("label":"stolen")")),
            apply_outcome::not_found);
  EXPECT_EQ(store_.load("Sue Smith", "w-3")->label, "Blue");
}

TEST_P(s3_bucket_store_test, delete_removes_and_reports_a_missing_widget) {
  ASSERT_EQ(store_.apply(create("w-4", "Jane Doe")), apply_outcome::applied);
  EXPECT_EQ(store_.apply(remove("w-4", "John Jones")), apply_outcome::not_found);
  EXPECT_TRUE(store_.load("Jane Doe", "w-4"));
  EXPECT_EQ(store_.apply(remove("w-4", "Jane Doe")), apply_outcome::applied);
  EXPECT_FALSE(store_.load("Jane Doe", "w-4"));
  EXPECT_EQ(store_.apply(remove("w-4", "Jane Doe")), apply_outcome::not_found);
}

// The key folds case ("SUE SMITH" and "Sue Smith" share one), so only the
// stored document's owner can tell them apart; update and delete both ask it.
TEST_P(s3_bucket_store_test, delete_by_an_owner_who_differs_only_in_case_is_not_found) {
  ASSERT_EQ(store_.apply(create("w-8", "Sue Smith")), apply_outcome::applied);
  EXPECT_EQ(store_.apply(remove("w-8", "SUE SMITH")), apply_outcome::not_found);
  EXPECT_TRUE(store_.load("Sue Smith", "w-8"));

  s3_bucket_store flat(s3_, bucket_, widget_key_layout{.prefix = "flat/", .owner_in_key = false});
  ASSERT_EQ(flat.apply(create("w-8", "Bob Builder")), apply_outcome::applied);
  EXPECT_EQ(flat.apply(remove("w-8", "Henry Hops")), apply_outcome::not_found);
  EXPECT_TRUE(s3_.get_object(bucket_, "flat/w-8"));
}

TEST_P(s3_bucket_store_test, awkward_ids_and_values_round_trip) {
  const std::vector<std::string> ids{
      "with space", "plus+sign",          "100%",        "a/b/c",     "...",    "question?hash#",
      "x/.y",       "ünïcødé/€/𝄞/日本語", "xml <&> 'q'", "tab\there", "q\"uote"};
  for (const auto& id : ids) {
    const auto request =
        create(id, "Mary Anne Miller",
               R"("label":"ünï 𝄞 \"q\" <&>","otherAttributes":[{"name":"näme","value":"välue"}])");
    ASSERT_EQ(store_.apply(request), apply_outcome::applied) << id;
    EXPECT_EQ(s3_.get_object(bucket_, "widgets/mary-anne-miller/" + id),
              to_json(make_widget(request)))
        << id;
    EXPECT_EQ(store_.apply(update(id, "Mary Anne Miller", R"("description":"€")")),
              apply_outcome::applied)
        << id;
    EXPECT_EQ(store_.load("Mary Anne Miller", id)->description, "€") << id;
    EXPECT_EQ(store_.apply(remove(id, "Mary Anne Miller")), apply_outcome::applied) << id;
    EXPECT_FALSE(store_.load("Mary Anne Miller", id)) << id;
  }
}

TEST_P(s3_bucket_store_test, layout_without_owner_and_another_prefix) {
  s3_bucket_store flat(s3_, bucket_, widget_key_layout{.prefix = "flat/", .owner_in_key = false});
  ASSERT_EQ(flat.apply(create("w-5", "Bob Builder")), apply_outcome::applied);
  EXPECT_TRUE(s3_.get_object(bucket_, "flat/w-5"));
  // The owner is not in the key, so the document's owner decides.
  EXPECT_EQ(flat.apply(update("w-5", "Henry Hops", R"("label":"x")")), apply_outcome::not_found);
  EXPECT_EQ(flat.apply(update("w-5", "Bob Builder", R"("label":"x")")), apply_outcome::applied);
  EXPECT_EQ(flat.load("anyone", "w-5")->label, "x");
}

TEST_P(s3_bucket_store_test, concurrent_lanes_on_different_widgets) {
  std::vector<std::thread> lanes;
  std::atomic<int> applied{0};
  for (int lane = 0; lane < 8; ++lane) {
    lanes.emplace_back([&, lane] {
      for (int i = 0; i < 5; ++i) {
        const std::string id = "lane-" + std::to_string(lane) + "-" + std::to_string(i);
        if (store_.apply(create(id, "Ann Anderson")) == apply_outcome::applied &&
            store_.apply(update(id, "Ann Anderson", R"("label":"v2")")) == apply_outcome::applied)
          ++applied;
      }
    });
  }
  for (auto& lane : lanes)
    lane.join();
  EXPECT_EQ(applied.load(), 40);
  EXPECT_EQ(store_.load("Ann Anderson", "lane-7-4")->label, "v2");
}

TEST_P(s3_bucket_store_test, dot_segment_widget_ids_are_stored_under_their_exact_keys) {
  for (const std::string id : {"../escape", "x/.", "a/./b", ".."}) {
    EXPECT_EQ(store_.apply(create(id, "Sue Smith")), apply_outcome::applied) << id;
    EXPECT_EQ(s3_.get_object(bucket_, "widgets/sue-smith/" + id).has_value(), true) << id;
    EXPECT_EQ(store_.load("Sue Smith", id)->widget_id, id);
  }
}

TEST_P(s3_bucket_store_test, failures_are_classified) {
  // A key S3 cannot hold: this request can never be stored.
  try {
    store_.apply(create(std::string(1100, 'x'), "Sue Smith"));
    FAIL() << "no error";
  } catch (const store_error& e) {
    EXPECT_EQ(e.failure(), store_failure::bad_request) << e.what();
  }
  // A missing bucket will not heal by retrying.
  s3_bucket_store missing(s3_, unique_name("missing"));
  try {
    missing.apply(create("w-6", "Sue Smith"));
    FAIL() << "no error";
  } catch (const store_error& e) {
    EXPECT_EQ(e.failure(), store_failure::permanent) << e.what();
  }
  // Also for a delete, whose read must not take a missing bucket for a
  // missing widget.
  try {
    missing.apply(remove("w-6", "Sue Smith"));
    FAIL() << "no error";
  } catch (const store_error& e) {
    EXPECT_EQ(e.failure(), store_failure::permanent) << e.what();
  }
  // A stored document that is not a widget.
  s3_.put_object(bucket_, "widgets/sue-smith/corrupt", "{not json", "application/json");
  try {
    store_.apply(update("corrupt", "Sue Smith", R"("label":"x")"));
    FAIL() << "no error";
  } catch (const store_error& e) {
    EXPECT_EQ(e.failure(), store_failure::permanent) << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(servers, s3_bucket_store_test, ::testing::Bool(),
                         [](const auto& param) { return param.param ? "iam" : "plain"; });

TEST(s3_bucket_store_unreachable, a_refused_connection_is_transient) {
  emulator nowhere{"http://127.0.0.1:1", "testing", "testing"};
  s3_bucket_store store(config_for(nowhere), "widgets");
  try {
    store.apply(create("w-7", "Sue Smith"));
    FAIL() << "no error";
  } catch (const store_error& e) {
    EXPECT_EQ(e.failure(), store_failure::transient) << e.what();
    EXPECT_TRUE(e.retryable());
  }
}

}  // namespace
}  // namespace widget_consumer
