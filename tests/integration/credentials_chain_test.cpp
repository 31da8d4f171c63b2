#include "widget_consumer/aws/default_credentials.hpp"

#include "support/aws_environment.hpp"
#include "support/emulator.hpp"
#include "support/loopback_http_server.hpp"
#include "widget_consumer/aws/client.hpp"
#include "widget_consumer/aws/sts.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

// The default credentials chain against the local STS (moto): roles assumed
// through a chain of profiles, web identity, credential_process and SSO, and
// the credentials each yields then sign S3, SQS and DynamoDB calls that the
// server in IAM mode verifies.

namespace {

namespace aws = widget_consumer::aws;
using testing::HasSubstr;
using testing::StartsWith;
using widget_consumer::testing::emulator;

class credentials_chain_test : public testing::Test {
 protected:
  static void set(const char* name, const std::string& value) {
    widget_consumer::testing::isolated_aws_environment::set(name, value);
  }
  void write(const std::string& file, const std::string& text) const {
    environment_.write_aws_file(file, text);
  }
  std::filesystem::path write_file(const std::string& name, const std::string& text) const {
    const auto path = environment_.home() / name;
    std::ofstream(path) << text;
    return path;
  }

  // One signed call per service; each throws service_error if refused.
  static void call_every_service(const emulator& server, const aws::credentials_chain& chain) {
    aws::client_config config;
    config.region = server.region;
    config.endpoint = server.endpoint;
    config.max_attempts = 1;
    config.credentials = chain;
    aws::service_client s3("s3", config);
    aws::http_request list_buckets{"GET", config.endpoint + "/", {}, {}};
    EXPECT_EQ(s3.send(list_buckets, "ListBuckets", "s3://").status, 200);
    aws::service_client sqs("sqs", config);
    sqs.call_json("AmazonSQS", "ListQueues", {}, "queues");
    aws::service_client dynamodb("dynamodb", config);
    dynamodb.call_json("DynamoDB_20120810", "ListTables", {}, "tables");
  }

  // The IAM user's keys as the base profile every role chain starts from.
  void write_base_profile(const emulator& iam) const {
    write("credentials", "[base]\naws_access_key_id = " + iam.access_key_id +
                             "\naws_secret_access_key = " + iam.secret_access_key + "\n");
  }

  widget_consumer::testing::isolated_aws_environment environment_{"credentials_chain_test"};
};

TEST_F(credentials_chain_test, role_chain_three_deep_signs_calls_the_iam_server_accepts) {
  const auto iam = widget_consumer::testing::iam_emulator();
  ASSERT_FALSE(iam.role_arn.empty());
  set("AWS_ENDPOINT_URL_STS", iam.endpoint);
  set("AWS_REGION", iam.region);
  write_base_profile(iam);
  write("config", "[profile mid]\nrole_arn = " + iam.role_arn +
                      "\nsource_profile = base\n"
                      "[profile dev]\nrole_arn = " +
                      iam.role_arn +
                      "\nsource_profile = mid\nrole_session_name = chain-test\n"
                      "external_id = widget-tests\nduration_seconds = 900\n");
  const auto chain = aws::default_credentials_chain({.profile = "dev"});
  const auto found = chain();
  EXPECT_NE(found.access_key_id, iam.access_key_id);
  EXPECT_FALSE(found.session_token.empty());
  ASSERT_TRUE(found.expiration.has_value());
  EXPECT_GT(*found.expiration, std::chrono::system_clock::now());
  EXPECT_EQ(found.source, "assume role " + iam.role_arn + " via profile dev");
  call_every_service(iam, chain);

  // The server really checks the assumed keys: a wrong token is refused.
  auto tampered = found;
  tampered.session_token += "x";
  aws::client_config config;
  config.region = iam.region;
  config.endpoint = iam.endpoint;
  config.max_attempts = 1;
  config.credentials = [tampered] { return tampered; };
  aws::service_client s3("s3", config);
  EXPECT_THROW(s3.send({"GET", iam.endpoint + "/", {}, {}}, "ListBuckets", "s3://"),
               aws::service_error);
}

TEST_F(credentials_chain_test, web_identity_from_the_environment_against_sts) {
  const auto plain = widget_consumer::testing::plain_emulator();
  set("AWS_ENDPOINT_URL_STS", plain.endpoint);
  set("AWS_WEB_IDENTITY_TOKEN_FILE", write_file("token", "eyJ-web-identity-token").string());
  set("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/pod-role");
  set("AWS_ROLE_SESSION_NAME", "pod-session");
  const auto chain = aws::default_credentials_chain();
  const auto found = chain();
  EXPECT_FALSE(found.session_token.empty());
  EXPECT_THAT(found.source, HasSubstr("web identity role arn:aws:iam::123456789012:role/pod-role"));
  call_every_service(plain, chain);
}

TEST_F(credentials_chain_test, credential_process_keys_sign_calls_the_iam_server_accepts) {
  const auto iam = widget_consumer::testing::iam_emulator();
  const auto script = write_file("helper.py",
                                 "import json, sys\nprint('helper ran', file=sys.stderr)\n"
                                 "print(json.dumps({'Version': 1, 'AccessKeyId': sys.argv[1], "
                                 "'SecretAccessKey': sys.argv[2]}))\n");
  const char* venv = std::getenv("WIDGET_CONSUMER_VENV");
  const std::string python = venv != nullptr ? std::string(venv) + "/bin/python" : "python3";
  write("config", "[default]\ncredential_process = " + python + " " + script.string() + " " +
                      iam.access_key_id + " '" + iam.secret_access_key + "'\n");
  const auto chain = aws::default_credentials_chain();
  EXPECT_EQ(chain().source, "credential_process of profile 'default'");
  call_every_service(iam, chain);
}

TEST_F(credentials_chain_test, sso_portal_credentials_sign_calls_the_iam_server_accepts) {
  const auto iam = widget_consumer::testing::iam_emulator();
  // The portal stub hands out temporary keys that moto's STS issued.
  const auto role_keys =
      aws::assume_role({.region = iam.region, .endpoint_url = iam.endpoint},
                       aws::credentials{.access_key_id = iam.access_key_id,
                                        .secret_access_key = iam.secret_access_key,
                                        .session_token = {},
                                        .expiration = std::nullopt},
                       {.role_arn = iam.role_arn, .role_session_name = "sso-test"});
  widget_consumer::testing::loopback_http_server portal(
      [&](const widget_consumer::testing::received_http_request& request) {
        const bool authorised = request.headers.contains("x-amz-sso_bearer_token") &&
                                request.headers.at("x-amz-sso_bearer_token") == "sso-token";
        if (!authorised)
          return widget_consumer::testing::scripted_reply{
              .bytes = widget_consumer::testing::http_reply(401, "{}")};
        boost::json::object role{{"accessKeyId", role_keys.access_key_id},
                                 {"secretAccessKey", role_keys.secret_access_key},
                                 {"sessionToken", role_keys.session_token},
                                 {"expiration", 4102444800000}};
        return widget_consumer::testing::scripted_reply{
            .bytes = widget_consumer::testing::http_reply(
                200, boost::json::serialize(boost::json::object{{"roleCredentials", role}}))};
      });
  set("AWS_ENDPOINT_URL_SSO", portal.endpoint());
  std::filesystem::create_directories(environment_.home() / ".aws/sso/cache");
  // sha1("tests") names the cache file, as the AWS CLI names it.
  std::ofstream(environment_.home() /
                ".aws/sso/cache/04d13fd0aa6f0197cf2c999019a607c36c81eb9f.json")
      << R"({"accessToken": "sso-token", "expiresAt": "2099-01-01T00:00:00Z"})";
  write("config",
        "[profile sso]\nsso_session = tests\nsso_account_id = 123456789012\n"
        "sso_role_name = widget-consumer-tests\n"
        "[sso-session tests]\nsso_start_url = https://tests.awsapps.com/start\n"
        "sso_region = us-east-1\n");
  const auto chain = aws::default_credentials_chain({.profile = "sso"});
  EXPECT_THAT(chain().source, StartsWith("SSO role widget-consumer-tests"));
  call_every_service(iam, chain);
}

}  // namespace
