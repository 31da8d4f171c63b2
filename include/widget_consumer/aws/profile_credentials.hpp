#pragma once
// A profile of the shared files, resolved as the AWS SDKs resolve it. Within
// one profile the first of these that it configures is used:
//   role_arn          with web_identity_token_file (AssumeRoleWithWebIdentity),
//                     source_profile (that profile's credentials, resolved the
//                     same way, so roles chain) or credential_source
//                     (Environment, Ec2InstanceMetadata, EcsContainer);
//                     external_id, role_session_name, duration_seconds apply
//   sso_session       or the legacy sso_start_url: role credentials from the
//                     SSO portal with the token `aws sso login` cached
//   aws_access_key_id static keys (credentials file first, then config file)
//   credential_process a helper program's JSON answer
// A source_profile chain that comes back to a profile already on it is an
// error that names the chain; mfa_serial is refused (no one is there to type
// a code). Also here: web identity from the environment (EKS IRSA), which
// uses STS the same way.

#include <widget_consumer/aws/config.hpp>
#include <widget_consumer/aws/credential_process.hpp>
#include <widget_consumer/aws/credential_providers.hpp>
#include <widget_consumer/aws/credentials.hpp>
#include <widget_consumer/aws/sso.hpp>
#include <widget_consumer/aws/sts.hpp>

#include <algorithm>
#include <exception>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace widget_consumer::aws {

/// What the credentials chain needs besides the profile name; empty strings
/// mean "not stated" and are looked up as the AWS CLI looks them up.
struct credential_lookup {
  std::string profile = {};  ///< "" = AWS_PROFILE, else "default"
  std::string region = {};   ///< for STS; "" = AWS_REGION, AWS_DEFAULT_REGION, profile, us-east-1
  std::string endpoint_url =
      {};                      ///< for STS; "" = AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL, regional
  std::string ca_bundle = {};  ///< "" = the system's CA certificates
  /// Limits on a profile's credential_process command.
  credential_process_options process = {};
};

namespace detail {

// A profile with nothing that yields credentials: the chain may go on to the
// container and IMDS unless the profile was asked for by name.
class profile_without_credentials : public credentials_error {
 public:
  using credentials_error::credentials_error;
};

inline std::string read_token_file(const std::string& path, const std::string& what) {
  std::ifstream in(expand_home(path), std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  const std::string token(trim(text.str()));
  if (!in || token.empty())
    throw credentials_error("cannot read the web identity token file " + path + " (" + what + ")");
  return token;
}

inline sts_settings sts_settings_for(const credential_lookup& lookup, const std::string& profile) {
  return {.region = resolve_region(lookup.region, profile),
          .endpoint_url = lookup.endpoint_url,
          .ca_bundle = lookup.ca_bundle,
          .max_attempts = 0};
}

inline credentials web_identity(const sts_settings& settings, const std::string& token_file,
                                const assume_role_request& request, const std::string& source) {
  auto creds =
      assume_role_with_web_identity(settings, read_token_file(token_file, source), request);
  creds.source = source;
  return creds;
}

class profile_resolver {
 public:
  explicit profile_resolver(credential_lookup lookup)
      : lookup_(std::move(lookup)),
        credentials_path_(shared_credentials_file()),
        config_path_(shared_config_file()),
        credentials_file_(read_ini_file(credentials_path_)),
        config_file_(read_ini_file(config_path_)) {}

  // The profile's settings, credentials file over config file; nullopt when
  // neither file has it.
  std::optional<ini_section> section(const std::string& profile) const {
    std::optional<ini_section> merged;
    if (config_file_)
      if (const auto* found = config_profile_section(*config_file_, profile))
        merged = *found;
    if (credentials_file_)
      if (auto it = credentials_file_->find(profile); it != credentials_file_->end()) {
        if (!merged)
          merged.emplace();
        for (const auto& [key, value] : it->second)
          (*merged)[key] = value;
      }
    return merged;
  }

  std::string missing_profile(const std::string& profile) const {
    auto note = [](const std::filesystem::path& path, bool exists) {
      return path.string() + (exists ? "" : " (not found)");
    };
    return "no profile '" + profile + "' in " +
           note(credentials_path_, credentials_file_.has_value()) + " or " +
           note(config_path_, config_file_.has_value());
  }

  // Throws credentials_error (profile_without_credentials when the profile
  // configures nothing that yields credentials), or the STS/SSO call's error.
  credentials resolve(const std::string& profile) {
    std::vector<std::string> path;
    return resolve(profile, path);
  }

 private:
  static std::string value(const ini_section& section, const char* key) {
    const auto it = section.find(key);
    return it == section.end() ? std::string{} : it->second;
  }

  credentials resolve(const std::string& profile, std::vector<std::string>& path) {
    if (std::ranges::find(path, profile) != path.end()) {
      std::string chain;
      for (const auto& name : path)
        chain += name + " -> ";
      throw credentials_error("source_profile cycle: " + chain + profile);
    }
    path.push_back(profile);
    const auto found = section(profile);
    if (!found)
      throw credentials_error(missing_profile(profile) +
                              (path.size() < 2
                                   ? std::string{}
                                   : " (the source_profile of '" + path[path.size() - 2] + "')"));
    const ini_section& settings = *found;
    if (!value(settings, "role_arn").empty())
      return assume_role_of(profile, settings, path);
    if (!value(settings, "sso_session").empty() || !value(settings, "sso_start_url").empty())
      return sso_of(profile, settings);
    if (!value(settings, "aws_access_key_id").empty())
      return static_keys_of(profile, settings);
    if (const auto command = value(settings, "credential_process"); !command.empty())
      return run_credential_process(command, "credential_process of profile '" + profile + "'",
                                    lookup_.process);
    if (!value(settings, "aws_secret_access_key").empty())
      throw profile_without_credentials("profile '" + profile + "' in " + where(profile) +
                                        " has no aws_access_key_id");
    throw profile_without_credentials(
        "profile '" + profile +
        "' has no aws_access_key_id, role_arn, sso_session, sso_start_url or credential_process");
  }

  std::string where(const std::string& profile) const {
    const bool in_credentials =
        credentials_file_ && credentials_file_->find(profile) != credentials_file_->end();
    return (in_credentials ? credentials_path_ : config_path_).string();
  }

  credentials static_keys_of(const std::string& profile, const ini_section& settings) const {
    credentials creds{.access_key_id = value(settings, "aws_access_key_id"),
                      .secret_access_key = value(settings, "aws_secret_access_key"),
                      .session_token = value(settings, "aws_session_token"),
                      .expiration = std::nullopt,
                      .source = "shared files, profile '" + profile + "'"};
    if (creds.secret_access_key.empty())
      throw credentials_error("profile '" + profile + "' in " + where(profile) +
                              " has no aws_secret_access_key");
    return creds;
  }

  credentials assume_role_of(const std::string& profile, const ini_section& settings,
                             std::vector<std::string>& path) {
    const std::string role_arn = value(settings, "role_arn");
    if (!value(settings, "mfa_serial").empty())
      throw credentials_error("profile '" + profile +
                              "' sets mfa_serial: roles that need an MFA code are not supported "
                              "(nobody is there to type it); use a profile without mfa_serial");
    assume_role_request request{.role_arn = role_arn,
                                .role_session_name = value(settings, "role_session_name"),
                                .external_id = value(settings, "external_id"),
                                .duration_seconds = std::nullopt};
    if (const auto duration = value(settings, "duration_seconds"); !duration.empty()) {
      try {
        request.duration_seconds = std::stoi(duration);
      } catch (const std::exception&) {
        throw credentials_error("profile '" + profile + "': duration_seconds is not a number");
      }
    }
    const auto sts = sts_settings_for(lookup_, path.front());
    if (const auto token_file = value(settings, "web_identity_token_file"); !token_file.empty())
      return web_identity(sts, token_file, request,
                          "web identity role " + role_arn + " via profile " + profile);
    const credentials source = role_source(profile, settings, path);
    auto creds = assume_role(sts, source, request);
    creds.source = "assume role " + role_arn + " via profile " + profile;
    return creds;
  }

  credentials role_source(const std::string& profile, const ini_section& settings,
                          std::vector<std::string>& path) {
    if (const auto source_profile = value(settings, "source_profile"); !source_profile.empty()) {
      // A profile may name itself to assume its role with its own keys.
      if (source_profile == profile && !value(settings, "aws_access_key_id").empty())
        return static_keys_of(profile, settings);
      return resolve(source_profile, path);
    }
    const auto credential_source = value(settings, "credential_source");
    provider_result result;
    if (credential_source == "Environment")
      result = environment_credentials();
    else if (credential_source == "Ec2InstanceMetadata")
      result = imds_credentials();
    else if (credential_source == "EcsContainer")
      result = container_credentials();
    else if (credential_source.empty())
      throw credentials_error("profile '" + profile +
                              "' has role_arn but neither source_profile nor credential_source");
    else
      throw credentials_error("profile '" + profile + "': credential_source " + credential_source +
                              " is not one of Environment, Ec2InstanceMetadata, EcsContainer");
    if (!result.found)
      throw credentials_error("profile '" + profile + "': credential_source " + credential_source +
                              " has no credentials: " + result.reason);
    return std::move(*result.found);
  }

  credentials sso_of(const std::string& profile, const ini_section& settings) const {
    sso_settings sso{.session_name = value(settings, "sso_session"),
                     .start_url = value(settings, "sso_start_url"),
                     .region = value(settings, "sso_region"),
                     .account_id = value(settings, "sso_account_id"),
                     .role_name = value(settings, "sso_role_name"),
                     .ca_bundle = lookup_.ca_bundle};
    if (!sso.session_name.empty()) {
      const ini_section* session = nullptr;
      if (config_file_)
        if (auto it = config_file_->find("sso-session " + sso.session_name);
            it != config_file_->end())
          session = &it->second;
      if (session == nullptr)
        throw credentials_error("profile '" + profile + "' names sso_session " + sso.session_name +
                                ", which " + config_path_.string() +
                                " does not define ([sso-session " + sso.session_name + "])");
      sso.start_url = value(*session, "sso_start_url");
      sso.region = value(*session, "sso_region");
    }
    if (sso.start_url.empty() || sso.region.empty() || sso.account_id.empty() ||
        sso.role_name.empty())
      throw credentials_error("profile '" + profile +
                              "' lacks one of sso_start_url, sso_region, sso_account_id, "
                              "sso_role_name");
    auto creds = sso_role_credentials(sso);
    creds.source =
        "SSO role " + sso.role_name + " in account " + sso.account_id + " via profile " + profile;
    return creds;
  }

  credential_lookup lookup_;
  std::filesystem::path credentials_path_;
  std::filesystem::path config_path_;
  std::optional<ini_file> credentials_file_;
  std::optional<ini_file> config_file_;
};

}  // namespace detail

/// The profile named by lookup.profile, AWS_PROFILE or "default". A profile
/// named by argument or AWS_PROFILE stops the chain whatever happens (no other
/// identity is substituted); so does a profile that configures a source of
/// credentials which then fails.
inline provider_result profile_credentials(const credential_lookup& lookup = {}) {
  const std::string profile = profile_name(lookup.profile);
  const bool named = !lookup.profile.empty() || detail::environment("AWS_PROFILE").has_value();
  detail::profile_resolver resolver(lookup);
  if (!resolver.section(profile))
    return detail::not_found(resolver.missing_profile(profile), named);
  try {
    return {.found = resolver.resolve(profile)};
  } catch (const detail::profile_without_credentials& error) {
    return detail::not_found(error.what(), named);
  } catch (const std::exception& error) {
    return detail::not_found(error.what(), true);
  }
}

/// Web identity from the environment (EKS IAM roles for service accounts):
/// AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN, AWS_ROLE_SESSION_NAME
/// optional. Set but failing, it stops the chain.
inline provider_result web_identity_environment_credentials(const credential_lookup& lookup = {}) {
  const auto token_file = detail::environment("AWS_WEB_IDENTITY_TOKEN_FILE");
  if (!token_file)
    return detail::not_found("AWS_WEB_IDENTITY_TOKEN_FILE not set");
  const auto role_arn = detail::environment("AWS_ROLE_ARN");
  if (!role_arn)
    return detail::not_found("AWS_WEB_IDENTITY_TOKEN_FILE set but AWS_ROLE_ARN not set");
  try {
    return {.found = detail::web_identity(
                detail::sts_settings_for(lookup, profile_name(lookup.profile)), *token_file,
                {.role_arn = *role_arn,
                 .role_session_name = detail::environment("AWS_ROLE_SESSION_NAME").value_or(""),
                 .external_id = {},
                 .duration_seconds = std::nullopt},
                "web identity role " + *role_arn + " from AWS_WEB_IDENTITY_TOKEN_FILE")};
  } catch (const std::exception& error) {
    return detail::not_found(error.what(), true);
  }
}

}  // namespace widget_consumer::aws
