#include "widget_consumer/aws/config.hpp"

#include <gtest/gtest.h>

#include <unistd.h>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>

#include "support/aws_environment.hpp"

namespace {

using namespace widget_consumer::aws;
namespace fs = std::filesystem;

// Each test runs in an isolated_aws_environment (tests/support): no AWS_*
// variable and no ~/.aws of the machine leaks in.
class config_test : public testing::Test {
 protected:
  static void set(const char* name, const std::string& value) {
    widget_consumer::testing::isolated_aws_environment::set(name, value);
  }
  void write_config(const std::string& text) const { environment_.write_aws_file("config", text); }

  widget_consumer::testing::isolated_aws_environment environment_{"config_test"};
  const fs::path& home_ = environment_.home();
};

TEST_F(config_test, region_defaults_to_us_east_1) {
  EXPECT_EQ(resolve_region(), "us-east-1");
}

TEST_F(config_test, region_precedence) {
  write_config("[default]\nregion = eu-north-1\n[profile other]\nregion = ap-south-1\n");
  EXPECT_EQ(resolve_region(), "eu-north-1");
  EXPECT_EQ(resolve_region(std::nullopt, "other"), "ap-south-1");
  set("AWS_PROFILE", "other");
  EXPECT_EQ(resolve_region(), "ap-south-1");
  set("AWS_DEFAULT_REGION", "eu-west-2");
  EXPECT_EQ(resolve_region(), "eu-west-2");
  set("AWS_REGION", "eu-west-3");
  EXPECT_EQ(resolve_region(), "eu-west-3");
  EXPECT_EQ(resolve_region("ca-central-1"), "ca-central-1");
}

TEST_F(config_test, empty_variables_count_as_unset) {
  set("AWS_REGION", "");
  EXPECT_EQ(resolve_region(), "us-east-1");
}

TEST_F(config_test, config_file_location_and_profile_sections) {
  const auto custom = home_ / "elsewhere.ini";
  std::ofstream(custom) << "[profile default]\nregion = sa-east-1\n[other]\nregion = nope\n";
  set("AWS_CONFIG_FILE", custom.string());
  EXPECT_EQ(shared_config_file(), custom);
  EXPECT_EQ(resolve_region(), "sa-east-1");
  // In the config file a non-default profile needs the "profile " prefix.
  EXPECT_EQ(resolve_region(std::nullopt, "other"), "us-east-1");
}

TEST_F(config_test, shared_file_paths_default_to_home_and_expand_tilde) {
  EXPECT_EQ(shared_config_file(), home_ / ".aws" / "config");
  EXPECT_EQ(shared_credentials_file(), home_ / ".aws" / "credentials");
  set("AWS_SHARED_CREDENTIALS_FILE", "~/creds");
  EXPECT_EQ(shared_credentials_file(), home_ / "creds");
}

TEST(ini, comments_sub_properties_and_case) {
  const auto file = parse_ini(
      "# comment\n[default]\nRegion = eu-west-1 \n; other\ns3 =\n  addressing_style = path\n"
      "output=json\n[profile x]\naws_access_key_id=AK\n");
  EXPECT_EQ(file.at("default").at("region"), "eu-west-1");
  EXPECT_EQ(file.at("default").at("s3.addressing_style"), "path");
  EXPECT_EQ(file.at("default").at("output"), "json");
  EXPECT_EQ(file.at("profile x").at("aws_access_key_id"), "AK");
}

TEST_F(config_test, endpoints_default_to_aws) {
  const auto s3 = resolve_endpoint("s3", "eu-west-1");
  EXPECT_EQ(s3.url, "https://s3.eu-west-1.amazonaws.com");
  EXPECT_FALSE(s3.path_style);
  EXPECT_EQ(resolve_endpoint("sqs", "us-east-2").url, "https://sqs.us-east-2.amazonaws.com");
  EXPECT_EQ(resolve_endpoint("dynamodb", "ap-northeast-1").url,
            "https://dynamodb.ap-northeast-1.amazonaws.com");
  EXPECT_EQ(resolve_endpoint("s3", "cn-north-1").url, "https://s3.cn-north-1.amazonaws.com.cn");
}

TEST_F(config_test, endpoint_precedence) {
  set("AWS_ENDPOINT_URL", "http://127.0.0.1:5000/");
  EXPECT_EQ(resolve_endpoint("sqs", "r").url, "http://127.0.0.1:5000");
  EXPECT_TRUE(resolve_endpoint("s3", "r").path_style);
  set("AWS_ENDPOINT_URL_SQS", "http://localhost:9324");
  EXPECT_EQ(resolve_endpoint("sqs", "r").url, "http://localhost:9324");
  EXPECT_EQ(resolve_endpoint("dynamodb", "r").url, "http://127.0.0.1:5000");
  set("AWS_ENDPOINT_URL_DYNAMODB", "http://localhost:8000");
  EXPECT_EQ(resolve_endpoint("dynamodb", "r").url, "http://localhost:8000");
  EXPECT_EQ(resolve_endpoint("sqs", "r", "http://explicit:1").url, "http://explicit:1");
}

TEST_F(config_test, path_style_can_be_forced_either_way) {
  EXPECT_TRUE(resolve_endpoint("s3", "eu-west-1", std::nullopt, true).path_style);
  EXPECT_FALSE(resolve_endpoint("s3", "r", "http://minio:9000", false).path_style);
}

TEST_F(config_test, malformed_custom_endpoint_is_rejected) {
  set("AWS_ENDPOINT_URL_S3", "localhost:9000/x");
  EXPECT_THROW(resolve_endpoint("s3", "r"), url_error);
}

TEST(s3_urls, key_encoding) {
  EXPECT_EQ(encode_s3_key("widgets/a b/c+d=e&f~g%h"), "widgets/a%20b/c%2Bd%3De%26f~g%25h");
  EXPECT_EQ(encode_s3_key("caf\xc3\xa9/\xe2\x82\xac"), "caf%C3%A9/%E2%82%AC");
  EXPECT_EQ(encode_s3_key("a//b/"), "a//b/");
  EXPECT_EQ(encode_s3_key("./a/../b.c"), "./a/../b.c");
  EXPECT_EQ(encode_s3_key("1700000000000"), "1700000000000");
}

TEST(s3_urls, path_style_and_virtual_hosted) {
  const service_endpoint local{"http://127.0.0.1:5000", true};
  EXPECT_EQ(s3_object_url(local, "requests", "widgets/john-doe/w 1"),
            "http://127.0.0.1:5000/requests/widgets/john-doe/w%201");
  EXPECT_EQ(s3_bucket_url(local, "requests"), "http://127.0.0.1:5000/requests");
  const service_endpoint aws{"https://s3.us-east-1.amazonaws.com", false};
  EXPECT_EQ(s3_object_url(aws, "requests", "a+b"),
            "https://requests.s3.us-east-1.amazonaws.com/a%2Bb");
  EXPECT_EQ(s3_bucket_url(aws, "requests"), "https://requests.s3.us-east-1.amazonaws.com/");
  // A dotted bucket would not match the wildcard certificate.
  EXPECT_EQ(s3_object_url(aws, "my.bucket", "k"), "https://s3.us-east-1.amazonaws.com/my.bucket/k");
}

}  // namespace
