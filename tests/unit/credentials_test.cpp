#include "widget_consumer/aws/credentials.hpp"
#include "widget_consumer/aws/credential_providers.hpp"
#include "widget_consumer/aws/default_credentials.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "support/aws_environment.hpp"
#include "support/loopback_http_server.hpp"

namespace {

using namespace widget_consumer::aws;
using namespace std::chrono_literals;
using testing::HasSubstr;
using testing::Not;
namespace fs = std::filesystem;

constexpr const char* secret = "wJalrXUtnFEMI/K7MDENG/SECRETSECRET";
constexpr const char* token = "IQoJb3JpZ2luX2VjTOKENTOKEN";

// The loopback server (tests/support) stands in for the container and
// instance metadata endpoints; it keeps every request, to check what was sent.
using widget_consumer::testing::loopback_http_server;
using widget_consumer::testing::received_http_request;
using widget_consumer::testing::recording;
using widget_consumer::testing::scripted_reply;

scripted_reply answer(int status, const std::string& body,
                      std::chrono::milliseconds delay = std::chrono::milliseconds(0)) {
  return {.bytes = widget_consumer::testing::http_reply(status, body, "Connection: close\r\n"),
          .delay = delay,
          .close = true};
}

std::string credentials_json(const char* expiration = "2030-01-02T03:04:05Z") {
  return std::string(R"({"Code":"Success","AccessKeyId":"ASIAMETADATA","SecretAccessKey":")") +
         secret + R"(","Token":")" + token + R"(","Expiration":")" + expiration + R"("})";
}

// ---------------------------------------------------------------------------
// Each test runs in an isolated_aws_environment (tests/support): no AWS_*
// variable or ~/.aws of the machine leaks in, and IMDS is disabled unless a
// test points it at its own loopback server.
class credentials_test : public testing::Test {
 protected:
  static void set(const char* name, const std::string& value) {
    widget_consumer::testing::isolated_aws_environment::set(name, value);
  }
  void write(const std::string& file, const std::string& text) const {
    environment_.write_aws_file(file, text);
  }

  widget_consumer::testing::isolated_aws_environment environment_{"credentials_test"};
  const fs::path& home_ = environment_.home();
};

// --- redaction ---------------------------------------------------------------

TEST(credentials_redaction, describe_and_printing_hide_secret_and_token) {
  credentials creds{"AKIDEXAMPLE", secret, token,
                    std::chrono::sys_days{std::chrono::year{2030} / 1 / 2} + 3h + 4min + 5s};
  for (const std::string& text : {describe(creds), testing::PrintToString(creds)}) {
    EXPECT_THAT(text, HasSubstr("AKIDEXAMPLE"));
    EXPECT_THAT(text, HasSubstr("2030-01-02T03:04:05Z"));
    EXPECT_THAT(text, Not(HasSubstr(secret)));
    EXPECT_THAT(text, Not(HasSubstr(token)));
  }
  EXPECT_EQ(describe(credentials{}), "<no access key id> (no secret)");
}

// --- environment -------------------------------------------------------------

TEST_F(credentials_test, environment_provider) {
  EXPECT_EQ(environment_credentials().reason, "AWS_ACCESS_KEY_ID not set");
  set("AWS_ACCESS_KEY_ID", "AKIDENV");
  EXPECT_EQ(environment_credentials().reason,
            "AWS_ACCESS_KEY_ID set but AWS_SECRET_ACCESS_KEY not set");
  set("AWS_SECRET_ACCESS_KEY", secret);
  set("AWS_SESSION_TOKEN", token);
  const auto found = environment_credentials().found;
  ASSERT_TRUE(found);
  EXPECT_EQ(*found, (credentials{"AKIDENV", secret, token, std::nullopt}));
}

// --- shared files ------------------------------------------------------------

TEST_F(credentials_test, shared_credentials_file_default_and_named_profiles) {
  write("credentials",
        "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = s1\n"
        "[work]\naws_access_key_id=AKIDWORK\naws_secret_access_key=s2\naws_session_token=t2\n");
  EXPECT_EQ(profile_credentials().found->access_key_id, "AKIDDEFAULT");
  const auto work = profile_credentials({.profile = "work"}).found;
  ASSERT_TRUE(work);
  EXPECT_EQ(*work, (credentials{"AKIDWORK", "s2", "t2", std::nullopt}));
  set("AWS_PROFILE", "work");
  EXPECT_EQ(profile_credentials().found->access_key_id, "AKIDWORK");
  EXPECT_EQ(profile_credentials({.profile = "default"}).found->access_key_id, "AKIDDEFAULT");
}

TEST_F(credentials_test, config_file_profile_and_precedence_of_credentials_file) {
  write("config",
        "[profile cfg]\naws_access_key_id = AKIDCONFIG\naws_secret_access_key = s\n"
        "[profile both]\naws_access_key_id = AKIDCONFIGBOTH\naws_secret_access_key = s\n");
  write("credentials", "[both]\naws_access_key_id = AKIDCREDSBOTH\naws_secret_access_key = s\n");
  EXPECT_EQ(profile_credentials({.profile = "cfg"}).found->access_key_id, "AKIDCONFIG");
  EXPECT_EQ(profile_credentials({.profile = "both"}).found->access_key_id, "AKIDCREDSBOTH");
}

TEST_F(credentials_test, file_locations_from_environment) {
  std::ofstream(home_ / "c.ini")
      << "[default]\naws_access_key_id=AKIDMOVED\naws_secret_access_key=s\n";
  std::ofstream(home_ / "k.ini")
      << "[profile p]\naws_access_key_id=AKIDMOVEDCFG\naws_secret_access_key=s\n";
  set("AWS_SHARED_CREDENTIALS_FILE", (home_ / "c.ini").string());
  set("AWS_CONFIG_FILE", (home_ / "k.ini").string());
  EXPECT_EQ(profile_credentials().found->access_key_id, "AKIDMOVED");
  EXPECT_EQ(profile_credentials({.profile = "p"}).found->access_key_id, "AKIDMOVEDCFG");
}

TEST_F(credentials_test, shared_file_reasons_never_quote_secrets) {
  const auto missing = profile_credentials();
  EXPECT_EQ(missing.reason, "no profile 'default' in " + (home_ / ".aws/credentials").string() +
                                " (not found) or " + (home_ / ".aws/config").string() +
                                " (not found)");
  EXPECT_FALSE(missing.final);
  EXPECT_TRUE(
      profile_credentials({.profile = "nope"}).final);  // named: never substitute another identity
  write("credentials", "[default]\naws_secret_access_key = " + std::string(secret) + "\n");
  EXPECT_THAT(profile_credentials().reason, HasSubstr("has no aws_access_key_id"));
  EXPECT_THAT(profile_credentials().reason, Not(HasSubstr(secret)));
}

// --- container -----------------------------------------------------------------

TEST_F(credentials_test, container_full_uri_with_authorization_token) {
  loopback_http_server server(
      [](const received_http_request&) { return answer(200, credentials_json()); }, recording::on);
  set("AWS_CONTAINER_CREDENTIALS_FULL_URI", server.endpoint() + "/v2/credentials/abc");
  set("AWS_CONTAINER_AUTHORIZATION_TOKEN", "Bearer container-token");
  const auto result = container_credentials();
  ASSERT_TRUE(result.found) << result.reason;
  EXPECT_EQ(result.found->access_key_id, "ASIAMETADATA");
  EXPECT_EQ(result.found->secret_access_key, secret);
  EXPECT_EQ(result.found->session_token, token);
  EXPECT_EQ(result.found->expiration,
            std::chrono::sys_days{std::chrono::year{2030} / 1 / 2} + 3h + 4min + 5s);
  const auto requests = server.received();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method, "GET");
  EXPECT_EQ(requests[0].target, "/v2/credentials/abc");
  EXPECT_EQ(requests[0].headers.at("authorization"), "Bearer container-token");
}

TEST_F(credentials_test, container_token_file) {
  loopback_http_server server(
      [](const received_http_request&) { return answer(200, credentials_json()); }, recording::on);
  std::ofstream(home_ / "token") << "from-file\n";
  set("AWS_CONTAINER_CREDENTIALS_FULL_URI", server.endpoint() + "/c");
  set("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", (home_ / "token").string());
  ASSERT_TRUE(container_credentials().found);
  EXPECT_EQ(server.received().at(0).headers.at("authorization"), "from-file");
}

TEST_F(credentials_test, container_failures_are_reasons_without_secrets) {
  EXPECT_EQ(container_credentials().reason, "not configured");
  loopback_http_server server([](const received_http_request& request) {
    if (request.target == "/broken")  // a document holding the secret, but malformed
      return answer(200, std::string(R"({"SecretAccessKey":")") + secret + "\"");
    if (request.target == "/slow")
      return answer(200, credentials_json(), 600ms);
    return answer(500, secret);
  });
  set("AWS_CONTAINER_CREDENTIALS_FULL_URI", server.endpoint() + "/error");
  EXPECT_EQ(container_credentials().reason, "HTTP 500 from " + server.endpoint() + "/error");
  set("AWS_CONTAINER_CREDENTIALS_FULL_URI", server.endpoint() + "/broken");
  EXPECT_THAT(container_credentials().reason, HasSubstr("unreadable credentials document"));
  EXPECT_THAT(container_credentials().reason, Not(HasSubstr(secret)));
  set("AWS_CONTAINER_CREDENTIALS_FULL_URI", server.endpoint() + "/slow");
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THAT(container_credentials(150ms).reason, HasSubstr("imeout"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 500ms);
}

// Issue 28, F6: FULL_URI is refused, before any connection and without the
// token going anywhere, unless it is https, or http to a loopback address or
// a container host (192.0.2.1 is TEST-NET: nothing answers there, and the
// refusal must come before trying). The message names the variable and the
// host, never the token.
TEST_F(credentials_test, container_full_uri_over_plain_http_must_stay_on_the_machine) {
  set("AWS_CONTAINER_AUTHORIZATION_TOKEN", "Bearer not-for-strangers");
  for (const char* uri : {"http://192.0.2.1/creds", "http://192.0.2.1:8080/v2/credentials",
                          "http://[fd00:ec2::24]/creds", "http://127.0.0.1@192.0.2.1/creds"}) {
    set("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri);
    const auto start = std::chrono::steady_clock::now();
    const auto result = container_credentials(3s);
    EXPECT_FALSE(result.found) << uri;
    EXPECT_TRUE(result.final) << uri << ": a refused URI is a configuration error";
    EXPECT_THAT(result.reason, HasSubstr("AWS_CONTAINER_CREDENTIALS_FULL_URI")) << uri;
    EXPECT_THAT(result.reason, HasSubstr("https")) << uri;
    EXPECT_THAT(result.reason, Not(HasSubstr("not-for-strangers"))) << uri;
    EXPECT_LT(std::chrono::steady_clock::now() - start, 1s) << uri << ": it tried to connect";
  }
  set("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://192.0.2.1/creds");
  EXPECT_THAT(container_credentials().reason, HasSubstr("host 192.0.2.1"));
  set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "@192.0.2.1/creds");  // not a path: a user name
  EXPECT_THAT(container_credentials().reason,
              HasSubstr("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI names host 192.0.2.1"));
}

// What may be used: https anywhere; plain http to 127.0.0.0/8, ::1,
// localhost and the container hosts 169.254.170.2, 169.254.170.23 and
// fd00:ec2::23 (the list of the AWS SDKs). No connection is made here.
TEST(container_endpoint, https_loopback_and_the_container_hosts_pass_the_check) {
  for (const char* uri :
       {"https://192.0.2.1/creds", "https://credentials.example.com/v1", "http://127.0.0.1/c",
        "http://127.0.0.1:9000/c", "http://127.45.6.7/c", "http://[::1]:9000/c",
        "http://localhost:9000/c", "http://LOCALHOST/c", "http://169.254.170.2/v2/credentials",
        "http://169.254.170.23/v1/credentials", "http://[fd00:ec2::23]/v1/credentials",
        "HTTP://127.0.0.1/c"})
    EXPECT_EQ(detail::container_endpoint_refusal(uri), "") << uri;
  for (const char* uri :
       {"http://192.0.2.1/c", "http://10.0.0.1/c", "http://[::2]/c", "http://[::ffff:192.0.2.1]/c",
        "ftp://127.0.0.1/c", "127.0.0.1/c", "http://128.0.0.1/c", "http://localhost.example/c",
        "http://example.com/creds", "http://169.254.170.2.example/c"})
    EXPECT_NE(detail::container_endpoint_refusal(uri), "") << uri;
}

// The token file wins over the token, as in the AWS SDKs, and is read at
// every fetch (EKS Pod Identity rotates it). A token that would end the
// header line is refused, and not quoted.
TEST_F(credentials_test, container_token_file_wins_and_a_token_cannot_add_headers) {
  loopback_http_server server(
      [](const received_http_request&) { return answer(200, credentials_json()); }, recording::on);
  set("AWS_CONTAINER_CREDENTIALS_FULL_URI", server.endpoint() + "/c");
  set("AWS_CONTAINER_AUTHORIZATION_TOKEN", "from-variable");
  std::ofstream(home_ / "token") << "from-file\n";
  set("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", (home_ / "token").string());
  ASSERT_TRUE(container_credentials().found);
  std::ofstream(home_ / "token") << "rotated";
  ASSERT_TRUE(container_credentials().found);
  ::unsetenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
  set("AWS_CONTAINER_AUTHORIZATION_TOKEN", "secret-part\r\nX-Injected: yes");
  const auto injected = container_credentials();
  EXPECT_FALSE(injected.found);
  EXPECT_THAT(injected.reason, HasSubstr("AWS_CONTAINER_AUTHORIZATION_TOKEN"));
  EXPECT_THAT(injected.reason, Not(HasSubstr("secret-part")));
  const auto requests = server.received();
  ASSERT_GE(requests.size(), 2u);
  EXPECT_EQ(requests[0].headers.at("authorization"), "from-file");
  EXPECT_EQ(requests[1].headers.at("authorization"), "rotated");
  EXPECT_EQ(requests.size(), 2u) << "the token that adds a header was sent";
  for (const auto& request : requests)
    EXPECT_FALSE(request.headers.contains("x-injected"));
}

// --- IMDS --------------------------------------------------------------------

TEST_F(credentials_test, imds_v2_token_role_and_credentials) {
  loopback_http_server server(
      [](const received_http_request& request) {
        if (request.method == "PUT" && request.target == "/latest/api/token")
          return answer(200, "imds-session-token");
        if (!request.headers.contains("x-aws-ec2-metadata-token") ||
            request.headers.at("x-aws-ec2-metadata-token") != "imds-session-token")
          return answer(401, "");
        if (request.target == "/latest/meta-data/iam/security-credentials/")
          return answer(200, "widget-role\n");
        if (request.target == "/latest/meta-data/iam/security-credentials/widget-role")
          return answer(200, credentials_json());
        return answer(404, "");
      },
      recording::on);
  EXPECT_EQ(imds_credentials().reason, "disabled");
  set("AWS_EC2_METADATA_DISABLED", "false");
  set("AWS_EC2_METADATA_SERVICE_ENDPOINT", server.endpoint() + "/");
  const auto result = imds_credentials();
  ASSERT_TRUE(result.found) << result.reason;
  EXPECT_EQ(result.found->access_key_id, "ASIAMETADATA");
  const auto requests = server.received();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[0].method, "PUT");
  EXPECT_EQ(requests[0].headers.at("x-aws-ec2-metadata-token-ttl-seconds"), "21600");
  EXPECT_EQ(requests[2].method, "GET");
}

TEST_F(credentials_test, imds_without_token_or_role) {
  loopback_http_server server([](const received_http_request& request) {
    if (request.method == "PUT")
      return answer(request.headers.contains("x-aws-ec2-metadata-token-ttl-seconds") ? 200 : 400,
                    "t");
    return answer(404, "");
  });
  set("AWS_EC2_METADATA_DISABLED", "False");
  set("AWS_EC2_METADATA_SERVICE_ENDPOINT", server.endpoint());
  EXPECT_EQ(imds_credentials().reason, "no instance role (HTTP 404)");
}

// --- the chain -----------------------------------------------------------------

TEST_F(credentials_test, chain_lists_everything_it_tried) {
  try {
    default_credentials_chain()();
    FAIL() << "expected credentials_error";
  } catch (const credentials_error& error) {
    EXPECT_EQ(std::string(error.what()),
              "no AWS credentials: environment: AWS_ACCESS_KEY_ID not set; web identity: "
              "AWS_WEB_IDENTITY_TOKEN_FILE not set; shared files: no "
              "profile 'default' in " +
                  (home_ / ".aws/credentials").string() + " (not found) or " +
                  (home_ / ".aws/config").string() +
                  " (not found); container: not configured; IMDS: disabled");
  }
}

TEST_F(credentials_test, chain_precedence) {
  loopback_http_server server(
      [](const received_http_request&) { return answer(200, credentials_json()); });
  set("AWS_CONTAINER_CREDENTIALS_FULL_URI", server.endpoint() + "/c");
  EXPECT_EQ(default_credentials_chain()().access_key_id, "ASIAMETADATA");
  write("credentials",
        "[default]\naws_access_key_id=AKIDFILE\naws_secret_access_key=s\n"
        "[p]\naws_access_key_id=AKIDPROFILE\naws_secret_access_key=s\n");
  EXPECT_EQ(default_credentials_chain()().access_key_id, "AKIDFILE");
  set("AWS_ACCESS_KEY_ID", "AKIDENV");
  set("AWS_SECRET_ACCESS_KEY", "s");
  EXPECT_EQ(default_credentials_chain()().access_key_id, "AKIDENV");
  EXPECT_EQ(default_credentials_chain({.profile = "p"})().access_key_id,
            "AKIDPROFILE");  // like aws --profile p
  // A named profile that does not exist stops the chain before the container.
  EXPECT_THROW(default_credentials_chain({.profile = "missing"})(), credentials_error);
}

struct fake_clock {
  std::shared_ptr<std::chrono::system_clock::time_point> now =
      std::make_shared<std::chrono::system_clock::time_point>(
          std::chrono::sys_days{std::chrono::year{2030} / 1 / 1});
};

TEST(credentials_chain_cache, refreshes_five_minutes_before_expiry) {
  fake_clock clock;
  auto calls = std::make_shared<int>(0);
  auto fail = std::make_shared<bool>(false);
  const auto start = *clock.now;
  credentials_chain chain(
      {{"fake",
        [=] {
          ++*calls;
          if (*fail)
            return provider_result{.found = std::nullopt, .reason = "down", .final = false};
          return provider_result{credentials{"AKID" + std::to_string(*calls), "s", "t", start + 1h},
                                 ""};
        }}},
      {.refresh_margin = 5min, .now = [clock] { return *clock.now; }});
  const std::function<credentials()> as_function = chain;  // copies share the cache
  EXPECT_EQ(as_function().access_key_id, "AKID1");
  *clock.now = start + 54min;
  EXPECT_EQ(chain().access_key_id, "AKID1");
  EXPECT_EQ(*calls, 1);
  *clock.now = start + 55min;
  EXPECT_EQ(as_function().access_key_id, "AKID2");
  *fail = true;
  *clock.now = start + 60min - 1s;
  EXPECT_EQ(chain().access_key_id, "AKID2");  // refresh failed; still valid for a second
  *clock.now = start + 60min;
  EXPECT_THROW(chain(), credentials_error);
}

TEST(credentials_chain_cache, concurrent_callers_fetch_once) {
  std::atomic<int> calls{0};
  credentials_chain chain(
      {{"slow",
        [&] {
          ++calls;
          std::this_thread::sleep_for(20ms);
          return provider_result{credentials{"AKID", "s", "", std::nullopt}, ""};
        }}},
      {});
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i)
    threads.emplace_back([&] { EXPECT_EQ(chain().access_key_id, "AKID"); });
  for (auto& thread : threads)
    thread.join();
  EXPECT_EQ(calls, 1);
}

}  // namespace
