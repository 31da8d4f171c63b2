// A bucket in another region than the client's (aws/s3_region_redirect.hpp),
// against a fake S3 on loopback (support/loopback_http_server.hpp) that
// answers as S3 documents it: a request whose Authorization names another
// region in its credential scope than the bucket's gets 301
// PermanentRedirect, 400 AuthorizationHeaderMalformed or 307
// TemporaryRedirect, with x-amz-bucket-region, and a HEAD the status and the
// header with no body; a request signed for the bucket's region is served.
// No local S3 server emulates this (moto does not). The endpoint is a custom
// one, so the client keeps it and changes only the signing region; where
// AWS's own endpoint is swapped for the bucket's is checked on the URL.
#include "widget_consumer/aws/s3_region_redirect.hpp"

#include "widget_consumer/aws/s3.hpp"
#include "widget_consumer/destination/s3_bucket.hpp"
#include "widget_consumer/source/s3_bucket.hpp"
#include "widget_consumer/unrecoverable_error.hpp"

#include "support/loopback_http_server.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

namespace aws = widget_consumer::aws;
using widget_consumer::testing::http_reply;
using widget_consumer::testing::loopback_http_server;
using widget_consumer::testing::received_http_request;
using widget_consumer::testing::scripted_reply;
using namespace std::chrono_literals;

namespace {

constexpr std::string_view bucket = "course-bucket";
constexpr std::string_view bucket_region = "eu-west-1";
constexpr std::string_view profile_region = "us-east-1";

// How the fake answers a request signed for the wrong region.
enum class wrong_region {
  permanent_redirect,          // 301 PermanentRedirect + x-amz-bucket-region
  authorization_malformed,     // 400 AuthorizationHeaderMalformed + <Region> + the header
  region_in_body_only,         // 400 AuthorizationHeaderMalformed + <Region>, no header
  temporary_redirect,          // 307 TemporaryRedirect + the header
  header_on_head_bucket_only,  // 301 with neither: only HeadBucket's answer names the region
  always,                      // a redirect whatever the signature: a loop
  never_named,                 // 301 and no answer ever names the region
};

// The region of the Authorization header's credential scope:
// "AWS4-HMAC-SHA256 Credential=AKID/20261207/eu-west-1/s3/aws4_request, ...".
std::string signed_region(const received_http_request& request) {
  const auto found = request.headers.find("authorization");
  if (found == request.headers.end())
    return {};
  const std::string& text = found->second;
  auto start = text.find("Credential=");
  for (int slash = 0; slash < 2 && start != std::string::npos; ++slash)
    start = text.find('/', start + 1);
  if (start == std::string::npos)
    return {};
  const auto end = text.find('/', start + 1);
  return text.substr(start + 1, end - start - 1);
}

class fake_s3 {
 public:
  explicit fake_s3(wrong_region mode) : mode_(mode) {}

  scripted_reply answer(const received_http_request& request) {
    std::lock_guard lock(mutex_);
    const bool head = request.method == "HEAD";
    const bool head_bucket = head && request.path() == "/" + std::string(bucket);
    const std::string region = signed_region(request);
    regions_seen_.push_back(region);
    if (region != bucket_region || mode_ == wrong_region::always) {
      ++redirects_;
      return redirect(head, head_bucket, region);
    }
    return served(request);
  }

  int redirects() const {
    std::lock_guard lock(mutex_);
    return redirects_;
  }
  std::vector<std::string> regions_seen() const {
    std::lock_guard lock(mutex_);
    return regions_seen_;
  }

 private:
  scripted_reply redirect(bool head, bool head_bucket, const std::string& region) const {
    const std::string named = "x-amz-bucket-region: " + std::string(bucket_region) + "\r\n";
    const std::string xml = "Content-Type: application/xml\r\n";
    const std::string endpoint = "<Endpoint>" + std::string(bucket) + ".s3." +
                                 std::string(bucket_region) + ".amazonaws.com</Endpoint><Bucket>" +
                                 std::string(bucket) + "</Bucket>";
    const std::string permanent =
        "<Error><Code>PermanentRedirect</Code><Message>The bucket you "
        "are attempting to access must be addressed using the "
        "specified endpoint.</Message>" +
        endpoint + "<RequestId>R1</RequestId></Error>";
    const std::string malformed =
        "<Error><Code>AuthorizationHeaderMalformed</Code><Message>The authorization header is "
        "malformed; the region '" +
        region + "' is wrong; expecting '" + std::string(bucket_region) + "'</Message><Region>" +
        std::string(bucket_region) + "</Region><RequestId>R2</RequestId></Error>";
    switch (mode_) {
      case wrong_region::permanent_redirect:
      case wrong_region::always:
        return {http_reply(301, head ? "" : permanent, named + (head ? "" : xml))};
      case wrong_region::authorization_malformed:
        return {http_reply(400, head ? "" : malformed, named + (head ? "" : xml))};
      case wrong_region::region_in_body_only:
        return {http_reply(400, head ? "" : malformed, head_bucket ? named : xml)};
      case wrong_region::temporary_redirect:
        return {http_reply(307,
                           head ? ""
                                : "<Error><Code>TemporaryRedirect</Code><Message>Please re-send "
                                  "this request to the specified temporary endpoint.</Message>" +
                                      endpoint + "</Error>",
                           named + "Location: http://elsewhere.invalid/\r\n")};
      case wrong_region::header_on_head_bucket_only:
        return {http_reply(301, head ? "" : permanent, head_bucket ? named : xml)};
      case wrong_region::never_named:
        return {http_reply(301, head ? "" : permanent)};
    }
    return {http_reply(500, "")};
  }

  static scripted_reply served(const received_http_request& request) {
    const std::string object = "/" + std::string(bucket) + "/widgets/w1";
    const std::string etag = "ETag: \"5d41402abc4b2a76b9719d911017c592\"\r\n";
    if (request.method == "HEAD" && request.path() == object)
      return {"HTTP/1.1 200 X\r\nContent-Length: 5\r\n" + etag + "\r\n"};
    if (request.method == "HEAD")
      return {http_reply(200, "", "x-amz-bucket-region: " + std::string(bucket_region) + "\r\n")};
    if (request.method == "GET" && request.path() == object)
      return {http_reply(200, "hello", etag)};
    if (request.path().ends_with("/forbidden"))
      return {http_reply(403,
                         "<Error><Code>AccessDenied</Code><Message>Access Denied</Message>"
                         "</Error>")};
    if (request.method == "GET")
      return {http_reply(200,
                         "<ListBucketResult><EncodingType>url</EncodingType><IsTruncated>false"
                         "</IsTruncated><Contents><Key>widgets/w1</Key></Contents>"
                         "</ListBucketResult>")};
    if (request.method == "PUT")
      return {http_reply(200, "", etag)};
    if (request.method == "DELETE")
      return {http_reply(204, "")};
    if (request.method == "POST" && request.target.ends_with("?delete="))
      return {http_reply(200, "<DeleteResult/>")};
    return {http_reply(400, "<Error><Code>NotInTheFake</Code></Error>")};
  }

  wrong_region mode_;
  mutable std::mutex mutex_;
  int redirects_ = 0;
  std::vector<std::string> regions_seen_;
};

struct redirecting_server {
  explicit redirecting_server(wrong_region mode)
      : fake(mode),
        server([this](const received_http_request& request) { return fake.answer(request); }) {}

  aws::client_config config(std::vector<std::string>* notices = nullptr) const {
    aws::client_config config;
    config.region = std::string(profile_region);
    config.endpoint = server.endpoint();
    config.max_attempts = 3;
    config.http.connect_timeout = 1000ms;
    config.http.total_timeout = 2000ms;
    config.credentials = [] { return aws::credentials{"AKIDEXAMPLE", "secret", {}, {}}; };
    config.retry_env = aws::retry_environment{[] { return std::chrono::system_clock::now(); },
                                              [] { return 0.5; }, [](std::chrono::milliseconds) {}};
    if (notices != nullptr)
      config.notice = [notices](std::string_view text) { notices->emplace_back(text); };
    return config;
  }

  fake_s3 fake;
  loopback_http_server server;
};

bool contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

// Every operation the consumer makes, once each: the first is redirected.
void every_operation(aws::s3_client& s3) {
  const std::string b(bucket);
  EXPECT_EQ(s3.get_object(b, "widgets/w1"), "hello");
  EXPECT_EQ(s3.list_objects_v2(b).keys, std::vector<std::string>{"widgets/w1"});
  s3.put_object(b, "widgets/w1", "hello", "application/json");
  s3.delete_object(b, "widgets/w1");
  const std::vector<std::string> keys{"a", "b"};
  EXPECT_TRUE(s3.delete_objects(b, keys).empty());
  const auto info = s3.head_object(b, "widgets/w1");
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->size, 5u);
  EXPECT_TRUE(s3.head_bucket(b));
}

constexpr int operations = 7;  // in every_operation

// A source alone on its bucket: no claims, whose conditional writes the fake
// does not serve.
widget_consumer::s3_bucket_source_options alone() {
  widget_consumer::s3_bucket_source_options options;
  options.claims = false;
  return options;
}

}  // namespace

// Each way S3 says "another region": the first call is sent twice (the second
// time signed for the bucket's region), every later call once, straight to it.
TEST(S3RegionRedirect, EachOperationGoesStraightToTheBucketsRegionAfterTheFirstRedirect) {
  for (const auto mode : {wrong_region::permanent_redirect, wrong_region::authorization_malformed,
                          wrong_region::region_in_body_only, wrong_region::temporary_redirect,
                          wrong_region::header_on_head_bucket_only}) {
    SCOPED_TRACE(static_cast<int>(mode));
    redirecting_server s3_server(mode);
    aws::s3_client s3(s3_server.config());
    every_operation(s3);
    // One more request than calls: the redirected one, plus HeadBucket when
    // only its answer names the region (itself signed for the wrong one).
    const bool probed = mode == wrong_region::header_on_head_bucket_only;
    const int wrong = probed ? 2 : 1;
    EXPECT_EQ(s3_server.fake.redirects(), wrong);
    const auto seen = s3_server.fake.regions_seen();
    ASSERT_EQ(seen.size(), static_cast<std::size_t>(operations + 1 + (probed ? 1 : 0)));
    EXPECT_EQ(seen[0], profile_region);
    for (std::size_t i = 1; i < seen.size(); ++i)
      EXPECT_EQ(seen[i], (probed && i == 1) ? profile_region : bucket_region) << i;
    // A copy of the client shares what was learned, as it shares connections.
    aws::s3_client copy = s3;
    EXPECT_EQ(copy.get_object(std::string(bucket), "widgets/w1"), "hello");
    EXPECT_EQ(s3_server.fake.redirects(), wrong);
  }
}

// Each operation as the first call of a fresh client: HEAD's bodiless
// answers and the POST of DeleteObjects are redirected like a GET.
TEST(S3RegionRedirect, EveryOperationCanBeTheOneRedirected) {
  const std::string b(bucket);
  const std::vector<std::string> keys{"a"};
  const std::vector<std::function<void(aws::s3_client&)>> calls{
      [&](aws::s3_client& s3) { EXPECT_TRUE(s3.head_object(b, "widgets/w1").has_value()); },
      [&](aws::s3_client& s3) { EXPECT_TRUE(s3.head_bucket(b)); },
      [&](aws::s3_client& s3) { EXPECT_TRUE(s3.delete_objects(b, keys).empty()); },
      [&](aws::s3_client& s3) { s3.put_object(b, "widgets/w1", "x"); },
      [&](aws::s3_client& s3) { s3.delete_object(b, "widgets/w1"); },
      [&](aws::s3_client& s3) { EXPECT_EQ(s3.list_objects_v2(b).keys.size(), 1u); },
  };
  for (const auto mode :
       {wrong_region::permanent_redirect, wrong_region::authorization_malformed}) {
    for (std::size_t i = 0; i < calls.size(); ++i) {
      SCOPED_TRACE(std::to_string(static_cast<int>(mode)) + "/" + std::to_string(i));
      redirecting_server s3_server(mode);
      aws::s3_client s3(s3_server.config());
      calls[i](s3);
      calls[i](s3);
      EXPECT_EQ(s3_server.fake.redirects(), 1);
      EXPECT_EQ(s3_server.fake.regions_seen().size(), 3u);
    }
  }
}

TEST(S3RegionRedirect, TheRegionUsedIsToldOncePerBucket) {
  redirecting_server s3_server(wrong_region::permanent_redirect);
  std::vector<std::string> notices;
  aws::s3_client s3(s3_server.config(&notices));
  every_operation(s3);
  every_operation(s3);
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_EQ(notices[0],
            "S3 bucket s3://course-bucket is in region eu-west-1, not us-east-1: its "
            "requests are signed for eu-west-1 and sent to " +
                s3_server.server.endpoint());
}

// A server that redirects again once signed for the region it named: the
// call ends with the second answer, two requests in all, none retried.
TEST(S3RegionRedirect, ARedirectIsFollowedOnceAndNeverRetried) {
  redirecting_server s3_server(wrong_region::always);
  aws::s3_client s3(s3_server.config());
  try {
    s3.get_object(std::string(bucket), "widgets/w1");
    FAIL() << "no error";
  } catch (const aws::service_error& e) {
    EXPECT_EQ(e.code(), "PermanentRedirect");
    EXPECT_TRUE(contains(e.what(),
                         "the bucket is in region eu-west-1 (redirected from "
                         "us-east-1), and the answer redirected again"))
        << e.what();
  }
  EXPECT_EQ(s3_server.fake.regions_seen(), (std::vector<std::string>{"us-east-1", "eu-west-1"}));
  // The next call starts in the region learned and is redirected no further.
  try {
    s3.head_object(std::string(bucket), "widgets/w1");
    FAIL() << "no error";
  } catch (const aws::service_error& e) {
    EXPECT_EQ(e.status(), 301);
    EXPECT_TRUE(contains(e.what(),
                         "the bucket is in region eu-west-1, which the request was "
                         "signed for"))
        << e.what();
  }
  EXPECT_EQ(s3_server.fake.regions_seen().size(), 3u);
}

TEST(S3RegionRedirect, ARegionNoAnswerNamesIsNotGuessed) {
  redirecting_server s3_server(wrong_region::never_named);
  aws::s3_client s3(s3_server.config());
  try {
    s3.put_object(std::string(bucket), "widgets/w1", "x");
    FAIL() << "no error";
  } catch (const aws::service_error& e) {
    EXPECT_EQ(e.status(), 301);
    EXPECT_TRUE(contains(e.what(), "the bucket's region could not be learned")) << e.what();
  }
  // The PUT, then the HeadBucket asked for the region; nothing more.
  EXPECT_EQ(s3_server.fake.regions_seen(), (std::vector<std::string>{"us-east-1", "us-east-1"}));
}

// An error met in the bucket's region says which region that was: the
// connection details of a start-up check's message name the profile's.
TEST(S3RegionRedirect, ErrorsInTheBucketsRegionNameIt) {
  redirecting_server s3_server(wrong_region::permanent_redirect);
  aws::s3_client s3(s3_server.config());
  const auto what = [&] {
    try {
      s3.get_object(std::string(bucket), "forbidden");
    } catch (const aws::service_error& e) {
      EXPECT_EQ(e.code(), "AccessDenied");
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_TRUE(contains(what(),
                       "Access Denied; the bucket is in region eu-west-1 (redirected "
                       "from us-east-1)"));
  EXPECT_TRUE(contains(what(),
                       "Access Denied; the bucket is in region eu-west-1 (learned from an "
                       "earlier redirect)"));
  EXPECT_EQ(s3_server.fake.redirects(), 1);
}

// The start-up checks of the S3 store and source pass through a redirect,
// and when it cannot be followed the message names the bucket's region.
TEST(S3RegionRedirect, StartupChecksFollowTheRedirectOrNameTheBucketsRegion) {
  {
    redirecting_server s3_server(wrong_region::permanent_redirect);
    widget_consumer::s3_bucket_store store(s3_server.config(), std::string(bucket), {},
                                           {.enabled = false});  // redirects, not the fence
    EXPECT_NO_THROW(store.check_ready());
    widget_consumer::s3_bucket_source source(s3_server.config(), std::string(bucket), alone());
    EXPECT_NO_THROW(source.check_ready());
  }
  redirecting_server s3_server(wrong_region::always);
  widget_consumer::s3_bucket_store store(s3_server.config(), std::string(bucket), {},
                                         {.enabled = false});  // redirects, not the fence
  try {
    store.check_ready();
    FAIL() << "no error";
  } catch (const widget_consumer::unrecoverable_error& e) {
    EXPECT_TRUE(contains(e.what(), "cannot use the widget bucket s3://course-bucket")) << e.what();
    EXPECT_TRUE(contains(e.what(), "the bucket is in region eu-west-1")) << e.what();
  }
  widget_consumer::s3_bucket_source source(s3_server.config(), std::string(bucket), alone());
  try {
    source.check_ready();
    FAIL() << "no error";
  } catch (const widget_consumer::unrecoverable_error& e) {
    EXPECT_TRUE(contains(e.what(), "the bucket is in region eu-west-1")) << e.what();
  }
}

// On AWS's own endpoint a bucket elsewhere is reached at its region's
// endpoint; a custom endpoint is kept whatever the region.
TEST(S3RegionRedirect, OnlyAwsOwnEndpointFollowsTheBucketsRegion) {
  aws::client_config on_aws;
  on_aws.region = "us-east-1";
  on_aws.endpoint = aws::aws_endpoint_url("s3", "us-east-1");
  EXPECT_EQ(aws::detail::s3_request_url(on_aws, "eu-west-1", "course-bucket", "k", ""),
            "https://course-bucket.s3.eu-west-1.amazonaws.com/k");
  EXPECT_EQ(aws::detail::s3_request_url(on_aws, "cn-north-1", "course-bucket", "", "delete="),
            "https://course-bucket.s3.cn-north-1.amazonaws.com.cn/?delete=");
  aws::client_config custom = on_aws;
  custom.endpoint = "http://127.0.0.1:4566";
  custom.path_style = true;
  EXPECT_EQ(aws::detail::s3_request_url(custom, "eu-west-1", "course-bucket", "k", ""),
            "http://127.0.0.1:4566/course-bucket/k");
}
