#include "widget_consumer/aws/s3.hpp"

#include "support/emulator.hpp"
#include "support/service_contents.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <string>
#include <vector>

// Every test runs against both local servers: "plain" accepts any signature,
// "iam" verifies each SigV4 signature against the IAM user's key, which is
// where a key encoded one way and signed another would fail.

namespace widget_consumer::aws {
namespace {

using widget_consumer::testing::client_config_for;
using widget_consumer::testing::emulator;
using widget_consumer::testing::list_all;
using widget_consumer::testing::unique_name;

std::string server_name(const ::testing::TestParamInfo<bool>& param) {
  return param.param ? "iam" : "plain";
}

// Keys that break naive encoders: reserved and unreserved punctuation,
// doubled and edge slashes, UTF-8 of every width.
const std::vector<std::string> awkward_keys{
    "plain",
    "with space",
    "two  spaces ",
    "plus+sign",
    "equals=and&ampersand",
    "tilde~dash-under_score.dot",
    "100%",
    "percent%2Fencoded%20already",
    "dir/sub/file.json",
    "trailing/",
    "double//slash",
    "/leading",
    "question?hash#",
    "semi;colon,comma:at@dollar$",
    "star*'(paren)'!",
    "brackets[]{}<>|^`\"\\",
    "xml <&> 'quotes'",
    "tab\there",
    "carriage\rreturn and bell\x07",  // no XML 1.0 body can carry \x07; moto
                                      // cannot route \n in a path (AWS can)
    "ünïcødé/€/𝄞/日本語",
};

// Keys with "." or ".." segments, which URL libraries like to remove.
const std::vector<std::string> dot_segment_keys{"../escape", "a/../b", "a/./b",
                                                "./dot",     "..",     "x/."};

class s3_client_test : public ::testing::TestWithParam<bool> {
 protected:
  s3_client_test()
      : server_(GetParam() ? widget_consumer::testing::iam_emulator()
                           : widget_consumer::testing::plain_emulator()),
        s3_(client_config_for(server_)),
        keys_(awkward_keys) {
    // Dot segments are sent as %2E because the transport lets curl remove
    // literal ones; a server that verifies signatures over the raw path (AWS,
    // moto in IAM mode) then refuses them: see dot_segment_keys_round_trip.
    if (!GetParam())
      keys_.insert(keys_.end(), dot_segment_keys.begin(), dot_segment_keys.end());
  }

  std::string make_bucket() {
    auto bucket = unique_name("bucket");
    s3_.create_bucket(bucket);
    return bucket;
  }

  // Runs boto3 (an independent client) with `arguments`; returns its stdout.
  std::string boto3(const std::string& script, const std::string& bucket,
                    const std::vector<std::string>& arguments = {}) {
    const char* venv = std::getenv("WIDGET_CONSUMER_VENV");
    const std::string python = (venv != nullptr && *venv != '\0')
                                   ? std::string(venv) + "/bin/python"
                                   : std::string(WIDGET_CONSUMER_SOURCE_DIR) + "/.venv/bin/python";
    const auto path = std::filesystem::temp_directory_path() / (unique_name("boto3") + ".py");
    std::ofstream(path) << script;
    // Arguments travel as hex so that no shell quoting can alter a key.
    std::string command = python + " " + path.string() + " " + server_.endpoint + " " +
                          server_.access_key_id + " " + server_.secret_access_key + " " + bucket;
    // Appended in two steps: GCC 12 at -O3 reports a false -Wrestrict on
    // `" " + std::string&&` here.
    for (const auto& argument : arguments) {
      command += ' ';
      command += hex(argument);
    }
    std::string output;
    FILE* pipe = ::popen(command.c_str(), "r");
    if (pipe == nullptr)
      throw std::runtime_error("cannot run " + python);
    char buffer[4096];
    for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;)
      output.append(buffer, n);
    const int status = ::pclose(pipe);
    std::filesystem::remove(path);
    if (status != 0)
      throw std::runtime_error("boto3 script failed: " + output);
    return output;
  }

  static std::string hex(std::string_view bytes) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    for (const unsigned char c : bytes) {
      out += digits[c >> 4];
      out += digits[c & 0xF];
    }
    return out;
  }

  emulator server_;
  s3_client s3_;
  std::vector<std::string> keys_;  // the awkward keys this server handles
};

constexpr const char* boto3_prelude = R"(
import sys, json, boto3
from botocore.config import Config
endpoint, key_id, secret, bucket = sys.argv[1:5]
items = [bytes.fromhex(a).decode("utf-8") for a in sys.argv[5:]]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id=key_id, aws_secret_access_key=secret,
                  config=Config(s3={"addressing_style": "path"}))
)";

TEST_P(s3_client_test, buckets_exist_once_created) {
  const auto bucket = unique_name("bucket");
  EXPECT_FALSE(s3_.head_bucket(bucket));
  s3_.create_bucket(bucket);
  EXPECT_TRUE(s3_.head_bucket(bucket));
}

TEST_P(s3_client_test, awkward_keys_round_trip_exactly) {
  const auto bucket = make_bucket();
  for (const auto& key : keys_)
    s3_.put_object(bucket, key, "body of " + key, "application/json");
  for (const auto& key : keys_) {
    const auto body = s3_.get_object(bucket, key);
    ASSERT_TRUE(body.has_value()) << key;
    EXPECT_EQ(*body, "body of " + key);
  }
  auto expected = keys_;
  std::ranges::sort(expected);  // S3 lists in UTF-8 byte order
  EXPECT_EQ(list_all(s3_, bucket), expected);
}

TEST_P(s3_client_test, boto3_reads_what_we_write_and_we_read_what_it_writes) {
  const auto bucket = make_bucket();
  for (const auto& key : keys_)
    s3_.put_object(bucket, key, "ours " + key);
  const auto dump = boost::json::parse(boto3(std::string(boto3_prelude) + R"(
out = []
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
    for o in page.get("Contents", []):
        body = s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
        out.append([o["Key"].encode("utf-8").hex(), body.hex()])
print(json.dumps(out))
)",
                                             bucket));
  std::vector<std::string> seen;
  for (const auto& entry : dump.as_array()) {
    const auto& pair = entry.as_array();
    const std::string key_hex(pair[0].as_string());
    const auto found =
        std::ranges::find_if(keys_, [&](const auto& k) { return hex(k) == key_hex; });
    ASSERT_NE(found, keys_.end()) << "boto3 saw a key we did not write: " << key_hex;
    EXPECT_EQ(std::string(pair[1].as_string()), hex("ours " + *found));
    seen.push_back(*found);
  }
  EXPECT_EQ(seen.size(), keys_.size());

  const auto theirs = make_bucket();
  boto3(std::string(boto3_prelude) + R"(
for key in items:
    s3.put_object(Bucket=bucket, Key=key, Body=("theirs " + key).encode("utf-8"))
)",
        theirs, keys_);
  auto expected = keys_;
  std::ranges::sort(expected);
  EXPECT_EQ(list_all(s3_, theirs), expected);
  for (const auto& key : keys_)
    EXPECT_EQ(s3_.get_object(theirs, key), "theirs " + key) << key;
}

TEST_P(s3_client_test, a_missing_key_is_absent_but_a_missing_bucket_is_an_error) {
  const auto bucket = make_bucket();
  EXPECT_FALSE(s3_.get_object(bucket, "no/such key").has_value());
  const auto missing = unique_name("missing");
  try {
    s3_.get_object(missing, "key");
    FAIL() << "expected service_error";
  } catch (const service_error& error) {
    EXPECT_EQ(error.status(), 404);
    EXPECT_EQ(error.code(), "NoSuchBucket");
    EXPECT_NE(std::string(error.what()).find("S3 GetObject s3://" + missing + "/key"),
              std::string::npos)
        << error.what();
  }
}

TEST_P(s3_client_test, listing_pages_with_prefix_start_after_and_tokens) {
  const auto bucket = make_bucket();
  for (const auto* key : {"req/1000", "req/1001", "req/1002", "req/1003", "req/1004", "req/1005",
                          "req/1006", "other/1", "req+/x"})
    s3_.put_object(bucket, key, "x");

  s3_list_options options;
  options.prefix = "req/";
  options.max_keys = 3;
  auto page = s3_.list_objects_v2(bucket, options);
  EXPECT_EQ(page.keys, (std::vector<std::string>{"req/1000", "req/1001", "req/1002"}));
  ASSERT_TRUE(page.has_more());
  EXPECT_EQ(list_all(s3_, bucket, options),
            (std::vector<std::string>{"req/1000", "req/1001", "req/1002", "req/1003", "req/1004",
                                      "req/1005", "req/1006"}));

  options.start_after = "req/1004";
  EXPECT_EQ(list_all(s3_, bucket, options), (std::vector<std::string>{"req/1005", "req/1006"}));

  s3_list_options plus;
  plus.prefix = "req+";
  EXPECT_EQ(s3_.list_objects_v2(bucket, plus).keys, std::vector<std::string>{"req+/x"});

  options.max_keys = 1001;
  EXPECT_THROW(s3_.list_objects_v2(bucket, options), std::invalid_argument);
  EXPECT_THROW(s3_.get_object(bucket, ""), std::invalid_argument);
}

TEST_P(s3_client_test, head_object_describes_awkward_keys_without_their_bytes) {
  const auto bucket = make_bucket();
  const auto before = std::chrono::system_clock::now();
  for (const auto& key : keys_)
    s3_.put_object(bucket, key, "body of " + key, "application/json");
  s3_.put_object(bucket, "empty", "");
  for (const auto& key : keys_) {
    const auto info = s3_.head_object(bucket, key);
    ASSERT_TRUE(info.has_value()) << key;
    const std::string body = "body of " + key;
    EXPECT_EQ(info->size, body.size()) << key;
    // A single-part upload's ETag is the quoted MD5 of its bytes.
    EXPECT_EQ(info->etag, "\"" + to_hex(md5(body)) + "\"") << key;
    EXPECT_EQ(info->content_type, "application/json") << key;
    EXPECT_TRUE(info->metadata.empty()) << key;
    ASSERT_TRUE(info->last_modified.has_value()) << key;
    // Last-Modified has whole seconds; the server shares our clock.
    EXPECT_GE(*info->last_modified, std::chrono::floor<std::chrono::seconds>(before)) << key;
    EXPECT_LE(*info->last_modified, std::chrono::system_clock::now()) << key;
  }
  const auto empty = s3_.head_object(bucket, "empty");
  ASSERT_TRUE(empty.has_value());
  EXPECT_EQ(empty->size, 0u);
  EXPECT_EQ(empty->content_type, "application/octet-stream");
}

TEST_P(s3_client_test, head_object_reads_user_metadata_written_by_boto3) {
  const auto bucket = make_bucket();
  // Metadata names in mixed case: S3 stores and returns them lower-cased.
  boto3(std::string(boto3_prelude) + R"(
s3.put_object(Bucket=bucket, Key=items[0], Body=b"0123456789", ContentType="text/plain",
              Metadata={"Widget-Id": "w-1", "owner": "Mary Matthews", "empty": ""})
)",
        bucket, {"meta/with space+plus"});
  const auto info = s3_.head_object(bucket, "meta/with space+plus");
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->size, 10u);
  EXPECT_EQ(info->etag, "\"" + to_hex(md5("0123456789")) + "\"");
  EXPECT_EQ(info->content_type, "text/plain");
  EXPECT_EQ(info->metadata, (std::map<std::string, std::string>{
                                {"empty", ""}, {"owner", "Mary Matthews"}, {"widget-id", "w-1"}}));
}

TEST_P(s3_client_test, head_object_of_a_missing_key_or_bucket_is_absent) {
  const auto bucket = make_bucket();
  s3_.put_object(bucket, "present", "x");
  EXPECT_FALSE(s3_.head_object(bucket, "no/such key").has_value());
  EXPECT_FALSE(s3_.head_object(bucket, "presen").has_value());
  // HEAD answers carry no error body, so a missing bucket cannot be told
  // from a missing key: s3.hpp documents this, head_bucket tells them apart.
  EXPECT_FALSE(s3_.head_object(unique_name("missing"), "present").has_value());
  EXPECT_THROW(s3_.head_object(bucket, ""), std::invalid_argument);
}

TEST_P(s3_client_test, listing_follows_the_continuation_token_past_1000_keys) {
  const auto bucket = make_bucket();
  constexpr int count = 1050;  // one full default page of 1,000 and a second of 50
  std::vector<std::string> expected;
  for (int i = 0; i < count; ++i) {
    // Not zero-padded, so S3's byte order ("k/10" < "k/9") differs from
    // insertion order.
    expected.push_back("k/" + std::to_string(i));
  }
  // A few threads sharing one client (it is thread-safe) make 1,050 PUTs
  // take seconds rather than a minute.
  std::atomic<std::size_t> next{0};
  std::vector<std::future<void>> workers;
  for (int t = 0; t < 8; ++t)
    workers.push_back(std::async(std::launch::async, [&] {
      for (auto i = next++; i < expected.size(); i = next++)
        s3_.put_object(bucket, expected[i], "x");
    }));
  for (auto& worker : workers)
    worker.get();  // rethrows a failed PUT
  std::ranges::sort(expected);

  const auto first = s3_.list_objects_v2(bucket);
  ASSERT_EQ(first.keys.size(), 1000u);
  ASSERT_TRUE(first.has_more());
  s3_list_options rest;
  rest.continuation_token = first.next_continuation_token;
  const auto second = s3_.list_objects_v2(bucket, rest);
  EXPECT_EQ(second.keys.size(), 50u);
  EXPECT_FALSE(second.has_more());

  std::vector<std::string> listed = first.keys;
  listed.insert(listed.end(), second.keys.begin(), second.keys.end());
  EXPECT_EQ(listed, expected);  // every key once, in S3's order
  EXPECT_EQ(list_all(s3_, bucket), expected);
}

TEST_P(s3_client_test, an_empty_bucket_lists_one_empty_last_page) {
  const auto bucket = make_bucket();
  const auto page = s3_.list_objects_v2(bucket);
  EXPECT_TRUE(page.keys.empty());
  EXPECT_FALSE(page.has_more());
}

TEST_P(s3_client_test, delete_object_and_delete_objects_remove_awkward_keys) {
  const auto bucket = make_bucket();
  for (const auto& key : keys_)
    s3_.put_object(bucket, key, "x");
  s3_.delete_object(bucket, keys_.front());
  s3_.delete_object(bucket, "never existed");  // idempotent, like S3

  // More than one request's worth: absent keys delete fine, so the batch
  // split is tested without writing 1,000 objects.
  std::vector<std::string> keys(keys_.begin() + 1, keys_.end());
  for (int i = 0; i < 1500; ++i)
    keys.push_back("absent/" + std::to_string(i));
  EXPECT_TRUE(s3_.delete_objects(bucket, keys).empty());
  EXPECT_TRUE(list_all(s3_, bucket).empty());
}

TEST_P(s3_client_test, delete_objects_returns_the_keys_it_could_not_delete) {
  const auto bucket = make_bucket();
  // A bucket policy that protects one prefix makes S3 refuse those keys only.
  boto3(std::string(boto3_prelude) + R"(
s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject",
     "Resource": "arn:aws:s3:::" + bucket + "/protected/*"}]}))
)",
        bucket);
  const std::vector<std::string> keys{"free", "protected/a & b", "also free"};
  for (const auto& key : keys)
    s3_.put_object(bucket, key, "x");
  const auto failures = s3_.delete_objects(bucket, keys);
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_EQ(failures[0].key, "protected/a & b");
  EXPECT_EQ(failures[0].code, "AccessDenied");
  EXPECT_EQ(list_all(s3_, bucket), std::vector<std::string>{"protected/a & b"});
}

TEST_P(s3_client_test, copy_object_handles_awkward_source_keys) {
  const auto source = make_bucket();
  const auto target = make_bucket();
  for (const auto& key : keys_) {
    s3_.put_object(source, key, "copied " + key);
    s3_.copy_object(source, key, target, "rejected/" + key);
  }
  for (const auto& key : keys_)
    EXPECT_EQ(s3_.get_object(target, "rejected/" + key), "copied " + key) << key;

  try {
    s3_.copy_object(source, "no such key", target, "x");
    FAIL() << "expected service_error";
  } catch (const service_error& error) {
    EXPECT_EQ(error.code(), "NoSuchKey") << error.what();
  }
}

TEST_P(s3_client_test, dot_segment_keys_round_trip) {
  const auto bucket = make_bucket();
  for (const auto& key : dot_segment_keys)
    s3_.put_object(bucket, key, key);
  for (const auto& key : dot_segment_keys)
    EXPECT_EQ(s3_.get_object(bucket, key), key) << key;
  auto expected = dot_segment_keys;
  std::ranges::sort(expected);
  EXPECT_EQ(list_all(s3_, bucket), expected);
  EXPECT_TRUE(s3_.delete_objects(bucket, dot_segment_keys).empty());
  EXPECT_TRUE(list_all(s3_, bucket).empty());
}

INSTANTIATE_TEST_SUITE_P(servers, s3_client_test, ::testing::Values(false, true), server_name);

}  // namespace
}  // namespace widget_consumer::aws
