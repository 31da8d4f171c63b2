#pragma once
// The providers that need no profile: the environment, the container
// endpoint (ECS/EKS) and EC2 instance metadata (IMDSv2), plus the plain HTTP
// exchange the two metadata services share. Responses that hold secrets are
// never quoted in a reason.

#include <widget_consumer/aws/config.hpp>
#include <widget_consumer/aws/credentials.hpp>

#include <curl/curl.h>
#include <boost/json.hpp>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <cstring>
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

// 127.0.0.0/8, ::1, and the hosts of the ECS and EKS Pod Identity agents.
inline bool is_loopback_or_container_address(const std::string& host) {
  unsigned char address[16];
  if (::inet_pton(AF_INET, host.c_str(), address) == 1)
    return address[0] == 127 || host == "169.254.170.2" || host == "169.254.170.23";
  if (::inet_pton(AF_INET6, host.c_str(), address) != 1)
    return false;
  unsigned char loopback[16] = {}, container[16] = {};
  loopback[15] = 1;
  ::inet_pton(AF_INET6, "fd00:ec2::23", container);
  return std::memcmp(address, loopback, 16) == 0 || std::memcmp(address, container, 16) == 0;
}

// "localhost" counts as loopback when every address it resolves to is one.
inline bool localhost_is_loopback() {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (::getaddrinfo("localhost", nullptr, &hints, &found) != 0)
    return false;
  bool loopback = found != nullptr;
  for (const addrinfo* entry = found; entry != nullptr; entry = entry->ai_next) {
    if (entry->ai_family == AF_INET) {
      const auto* address = reinterpret_cast<const sockaddr_in*>(entry->ai_addr);
      loopback = loopback && (ntohl(address->sin_addr.s_addr) >> 24) == 127;
    } else {
      const auto* address = reinterpret_cast<const sockaddr_in6*>(entry->ai_addr);
      loopback =
          loopback && entry->ai_family == AF_INET6 && IN6_IS_ADDR_LOOPBACK(&address->sin6_addr);
    }
  }
  ::freeaddrinfo(found);
  return loopback;
}

// Why the container endpoint `url`, from `variable`, may not be used, or ""
// when it may. The authorization token goes with the request: like the AWS
// SDKs, plain http is allowed only to a loopback address or a container
// host, https anywhere. (A RELATIVE_URI is checked too: "@host/..." would
// make 169.254.170.2 a user name.) The URL is taken apart by libcurl's own parser, the one that
// will connect, so that no URL reads one way here and another way there.
// The message names the host, not the URL (it may hold more than a host).
inline std::string container_endpoint_refusal(
    const std::string& url, const std::string& variable = "AWS_CONTAINER_CREDENTIALS_FULL_URI") {
  std::unique_ptr<CURLU, decltype(&curl_url_cleanup)> parsed(curl_url(), &curl_url_cleanup);
  if (!parsed)
    throw std::runtime_error("cannot initialise libcurl");
  char* scheme_text = nullptr;
  char* host_text = nullptr;
  if (curl_url_set(parsed.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK ||
      curl_url_get(parsed.get(), CURLUPART_SCHEME, &scheme_text, 0) != CURLUE_OK ||
      curl_url_get(parsed.get(), CURLUPART_HOST, &host_text, 0) != CURLUE_OK) {
    curl_free(scheme_text);
    return variable + " is not a URL with a scheme and a host";
  }
  const std::string scheme = to_lower(scheme_text);
  std::string host = to_lower(host_text);
  curl_free(scheme_text);
  curl_free(host_text);
  if (scheme == "https")
    return {};
  if (scheme != "http")
    return variable + " has the scheme " + scheme + ": only http and https are used";
  const std::string shown = host;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (is_loopback_or_container_address(host) || (host == "localhost" && localhost_is_loopback()))
    return {};
  return variable + " names host " + shown +
         " over plain http, which would send the authorization token in the clear: use https, "
         "or http to a loopback address or to 169.254.170.2, 169.254.170.23 or fd00:ec2::23";
}

// The Authorization header's value, as the AWS SDKs find it: the token file
// first (read at every fetch: EKS rotates it), else the token. A token that
// would end the header line and start another is refused, never quoted.
inline std::optional<std::string> container_authorization(std::string& problem) {
  std::optional<std::string> token;
  std::string from = "AWS_CONTAINER_AUTHORIZATION_TOKEN";
  if (auto token_file = environment("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")) {
    std::ifstream in(*token_file);
    std::ostringstream text;
    text << in.rdbuf();
    if (!in) {
      problem = "cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE " + *token_file;
      return std::nullopt;
    }
    token = std::string(trim(text.str()));
    from = "the file of AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE";
  } else {
    token = environment("AWS_CONTAINER_AUTHORIZATION_TOKEN");
  }
  if (token && token->find_first_of("\r\n") != std::string::npos) {
    problem = "the token in " + from + " holds a line break, which no header value may hold";
    return std::nullopt;
  }
  return token;
}
}  // namespace detail

/// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN.
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

/// ECS/EKS: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (against 169.254.170.2) or
/// AWS_CONTAINER_CREDENTIALS_FULL_URI (https, or http to loopback or a
/// container host), with AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (or _TOKEN)
/// as the Authorization header. A refused URI or token is a configuration
/// error: it stops the chain.
inline provider_result container_credentials(
    std::chrono::milliseconds timeout = std::chrono::seconds{1}) {
  std::string url, variable;
  if (auto relative = detail::environment("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")) {
    url = "http://169.254.170.2" + *relative;
    variable = "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI";
  } else if (auto full = detail::environment("AWS_CONTAINER_CREDENTIALS_FULL_URI")) {
    url = *full;
    variable = "AWS_CONTAINER_CREDENTIALS_FULL_URI";
  } else {
    return detail::not_found("not configured");
  }
  // Checked before the token is read, and before any connection.
  if (auto refusal = detail::container_endpoint_refusal(url, variable); !refusal.empty())
    return detail::not_found(std::move(refusal), true);
  std::string problem;
  const auto token = detail::container_authorization(problem);
  if (!problem.empty())
    return detail::not_found(std::move(problem), true);
  std::vector<std::string> headers;
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

/// EC2 instance metadata, IMDSv2 only: PUT a session token, GET the role name,
/// GET the role's credentials. AWS_EC2_METADATA_DISABLED=true skips it;
/// AWS_EC2_METADATA_SERVICE_ENDPOINT replaces http://169.254.169.254.
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
