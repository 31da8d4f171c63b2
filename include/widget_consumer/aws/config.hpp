#pragma once
// Where to talk to AWS: the region, each service's endpoint, S3 object URLs,
// and the shared config files (~/.aws/config, ~/.aws/credentials) that both
// this header and credentials.hpp read. The order of every lookup follows the
// AWS SDKs, so a machine set up for the AWS CLI works unchanged.

#include <widget_consumer/aws/uri.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>

namespace widget_consumer::aws {

/// The region when nothing names one.
inline constexpr std::string_view default_region = "us-east-1";
/// The profile when neither an argument nor AWS_PROFILE names one.
inline constexpr std::string_view default_profile = "default";

namespace detail {
// An empty variable counts as unset, as in the AWS SDKs.
inline std::optional<std::string> environment(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0')
    return std::nullopt;
  return std::string(value);
}

inline std::string_view trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos)
    return {};
  const auto last = text.find_last_not_of(" \t\r\n");
  return text.substr(first, last - first + 1);
}

inline std::string to_lower(std::string_view text) {
  std::string out(text);
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z')
      c = static_cast<char>(c + 32);
  return out;
}

inline std::filesystem::path home_directory() {
  if (auto home = environment("HOME"))
    return *home;
  if (auto profile = environment("USERPROFILE"))
    return *profile;
  return {};
}

inline std::filesystem::path expand_home(const std::string& path) {
  if (path == "~" || path.starts_with("~/"))
    return home_directory() / path.substr(path.size() == 1 ? 1 : 2);
  return path;
}
}  // namespace detail

/// An INI file as the AWS CLI writes it: section -> key -> value, keys lower
/// case. An indented line under a key with an empty value is a sub-property,
/// stored as "key.sub" (e.g. "s3.addressing_style").
using ini_section = std::map<std::string, std::string>;
/// A whole INI file: section name -> its keys.
using ini_file = std::map<std::string, ini_section>;

/// Parses the AWS CLI's INI dialect (shared credentials and config files).
inline ini_file parse_ini(std::string_view text) {
  ini_file file;
  ini_section* section = nullptr;
  std::string parent_key;
  std::istringstream in{std::string(text)};
  for (std::string raw; std::getline(in, raw);) {
    const bool indented = !raw.empty() && (raw[0] == ' ' || raw[0] == '\t');
    const auto line = detail::trim(raw);
    if (line.empty() || line[0] == '#' || line[0] == ';')
      continue;
    if (line.front() == '[') {
      const auto close = line.find(']');
      section = &file[std::string(detail::trim(line.substr(1, close - 1)))];
      parent_key.clear();
      continue;
    }
    const auto eq = line.find('=');
    if (section == nullptr || eq == std::string_view::npos)
      continue;
    auto key = detail::to_lower(detail::trim(line.substr(0, eq)));
    auto value = std::string(detail::trim(line.substr(eq + 1)));
    if (indented && !parent_key.empty()) {
      (*section)[parent_key + "." + key] = std::move(value);
      continue;
    }
    parent_key = value.empty() ? key : std::string{};
    (*section)[std::move(key)] = std::move(value);
  }
  return file;
}

/// std::nullopt when the file does not exist or cannot be read.
inline std::optional<ini_file> read_ini_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return parse_ini(text.str());
}

/// The shared credentials file: AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials.
inline std::filesystem::path shared_credentials_file() {
  if (auto path = detail::environment("AWS_SHARED_CREDENTIALS_FILE"))
    return detail::expand_home(*path);
  return detail::home_directory() / ".aws" / "credentials";
}

/// The shared config file: AWS_CONFIG_FILE, else ~/.aws/config.
inline std::filesystem::path shared_config_file() {
  if (auto path = detail::environment("AWS_CONFIG_FILE"))
    return detail::expand_home(*path);
  return detail::home_directory() / ".aws" / "config";
}

/// Explicit argument (a --profile flag), else AWS_PROFILE, else "default".
inline std::string profile_name(std::optional<std::string_view> explicit_profile = {}) {
  if (explicit_profile && !explicit_profile->empty())
    return std::string(*explicit_profile);
  if (auto profile = detail::environment("AWS_PROFILE"))
    return *profile;
  return std::string(default_profile);
}

/// The profile's section of the config file: "[profile name]", or for the
/// default profile "[default]" (which the CLI writes) or "[profile default]".
inline const ini_section* config_profile_section(const ini_file& config,
                                                 const std::string& profile) {
  if (auto it = config.find("profile " + profile); it != config.end())
    return &it->second;
  if (profile == default_profile)
    if (auto it = config.find(profile); it != config.end())
      return &it->second;
  return nullptr;
}

/// One key of a profile in the shared config file; nullopt when unset or empty.
inline std::optional<std::string> config_profile_value(const std::string& profile,
                                                       const std::string& key) {
  const auto config = read_ini_file(shared_config_file());
  if (!config)
    return std::nullopt;
  const auto* section = config_profile_section(*config, profile);
  if (section == nullptr)
    return std::nullopt;
  const auto it = section->find(key);
  if (it == section->end() || it->second.empty())
    return std::nullopt;
  return it->second;
}

/// Explicit argument (a -r flag), AWS_REGION, AWS_DEFAULT_REGION, the
/// profile's "region" in the config file, else us-east-1.
inline std::string resolve_region(std::optional<std::string_view> explicit_region = {},
                                  std::optional<std::string_view> explicit_profile = {}) {
  if (explicit_region && !explicit_region->empty())
    return std::string(*explicit_region);
  if (auto region = detail::environment("AWS_REGION"))
    return *region;
  if (auto region = detail::environment("AWS_DEFAULT_REGION"))
    return *region;
  if (auto region = config_profile_value(profile_name(explicit_profile), "region"))
    return *region;
  return std::string(default_region);
}

/// A service's base URL and whether S3 requests name the bucket in the path.
struct service_endpoint {
  std::string url;  ///< scheme://host[:port], no trailing slash
  /// S3 only: bucket in the path (http://host/bucket/key) rather than in the
  /// host name (https://bucket.s3.region.amazonaws.com/key).
  bool path_style = false;
};

/// The public AWS endpoint of a service in a region (amazonaws.com, or .com.cn in China).
inline std::string aws_endpoint_url(std::string_view service, std::string_view region) {
  const std::string_view suffix = region.starts_with("cn-") ? "amazonaws.com.cn" : "amazonaws.com";
  return "https://" + std::string(service) + "." + std::string(region) + "." + std::string(suffix);
}

/// For a service ("s3", "sqs", "dynamodb"): the explicit URL, else
/// AWS_ENDPOINT_URL_<SERVICE>, else AWS_ENDPOINT_URL, else the AWS endpoint
/// of the region. Emulators and S3-compatible stores behind a custom endpoint
/// rarely have per-bucket host names, hence path style for them;
/// force_path_style overrides that choice either way.
inline service_endpoint resolve_endpoint(std::string_view service, std::string_view region,
                                         std::optional<std::string_view> explicit_url = {},
                                         std::optional<bool> force_path_style = {}) {
  std::optional<std::string> custom;
  if (explicit_url && !explicit_url->empty())
    custom = std::string(*explicit_url);
  if (!custom) {
    std::string variable = "AWS_ENDPOINT_URL_";
    for (char c : service)
      variable.push_back(c >= 'a' && c <= 'z' ? static_cast<char>(c - 32)
                                              : (c == '-' || c == ' ' ? '_' : c));
    custom = detail::environment(variable.c_str());
  }
  if (!custom)
    custom = detail::environment("AWS_ENDPOINT_URL");
  service_endpoint endpoint;
  if (custom) {
    while (custom->size() > 1 && custom->back() == '/')
      custom->pop_back();
    split_url(*custom);  // throws url_error for a URL without scheme or host
    endpoint = {*custom, true};
  } else {
    endpoint = {aws_endpoint_url(service, region), false};
  }
  if (force_path_style)
    endpoint.path_style = *force_path_style;
  return endpoint;
}

/// A key as an S3 URL path: every byte but unreserved ones and '/' encoded.
/// Dot segments ("." and "..") are sent as they are, as botocore does: S3 signs
/// and reads the path exactly as sent, and the transport keeps curl from
/// removing them (CURLOPT_PATH_AS_IS).
inline std::string encode_s3_key(std::string_view key) {
  return uri_encode(key, /*keep_slash=*/true);
}

namespace detail {
// Virtual-hosted style needs a DNS- and certificate-safe bucket name: a dot
// would not match the *.s3 wildcard certificate, so such buckets go path style.
inline bool use_path_style(const service_endpoint& endpoint, std::string_view bucket) {
  return endpoint.path_style || bucket.find('.') != std::string_view::npos;
}

inline std::string virtual_host_base(const service_endpoint& endpoint, std::string_view bucket) {
  const auto scheme_end = endpoint.url.find("://");
  return endpoint.url.substr(0, scheme_end + 3) + std::string(bucket) + "." +
         endpoint.url.substr(scheme_end + 3);
}
}  // namespace detail

/// The bucket's own URL (for listings): "https://bucket.s3.../" or "http://host/bucket".
inline std::string s3_bucket_url(const service_endpoint& endpoint, std::string_view bucket) {
  if (detail::use_path_style(endpoint, bucket))
    return endpoint.url + "/" + uri_encode(bucket);
  return detail::virtual_host_base(endpoint, bucket) + "/";
}

/// The URL of an object, in the endpoint's addressing style.
inline std::string s3_object_url(const service_endpoint& endpoint, std::string_view bucket,
                                 std::string_view key) {
  if (detail::use_path_style(endpoint, bucket))
    return endpoint.url + "/" + uri_encode(bucket) + "/" + encode_s3_key(key);
  return detail::virtual_host_base(endpoint, bucket) + "/" + encode_s3_key(key);
}

}  // namespace widget_consumer::aws
