#pragma once
// IAM Identity Center (SSO) role credentials, the way the AWS CLI gets them
// after `aws sso login`: the access token the CLI cached under
// ~/.aws/sso/cache/<SHA-1 hex of the session name, or of the start URL for a
// legacy profile>.json, sent to the portal's GetRoleCredentials
// (GET https://portal.sso.<region>.amazonaws.com/federation/credentials,
// header x-amz-sso_bearer_token). The cached token is used as it is: signing
// in, and renewing the token, stay with `aws sso login`.
//
// The endpoint is AWS_ENDPOINT_URL_SSO, else AWS_ENDPOINT_URL, else the
// portal of sso_region. Neither the token nor the answer appears in a message.

#include <widget_consumer/aws/config.hpp>
#include <widget_consumer/aws/credentials.hpp>
#include <widget_consumer/aws/crypto.hpp>
#include <widget_consumer/aws/error.hpp>
#include <widget_consumer/aws/http.hpp>
#include <widget_consumer/aws/response.hpp>
#include <widget_consumer/aws/retry.hpp>
#include <widget_consumer/aws/uri.hpp>

#include <boost/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace widget_consumer::aws {

/// What a profile says about its SSO role.
struct sso_settings {
  std::string session_name =
      {};  ///< sso_session; "" for the legacy form (sso_start_url in the profile)
  std::string start_url = {};   ///< sso_start_url: the portal the token was got from
  std::string region = {};      ///< sso_region
  std::string account_id = {};  ///< sso_account_id
  std::string role_name = {};   ///< sso_role_name
  std::string ca_bundle = {};   ///< "" = the system's CA certificates
};

namespace detail {

inline std::filesystem::path sso_token_file(const sso_settings& settings) {
  const std::string key =
      settings.session_name.empty() ? settings.start_url : settings.session_name;
  return home_directory() / ".aws" / "sso" / "cache" / (sha1_hex(key) + ".json");
}

inline std::string sso_login_advice(const sso_settings& settings) {
  return settings.session_name.empty()
             ? "run `aws sso login`"
             : "run `aws sso login --sso-session " + settings.session_name + "`";
}

// The cached access token, if present and still valid at `now`.
inline std::string read_sso_token(const sso_settings& settings,
                                  std::chrono::system_clock::time_point now) {
  const auto path = sso_token_file(settings);
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw credentials_error("no cached SSO token (" + path.string() +
                            " not found): " + sso_login_advice(settings));
  std::ostringstream text;
  text << in.rdbuf();
  boost::system::error_code error;
  const auto document = boost::json::parse(text.str(), error);
  const auto* object = error ? nullptr : document.if_object();
  const auto* token = object ? object->if_contains("accessToken") : nullptr;
  const auto* expires = object ? object->if_contains("expiresAt") : nullptr;
  if (token == nullptr || !token->is_string() || expires == nullptr || !expires->is_string())
    throw credentials_error("unreadable SSO token cache " + path.string() + ": " +
                            sso_login_advice(settings));
  const auto expiration = parse_iso8601(expires->get_string());
  if (!expiration || *expiration <= now)
    throw credentials_error("the cached SSO token has expired: " + sso_login_advice(settings));
  return std::string(token->get_string());
}

inline std::string sso_portal_endpoint(const std::string& region) {
  for (const char* variable : {"AWS_ENDPOINT_URL_SSO", "AWS_ENDPOINT_URL"})
    if (auto custom = environment(variable)) {
      while (custom->size() > 1 && custom->back() == '/')
        custom->pop_back();
      return *custom;
    }
  return "https://portal.sso." + region + ".amazonaws.com";
}

inline credentials read_role_credentials(const response_origin& origin) {
  auto body = read_json_response(origin);
  const auto* role = optional_object(origin, body, "roleCredentials");
  if (role == nullptr)
    throw origin.unexpected("no roleCredentials in the answer");
  credentials creds{.access_key_id = required_string(origin, *role, "accessKeyId"),
                    .secret_access_key = required_string(origin, *role, "secretAccessKey"),
                    .session_token = required_string(origin, *role, "sessionToken"),
                    .expiration = std::nullopt,
                    .source = {}};
  if (const auto* expiration = role->if_contains("expiration");
      expiration && expiration->is_number())
    creds.expiration = std::chrono::system_clock::time_point{
        std::chrono::milliseconds{expiration->to_number<long long>()}};
  if (creds.empty())
    throw origin.unexpected("roleCredentials without accessKeyId or secretAccessKey");
  return creds;
}

}  // namespace detail

/// Throws credentials_error when the token is missing, expired or refused,
/// service_error / transport_error when the portal cannot be reached.
inline credentials sso_role_credentials(
    const sso_settings& settings,
    std::chrono::system_clock::time_point now = std::chrono::system_clock::now()) {
  const std::string token = detail::read_sso_token(settings, now);
  const std::string resource = "role " + settings.role_name + " in account " + settings.account_id;
  http_request request;
  request.method = "GET";
  request.url = detail::sso_portal_endpoint(settings.region) +
                "/federation/credentials?role_name=" + uri_encode(settings.role_name) +
                "&account_id=" + uri_encode(settings.account_id);
  request.headers.push_back({"x-amz-sso_bearer_token", token});
  http_options options;
  options.ca_bundle = settings.ca_bundle;
  http_client http(options);
  retry_strategy retries(max_attempts_from_environment());
  try {
    return retries.run([&](std::chrono::system_clock::time_point) {
      const http_response response = http.send(request);
      if (response.status < 200 || response.status > 299)
        throw parse_service_error("sso", "GetRoleCredentials", resource, response);
      return detail::read_role_credentials({"sso", "GetRoleCredentials", resource, response});
    });
  } catch (const service_error& error) {
    if (error.status() == 401 || error.code() == "UnauthorizedException")
      throw credentials_error("the SSO portal refused the cached token for " + resource + " (" +
                              error.code() + "): " + detail::sso_login_advice(settings));
    throw;
  }
}

}  // namespace widget_consumer::aws
