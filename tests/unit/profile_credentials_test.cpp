#include "widget_consumer/aws/profile_credentials.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "support/aws_environment.hpp"
#include "support/loopback_http_server.hpp"
#include "widget_consumer/aws/default_credentials.hpp"
#include "widget_consumer/aws/uri.hpp"

// The profile resolver (roles, chains, cycles, web identity, SSO,
// credential_process) against loopback stubs of STS and the SSO portal.
// What a stub answers, and what each test expects, follows the AWS
// documentation of the STS query protocol and of GetRoleCredentials.

namespace {

using namespace widget_consumer::aws;
using namespace std::chrono_literals;
using testing::HasSubstr;
using testing::Not;
using widget_consumer::testing::http_reply;
using widget_consumer::testing::loopback_http_server;
using widget_consumer::testing::received_http_request;
using widget_consumer::testing::scripted_reply;
namespace fs = std::filesystem;

constexpr const char* base_secret = "BASEsecretBASEsecretBASEsecret";
constexpr const char* web_token = "eyJWEBIDENTITYTOKENwebidentity";
constexpr const char* sso_token = "SSOACCESSTOKENssoaccesstoken";

// The form fields of a query-protocol request.
std::map<std::string, std::string> form(const received_http_request& request) {
  std::map<std::string, std::string> fields;
  for (auto& [name, value] : parse_query(request.body))
    fields[name] = value;
  return fields;
}

// "AWS4-HMAC-SHA256 Credential=AKID/...": the key id that signed.
std::string signing_key(const received_http_request& request) {
  const auto it = request.headers.find("authorization");
  if (it == request.headers.end())
    return "";
  const auto start = it->second.find("Credential=") + 11;
  return it->second.substr(start, it->second.find('/', start) - start);
}

// An STS stub: each role's credentials are "ASIA<role name>", secret
// "secret-<role name>", token "token-<role name>".
class sts_stub {
 public:
  sts_stub()
      : server_([this](const received_http_request& request) {
          std::lock_guard lock(mutex_);
          requests_.push_back(request);
          return scripted_reply{.bytes = answer(request)};
        }) {}

  std::string endpoint() const { return server_.endpoint(); }
  std::vector<received_http_request> requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }
  std::string refuse_with;  // an error code to answer with, if set

 private:
  std::string answer(const received_http_request& request) const {
    const auto fields = form(request);
    const std::string action = fields.contains("Action") ? fields.at("Action") : "";
    if (!refuse_with.empty())
      return http_reply(400, "<ErrorResponse><Error><Type>Sender</Type><Code>" + refuse_with +
                                 "</Code><Message>refused</Message></Error></ErrorResponse>");
    const std::string arn = fields.contains("RoleArn") ? fields.at("RoleArn") : "";
    const std::string role = arn.substr(arn.rfind('/') + 1);
    return http_reply(200, "<" + action +
                               "Response xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><" +
                               action + "Result><Credentials><AccessKeyId>ASIA" + role +
                               "</AccessKeyId><SecretAccessKey>secret-" + role +
                               "</SecretAccessKey><SessionToken>token-" + role +
                               "</SessionToken><Expiration>2030-01-02T03:04:05Z</Expiration>"
                               "</Credentials></" +
                               action + "Result></" + action + "Response>");
  }

  mutable std::mutex mutex_;
  std::vector<received_http_request> requests_;
  loopback_http_server server_;
};

class profile_credentials_test : public testing::Test {
 protected:
  void SetUp() override { set("AWS_ENDPOINT_URL_STS", sts_.endpoint()); }
  static void set(const char* name, const std::string& value) {
    widget_consumer::testing::isolated_aws_environment::set(name, value);
  }
  void write(const std::string& file, const std::string& text) const {
    environment_.write_aws_file(file, text);
  }
  fs::path write_file(const std::string& name, const std::string& text) const {
    const auto path = environment_.home() / name;
    std::ofstream(path) << text;
    return path;
  }
  static provider_result profile(const std::string& name) {
    return profile_credentials({.profile = name});
  }

  widget_consumer::testing::isolated_aws_environment environment_{"profile_credentials_test"};
  sts_stub sts_;
};

// --- roles ---------------------------------------------------------------------

TEST_F(profile_credentials_test, role_chain_three_deep_signs_each_step_with_the_previous) {
  write("config",
        "[profile dev]\nrole_arn = arn:aws:iam::123456789012:role/dev\nsource_profile = mid\n"
        "external_id = ext-42\nrole_session_name = widget-session\nduration_seconds = 900\n"
        "[profile mid]\nrole_arn = arn:aws:iam::123456789012:role/mid\nsource_profile = base\n");
  write("credentials", "[base]\naws_access_key_id = AKIDBASE\naws_secret_access_key = " +
                           std::string(base_secret) + "\n");
  const auto result = profile("dev");
  ASSERT_TRUE(result.found) << result.reason;
  EXPECT_EQ(result.found->access_key_id, "ASIAdev");
  EXPECT_EQ(result.found->secret_access_key, "secret-dev");
  EXPECT_EQ(result.found->session_token, "token-dev");
  EXPECT_EQ(result.found->expiration,
            std::chrono::sys_days{std::chrono::year{2030} / 1 / 2} + 3h + 4min + 5s);
  EXPECT_EQ(result.found->source, "assume role arn:aws:iam::123456789012:role/dev via profile dev");

  const auto requests = sts_.requests();
  ASSERT_EQ(requests.size(), 2u);
  const auto first = form(requests[0]);
  EXPECT_EQ(requests[0].method, "POST");
  EXPECT_EQ(first.at("Action"), "AssumeRole");
  EXPECT_EQ(first.at("Version"), "2011-06-15");
  EXPECT_EQ(first.at("RoleArn"), "arn:aws:iam::123456789012:role/mid");
  EXPECT_FALSE(first.contains("ExternalId"));
  EXPECT_EQ(signing_key(requests[0]), "AKIDBASE");
  EXPECT_FALSE(requests[0].headers.contains("x-amz-security-token"));
  const auto second = form(requests[1]);
  EXPECT_EQ(second.at("RoleArn"), "arn:aws:iam::123456789012:role/dev");
  EXPECT_EQ(second.at("ExternalId"), "ext-42");
  EXPECT_EQ(second.at("RoleSessionName"), "widget-session");
  EXPECT_EQ(second.at("DurationSeconds"), "900");
  EXPECT_EQ(signing_key(requests[1]), "ASIAmid");
  EXPECT_EQ(requests[1].headers.at("x-amz-security-token"), "token-mid");
  EXPECT_THAT(requests[1].headers.at("authorization"), HasSubstr("/sts/aws4_request"));
}

TEST_F(profile_credentials_test, cycle_is_an_error_that_names_it) {
  write("config",
        "[profile a]\nrole_arn = arn:aws:iam::1:role/a\nsource_profile = b\n"
        "[profile b]\nrole_arn = arn:aws:iam::1:role/b\nsource_profile = c\n"
        "[profile c]\nrole_arn = arn:aws:iam::1:role/c\nsource_profile = a\n");
  const auto result = profile("a");
  EXPECT_FALSE(result.found);
  EXPECT_TRUE(result.final);
  EXPECT_EQ(result.reason, "source_profile cycle: a -> b -> c -> a");
  EXPECT_TRUE(sts_.requests().empty());
}

TEST_F(profile_credentials_test, a_profile_may_assume_its_role_with_its_own_keys) {
  write("credentials", "[self]\naws_access_key_id = AKIDSELF\naws_secret_access_key = s\n");
  write("config", "[profile self]\nrole_arn = arn:aws:iam::1:role/self\nsource_profile = self\n");
  const auto result = profile("self");
  ASSERT_TRUE(result.found) << result.reason;
  EXPECT_EQ(result.found->access_key_id, "ASIAself");
  EXPECT_EQ(signing_key(sts_.requests().at(0)), "AKIDSELF");
}

TEST_F(profile_credentials_test, credential_source_environment) {
  set("AWS_ACCESS_KEY_ID", "AKIDENVSOURCE");
  set("AWS_SECRET_ACCESS_KEY", "s");
  write("config",
        "[profile env]\nrole_arn = arn:aws:iam::1:role/env\ncredential_source = Environment\n"
        "[profile bad]\nrole_arn = arn:aws:iam::1:role/bad\ncredential_source = Floppy\n"
        "[profile none]\nrole_arn = arn:aws:iam::1:role/none\n");
  const auto result = profile("env");
  ASSERT_TRUE(result.found) << result.reason;
  EXPECT_EQ(signing_key(sts_.requests().at(0)), "AKIDENVSOURCE");
  EXPECT_THAT(profile("bad").reason, HasSubstr("credential_source Floppy is not one of"));
  EXPECT_THAT(profile("none").reason,
              HasSubstr("has role_arn but neither source_profile nor credential_source"));
}

TEST_F(profile_credentials_test, mfa_serial_is_not_supported) {
  write("credentials", "[base]\naws_access_key_id = AKIDBASE\naws_secret_access_key = s\n");
  write("config",
        "[profile mfa]\nrole_arn = arn:aws:iam::1:role/m\nsource_profile = base\n"
        "mfa_serial = arn:aws:iam::1:mfa/me\n");
  const auto result = profile("mfa");
  EXPECT_TRUE(result.final);
  EXPECT_THAT(result.reason, HasSubstr("sets mfa_serial"));
  EXPECT_THAT(result.reason, HasSubstr("not supported"));
  EXPECT_TRUE(sts_.requests().empty());
}

TEST_F(profile_credentials_test, sts_refusal_names_the_role_and_stops_the_chain) {
  sts_.refuse_with = "AccessDenied";
  write("credentials", "[base]\naws_access_key_id = AKIDBASE\naws_secret_access_key = " +
                           std::string(base_secret) + "\n");
  write("config", "[default]\nrole_arn = arn:aws:iam::1:role/denied\nsource_profile = base\n");
  const auto result = profile_credentials();
  EXPECT_FALSE(result.found);
  EXPECT_TRUE(result.final);  // configured, so no other identity is substituted
  EXPECT_THAT(result.reason, HasSubstr("AccessDenied"));
  EXPECT_THAT(result.reason, HasSubstr("arn:aws:iam::1:role/denied"));
  EXPECT_THAT(result.reason, Not(HasSubstr(base_secret)));
}

TEST_F(profile_credentials_test, default_profile_without_credentials_lets_the_chain_go_on) {
  write("config", "[default]\nregion = eu-west-1\n");
  const auto result = profile_credentials();
  EXPECT_FALSE(result.final);
  EXPECT_EQ(result.reason,
            "profile 'default' has no aws_access_key_id, role_arn, sso_session, sso_start_url or "
            "credential_process");
}

// --- web identity ------------------------------------------------------------------

TEST_F(profile_credentials_test, web_identity_from_environment_is_unsigned) {
  const auto token_file = write_file("token", std::string(web_token) + "\n");
  set("AWS_WEB_IDENTITY_TOKEN_FILE", token_file.string());
  EXPECT_EQ(web_identity_environment_credentials().reason,
            "AWS_WEB_IDENTITY_TOKEN_FILE set but AWS_ROLE_ARN not set");
  set("AWS_ROLE_ARN", "arn:aws:iam::1:role/pod");
  set("AWS_ROLE_SESSION_NAME", "pod-session");
  const auto result = web_identity_environment_credentials();
  ASSERT_TRUE(result.found) << result.reason;
  EXPECT_EQ(result.found->access_key_id, "ASIApod");
  EXPECT_EQ(result.found->source,
            "web identity role arn:aws:iam::1:role/pod from AWS_WEB_IDENTITY_TOKEN_FILE");
  const auto request = sts_.requests().at(0);
  EXPECT_FALSE(request.headers.contains("authorization"));
  const auto fields = form(request);
  EXPECT_EQ(fields.at("Action"), "AssumeRoleWithWebIdentity");
  EXPECT_EQ(fields.at("WebIdentityToken"), web_token);
  EXPECT_EQ(fields.at("RoleSessionName"), "pod-session");

  // In the default chain it comes right after the environment.
  EXPECT_EQ(default_credentials_chain()().access_key_id, "ASIApod");
  set("AWS_ACCESS_KEY_ID", "AKIDENV");
  set("AWS_SECRET_ACCESS_KEY", "s");
  EXPECT_EQ(default_credentials_chain()().access_key_id, "AKIDENV");
}

TEST_F(profile_credentials_test, web_identity_failure_never_shows_the_token) {
  sts_.refuse_with = "InvalidIdentityToken";
  set("AWS_WEB_IDENTITY_TOKEN_FILE", write_file("token", web_token).string());
  set("AWS_ROLE_ARN", "arn:aws:iam::1:role/pod");
  const auto result = web_identity_environment_credentials();
  EXPECT_TRUE(result.final);
  EXPECT_THAT(result.reason, HasSubstr("InvalidIdentityToken"));
  EXPECT_THAT(result.reason, Not(HasSubstr(web_token)));
  set("AWS_WEB_IDENTITY_TOKEN_FILE", (environment_.home() / "missing").string());
  EXPECT_THAT(web_identity_environment_credentials().reason,
              HasSubstr("cannot read the web identity token file"));
}

TEST_F(profile_credentials_test, web_identity_token_file_in_a_profile) {
  write("config", "[profile pod]\nrole_arn = arn:aws:iam::1:role/pod\nweb_identity_token_file = " +
                      write_file("token", web_token).string() + "\n");
  const auto result = profile("pod");
  ASSERT_TRUE(result.found) << result.reason;
  EXPECT_EQ(result.found->source, "web identity role arn:aws:iam::1:role/pod via profile pod");
  EXPECT_EQ(form(sts_.requests().at(0)).at("WebIdentityToken"), web_token);
}

// --- credential_process --------------------------------------------------------------

TEST_F(profile_credentials_test, credential_process_runs_a_shell_command_line) {
  const auto script = write_file(
      "helper.sh",
      "echo 'helper says hello' >&2\n"
      "printf '%s' '{\"Version\": 1, \"AccessKeyId\": \"AKIDPROCESS\", \"SecretAccessKey\": \"" +
          std::string(base_secret) +
          "\", \"SessionToken\": \"tok\", \"Expiration\": \"2030-01-02T03:04:05Z\"}' | cat\n");
  write("config", "[profile proc]\ncredential_process = sh '" + script.string() + "' --flag\n");
  const auto result = profile("proc");
  ASSERT_TRUE(result.found) << result.reason;
  EXPECT_EQ(result.found->access_key_id, "AKIDPROCESS");
  EXPECT_EQ(result.found->secret_access_key, base_secret);
  EXPECT_EQ(result.found->session_token, "tok");
  EXPECT_EQ(result.found->expiration,
            std::chrono::sys_days{std::chrono::year{2030} / 1 / 2} + 3h + 4min + 5s);
  EXPECT_EQ(result.found->source, "credential_process of profile 'proc'");
}

TEST_F(profile_credentials_test, credential_process_bad_output_is_a_clear_error_without_secrets) {
  const std::string secret_output =
      std::string("{\"AccessKeyId\": \"AKID\", \"SecretAccessKey\": \"") + base_secret + "\"}";
  struct bad_case {
    std::string command;
    std::string expected;
  };
  const std::vector<bad_case> cases{
      {"printf '%s' '" + secret_output + "'", "lacks \"Version\": 1"},
      {"printf '%s' '" + secret_output.substr(0, 40) + "'", "not a JSON object"},
      {"printf '%s' '{\"Version\": 1, \"AccessKeyId\": \"A\"}'", "lacks AccessKeyId or Secret"},
      {"printf '%s' '{\"Version\": 1, \"AccessKeyId\": \"A\", \"SecretAccessKey\": \"" +
           std::string(base_secret) + "\", \"Expiration\": \"soon\"}'",
       "Expiration is not an ISO 8601 time"},
      {"echo " + std::string(base_secret) + "; exit 3", "exited with status 3"},
  };
  for (const auto& bad : cases) {
    write("config", "[profile proc]\ncredential_process = " + bad.command + "\n");
    const auto result = profile("proc");
    EXPECT_FALSE(result.found) << bad.command;
    EXPECT_TRUE(result.final);
    EXPECT_THAT(result.reason, HasSubstr("credential_process of profile 'proc': "));
    EXPECT_THAT(result.reason, HasSubstr(bad.expected));
    EXPECT_THAT(result.reason, Not(HasSubstr(base_secret)));
  }
}

// True once `pid` has ended: no such process, or a zombie left to be reaped.
bool process_ended(const std::string& pid) {
  std::ifstream stat("/proc/" + pid + "/stat");
  std::string text;
  std::getline(stat, text);
  const auto end_of_name = text.rfind(')');
  return !stat || end_of_name == std::string::npos || text.substr(end_of_name + 2, 1) == "Z";
}

// Not only the shell is stopped: the helper it runs, which would otherwise
// sleep on with our standard error open, and anything that one started.
TEST_F(profile_credentials_test, credential_process_timeout_stops_the_helper) {
  const auto pid_file = environment_.home() / "helper.pid";
  write("config", "[profile slow]\ncredential_process = sleep 30 & echo $! > '" +
                      pid_file.string() + "'; wait\n");
  const auto start = std::chrono::steady_clock::now();
  const auto result = profile_credentials({.profile = "slow", .process = {.timeout = 200ms}});
  EXPECT_THAT(result.reason, HasSubstr("did not finish within 200 ms"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  std::string helper;
  std::ifstream(pid_file) >> helper;
  ASSERT_FALSE(helper.empty()) << "the helper did not start";
  for (int i = 0; i < 200 && !process_ended(helper); ++i)  // bounded: 2 s
    std::this_thread::sleep_for(10ms);
  EXPECT_TRUE(process_ended(helper)) << "the helper (pid " << helper << ") still runs";
}

// --- SSO -------------------------------------------------------------------------------

class sso_test : public profile_credentials_test {
 protected:
  void SetUp() override {
    profile_credentials_test::SetUp();
    set("AWS_ENDPOINT_URL_SSO", portal_.endpoint());
    fs::create_directories(environment_.home() / ".aws/sso/cache");
  }
  // The AWS CLI's cache file name: SHA-1 hex of the session name (computed
  // independently: sha1("corp")) or of the legacy start URL.
  void cache_token(const std::string& file, const std::string& expires_at) const {
    std::ofstream(environment_.home() / ".aws/sso/cache" / file)
        << R"({"startUrl": "https://corp.awsapps.com/start", "region": "eu-west-1", "accessToken": ")"
        << sso_token << R"(", "expiresAt": ")" << expires_at << "\"}";
  }
  static constexpr const char* corp_cache = "ee0bfd2552fbd840c02cc48b6e823320543c450f.json";
  static constexpr const char* legacy_cache = "79e435d7a515078e81c9dffc35f38d5687ebd3a7.json";

  std::mutex mutex_;
  std::vector<received_http_request> portal_requests_;
  int portal_status_ = 200;
  loopback_http_server portal_{[this](const received_http_request& request) {
    std::lock_guard lock(mutex_);
    portal_requests_.push_back(request);
    if (portal_status_ != 200)
      return scripted_reply{
          .bytes = http_reply(portal_status_, R"({"message":"Session token not found or invalid"})",
                              "x-amzn-ErrorType: UnauthorizedException\r\n")};
    return scripted_reply{
        .bytes = http_reply(200, std::string(R"({"roleCredentials":{"accessKeyId":"ASIASSO",)") +
                                     R"("secretAccessKey":")" + base_secret +
                                     R"(","sessionToken":"sso-session-token",)" +
                                     R"("expiration":1893553445000}})")};
  }};
};

TEST_F(sso_test, sso_session_profile_gets_role_credentials_from_the_portal) {
  write("config",
        "[profile dev]\nsso_session = corp\nsso_account_id = 111122223333\n"
        "sso_role_name = Developer\n"
        "[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\n"
        "sso_region = eu-west-1\n");
  cache_token(corp_cache, "2099-01-01T00:00:00Z");
  const auto result = profile("dev");
  ASSERT_TRUE(result.found) << result.reason;
  EXPECT_EQ(result.found->access_key_id, "ASIASSO");
  EXPECT_EQ(result.found->session_token, "sso-session-token");
  EXPECT_EQ(result.found->expiration,
            std::chrono::sys_days{std::chrono::year{2030} / 1 / 2} + 3h + 4min + 5s);
  EXPECT_EQ(result.found->source, "SSO role Developer in account 111122223333 via profile dev");
  ASSERT_EQ(portal_requests_.size(), 1u);
  EXPECT_EQ(portal_requests_[0].method, "GET");
  EXPECT_EQ(portal_requests_[0].target,
            "/federation/credentials?role_name=Developer&account_id=111122223333");
  EXPECT_EQ(portal_requests_[0].headers.at("x-amz-sso_bearer_token"), sso_token);
  EXPECT_FALSE(portal_requests_[0].headers.contains("authorization"));
}

TEST_F(sso_test, legacy_profile_keys_the_cache_by_start_url) {
  write("config",
        "[profile old]\nsso_start_url = https://legacy.awsapps.com/start\nsso_region = us-east-2\n"
        "sso_account_id = 1\nsso_role_name = R\n");
  cache_token(legacy_cache, "2099-01-01T00:00:00Z");
  const auto result = profile("old");
  ASSERT_TRUE(result.found) << result.reason;
  EXPECT_EQ(result.found->access_key_id, "ASIASSO");
}

TEST_F(sso_test, missing_expired_or_refused_token_says_to_log_in) {
  write("config",
        "[profile dev]\nsso_session = corp\nsso_account_id = 1\nsso_role_name = R\n"
        "[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\n"
        "sso_region = eu-west-1\n");
  auto missing = profile("dev");
  EXPECT_THAT(missing.reason, HasSubstr("no cached SSO token"));
  EXPECT_THAT(missing.reason, HasSubstr("run `aws sso login --sso-session corp`"));
  cache_token(corp_cache, "2020-01-01T00:00:00Z");
  auto expired = profile("dev");
  EXPECT_THAT(expired.reason, HasSubstr("the cached SSO token has expired"));
  EXPECT_THAT(expired.reason, HasSubstr("aws sso login"));
  EXPECT_TRUE(portal_requests_.empty());
  cache_token(corp_cache, "2099-01-01T00:00:00Z");
  portal_status_ = 401;
  auto refused = profile("dev");
  EXPECT_THAT(refused.reason, HasSubstr("refused the cached token"));
  EXPECT_THAT(refused.reason, HasSubstr("aws sso login"));
  for (const auto& reason : {missing.reason, expired.reason, refused.reason})
    EXPECT_THAT(reason, Not(HasSubstr(sso_token)));
}

}  // namespace
