#include <widget_consumer/source/s3_bucket.hpp>

#include "support/emulator.hpp"
#include "support/fault_proxy.hpp"
#include "support/service_contents.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

// A request rejected by the S3 source is set aside by a later flush, on the
// settler thread: ".reason", CopyObject to rejected/, then the delete
// (s3_bucket.hpp). Passes go on meanwhile and list it again, since it is
// still in the bucket. Issue 28 (section 3) asked whether it is busy for the
// whole of it, so that no pass hands it out again: a fault proxy holds the
// CopyObject while the test polls pass after pass, with claims on (its
// partition is busy too, not given back meanwhile).

namespace widget_consumer {
namespace {

using namespace std::chrono_literals;
using widget_consumer::testing::emulator;
using widget_consumer::testing::fault_proxy;
using widget_consumer::testing::list_all;
using widget_consumer::testing::unique_name;

aws::client_config config_for(const emulator& server, const std::string& endpoint) {
  aws::client_config config;
  config.region = server.region;
  config.endpoint = endpoint;
  config.max_attempts = 1;
  config.credentials = [server] {
    aws::credentials keys;
    keys.access_key_id = server.access_key_id;
    keys.secret_access_key = server.secret_access_key;
    return keys;
  };
  return config;
}

std::string body_of(const std::string& key) {
  return R"({"type":"create","requestId":"r)" + key + R"(","widgetId":"w)" + key +
         R"(","owner":"Sue Smith"})";
}

TEST(s3_set_aside, a_rejected_key_is_not_handed_out_again_while_its_copy_is_under_way) {
  const emulator server = widget_consumer::testing::plain_emulator();
  aws::s3_client s3(config_for(server, server.endpoint));
  const std::string bucket = unique_name("set-aside");
  s3.create_bucket(bucket);
  const std::vector<std::string> keys{"1700000000000", "1700000000007", "1700000000014"};
  for (const auto& key : keys)
    s3.put_object(bucket, key, body_of(key), "application/json");

  const std::string folder = std::filesystem::temp_directory_path() / unique_name("set-aside");
  std::filesystem::create_directories(folder);
  const std::string go_on = folder + "/go-on";
  testing::fault_proxy_options held_copies;
  held_copies.upstream = server.endpoint;
  held_copies.holds = {"x-amz-copy-source=" + go_on};
  fault_proxy proxy(held_copies);

  {
    s3_bucket_source source(aws::s3_client(config_for(server, proxy.endpoint())), bucket);
    std::vector<received_request<std::string>> delivered;
    for (int polls = 0; polls < 100 && delivered.size() < keys.size(); ++polls)
      for (auto& each : source.poll(0ms, 10))
        delivered.push_back(std::move(each));
    ASSERT_EQ(delivered.size(), keys.size());

    // keys[2] stays in flight, so that begin_flush() hands the set-aside to
    // the settler and returns (with nothing in flight it would wait).
    source.reject(delivered[0].ticket, "why it was rejected");
    source.ack(delivered[1].ticket);
    EXPECT_TRUE(source.begin_flush().empty());
    for (int i = 0; i < 500 && proxy.stats().held == 0; ++i)  // 10 s at most
      std::this_thread::sleep_for(20ms);
    ASSERT_EQ(proxy.stats().held, 1u) << "the CopyObject never reached the proxy";

    // Each poll here is a whole pass: a listing that finds the three keys
    // and nothing to hand out.
    for (int pass = 0; pass < 5; ++pass) {
      const auto again = source.poll(0ms, 10);
      for (const auto& each : again)
        ADD_FAILURE() << "handed out again during the set-aside: " << each.name;
    }
    // Those passes listed the rejected key: it was still there, its reason
    // written, its copy not made.
    std::vector<std::string> listed;
    for (auto& key : list_all(s3, bucket))
      if (!key.starts_with("claims/"))
        listed.push_back(std::move(key));
    EXPECT_EQ(listed, (std::vector<std::string>{keys[0], keys[1], keys[2],
                                                "rejected/" + keys[0] + ".reason"}));

    std::ofstream(go_on).put('\n');
    source.ack(delivered[2].ticket);
    EXPECT_TRUE(source.flush().empty());
    for (int pass = 0; pass < 3; ++pass)
      EXPECT_TRUE(source.poll(0ms, 10).empty());
  }  // the claims are given back

  EXPECT_EQ(list_all(s3, bucket),
            (std::vector<std::string>{"rejected/" + keys[0], "rejected/" + keys[0] + ".reason"}));
  EXPECT_EQ(s3.get_object(bucket, "rejected/" + keys[0]), body_of(keys[0]));
  EXPECT_EQ(s3.get_object(bucket, "rejected/" + keys[0] + ".reason"), "why it was rejected");
  EXPECT_EQ(proxy.stats().held, 1u);  // copied once
  std::filesystem::remove_all(folder);
}

}  // namespace
}  // namespace widget_consumer
