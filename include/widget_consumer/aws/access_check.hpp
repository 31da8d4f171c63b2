#pragma once
// Telling an error that retrying cannot fix from one that may heal, and
// turning the first kind into an unrecoverable_error whose message says what
// was being reached, how, and what to check. Policies use it in their
// start-up checks and when a poll fails; the consumer then stops at once
// instead of polling the same failure again and again.

#include <widget_consumer/aws/client.hpp>
#include <widget_consumer/aws/credentials.hpp>
#include <widget_consumer/aws/error.hpp>
#include <widget_consumer/unrecoverable_error.hpp>

#include <array>
#include <exception>
#include <string>
#include <string_view>
#include <utility>

namespace widget_consumer::aws {

namespace detail {

// Codes that mean: this identity may not do this, or this resource is not
// there. The same call gets the same answer until a person changes
// something. (A signature mismatch caused by clock skew is corrected by the
// retry policy before it gets here.)
inline constexpr std::array<std::string_view, 24> unrecoverable_codes{
    "AccessDenied",
    "AccessDeniedException",
    "AccountProblem",
    "AllAccessDisabled",
    "AuthFailure",
    "AuthorizationHeaderMalformed",
    "AWS.SimpleQueueService.NonExistentQueue",
    "ExpiredToken",
    "ExpiredTokenException",
    "IncompleteSignature",
    "InvalidAccessKeyId",
    "InvalidClientTokenId",
    "InvalidSignatureException",
    "InvalidToken",
    "MissingAuthenticationToken",
    "MissingAuthenticationTokenException",
    "NoSuchBucket",
    "NotSignedUp",
    "OptInRequired",
    "PermanentRedirect",
    "QueueDoesNotExist",
    "ResourceNotFoundException",
    "SignatureDoesNotMatch",
    "UnrecognizedClientException",
};

}  // namespace detail

/// True for an error that the same call will meet however often it is made
/// again: no credentials, credentials refused, access denied, a missing
/// bucket, queue or table, a TLS peer that does not verify.
inline bool retrying_cannot_fix(const std::exception& error) noexcept {
  if (dynamic_cast<const credentials_error*>(&error) != nullptr)
    return true;
  if (const auto* service = dynamic_cast<const service_error*>(&error)) {
    if (service->retryable())
      return false;
    // 301: a permanent redirect that was not followed (s3_region_redirect.hpp)
    // is met again; a HEAD's has no code to say so.
    return detail::contains(detail::unrecoverable_codes, service->code()) ||
           service->status() == 301 || service->status() == 401 || service->status() == 403;
  }
  if (const auto* transport = dynamic_cast<const transport_error*>(&error))
    return transport->failure() == transport_error::kind::permanent;
  return false;
}

/// "region us-east-1, endpoint https://s3.us-east-1.amazonaws.com, credentials
/// from environment (key id AKID...)": how a client reaches its service. The
/// key id is not secret (every signed request carries it); the secret and the
/// session token never appear. `look_up_credentials` false: known to be
/// missing, so the chain (whose instance-metadata step may take a second) is
/// not asked again.
inline std::string describe_connection(const client_config& config,
                                       bool look_up_credentials = true) {
  std::string text = "region " + config.region + ", endpoint " + config.endpoint;
  if (!config.credentials || !look_up_credentials)
    return text + ", no credentials found";
  try {
    const auto found = config.credentials();
    text +=
        ", credentials from " + (found.source.empty() ? std::string("the caller") : found.source);
    if (!found.access_key_id.empty())
      text += " (key id " + found.access_key_id + ")";
  } catch (const std::exception&) {
    text += ", no credentials found";
  }
  return text;
}

/// "cannot read the request bucket s3://requests: \<cause\> (region ...,
/// endpoint ..., credentials from ...). Check \<advice\>."
inline unrecoverable_error unrecoverable(const client_config& config, std::string_view action,
                                         std::string_view cause, std::string_view advice,
                                         bool look_up_credentials = true) {
  return unrecoverable_error(std::string(action) + ": " + std::string(cause) + " (" +
                             describe_connection(config, look_up_credentials) + "). Check " +
                             std::string(advice) + ".");
}

/// The same for an error retrying cannot fix. What to check depends on it:
/// credentials that are missing or refused call for other advice than a
/// resource that is not there.
inline unrecoverable_error unrecoverable(const client_config& config, std::string_view action,
                                         const std::exception& cause,
                                         std::string_view resource_advice) {
  if (dynamic_cast<const credentials_error*>(&cause) != nullptr)
    return unrecoverable(config, action, cause.what(),
                         "that AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are set, or that the "
                         "profile named by -p or AWS_PROFILE is complete in ~/.aws/config and "
                         "~/.aws/credentials (for an SSO profile, run `aws sso login`)",
                         false);
  const auto* service = dynamic_cast<const service_error*>(&cause);
  const bool refused_identity =
      service != nullptr &&
      (service->code().find("Signature") != std::string::npos ||
       service->code().find("Token") != std::string::npos ||
       service->code() == "InvalidAccessKeyId" ||
       service->code() == "UnrecognizedClientException" || service->code() == "AuthFailure");
  return unrecoverable(config, action, cause.what(),
                       refused_identity
                           ? "that the access key id and its secret belong together and are "
                             "still valid for this account"
                           : resource_advice);
}

/// Runs `call`; an error retrying cannot fix comes out as unrecoverable_error,
/// any other as it was.
template <class Call>
decltype(auto) with_access_check(const client_config& config, std::string_view action,
                                 std::string_view resource_advice, Call&& call) {
  try {
    return std::forward<Call>(call)();
  } catch (const unrecoverable_error&) {
    throw;
  } catch (const std::exception& error) {
    if (retrying_cannot_fix(error))
      throw unrecoverable(config, action, error, resource_advice);
    throw;
  }
}

}  // namespace widget_consumer::aws
