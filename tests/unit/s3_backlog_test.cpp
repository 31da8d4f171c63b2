#include "widget_consumer/source/detail/s3_backlog.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "widget_consumer/aws/s3.hpp"
#include "widget_consumer/source/detail/s3_object_window.hpp"

namespace {

using namespace widget_consumer;
using widget_consumer::detail::s3_backlog;
using widget_consumer::detail::s3_object_window;
using widget_consumer::detail::s3_request_keys;

TEST(s3_request_keys, leaves_out_folder_markers_rejected_copies_and_claims) {
  const s3_request_keys keys{.rejected_prefix = "rejected/", .claim_prefix = "claims/"};
  EXPECT_TRUE(keys.holds("1700000000000"));
  EXPECT_TRUE(keys.holds("incoming/1700000000000"));
  EXPECT_FALSE(keys.holds(""));
  EXPECT_FALSE(keys.holds("incoming/"));
  EXPECT_FALSE(keys.holds("rejected/1700000000000"));
  EXPECT_FALSE(keys.holds("rejected/1700000000000.reason"));
  EXPECT_FALSE(keys.holds("claims/partition-07"));
  // Where rejects go to another bucket and nothing is claimed, both are keys
  // like any other.
  const s3_request_keys alone{};
  EXPECT_TRUE(alone.holds("rejected/1700000000000"));
  EXPECT_TRUE(alone.holds("claims/partition-07"));
  EXPECT_FALSE(alone.holds("folder/"));
}

// A bucket of `keys` in one page, each body its key.
s3_object_window window_of(std::vector<std::string> keys, std::size_t read_ahead) {
  return s3_object_window(
      {.prefix = "", .page_size = 1000, .fetch_concurrency = 2, .read_ahead = read_ahead},
      [keys](const aws::s3_list_options&) {
        aws::s3_object_list list;
        list.keys = keys;
        return list;
      },
      [](const std::string& key) { return std::optional<std::string>(key); });
}

TEST(s3_backlog, counts_the_requests_listed_and_not_started) {
  const std::vector<std::string> keys{"1700000000001", "1700000000002",         "1700000000003",
                                      "1700000000004", "1700000000005",         "claims/p-1",
                                      "folder/",       "rejected/1700000000000"};
  for (const std::size_t read_ahead : {std::size_t{1}, std::size_t{3}, std::size_t{64}}) {
    SCOPED_TRACE(read_ahead);
    auto window = window_of(keys, read_ahead);
    const s3_request_keys requests{.rejected_prefix = "rejected/", .claim_prefix = "claims/"};
    const auto none_started = [](const std::string&) { return false; };
    EXPECT_EQ(s3_backlog(window, requests, none_started), 0u);  // nothing listed yet
    window.start_pass();
    const auto all = [](const std::string&) { return true; };
    ASSERT_NE(window.next(all, true), nullptr);  // the page is listed, the oldest fetched
    EXPECT_EQ(s3_backlog(window, requests, none_started), 5u);
    // In flight elsewhere: not waiting any more.
    EXPECT_EQ(
        s3_backlog(window, requests, [](const std::string& key) { return key == "1700000000004"; }),
        4u);
    // Taken out of the window: handed out.
    window.pop(all);
    EXPECT_EQ(s3_backlog(window, requests, none_started), 4u);
    while (window.next(all, true))
      window.pop(all);
    EXPECT_EQ(s3_backlog(window, requests, none_started), 0u);
  }
}

}  // namespace
