#include "widget_consumer/source/directory.hpp"
#include "widget_consumer/destination/directory.hpp"

#include <gtest/gtest.h>

#include "support/scratch_folder.hpp"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "widget_consumer/consumer.hpp"
#include "widget_consumer/log/null.hpp"

namespace {

using namespace widget_consumer;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

// A fresh folder per test, removed afterwards.
struct scratch_folder : widget_consumer::testing::scratch_folder {
  scratch_folder() : widget_consumer::testing::scratch_folder("widget_consumer_directory_test_") {}
};

void write_file(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

std::string read_file(const fs::path& path) {
  std::ifstream file(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
}

widget_request make_request(request_type type, std::string widget_id,
                            std::string owner = "Mary Jones") {
  widget_request request;
  request.type = type;
  request.request_id = "r";
  request.widget_id = std::move(widget_id);
  request.owner = std::move(owner);
  return request;
}

static_assert(request_source<directory_source>);
static_assert(widget_store<directory_store>);

TEST(directory_source, hands_out_files_in_name_order_and_skips_hidden_ones) {
  scratch_folder folder;
  write_file(folder.path() / "1700000000002", "b");
  write_file(folder.path() / "1700000000001", "a");
  write_file(folder.path() / "1700000000003", "c");
  write_file(folder.path() / ".1700000000000.tmp", "partial");
  fs::create_directories(folder.path() / "rejected");
  directory_source source(folder.path());

  auto first = source.poll(0ms, 2);
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(first[0].name, "1700000000001");
  EXPECT_EQ(first[0].body, "a");
  EXPECT_EQ(first[0].receive_count, 1u);
  EXPECT_EQ(first[1].body, "b");
  auto second = source.poll(0ms, 10);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].body, "c");
  EXPECT_TRUE(source.poll(0ms, 10).empty());  // all in flight
  EXPECT_TRUE(source.ordered());
}

TEST(directory_source, ack_deletes_and_reject_moves_aside_with_the_reason) {
  scratch_folder folder;
  write_file(folder.path() / "1", "good");
  write_file(folder.path() / "2", "bad");
  directory_source source(folder.path());
  auto batch = source.poll(0ms, 10);
  ASSERT_EQ(batch.size(), 2u);

  source.ack(std::move(batch[0].ticket));
  source.reject(std::move(batch[1].ticket), "owner: \"R2D2\" does not match [A-Za-z ]+");

  EXPECT_TRUE(source.flush().empty());
  EXPECT_FALSE(fs::exists(folder.path() / "1"));
  EXPECT_FALSE(fs::exists(folder.path() / "2"));
  EXPECT_EQ(read_file(folder.path() / "rejected" / "2"), "bad");
  EXPECT_EQ(read_file(folder.path() / "rejected" / "2.reason"),
            "owner: \"R2D2\" does not match [A-Za-z ]+\n");
  EXPECT_TRUE(source.poll(0ms, 10).empty());
}

TEST(directory_source, a_released_file_comes_back_after_its_delay_and_before_later_ones) {
  scratch_folder folder;
  write_file(folder.path() / "1", "first");
  write_file(folder.path() / "2", "second");
  write_file(folder.path() / "3", "third");
  directory_source source(folder.path());
  auto batch = source.poll(0ms, 1);
  ASSERT_EQ(batch.size(), 1u);
  source.release(std::move(batch[0].ticket), 30ms);

  auto next = source.poll(0ms, 1);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].body, "second");
  std::this_thread::sleep_for(40ms);
  auto again = source.poll(0ms, 10);
  ASSERT_EQ(again.size(), 2u);
  EXPECT_EQ(again[0].body, "first");
  EXPECT_EQ(again[0].receive_count, 2u);
  EXPECT_EQ(again[1].body, "third");
}

// The settlement contract (concepts.hpp): a ticket that is not in flight is
// reported by flush(), never thrown, and nothing happens to any file.
TEST(directory_source, a_name_outside_the_folder_is_reported_and_touches_nothing) {
  scratch_folder folder;
  write_file(folder.path() / "inside" / "x", "x");
  write_file(folder.path() / "x", "outside");
  directory_source source(folder.path() / "inside");
  EXPECT_NO_THROW(source.ack("../x"));
  EXPECT_NO_THROW(source.reject("..", "r"));
  EXPECT_NO_THROW(source.release("a/b", 0ms));
  const auto failures = source.flush();
  ASSERT_EQ(failures.size(), 3u);
  EXPECT_EQ(failures[0].action, settle_action::ack);
  EXPECT_EQ(failures[0].name, "../x");
  EXPECT_EQ(failures[1].action, settle_action::reject);
  EXPECT_EQ(failures[2].action, settle_action::release);
  for (const auto& failure : failures)
    EXPECT_NE(failure.reason.find("not in flight"), std::string::npos) << failure.reason;
  EXPECT_TRUE(source.flush().empty());  // reported once
  EXPECT_EQ(read_file(folder.path() / "x"), "outside");
  EXPECT_TRUE(fs::exists(folder.path() / "inside" / "x"));
  EXPECT_FALSE(fs::exists(folder.path() / "inside" / "rejected"));
  EXPECT_THROW(directory_source(folder.path(), {"../elsewhere"}), std::invalid_argument);
}

TEST(directory_source, a_ticket_settled_twice_is_reported_and_nothing_is_done) {
  scratch_folder folder;
  write_file(folder.path() / "1", "first");
  write_file(folder.path() / "2", "second");
  directory_source source(folder.path());
  auto batch = source.poll(0ms, 10);
  ASSERT_EQ(batch.size(), 2u);
  const std::string acked = batch[0].ticket;
  const std::string released = batch[1].ticket;
  source.ack(acked);
  source.release(released, 20ms);
  EXPECT_TRUE(source.flush().empty());

  EXPECT_NO_THROW(source.ack(acked));
  EXPECT_NO_THROW(source.reject(released, "twice"));
  const auto failures = source.flush();
  ASSERT_EQ(failures.size(), 2u);
  EXPECT_EQ(failures[0].action, settle_action::ack);
  EXPECT_EQ(failures[0].name, "1");
  EXPECT_EQ(failures[1].action, settle_action::reject);
  EXPECT_EQ(failures[1].name, "2");
  // The released file was not moved aside: it comes back after its delay.
  EXPECT_FALSE(fs::exists(folder.path() / "rejected" / "2"));
  std::this_thread::sleep_for(30ms);
  auto again = source.poll(0ms, 10);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].body, "second");
  EXPECT_EQ(again[0].receive_count, 2u);
}

TEST(directory_store, creates_updates_and_deletes_one_document_per_widget) {
  scratch_folder folder;
  directory_store store(folder.path());

  auto create = make_request(request_type::create, "w1");
  create.label = "first";
  ASSERT_EQ(store.apply(create), apply_outcome::applied);
  const fs::path path = folder.path() / "widgets" / "mary-jones" / "w1";
  ASSERT_TRUE(fs::exists(path));
  EXPECT_EQ(widget_from_json(read_file(path)).label, "first");

  auto update = make_request(request_type::update, "w1");
  update.description = "described";
  ASSERT_EQ(store.apply(update), apply_outcome::applied);
  const auto stored = store.load("Mary Jones", "w1");
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->label, "first");
  EXPECT_EQ(stored->description, "described");

  EXPECT_EQ(store.apply(make_request(request_type::remove, "w1")), apply_outcome::applied);
  EXPECT_FALSE(fs::exists(path));
  EXPECT_EQ(store.apply(make_request(request_type::remove, "w1")), apply_outcome::not_found);
  // No temporaries left behind.
  EXPECT_TRUE(fs::is_empty(path.parent_path()));
}

TEST(directory_store, a_create_keeps_empty_strings_as_data) {
  scratch_folder folder;
  directory_store store(folder.path());
  auto create = make_request(request_type::create, "w1");
  create.label = "";
  create.other_attributes = {{"a", ""}, {"b", std::nullopt}};
  ASSERT_EQ(store.apply(create), apply_outcome::applied);
  EXPECT_EQ(read_file(folder.path() / "widgets" / "mary-jones" / "w1"),
            R"({"widgetId":"w1","owner":"Mary Jones","label":"","description":null,)"
            R"("otherAttributes":[{"name":"a","value":""}]})");
}

// "id" is reserved by the DynamoDB layout only; here it is an attribute like
// any other.
TEST(directory_store, an_attribute_named_id_is_stored) {
  scratch_folder folder;
  directory_store store(folder.path());
  auto create = make_request(request_type::create, "w1");
  create.other_attributes = {{.name = "id", .value = "x"}};
  ASSERT_EQ(store.apply(create), apply_outcome::applied);
  EXPECT_EQ(read_file(folder.path() / "widgets" / "mary-jones" / "w1"),
            R"({"widgetId":"w1","owner":"Mary Jones","label":null,"description":null,)"
            R"("otherAttributes":[{"name":"id","value":"x"}]})");
}

TEST(directory_store, update_of_a_missing_or_foreign_widget_is_not_found) {
  scratch_folder folder;
  directory_store store(folder.path(), widget_key_layout{.prefix = "", .owner_in_key = false});
  EXPECT_EQ(store.apply(make_request(request_type::update, "w1")), apply_outcome::not_found);

  ASSERT_EQ(store.apply(make_request(request_type::create, "w1", "Ann")), apply_outcome::applied);
  auto foreign = make_request(request_type::update, "w1", "Bob");
  foreign.label = "stolen";
  EXPECT_EQ(store.apply(foreign), apply_outcome::not_found);
  EXPECT_EQ(store.load("Ann", "w1")->label, std::nullopt);
  EXPECT_TRUE(fs::exists(folder.path() / "w1"));
}

// Keys fold the owner's case (and here leave it out), so the stored owner
// decides whose widget a delete may remove.
TEST(directory_store, delete_by_another_owner_is_not_found) {
  scratch_folder folder;
  directory_store store(folder.path());
  ASSERT_EQ(store.apply(make_request(request_type::create, "w1", "Ann")), apply_outcome::applied);
  EXPECT_EQ(store.apply(make_request(request_type::remove, "w1", "ANN")), apply_outcome::not_found);
  EXPECT_TRUE(store.load("Ann", "w1"));

  directory_store flat(folder.path() / "flat",
                       widget_key_layout{.prefix = "", .owner_in_key = false});
  ASSERT_EQ(flat.apply(make_request(request_type::create, "w1", "Ann")), apply_outcome::applied);
  EXPECT_EQ(flat.apply(make_request(request_type::remove, "w1", "Bob")), apply_outcome::not_found);
  EXPECT_TRUE(fs::exists(folder.path() / "flat" / "w1"));
}

TEST(directory_store, refuses_keys_that_escape_the_folder) {
  scratch_folder folder;
  directory_store store(folder.path() / "store",
                        widget_key_layout{.prefix = "", .owner_in_key = false});
  for (const char* id : {"../outside", "..", "a/../../b", "/etc/passwd"}) {
    try {
      store.apply(make_request(request_type::create, id));
      ADD_FAILURE() << id << " was accepted";
    } catch (const store_error& e) {
      EXPECT_EQ(e.failure(), store_failure::bad_request) << id;
    }
  }
  EXPECT_FALSE(fs::exists(folder.path() / "outside"));
}

TEST(directory_to_directory, a_consumer_drains_a_folder_into_a_store) {
  scratch_folder folder;
  const fs::path requests = folder.path() / "requests";
  write_file(requests / "1700000000001",
             R"({"type":"create","requestId":"a","widgetId":"w1","owner":"Ann","label":"x"})");
  write_file(requests / "1700000000002",
             R"({"type":"update","requestId":"b","widgetId":"w1","owner":"Ann","label":"y"})");
  write_file(requests / "1700000000003", R"({"type":"create"})");
  directory_source source(requests);
  directory_store store(folder.path() / "store");
  null_log log;
  consumer_options options;
  options.max_idle = 30ms;
  options.empty_poll_delay = 2ms;
  options.progress_interval = 0ms;

  const auto summary =
      consumer<directory_source, directory_store, null_log>(source, store, log, options).run();

  EXPECT_EQ(summary.stats.processed_total(), 2u);
  EXPECT_EQ(summary.stats.rejected, 1u);
  EXPECT_EQ(store.load("Ann", "w1")->label, "y");
  EXPECT_FALSE(fs::exists(requests / "1700000000001"));
  EXPECT_TRUE(fs::exists(requests / "rejected" / "1700000000003.reason"));
}

}  // namespace
