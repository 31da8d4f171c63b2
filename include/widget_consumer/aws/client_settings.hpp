#pragma once
// From what a user states (profile, region, endpoint, CA bundle, attempts) to
// the client_config of one service, with the lookups the AWS CLI does for
// what is left unstated: region and endpoint by config.hpp, credentials by the
// credentials chain, attempts by AWS_MAX_ATTEMPTS.

#include <widget_consumer/aws/client.hpp>
#include <widget_consumer/aws/config.hpp>
#include <widget_consumer/aws/credentials.hpp>
#include <widget_consumer/aws/default_credentials.hpp>
#include <widget_consumer/aws/retry.hpp>

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace widget_consumer::aws {

/// What a user states about the AWS services to call; the rest is looked up as the AWS CLI does.
struct client_settings {
  std::string profile;                ///< "" = AWS_PROFILE, else "default"
  std::string region;                 ///< "" = AWS_REGION, AWS_DEFAULT_REGION, profile, us-east-1
  std::string endpoint_url;           ///< "" = AWS_ENDPOINT_URL_<SERVICE>, AWS_ENDPOINT_URL, AWS
  std::string ca_bundle;              ///< "" = the system's CA certificates
  int max_attempts = 0;               ///< 0 = AWS_MAX_ATTEMPTS, else 3
  std::optional<bool> s3_path_style;  ///< unset: path style for custom endpoints only
  /// client_config::notice: what a client tells that is no error (the region
  /// an S3 bucket was found in). Empty: not said.
  std::function<void(std::string_view)> notice;
};

/// One credentials chain serves every client of a program, so credentials are
/// looked up (and refreshed) once, not once per service. STS, when a role is
/// assumed, is reached like the other services: same region, endpoint and CA.
inline credentials_chain make_credentials(const client_settings& settings) {
  return default_credentials_chain({.profile = settings.profile,
                                    .region = settings.region,
                                    .endpoint_url = settings.endpoint_url,
                                    .ca_bundle = settings.ca_bundle});
}

/// Empty strings mean "not stated": config.hpp's resolvers skip them.
inline client_config make_client_config(std::string_view service, const client_settings& settings,
                                        const credentials_chain& credentials) {
  client_config config;
  config.region = resolve_region(settings.region, settings.profile);
  const auto endpoint =
      resolve_endpoint(service, config.region, settings.endpoint_url, settings.s3_path_style);
  config.endpoint = endpoint.url;
  config.path_style = endpoint.path_style;
  config.max_attempts =
      settings.max_attempts > 0 ? settings.max_attempts : max_attempts_from_environment();
  config.http.ca_bundle = settings.ca_bundle;
  config.credentials = credentials;
  config.notice = settings.notice;
  return config;
}

}  // namespace widget_consumer::aws
