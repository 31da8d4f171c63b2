#include "widget_consumer/aws/sigv4.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

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

}  // namespace
