#pragma once
// The providers that need no profile: the environment, the container
// endpoint (ECS/EKS) and EC2 instance metadata (IMDSv2), plus the plain HTTP
// exchange the two metadata services share. Responses that hold secrets are
// never quoted in a reason.

#include <widget_consumer/aws/config.hpp>
#include <widget_consumer/aws/credentials.hpp>

#include <curl/curl.h>
#include <boost/json.hpp>

#include <chrono>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace widget_consumer::aws {

namespace detail {
struct metadata_response {
  long status = 0;
  std::string body;
};

// A plain HTTP exchange with a metadata service: short timeouts, no proxy
// (169.254.x.x must never go through one), no redirects, bounded body.
// Throws std::runtime_error with a message free of headers and body.
inline metadata_response metadata_http(const char* method, const std::string& url,
                                       const std::vector<std::string>& headers,
                                       std::chrono::milliseconds timeout) {
  static const bool initialised = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(initialised ? curl_easy_init() : nullptr,
                                                           &curl_easy_cleanup);
  if (!curl)
    throw std::runtime_error("cannot initialise libcurl");
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> list(nullptr, &curl_slist_free_all);
  for (const auto& header : headers) {
    curl_slist* appended = curl_slist_append(list.get(), header.c_str());
    if (appended == nullptr)
      throw std::runtime_error("out of memory building metadata request");
    static_cast<void>(list.release());
    list.reset(appended);
  }
  metadata_response response;
  constexpr std::size_t max_body = 64 * 1024;
  auto write = +[](char* data, std::size_t size, std::size_t count, void* user) -> std::size_t {
    auto& body = *static_cast<std::string*>(user);
    if (body.size() + size * count > max_body)
      return 0;  // aborts the transfer
    body.append(data, size * count);
    return size * count;
  };
  CURL* handle = curl.get();
  curl_easy_setopt(handle, CURLOPT_URL, url.c_str());
  curl_easy_setopt(handle, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(handle, CURLOPT_HTTPHEADER, list.get());
  curl_easy_setopt(handle, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(handle, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(handle, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(handle, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(handle, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, write);
  curl_easy_setopt(handle, CURLOPT_WRITEDATA, &response.body);
  if (const CURLcode code = curl_easy_perform(handle); code != CURLE_OK)
    throw std::runtime_error(std::string(method) + " " + url + ": " + curl_easy_strerror(code));
  curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &response.status);
  return response;
}

// The JSON document both metadata services return. Parse errors name the
// source, never the body (it holds the secret).
inline credentials parse_metadata_credentials(const std::string& body, const std::string& source) {
  boost::system::error_code error;
  const auto document = boost::json::parse(body, error);
  const auto* object = error ? nullptr : document.if_object();
  auto field = [&](const char* name) -> std::string {
    const auto* value = object ? object->if_contains(name) : nullptr;
    return value && value->is_string() ? std::string(value->get_string()) : std::string{};
  };
  if (object == nullptr)
    throw std::runtime_error("unreadable credentials document from " + source);
  if (const auto* code = object->if_contains("Code");
      code && code->is_string() && code->get_string() != "Success")
    throw std::runtime_error(source + " answered Code " + std::string(code->get_string()));
  credentials creds{.access_key_id = field("AccessKeyId"),
                    .secret_access_key = field("SecretAccessKey"),
                    .session_token = field("Token"),
                    .expiration = std::nullopt,
                    .source = source};
  if (creds.empty())
    throw std::runtime_error("credentials document from " + source +
                             " lacks AccessKeyId or SecretAccessKey");
  if (const auto expiration = field("Expiration"); !expiration.empty())
    creds.expiration = parse_iso8601(expiration);
  return creds;
}

inline bool is_true(const std::optional<std::string>& value) {
  return value && to_lower(*value) == "true";
}
}  // namespace detail

// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN.
inline provider_result environment_credentials() {
  auto key_id = detail::environment("AWS_ACCESS_KEY_ID");
  if (!key_id)
    return detail::not_found("AWS_ACCESS_KEY_ID not set");
  auto secret = detail::environment("AWS_SECRET_ACCESS_KEY");
  if (!secret)
    return detail::not_found("AWS_ACCESS_KEY_ID set but AWS_SECRET_ACCESS_KEY not set");
  return {.found =
              credentials{.access_key_id = std::move(*key_id),
                          .secret_access_key = std::move(*secret),
                          .session_token = detail::environment("AWS_SESSION_TOKEN").value_or(""),
                          .expiration = std::nullopt,
                          .source = "environment"}};
}

// ECS/EKS: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (against 169.254.170.2) or
// AWS_CONTAINER_CREDENTIALS_FULL_URI, with AWS_CONTAINER_AUTHORIZATION_TOKEN
// (or _TOKEN_FILE) as the Authorization header.
inline provider_result container_credentials(
    std::chrono::milliseconds timeout = std::chrono::seconds{1}) {
  std::string url;
  if (auto relative = detail::environment("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"))
    url = "http://169.254.170.2" + *relative;
  else if (auto full = detail::environment("AWS_CONTAINER_CREDENTIALS_FULL_URI"))
    url = *full;
  else
    return detail::not_found("not configured");
  std::vector<std::string> headers;
  auto token = detail::environment("AWS_CONTAINER_AUTHORIZATION_TOKEN");
  if (!token)
    if (auto token_file = detail::environment("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")) {
      std::ifstream in(*token_file);
      std::ostringstream text;
      text << in.rdbuf();
      if (!in)
        return detail::not_found("cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE " +
                                 *token_file);
      token = std::string(detail::trim(text.str()));
    }
  if (token)
    headers.push_back("Authorization: " + *token);
  try {
    const auto response = detail::metadata_http("GET", url, headers, timeout);
    if (response.status != 200)
      return detail::not_found("HTTP " + std::to_string(response.status) + " from " + url);
    return {detail::parse_metadata_credentials(response.body, url), {}};
  } catch (const std::exception& error) {
    return detail::not_found(error.what());
  }
}

// EC2 instance metadata, IMDSv2 only: PUT a session token, GET the role name,
// GET the role's credentials. AWS_EC2_METADATA_DISABLED=true skips it;
// AWS_EC2_METADATA_SERVICE_ENDPOINT replaces http://169.254.169.254.
inline provider_result imds_credentials(std::chrono::milliseconds timeout = std::chrono::seconds{
                                            1}) {
  if (detail::is_true(detail::environment("AWS_EC2_METADATA_DISABLED")))
    return detail::not_found("disabled");
  std::string endpoint =
      detail::environment("AWS_EC2_METADATA_SERVICE_ENDPOINT").value_or("http://169.254.169.254");
  while (endpoint.ends_with('/'))
    endpoint.pop_back();
  const std::string credentials_path = "/latest/meta-data/iam/security-credentials/";
  try {
    const auto token =
        detail::metadata_http("PUT", endpoint + "/latest/api/token",
                              {"X-aws-ec2-metadata-token-ttl-seconds: 21600"}, timeout);
    if (token.status != 200 || token.body.empty())
      return detail::not_found("token request answered HTTP " + std::to_string(token.status));
    const std::vector<std::string> headers{"X-aws-ec2-metadata-token: " + token.body};
    const auto roles = detail::metadata_http("GET", endpoint + credentials_path, headers, timeout);
    if (roles.status != 200)
      return detail::not_found("no instance role (HTTP " + std::to_string(roles.status) + ")");
    const std::string role(
        detail::trim(std::string_view(roles.body).substr(0, roles.body.find('\n'))));
    if (role.empty())
      return detail::not_found("no instance role");
    const std::string url = endpoint + credentials_path + uri_encode(role);
    const auto document = detail::metadata_http("GET", url, headers, timeout);
    if (document.status != 200)
      return detail::not_found("HTTP " + std::to_string(document.status) + " for role " + role);
    return {detail::parse_metadata_credentials(document.body, "IMDS role " + role), {}};
  } catch (const std::exception& error) {
    return detail::not_found(error.what());
  }
}

}  // namespace widget_consumer::aws
