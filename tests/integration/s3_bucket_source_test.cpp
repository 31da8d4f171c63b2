#include <widget_consumer/source/s3_bucket.hpp>

#include "support/emulator.hpp"
#include "support/service_contents.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

// Against every local S3 server ("plain" moto, "iam" moto, which verifies
// every signature, and s3rver, a second implementation), except the
// delete-failure test, which needs "iam" to refuse a bad key. One source
// alone on its bucket: claims off (s3_claims_test.py covers several).

namespace widget_consumer {
namespace {

using namespace std::chrono_literals;
using widget_consumer::testing::emulator;
using widget_consumer::testing::list_all;
using widget_consumer::testing::unique_name;
using batch_type = std::vector<received_request<std::string>>;

static_assert(background_flushing<s3_bucket_source>);

// Credentials the test can break (to make S3 refuse) or hold back (to stop a
// background request before it is sent).
struct credentials_switch {
  std::mutex mutex;
  std::condition_variable changed;
  bool broken = false;
  int allowed_calls = INT_MAX;
  int calls = 0;

  void open() {
    {
      std::lock_guard lock(mutex);
      allowed_calls = INT_MAX;
    }
    changed.notify_all();
  }

  // Broken: every signature uses a wrong secret, so the IAM server refuses it.
  void set_broken(bool value) {
    std::lock_guard lock(mutex);
    broken = value;
  }
};

aws::client_config config_for(const emulator& server,
                              std::shared_ptr<credentials_switch> control = nullptr) {
  aws::client_config config;
  config.region = server.region;
  config.endpoint = server.endpoint;
  config.max_attempts = 1;
  config.credentials = [server, control] {
    aws::credentials keys;
    keys.access_key_id = server.access_key_id;
    keys.secret_access_key = server.secret_access_key;
    if (control) {
      std::unique_lock lock(control->mutex);
      ++control->calls;
      control->changed.wait(lock, [&] { return control->calls <= control->allowed_calls; });
      if (control->broken)
        keys.secret_access_key = "not-the-secret";
    }
    return keys;
  };
  return config;
}

// 13-digit epoch-millisecond names, like the producer's.
std::vector<std::string> request_keys(std::size_t count) {
  std::vector<std::string> keys;
  for (std::size_t i = 0; i < count; ++i)
    keys.push_back(std::to_string(1700000000000 + static_cast<std::int64_t>(i) * 7));
  return keys;
}

std::string body_of(const std::string& key) {
  return R"({"type":"delete","requestId":"r)" + key + R"(","widgetId":"w","owner":"Sue Smith"})";
}

// A new bucket holding a request under each key.
void put_requests(aws::s3_client& s3, const std::string& bucket,
                  const std::vector<std::string>& keys) {
  s3.create_bucket(bucket);
  for (const auto& key : keys)
    s3.put_object(bucket, key, body_of(key), "application/json");
}

batch_type drain(s3_bucket_source& source, std::size_t max_per_poll) {
  batch_type all;
  for (int polls = 0; polls < 1000; ++polls) {
    auto batch = source.poll(0ms, max_per_poll);
    if (batch.empty())
      break;
    EXPECT_LE(batch.size(), max_per_poll);
    for (auto& each : batch)
      all.push_back(std::move(each));
  }
  return all;
}

std::vector<std::string> names_of(const batch_type& batch) {
  std::vector<std::string> names;
  for (const auto& each : batch)
    names.push_back(each.name);
  return names;
}

s3_bucket_source_options alone() {
  s3_bucket_source_options options;
  options.claims = false;
  return options;
}

emulator server_named(const std::string& name) {
  if (name == "iam")
    return widget_consumer::testing::iam_emulator();
  if (name == "s3rver")
    return widget_consumer::testing::s3rver_emulator();
  return widget_consumer::testing::plain_emulator();
}

class s3_bucket_source_test : public ::testing::TestWithParam<std::string> {
 protected:
  s3_bucket_source_test()
      : server_(server_named(GetParam())),
        s3_(config_for(server_)),
        bucket_(unique_name("requests")) {
    s3_.create_bucket(bucket_);
  }

  // Written in shuffled order, so only the source's sorting can order them.
  void put_requests(const std::vector<std::string>& keys) {
    std::vector<std::string> shuffled = keys;
    std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937(7));
    for (const auto& key : shuffled)
      s3_.put_object(bucket_, key, body_of(key), "application/json");
  }

  s3_bucket_source_options small_pages() const {
    s3_bucket_source_options options = alone();
    options.page_size = 4;
    options.fetch_concurrency = 8;
    options.read_ahead = 12;
    return options;
  }

  emulator server_;
  aws::s3_client s3_;
  std::string bucket_;
};

TEST_P(s3_bucket_source_test, delivers_in_key_order_across_pages_fetching_concurrently) {
  const auto keys = request_keys(37);
  put_requests(keys);
  // Not requests: the source's own rejected objects and a folder marker.
  s3_.put_object(bucket_, "rejected/1600000000000", "old", "application/json");
  s3_.put_object(bucket_, "rejected/1600000000000.reason", "why", "text/plain");
  s3_.put_object(bucket_, "folder/", "", "application/octet-stream");

  s3_bucket_source source(s3_, bucket_, small_pages());
  EXPECT_TRUE(source.ordered());
  const auto delivered = drain(source, 5);
  EXPECT_EQ(names_of(delivered), keys);
  for (const auto& each : delivered) {
    EXPECT_EQ(each.ticket, each.name);
    EXPECT_EQ(each.body, body_of(each.name));
    EXPECT_EQ(each.receive_count, 1u);
  }
  EXPECT_EQ(source.in_flight(), keys.size());
  EXPECT_EQ(source.vanished(), 0u);
}

TEST_P(s3_bucket_source_test, does_not_redeliver_keys_in_flight) {
  const auto keys = request_keys(10);
  put_requests(keys);
  s3_bucket_source source(s3_, bucket_, small_pages());
  const auto first = drain(source, 3);
  ASSERT_EQ(first.size(), keys.size());
  // Several passes over the listing: every key is still in flight.
  for (int i = 0; i < 3; ++i)
    EXPECT_TRUE(source.poll(0ms, 100).empty());

  // A key written later is delivered, alone.
  const std::string late = "1800000000000";
  s3_.put_object(bucket_, late, body_of(late), "application/json");
  const auto second = source.poll(0ms, 100);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].name, late);
}

TEST_P(s3_bucket_source_test, released_key_comes_back_after_its_delay) {
  const auto keys = request_keys(4);
  put_requests(keys);
  s3_bucket_source source(s3_, bucket_, small_pages());
  auto delivered = drain(source, 10);
  ASSERT_EQ(delivered.size(), 4u);
  const auto released_at = std::chrono::steady_clock::now();
  source.release(std::move(delivered[1].ticket), 400ms);
  source.release(std::move(delivered[2].ticket), 0ms);
  source.ack(std::move(delivered[0].ticket));
  source.ack(std::move(delivered[3].ticket));
  EXPECT_TRUE(source.flush().empty());

  // The one released without delay is due at once; the other is not.
  auto again = source.poll(0ms, 10);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].name, keys[2]);
  EXPECT_EQ(again[0].receive_count, 2u);
  source.ack(std::move(again[0].ticket));
  EXPECT_TRUE(source.flush().empty());

  batch_type later;
  while (later.empty() && std::chrono::steady_clock::now() - released_at < 5s) {
    later = source.poll(0ms, 10);
    if (later.empty())
      std::this_thread::sleep_for(50ms);
  }
  EXPECT_GE(std::chrono::steady_clock::now() - released_at, 400ms);
  ASSERT_EQ(later.size(), 1u);
  EXPECT_EQ(later[0].name, keys[1]);
  EXPECT_EQ(later[0].receive_count, 2u);
  EXPECT_EQ(later[0].body, body_of(keys[1]));
}

TEST_P(s3_bucket_source_test, batched_ack_deletes_everything) {
  const auto keys = request_keys(45);
  put_requests(keys);
  s3_bucket_source options_source(s3_, bucket_, small_pages());
  auto delivered = drain(options_source, 20);
  ASSERT_EQ(delivered.size(), keys.size());
  for (auto& each : delivered)
    options_source.ack(std::move(each.ticket));
  // Queued until flush(): nothing is deleted yet.
  EXPECT_EQ(list_all(s3_, bucket_).size(), keys.size());
  EXPECT_TRUE(options_source.flush().empty());
  EXPECT_TRUE(list_all(s3_, bucket_).empty());
  EXPECT_TRUE(options_source.poll(0ms, 10).empty());
  EXPECT_EQ(options_source.in_flight(), 0u);
}

// begin_flush() hands the deletes to the settler and returns; a key being
// deleted is not delivered again meanwhile, and flush() waits for them all.
TEST_P(s3_bucket_source_test, begin_flush_deletes_in_the_background_and_flush_waits) {
  const auto keys = request_keys(12);
  put_requests(keys);
  s3_bucket_source source(s3_, bucket_, small_pages());
  auto delivered = drain(source, 20);
  ASSERT_EQ(delivered.size(), keys.size());
  for (std::size_t i = 0; i + 1 < delivered.size(); ++i) {
    source.ack(std::move(delivered[i].ticket));
    if (i % 4 == 3) {
      EXPECT_TRUE(source.begin_flush().empty());
    }
  }
  EXPECT_TRUE(source.begin_flush().empty());
  EXPECT_TRUE(source.poll(0ms, 20).empty());  // in flight, or being deleted
  EXPECT_TRUE(source.flush().empty());
  EXPECT_EQ(list_all(s3_, bucket_), (std::vector<std::string>{keys.back()}));
  source.ack(std::move(delivered.back().ticket));
  EXPECT_TRUE(source.begin_flush().empty());  // nothing else in flight: it waits
  EXPECT_TRUE(list_all(s3_, bucket_).empty());
  EXPECT_EQ(source.in_flight(), 0u);
}

TEST_P(s3_bucket_source_test, reject_copies_with_reason_then_deletes) {
  const auto keys = request_keys(3);
  put_requests(keys);
  s3_bucket_source source(s3_, bucket_, small_pages());
  auto delivered = drain(source, 10);
  ASSERT_EQ(delivered.size(), 3u);
  const std::string reason = "owner: must match [A-Za-z ]+, got \"R2D2\" — ünïcødé";
  source.reject(std::move(delivered[1].ticket), reason);
  source.ack(std::move(delivered[0].ticket));
  source.ack(std::move(delivered[2].ticket));
  EXPECT_TRUE(source.flush().empty());

  const std::vector<std::string> expected{"rejected/" + keys[1], "rejected/" + keys[1] + ".reason"};
  EXPECT_EQ(list_all(s3_, bucket_), expected);
  EXPECT_EQ(s3_.get_object(bucket_, "rejected/" + keys[1]), body_of(keys[1]));
  EXPECT_EQ(s3_.get_object(bucket_, "rejected/" + keys[1] + ".reason"), reason);
  // Its own rejected objects are never requests.
  for (int i = 0; i < 2; ++i)
    EXPECT_TRUE(source.poll(0ms, 10).empty());
}

TEST_P(s3_bucket_source_test, reject_into_a_separate_bucket_under_a_prefix) {
  const std::string rejected_bucket = unique_name("rejected");
  s3_.create_bucket(rejected_bucket);
  const std::string key = "in/1700000000000";
  s3_.put_object(bucket_, key, "not json", "application/json");
  s3_.put_object(bucket_, "elsewhere/1600000000000", "not a request", "application/json");
  s3_bucket_source_options options = alone();
  options.prefix = "in/";
  options.rejected_bucket = rejected_bucket;
  options.rejected_prefix = "bad/";
  s3_bucket_source source(s3_, bucket_, options);
  auto delivered = source.poll(0ms, 10);
  ASSERT_EQ(delivered.size(), 1u);
  EXPECT_EQ(delivered[0].name, key);
  source.reject(std::move(delivered[0].ticket), "body: invalid JSON");
  EXPECT_TRUE(source.flush().empty());
  EXPECT_EQ(list_all(s3_, bucket_), std::vector<std::string>{"elsewhere/1600000000000"});
  EXPECT_EQ(s3_.get_object(rejected_bucket, "bad/" + key), "not json");
  EXPECT_EQ(s3_.get_object(rejected_bucket, "bad/" + key + ".reason"), "body: invalid JSON");
}

TEST_P(s3_bucket_source_test, skips_a_key_that_vanished_between_list_and_get) {
  const auto keys = request_keys(3);
  put_requests(keys);
  auto control = std::make_shared<credentials_switch>();
  // One listing and the first GET pass; the second GET waits for us.
  control->allowed_calls = 2;
  s3_bucket_source_options options = alone();
  options.fetch_concurrency = 1;
  options.read_ahead = 1;
  s3_bucket_source source(aws::s3_client(config_for(server_, control)), bucket_, options);
  auto first = source.poll(0ms, 1);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].name, keys[0]);
  s3_.delete_object(bucket_, keys[1]);  // another consumer took it
  control->open();
  auto rest = drain(source, 10);
  EXPECT_EQ(names_of(rest), std::vector<std::string>{keys[2]});
  EXPECT_EQ(source.vanished(), 1u);
}

// The settlement contract (concepts.hpp): a ticket that is not in flight is
// reported by flush(), never thrown, and nothing happens to the object.
TEST_P(s3_bucket_source_test, a_ticket_not_in_flight_is_reported_and_nothing_deleted) {
  const auto keys = request_keys(1);
  put_requests(keys);
  s3_bucket_source source(s3_, bucket_, alone());
  EXPECT_NO_THROW(source.ack(keys[0]));
  EXPECT_NO_THROW(source.release(keys[0], 0ms));
  EXPECT_NO_THROW(source.reject(keys[0], "never handed out"));
  const auto failures = source.flush();
  ASSERT_EQ(failures.size(), 3u);
  EXPECT_EQ(failures[0].action, settle_action::ack);
  EXPECT_EQ(failures[1].action, settle_action::release);
  EXPECT_EQ(failures[2].action, settle_action::reject);
  for (const auto& failure : failures) {
    EXPECT_EQ(failure.name, keys[0]);
    EXPECT_NE(failure.reason.find("not in flight"), std::string::npos) << failure.reason;
  }
  EXPECT_TRUE(source.flush().empty());  // reported once
  EXPECT_EQ(list_all(s3_, bucket_), keys);
  // Still a request, delivered as usual.
  const auto delivered = drain(source, 10);
  EXPECT_EQ(names_of(delivered), keys);
}

TEST_P(s3_bucket_source_test, a_ticket_settled_twice_is_reported_and_nothing_more_done) {
  const auto keys = request_keys(2);
  put_requests(keys);
  s3_bucket_source source(s3_, bucket_, alone());
  auto delivered = drain(source, 10);
  ASSERT_EQ(delivered.size(), 2u);
  source.ack(keys[0]);
  source.release(keys[1], 0ms);
  EXPECT_TRUE(source.flush().empty());

  source.ack(keys[0]);
  source.reject(keys[1], "settled twice");
  const auto failures = source.flush();
  ASSERT_EQ(failures.size(), 2u);
  EXPECT_EQ(failures[0].action, settle_action::ack);
  EXPECT_EQ(failures[0].name, keys[0]);
  EXPECT_EQ(failures[1].action, settle_action::reject);
  EXPECT_EQ(failures[1].name, keys[1]);
  // The released one was neither copied aside nor deleted: it comes back.
  EXPECT_EQ(list_all(s3_, bucket_), std::vector<std::string>{keys[1]});
  const auto again = drain(source, 10);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].name, keys[1]);
  EXPECT_EQ(again[0].receive_count, 2u);
}

// A missing bucket cannot heal by polling again: unrecoverable_error, which
// ends the consumer's run at once, naming the bucket and what was seen.
TEST_P(s3_bucket_source_test, poll_throws_unrecoverable_when_the_bucket_is_missing) {
  const auto missing = unique_name("missing");
  s3_bucket_source source(s3_, missing, alone());
  for (int i = 0; i < 2; ++i) {  // and again, not stuck
    try {
      source.poll(0ms, 10);
      ADD_FAILURE() << "poll of a missing bucket returned";
    } catch (const unrecoverable_error& e) {
      EXPECT_NE(std::string(e.what()).find("s3://" + missing), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("NoSuchBucket"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(source.check_ready(), unrecoverable_error);
}

// An object the source can never read (here one over a lowered response
// cap; on AWS also a 403 from KMS or an ACL, or InvalidObjectState) fails
// its pass a few times, then is set aside like an invalid request: copied
// under rejected/ with its reason and deleted. The keys after it go on.
TEST_P(s3_bucket_source_test, an_unreadable_object_is_set_aside_and_the_rest_go_on) {
  const auto keys = request_keys(3);
  put_requests(keys);
  const std::string too_large(8192, 'x');
  s3_.put_object(bucket_, keys[1], too_large, "application/json");
  aws::client_config config = config_for(server_);
  config.http.max_response_bytes = 4096;  // above any listing of two keys
  s3_bucket_source_options options = alone();
  options.page_size = 2;
  s3_bucket_source source(aws::s3_client(config), bucket_, options);

  batch_type delivered;
  int poll_failures = 0;
  for (int polls = 0; polls < 20 && delivered.size() < 2; ++polls) {
    try {
      for (auto& each : source.poll(0ms, 10))
        delivered.push_back(std::move(each));
    } catch (const aws::transport_error& e) {
      ++poll_failures;
      EXPECT_NE(std::string(e.what()).find("max_response_bytes"), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(names_of(delivered), (std::vector<std::string>{keys[0], keys[2]}));
  EXPECT_GE(poll_failures, 1);
  EXPECT_LE(poll_failures, 5);
  EXPECT_EQ(source.unreadable(), 1u);
  for (auto& each : delivered)
    source.ack(std::move(each.ticket));
  EXPECT_TRUE(source.flush().empty());

  const std::string target = "rejected/" + keys[1];
  EXPECT_EQ(list_all(s3_, bucket_), (std::vector<std::string>{target, target + ".reason"}));
  EXPECT_EQ(s3_.get_object(bucket_, target), too_large);
  const auto reason = s3_.get_object(bucket_, target + ".reason");
  ASSERT_TRUE(reason);
  EXPECT_NE(reason->find("max_response_bytes"), std::string::npos) << *reason;
  EXPECT_TRUE(source.poll(0ms, 10).empty());
}

INSTANTIATE_TEST_SUITE_P(servers, s3_bucket_source_test,
                         ::testing::Values("plain", "iam", "s3rver"),
                         [](const auto& param) { return param.param; });

// S3 refuses the deletes (a wrong secret, which only the IAM server checks):
// the batch fails as a whole, each key is tried on its own, and every one is
// reported by flush() and delivered again.
TEST(s3_bucket_source_iam, flush_reports_every_delete_that_failed) {
  const emulator server = widget_consumer::testing::iam_emulator();
  aws::s3_client s3(config_for(server));
  const std::string bucket = unique_name("requests");
  const auto keys = request_keys(5);
  put_requests(s3, bucket, keys);

  auto control = std::make_shared<credentials_switch>();
  s3_bucket_source source(aws::s3_client(config_for(server, control)), bucket, alone());
  auto delivered = drain(source, 10);
  ASSERT_EQ(delivered.size(), keys.size());
  control->set_broken(true);
  source.ack(std::move(delivered[0].ticket));
  source.ack(std::move(delivered[1].ticket));
  source.reject(std::move(delivered[2].ticket), "cannot even copy");
  auto failures = source.flush();
  ASSERT_EQ(failures.size(), 3u);
  EXPECT_EQ(failures[0].action, settle_action::reject);  // the copy, before the deletes
  EXPECT_EQ(failures[0].name, keys[2]);
  EXPECT_EQ(failures[1].action, settle_action::ack);
  EXPECT_EQ(failures[1].name, keys[0]);
  EXPECT_EQ(failures[2].name, keys[1]);
  for (const auto& failure : failures) {
    EXPECT_NE(failure.reason.find("403"), std::string::npos) << failure.reason;
    EXPECT_EQ(failure.reason.find("not-the-secret"), std::string::npos);
  }
  EXPECT_TRUE(source.flush().empty());  // reported once
  EXPECT_EQ(list_all(s3, bucket).size(), keys.size());

  control->set_broken(false);
  auto again = drain(source, 10);
  EXPECT_EQ(names_of(again), (std::vector<std::string>{keys[0], keys[1], keys[2]}));
  for (const auto& each : again)
    EXPECT_EQ(each.receive_count, 2u);
}

// reject() makes no call: the reason and the copy are written by the flush
// (on the settler thread, rejects side by side), so a reject never holds up
// the poll thread for its two round trips. Credentials refused while
// reject() runs therefore change nothing.
TEST(s3_bucket_source_iam, reject_copies_at_the_flush_not_at_once) {
  const emulator server = widget_consumer::testing::iam_emulator();
  aws::s3_client s3(config_for(server));
  const std::string bucket = unique_name("requests");
  const auto keys = request_keys(3);
  put_requests(s3, bucket, keys);

  auto control = std::make_shared<credentials_switch>();
  s3_bucket_source source(aws::s3_client(config_for(server, control)), bucket, alone());
  auto delivered = drain(source, 10);
  ASSERT_EQ(delivered.size(), keys.size());
  control->set_broken(true);
  source.reject(std::move(delivered[0].ticket), "first reason");
  source.reject(std::move(delivered[2].ticket), "second reason");
  control->set_broken(false);
  source.ack(std::move(delivered[1].ticket));
  EXPECT_TRUE(source.flush().empty());

  EXPECT_EQ(list_all(s3, bucket),
            (std::vector<std::string>{"rejected/" + keys[0], "rejected/" + keys[0] + ".reason",
                                      "rejected/" + keys[2], "rejected/" + keys[2] + ".reason"}));
  EXPECT_EQ(s3.get_object(bucket, "rejected/" + keys[2] + ".reason"), "second reason");
  EXPECT_EQ(s3.get_object(bucket, "rejected/" + keys[2]), body_of(keys[2]));
  EXPECT_TRUE(source.poll(0ms, 10).empty());
}

// The same refused deletes, flushed in the background while other requests
// are in flight: each failure is reported once, by a later flush at the
// latest, and the keys are delivered again once their deletes have failed.
TEST(s3_bucket_source_iam, begin_flush_reports_failed_deletes_by_a_later_flush) {
  const emulator server = widget_consumer::testing::iam_emulator();
  aws::s3_client s3(config_for(server));
  const std::string bucket = unique_name("requests");
  const auto keys = request_keys(4);
  put_requests(s3, bucket, keys);

  auto control = std::make_shared<credentials_switch>();
  s3_bucket_source source(aws::s3_client(config_for(server, control)), bucket, alone());
  auto delivered = drain(source, 10);
  ASSERT_EQ(delivered.size(), keys.size());
  control->set_broken(true);
  source.ack(std::move(delivered[0].ticket));
  source.ack(std::move(delivered[1].ticket));
  auto failures = source.begin_flush();  // keys[2] and keys[3] still in flight
  for (auto& each : source.flush())
    failures.push_back(std::move(each));
  ASSERT_EQ(failures.size(), 2u);
  EXPECT_EQ(failures[0].name, keys[0]);
  EXPECT_EQ(failures[1].name, keys[1]);
  for (const auto& failure : failures) {
    EXPECT_EQ(failure.action, settle_action::ack);
    EXPECT_NE(failure.reason.find("403"), std::string::npos) << failure.reason;
  }
  EXPECT_TRUE(source.flush().empty());  // reported once
  EXPECT_EQ(list_all(s3, bucket).size(), keys.size());

  control->set_broken(false);
  auto again = drain(source, 10);
  EXPECT_EQ(names_of(again), (std::vector<std::string>{keys[0], keys[1]}));
  for (const auto& each : again)
    EXPECT_EQ(each.receive_count, 2u);
}

}  // namespace
}  // namespace widget_consumer
