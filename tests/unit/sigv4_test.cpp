#include "widget_consumer/aws/sigv4.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

using namespace widget_consumer::aws;
namespace fs = std::filesystem;
using std::chrono::system_clock;

const fs::path suite_dir = fs::path(WIDGET_CONSUMER_SHARED_DIR) / "aws-sigv4-testsuite" / "v4";
constexpr const char* missing_suite = "suite-missing";

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw std::runtime_error("cannot read " + path.string());
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

system_clock::time_point parse_timestamp(std::string_view iso) {  // "2015-08-30T12:36:00Z"
  auto number = [&](std::size_t at, std::size_t length) {
    return std::stoi(std::string(iso.substr(at, length)));
  };
  const std::chrono::year_month_day date{std::chrono::year{number(0, 4)},
                                         std::chrono::month{static_cast<unsigned>(number(5, 2))},
                                         std::chrono::day{static_cast<unsigned>(number(8, 2))}};
  return std::chrono::sys_days{date} + std::chrono::hours{number(11, 2)} +
         std::chrono::minutes{number(14, 2)} + std::chrono::seconds{number(17, 2)};
}

// request.txt is a raw HTTP/1.1 request: the path may hold spaces and UTF-8
// bytes as sent, and a line starting with whitespace continues the header
// above it (obsolete line folding).
http_request parse_request(const std::string& text) {
  http_request request;
  std::istringstream in(text);
  std::string line;
  std::getline(in, line);
  const auto first_space = line.find(' ');
  const auto version = line.rfind(" HTTP/");
  request.method = line.substr(0, first_space);
  const std::string target = line.substr(first_space + 1, version - first_space - 1);
  while (std::getline(in, line) && !line.empty()) {
    if ((line[0] == ' ' || line[0] == '\t') && !request.headers.empty()) {
      request.headers.back().value += " " + line;
      continue;
    }
    const auto colon = line.find(':');
    request.headers.push_back({line.substr(0, colon), line.substr(colon + 1)});
  }
  std::ostringstream body;
  body << in.rdbuf();
  request.body = body.str();
  const auto host = request.header("host");
  request.url = "https://" + std::string(host.value_or("example.amazonaws.com")) + target;
  return request;
}

std::string authorization_line(const std::string& signed_request) {
  std::istringstream in(signed_request);
  std::string line;
  while (std::getline(in, line))
    if (line.starts_with("Authorization:"))
      return line.substr(std::string_view("Authorization:").size());
  return {};
}

std::vector<std::string> suite_cases() {
  std::vector<std::string> names;
  if (!fs::is_directory(suite_dir))
    return {missing_suite};
  for (const auto& entry : fs::directory_iterator(suite_dir))
    if (entry.is_directory())
      names.push_back(entry.path().filename().string());
  std::ranges::sort(names);
  return names;
}

class aws_sigv4_suite : public testing::TestWithParam<std::string> {};

TEST_P(aws_sigv4_suite, header_signing_matches) {
  if (GetParam() == missing_suite)
    GTEST_SKIP() << "AWS SigV4 test suite not found at " << suite_dir
                 << " (expected beside the checkout in shared/)";
  const fs::path dir = suite_dir / GetParam();
  const auto context = boost::json::parse(read_text(dir / "context.json")).as_object();
  const auto& json_creds = context.at("credentials").as_object();
  credentials creds{
      .access_key_id = std::string(json_creds.at("access_key_id").as_string()),
      .secret_access_key = std::string(json_creds.at("secret_access_key").as_string()),
      .session_token = {},
      .expiration = {}};
  // With omit_session_token the token is added after signing, so it is not signed.
  const auto* omit = context.if_contains("omit_session_token");
  if (json_creds.contains("token") && !(omit && omit->as_bool()))
    creds.session_token = std::string(json_creds.at("token").as_string());
  const signing_params params{.region = std::string(context.at("region").as_string()),
                              .service = std::string(context.at("service").as_string()),
                              .time = parse_timestamp(context.at("timestamp").as_string()),
                              .s3 = false,
                              .unsigned_payload = false,
                              .normalize_path = context.at("normalize").as_bool(),
                              .content_sha256_header = context.at("sign_body").as_bool()};

  http_request request = parse_request(read_text(dir / "request.txt"));
  sign(request, creds, params);

  const auto canonical = canonical_request(request, params);
  EXPECT_EQ(canonical, read_text(dir / "header-canonical-request.txt"));
  const auto to_sign = string_to_sign(canonical, params);
  EXPECT_EQ(to_sign, read_text(dir / "header-string-to-sign.txt"));
  EXPECT_EQ(signature(to_sign, creds, params), read_text(dir / "header-signature.txt"));
  EXPECT_EQ(request.header("authorization").value_or(""),
            authorization_line(read_text(dir / "header-signed-request.txt")));
}

INSTANTIATE_TEST_SUITE_P(aws, aws_sigv4_suite, testing::ValuesIn(suite_cases()),
                         [](const testing::TestParamInfo<std::string>& case_info) {
                           std::string name = case_info.param;
                           std::ranges::replace(name, '-', '_');
                           return name;
                         });

TEST(aws_sigv4_suite_presence, every_case_folder_is_read) {
  if (!fs::is_directory(suite_dir))
    GTEST_SKIP() << "AWS SigV4 test suite not found at " << suite_dir;
  // The published suite has 38 header-signing cases; fewer means a broken copy.
  EXPECT_GE(suite_cases().size(), 38u);
}

// The examples of the S3 "Signature Calculations for the Authorization
// Header" page (docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html).
class s3_documentation_examples : public testing::Test {
 protected:
  const credentials creds{.access_key_id = "AKIAIOSFODNN7EXAMPLE",
                          .secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                          .session_token = {},
                          .expiration = {}};
  const signing_params params{.region = "us-east-1",
                              .service = "s3",
                              .time = parse_timestamp("2013-05-24T00:00:00Z"),
                              .s3 = true};

  std::string signed_authorization(http_request request) const {
    sign(request, creds, params);
    return std::string(request.header("authorization").value_or(""));
  }
  static std::string expected(std::string_view signed_headers, std::string_view signature_hex) {
    return "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
           "SignedHeaders=" +
           std::string(signed_headers) + ", Signature=" + std::string(signature_hex);
  }
};

TEST_F(s3_documentation_examples, get_object) {
  http_request request{.method = "GET",
                       .url = "https://examplebucket.s3.amazonaws.com/test.txt",
                       .headers = {{"Range", "bytes=0-9"}},
                       .body = {}};
  sign(request, creds, params);
  EXPECT_EQ(canonical_request(request, params),
            "GET\n/test.txt\n\n"
            "host:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
            "x-amz-content-sha256:"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
            "x-amz-date:20130524T000000Z\n\n"
            "host;range;x-amz-content-sha256;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(request.header("x-amz-content-sha256"),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(request.header("authorization"),
            expected("host;range;x-amz-content-sha256;x-amz-date",
                     "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"));
}

TEST_F(s3_documentation_examples, put_object_with_encoded_key_and_body) {
  http_request request{.method = "PUT",
                       .url = "https://examplebucket.s3.amazonaws.com/test%24file.text",
                       .headers = {{"Date", "Fri, 24 May 2013 00:00:00 GMT"},
                                   {"x-amz-storage-class", "REDUCED_REDUNDANCY"}},
                       .body = "Welcome to Amazon S3."};
  EXPECT_EQ(signed_authorization(request),
            expected("date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
                     "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"));
}

TEST_F(s3_documentation_examples, get_bucket_lifecycle_with_valueless_query) {
  http_request request{.method = "GET",
                       .url = "https://examplebucket.s3.amazonaws.com/?lifecycle",
                       .headers = {},
                       .body = {}};
  EXPECT_EQ(signed_authorization(request),
            expected("host;x-amz-content-sha256;x-amz-date",
                     "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"));
}

TEST_F(s3_documentation_examples, list_objects_with_unsorted_query) {
  http_request request{.method = "GET",
                       .url = "https://examplebucket.s3.amazonaws.com/?prefix=J&max-keys=2",
                       .headers = {},
                       .body = {}};
  EXPECT_EQ(signed_authorization(request),
            expected("host;x-amz-content-sha256;x-amz-date",
                     "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"));
}

// Expected values below were computed independently (Python hashlib/hmac over
// the canonical request written out by hand).
const credentials project_creds{.access_key_id = "AKIDPROJECT",
                                .secret_access_key = "SECRET",
                                .session_token = "TOKEN",
                                .expiration = {}};

TEST(sigv4_known_answers, s3_unsigned_payload_path_style_with_port_and_session_token) {
  const signing_params params{.region = "eu-west-1",
                              .service = "s3",
                              .time = parse_timestamp("2024-01-02T03:04:05Z"),
                              .s3 = true,
                              .unsigned_payload = true};
  http_request request{.method = "PUT",
                       .url = "http://127.0.0.1:9000/my-bucket/widgets/a%20b%2Bc/%C3%A9t%C3%A9",
                       .headers = {{"User-Agent", "widget_consumer"}},
                       .body = "not hashed"};
  sign(request, project_creds, params);
  EXPECT_EQ(request.header("host"), "127.0.0.1:9000");
  EXPECT_EQ(request.header("x-amz-content-sha256"), "UNSIGNED-PAYLOAD");
  EXPECT_EQ(request.header("x-amz-security-token"), "TOKEN");
  EXPECT_EQ(request.header("authorization"),
            "AWS4-HMAC-SHA256 Credential=AKIDPROJECT/20240102/eu-west-1/s3/aws4_request, "
            "SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token, "
            "Signature=c40e21988aabc60ef1e8e09049b90b49425fb6df7d902c7c95e4c3c736cf8c3a");
}

TEST(sigv4_known_answers, non_s3_path_is_encoded_twice) {
  const signing_params params{
      .region = "eu-west-1", .service = "sqs", .time = parse_timestamp("2024-01-02T03:04:05Z")};
  credentials creds = project_creds;
  creds.session_token.clear();
  http_request request{.method = "POST",
                       .url = "https://sqs.eu-west-1.amazonaws.com/123456789012/my%20queue",
                       .headers = {{"Content-Type", "application/x-amz-json-1.0"}},
                       .body = "{}"};
  sign(request, creds, params);
  EXPECT_THAT(canonical_request(request, params),
              testing::StartsWith("POST\n/123456789012/my%2520queue\n"));
  EXPECT_EQ(request.header("x-amz-content-sha256"), std::nullopt);
  EXPECT_EQ(request.header("authorization"),
            "AWS4-HMAC-SHA256 Credential=AKIDPROJECT/20240102/eu-west-1/sqs/aws4_request, "
            "SignedHeaders=content-type;host;x-amz-date, "
            "Signature=32e71fc47a06009761eb6d1ba7d71723abfb48526b293c9462d6d848d4ce6eb5");
}

TEST(sigv4, s3_paths_are_neither_normalised_nor_double_encoded) {
  const signing_params s3{.region = "r", .service = "s3", .time = {}, .s3 = true};
  EXPECT_EQ(canonical_uri("/bucket//a/./b/../c%20d", s3), "/bucket//a/./b/../c%20d");
  EXPECT_EQ(canonical_uri("/bucket/a b", s3), "/bucket/a%20b");  // tolerant of raw input
  const signing_params other{.region = "r", .service = "svc", .time = {}};
  EXPECT_EQ(canonical_uri("/a//b/./c/../d%20e", other), "/a/b/d%2520e");
}

TEST(sigv4, normalize_path_removes_dot_segments_and_duplicate_slashes) {
  EXPECT_EQ(normalize_path(""), "/");
  EXPECT_EQ(normalize_path("/"), "/");
  EXPECT_EQ(normalize_path("/a/b/.."), "/a/");
  EXPECT_EQ(normalize_path("/a/../.."), "/");
  EXPECT_EQ(normalize_path("//a//b//"), "/a/b/");
  EXPECT_EQ(normalize_path("/a/./b"), "/a/b");
}

// The signing key is kept between signatures: one signed with other keys,
// another day, region or service in between must not change an answer.
TEST(sigv4_known_answers, interleaved_days_regions_services_and_secrets_keep_their_answers) {
  const signing_params s3_params{.region = "eu-west-1",
                                 .service = "s3",
                                 .time = parse_timestamp("2024-01-02T03:04:05Z"),
                                 .s3 = true,
                                 .unsigned_payload = true};
  const signing_params sqs_params{
      .region = "eu-west-1", .service = "sqs", .time = parse_timestamp("2024-01-02T03:04:05Z")};
  credentials sqs_creds = project_creds;
  sqs_creds.session_token.clear();
  auto s3_authorization = [&](const credentials& creds, const signing_params& params) {
    http_request request{.method = "PUT",
                         .url = "http://127.0.0.1:9000/my-bucket/widgets/a%20b%2Bc/%C3%A9t%C3%A9",
                         .headers = {{"User-Agent", "widget_consumer"}},
                         .body = "not hashed"};
    sign(request, creds, params);
    return std::string(*request.header("authorization"));
  };
  auto sqs_authorization = [&](const credentials& creds, const signing_params& params) {
    http_request request{.method = "POST",
                         .url = "https://sqs.eu-west-1.amazonaws.com/123456789012/my%20queue",
                         .headers = {{"Content-Type", "application/x-amz-json-1.0"}},
                         .body = "{}"};
    sign(request, creds, params);
    return std::string(*request.header("authorization"));
  };
  const std::string s3_expected =
      "AWS4-HMAC-SHA256 Credential=AKIDPROJECT/20240102/eu-west-1/s3/aws4_request, "
      "SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token, "
      "Signature=c40e21988aabc60ef1e8e09049b90b49425fb6df7d902c7c95e4c3c736cf8c3a";
  const std::string sqs_expected =
      "AWS4-HMAC-SHA256 Credential=AKIDPROJECT/20240102/eu-west-1/sqs/aws4_request, "
      "SignedHeaders=content-type;host;x-amz-date, "
      "Signature=32e71fc47a06009761eb6d1ba7d71723abfb48526b293c9462d6d848d4ce6eb5";
  credentials rotated = project_creds;
  rotated.secret_access_key += "2";
  signing_params next_day = s3_params;
  next_day.time += std::chrono::hours{24};
  signing_params other_region = s3_params;
  other_region.region = "us-west-2";
  for (int round = 0; round < 2; ++round) {
    EXPECT_EQ(s3_authorization(project_creds, s3_params), s3_expected);
    EXPECT_EQ(sqs_authorization(sqs_creds, sqs_params), sqs_expected);
    EXPECT_NE(s3_authorization(rotated, s3_params), s3_expected);
    EXPECT_NE(s3_authorization(project_creds, next_day), s3_expected);
    EXPECT_NE(s3_authorization(project_creds, other_region), s3_expected);
  }
  EXPECT_EQ(s3_authorization(project_creds, s3_params), s3_expected);
}

TEST(sigv4, signing_again_replaces_the_previous_signature) {
  const signing_params first{.region = "us-east-1",
                             .service = "s3",
                             .time = parse_timestamp("2024-01-02T03:04:05Z"),
                             .s3 = true};
  signing_params later = first;
  later.time += std::chrono::seconds{30};
  http_request request{
      .method = "GET", .url = "https://b.s3.amazonaws.com/k", .headers = {}, .body = {}};
  sign(request, project_creds, first);
  const auto first_authorization = std::string(*request.header("authorization"));
  sign(request, project_creds, later);
  auto count = [&](std::string_view name) {
    return std::ranges::count_if(
        request.headers, [&](const http_header& h) { return detail::iequals(h.name, name); });
  };
  for (auto name :
       {"host", "authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256"})
    EXPECT_EQ(count(name), 1) << name;
  EXPECT_EQ(request.header("x-amz-date"), "20240102T030435Z");
  EXPECT_NE(request.header("authorization"), first_authorization);
}

TEST(sigv4, headers_are_lower_cased_trimmed_collapsed_and_joined) {
  const auto block = canonical_headers({{"X-B", "  a   b\t c  "},
                                        {"x-a", "1"},
                                        {"X-A", "2"},
                                        {"User-Agent", "curl"},
                                        {"Authorization", "old"}});
  EXPECT_EQ(block.headers, "x-a:1,2\nx-b:a b c\n");
  EXPECT_EQ(block.signed_headers, "x-a;x-b");
}

TEST(sigv4, amz_date_formats_utc) {
  EXPECT_EQ(amz_date(parse_timestamp("2015-08-30T12:36:00Z")), "20150830T123600Z");
  EXPECT_EQ(amz_date(parse_timestamp("2000-01-01T00:00:09Z") + std::chrono::milliseconds{999}),
            "20000101T000009Z");
}

TEST(sigv4, the_secret_never_appears_in_the_signed_request) {
  http_request request{
      .method = "GET", .url = "https://b.s3.amazonaws.com/k", .headers = {}, .body = {}};
  sign(request, project_creds,
       {.region = "us-east-1",
        .service = "s3",
        .time = parse_timestamp("2024-01-02T03:04:05Z"),
        .s3 = true});
  for (const auto& header : request.headers)
    EXPECT_EQ(header.value.find("SECRET"), std::string::npos) << header.name;
}

}  // namespace
