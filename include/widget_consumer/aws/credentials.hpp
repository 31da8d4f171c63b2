#pragma once
// AWS credentials and where they come from: the environment, the shared
// files, the container endpoint (ECS/EKS), EC2 instance metadata (IMDSv2),
// tried in that order by credentials_chain, which caches and refreshes.
// The secret key and session token never leave this header in text form:
// describe() and operator<< redact them, no exception message includes them,
// and response bodies that hold them are never quoted.

#include "widget_consumer/aws/config.hpp"

#include <curl/curl.h>
#include <boost/json.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace widget_consumer::aws {

struct credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // empty for long-term keys
  std::optional<std::chrono::system_clock::time_point> expiration;
  // Where they were found ("environment", "shared files", ...), for messages
  // that must say which identity was used without showing it. Not part of
  // the identity: two equal keys from two places are equal credentials.
  std::string source = {};

  bool empty() const noexcept { return access_key_id.empty() || secret_access_key.empty(); }
  bool operator==(const credentials& other) const noexcept {
    return access_key_id == other.access_key_id && secret_access_key == other.secret_access_key &&
           session_token == other.session_token && expiration == other.expiration;
  }
};

// "AKIDEXAMPLE (secret ****, session token ****, expires 2024-01-01T00:00:00Z)":
// the key id is not secret (it appears in every Authorization header).
inline std::string describe(const credentials& creds) {
  std::string out =
      creds.access_key_id.empty() ? std::string("<no access key id>") : creds.access_key_id;
  out += creds.secret_access_key.empty() ? " (no secret" : " (secret ****";
  if (!creds.session_token.empty())
    out += ", session token ****";
  if (creds.expiration) {
    const auto seconds = std::chrono::floor<std::chrono::seconds>(*creds.expiration);
    const auto days = std::chrono::floor<std::chrono::days>(seconds);
    const std::chrono::year_month_day date{days};
    const std::chrono::hh_mm_ss time{seconds - days};
    auto two = [](long value) {
      return std::string(value < 10 ? "0" : "") + std::to_string(value);
    };
    out += ", expires " + std::to_string(static_cast<int>(date.year())) + "-" +
           two(static_cast<unsigned>(date.month())) + "-" + two(static_cast<unsigned>(date.day())) +
           "T" + two(time.hours().count()) + ":" + two(time.minutes().count()) + ":" +
           two(time.seconds().count()) + "Z";
  }
  out += ")";
  return out;
}

// Also what GoogleTest uses to print a credentials value in a failure message.
inline std::ostream& operator<<(std::ostream& out, const credentials& creds) {
  return out << describe(creds);
}

// Thrown by credentials_chain when no provider has credentials; the message
// lists what each provider tried and why it had none.
class credentials_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One provider's answer: credentials, or the reason it has none. `final`
// stops the chain: the user asked for something specific (a named profile)
// and falling through to another identity would be a surprise.
struct provider_result {
  std::optional<credentials> found;
  std::string reason;
  bool final = false;
};

namespace detail {
inline provider_result not_found(std::string reason, bool final = false) {
  return {std::nullopt, std::move(reason), final};
}

// "2024-01-02T03:04:05Z", also with fractional seconds or a "+00:00" offset.
inline std::optional<std::chrono::system_clock::time_point> parse_iso8601(std::string_view text) {
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (text.size() < 19 ||
      std::sscanf(std::string(text.substr(0, 19)).c_str(), "%4d-%2d-%2dT%2d:%2d:%2d", &year, &month,
                  &day, &hour, &minute, &second) != 6)
    return std::nullopt;
  const std::chrono::year_month_day date{std::chrono::year{year},
                                         std::chrono::month{static_cast<unsigned>(month)},
                                         std::chrono::day{static_cast<unsigned>(day)}};
  if (!date.ok())
    return std::nullopt;
  auto time = std::chrono::sys_days{date} + std::chrono::hours{hour} +
              std::chrono::minutes{minute} + std::chrono::seconds{second};
  std::string_view zone = text.substr(19);
  while (!zone.empty() && (zone.front() == '.' || (zone.front() >= '0' && zone.front() <= '9')))
    zone.remove_prefix(1);
  if (zone.size() == 6 && (zone[0] == '+' || zone[0] == '-')) {
    const auto offset = std::chrono::hours{std::stoi(std::string(zone.substr(1, 2)))} +
                        std::chrono::minutes{std::stoi(std::string(zone.substr(4, 2)))};
    time += zone[0] == '+' ? -offset : offset;
  }
  return std::chrono::time_point_cast<std::chrono::system_clock::duration>(time);
}

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
  credentials creds{field("AccessKeyId"), field("SecretAccessKey"), field("Token"), std::nullopt,
                    source};
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
  return {credentials{std::move(*key_id), std::move(*secret),
                      detail::environment("AWS_SESSION_TOKEN").value_or(""), std::nullopt,
                      "environment"},
          {}};
}

// The profile's keys from the credentials file ("[name]"), else from the
// config file ("[profile name]"). A profile named by argument or AWS_PROFILE
// that exists in neither file is final: no other identity is substituted.
inline provider_result shared_file_credentials(
    std::optional<std::string_view> explicit_profile = {}) {
  const std::string profile = profile_name(explicit_profile);
  const bool named = (explicit_profile && !explicit_profile->empty()) ||
                     detail::environment("AWS_PROFILE").has_value();
  const auto credentials_path = shared_credentials_file();
  const auto config_path = shared_config_file();
  const auto credentials_ini = read_ini_file(credentials_path);
  const auto config_ini = read_ini_file(config_path);

  const ini_section* section = nullptr;
  std::string where;
  if (credentials_ini)
    if (auto it = credentials_ini->find(profile); it != credentials_ini->end())
      section = &it->second, where = credentials_path.string();
  if (section == nullptr && config_ini)
    if ((section = config_profile_section(*config_ini, profile)) != nullptr)
      where = config_path.string();
  if (section == nullptr || !section->contains("aws_access_key_id")) {
    // A config-only profile may name a role or SSO: say so rather than "missing".
    const ini_section* config_section =
        config_ini ? config_profile_section(*config_ini, profile) : nullptr;
    for (const char* key : {"role_arn", "sso_session", "sso_start_url", "credential_process"})
      if (config_section != nullptr && config_section->contains(key))
        return detail::not_found(
            "profile '" + profile + "' uses " + key + ", which is not supported", named);
    if (section != nullptr)
      return detail::not_found(
          "profile '" + profile + "' in " + where + " has no aws_access_key_id", named);
    auto file_note = [](const std::filesystem::path& path, bool exists) {
      return path.string() + (exists ? "" : " (not found)");
    };
    return detail::not_found("no profile '" + profile + "' in " +
                                 file_note(credentials_path, credentials_ini.has_value()) + " or " +
                                 file_note(config_path, config_ini.has_value()),
                             named);
  }
  auto value = [&](const char* key) {
    const auto it = section->find(key);
    return it == section->end() ? std::string{} : it->second;
  };
  credentials creds{value("aws_access_key_id"), value("aws_secret_access_key"),
                    value("aws_session_token"), std::nullopt,
                    "shared files, profile '" + profile + "'"};
  if (creds.secret_access_key.empty())
    return detail::not_found(
        "profile '" + profile + "' in " + where + " has no aws_secret_access_key", named);
  return {std::move(creds), {}};
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

struct named_provider {
  std::string name;
  std::function<provider_result()> fetch;
};

// The standard order. An explicit profile argument skips the environment, as
// with the AWS CLI's --profile; AWS_PROFILE alone does not.
inline std::vector<named_provider> default_providers(std::optional<std::string> profile = {}) {
  std::vector<named_provider> providers;
  if (profile && !profile->empty())
    providers.push_back({"environment", [profile] {
                           return detail::not_found("skipped, profile '" + *profile +
                                                    "' given explicitly");
                         }});
  else
    providers.push_back({"environment", environment_credentials});
  providers.push_back({"shared files", [profile] { return shared_file_credentials(profile); }});
  providers.push_back({"container", [] { return container_credentials(); }});
  providers.push_back({"IMDS", [] { return imds_credentials(); }});
  return providers;
}

// Callable as std::function<credentials()>: the first provider with
// credentials wins, the result is cached until `refresh_margin` before its
// expiration, and a failed refresh keeps serving still-valid credentials.
// Copies share one cache. Thread-safe; a refresh blocks other callers.
class credentials_chain {
 public:
  struct options {
    std::chrono::seconds refresh_margin = std::chrono::minutes{5};
    std::function<std::chrono::system_clock::time_point()> now = [] {
      return std::chrono::system_clock::now();
    };
  };

  explicit credentials_chain(std::optional<std::string> profile = {})
      : credentials_chain(default_providers(std::move(profile)), options{}) {}
  credentials_chain(std::vector<named_provider> providers, options opts)
      : state_(std::make_shared<state>(std::move(providers), std::move(opts))) {}

  credentials operator()() const {
    std::lock_guard lock(state_->mutex);
    const auto now = state_->opts.now();
    auto& cached = state_->cached;
    if (cached && (!cached->expiration || now < *cached->expiration - state_->opts.refresh_margin))
      return *cached;
    std::string tried;
    for (const auto& provider : state_->providers) {
      auto result = provider.fetch();
      if (result.found) {
        cached = std::move(result.found);
        if (cached->source.empty())
          cached->source = provider.name;
        return *cached;
      }
      tried += (tried.empty() ? "" : "; ") + provider.name + ": " + result.reason;
      if (result.final)
        break;
    }
    if (cached && cached->expiration && now < *cached->expiration)
      return *cached;
    throw credentials_error("no AWS credentials: " + tried);
  }

 private:
  struct state {
    state(std::vector<named_provider> p, options o) : providers(std::move(p)), opts(std::move(o)) {}
    std::mutex mutex;
    std::vector<named_provider> providers;
    options opts;
    std::optional<credentials> cached;
  };
  std::shared_ptr<state> state_;
};

}  // namespace widget_consumer::aws
