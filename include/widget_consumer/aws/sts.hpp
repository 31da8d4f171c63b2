#pragma once
// The two STS operations the credentials chain needs, over the STS query
// protocol (form-encoded POST, XML answer): AssumeRole, signed with the
// source identity's credentials, and AssumeRoleWithWebIdentity, which the
// web identity token authorises and which is therefore sent unsigned. The
// endpoint follows config.hpp's rules for the service "sts": the explicit
// URL, AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL, else the regional endpoint
// https://sts.<region>.amazonaws.com. Retries follow retry.hpp.
//
// The answer holds a secret key and a session token: it is parsed here and
// never quoted; an error names the role, never a credential or the token.

#include <widget_consumer/aws/client.hpp>
#include <widget_consumer/aws/config.hpp>
#include <widget_consumer/aws/credentials.hpp>
#include <widget_consumer/aws/error.hpp>
#include <widget_consumer/aws/http.hpp>
#include <widget_consumer/aws/response.hpp>
#include <widget_consumer/aws/retry.hpp>
#include <widget_consumer/aws/uri.hpp>
#include <widget_consumer/aws/xml.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace widget_consumer::aws {

/// Where STS is and how to reach it; empty strings mean "not stated".
struct sts_settings {
  std::string region = {};        ///< "" = us-east-1
  std::string endpoint_url = {};  ///< "" = AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL, regional
  std::string ca_bundle = {};     ///< "" = the system's CA certificates
  int max_attempts = 0;           ///< 0 = AWS_MAX_ATTEMPTS, else 3
};

/// What an AssumeRole or AssumeRoleWithWebIdentity asks for.
struct assume_role_request {
  std::string role_arn = {};                 ///< the role to assume
  std::string role_session_name = {};        ///< "" = a name made from the time
  std::string external_id = {};              ///< AssumeRole only; "" = not sent
  std::optional<int> duration_seconds = {};  ///< how long the keys last; unset: STS's hour
};

namespace detail {

inline std::string default_session_name() {
  const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::system_clock::now().time_since_epoch());
  return "widget-consumer-" + std::to_string(now.count());
}

inline std::string sts_form(std::string_view action, const assume_role_request& request) {
  query_parameters form{
      {"Action", std::string(action)},
      {"Version", "2011-06-15"},
      {"RoleArn", request.role_arn},
      {"RoleSessionName",
       request.role_session_name.empty() ? default_session_name() : request.role_session_name},
  };
  if (request.duration_seconds)
    form.emplace_back("DurationSeconds", std::to_string(*request.duration_seconds));
  return make_query(form);
}

inline client_config sts_client_config(const sts_settings& settings) {
  client_config config;
  config.region = settings.region.empty() ? std::string(default_region) : settings.region;
  config.endpoint = resolve_endpoint("sts", config.region, settings.endpoint_url).url;
  config.max_attempts =
      settings.max_attempts > 0 ? settings.max_attempts : max_attempts_from_environment();
  config.http.ca_bundle = settings.ca_bundle;
  return config;
}

inline http_request sts_request(const client_config& config, std::string body) {
  http_request request;
  request.method = "POST";
  request.url = config.endpoint + "/";
  request.headers.push_back({"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"});
  request.body = std::move(body);
  return request;
}

// <ActionResponse><ActionResult><Credentials>: the four fields every
// assume-role answer has.
inline credentials read_sts_credentials(const response_origin& origin, std::string_view action) {
  const auto document = read_xml_response(origin, std::string(action) + "Response");
  const auto found = document.root().child(std::string(action) + "Result/Credentials");
  if (!found)
    throw origin.unexpected("no Credentials in the answer");
  credentials creds{.access_key_id = found->text_or("AccessKeyId"),
                    .secret_access_key = found->text_or("SecretAccessKey"),
                    .session_token = found->text_or("SessionToken"),
                    .expiration = parse_iso8601(found->text_or("Expiration")),
                    .source = {}};
  if (creds.empty() || creds.session_token.empty())
    throw origin.unexpected("Credentials without AccessKeyId, SecretAccessKey or SessionToken");
  return creds;
}

}  // namespace detail

/// AssumeRole, signed with `source`. Throws service_error / transport_error
/// as every service call does (the role ARN is the resource they name).
inline credentials assume_role(const sts_settings& settings, const credentials& source,
                               const assume_role_request& request) {
  client_config config = detail::sts_client_config(settings);
  config.credentials = [source] { return source; };
  service_client client("sts", config);
  std::string body = detail::sts_form("AssumeRole", request);
  if (!request.external_id.empty())
    body += "&ExternalId=" + uri_encode(request.external_id);
  return client.send(
      detail::sts_request(client.config(), std::move(body)), "AssumeRole", request.role_arn,
      [&](const http_response& response) {
        const response_origin origin{"sts", "AssumeRole", request.role_arn, response};
        return detail::read_sts_credentials(origin, "AssumeRole");
      });
}

/// AssumeRoleWithWebIdentity: unsigned, the token is the proof of identity.
inline credentials assume_role_with_web_identity(const sts_settings& settings,
                                                 const std::string& web_identity_token,
                                                 const assume_role_request& request) {
  const client_config config = detail::sts_client_config(settings);
  constexpr std::string_view action = "AssumeRoleWithWebIdentity";
  http_client http(config.http);
  retry_strategy retries(config.max_attempts);
  const http_request sts_request =
      detail::sts_request(config, detail::sts_form(action, request) +
                                      "&WebIdentityToken=" + uri_encode(web_identity_token));
  return retries.run([&](std::chrono::system_clock::time_point) {
    const http_response response = http.send(sts_request);
    if (response.status < 200 || response.status > 299)
      throw parse_service_error("sts", action, request.role_arn, response);
    const response_origin origin{"sts", action, request.role_arn, response};
    return detail::read_sts_credentials(origin, action);
  });
}

}  // namespace widget_consumer::aws
