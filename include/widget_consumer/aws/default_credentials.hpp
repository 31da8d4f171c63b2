#pragma once
// The AWS SDKs' default credentials chain, in their order:
//   environment   AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN
//   web identity  AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN (EKS IRSA)
//   shared files  the profile: roles, SSO, static keys, credential_process
//                 (profile_credentials.hpp)
//   container     ECS/EKS Pod Identity endpoint
//   IMDS          EC2 instance metadata, IMDSv2
// An explicitly given profile (the CLI's --profile) skips the environment
// and web identity from the environment; AWS_PROFILE alone does not.

#include <widget_consumer/aws/credential_providers.hpp>
#include <widget_consumer/aws/credentials.hpp>
#include <widget_consumer/aws/profile_credentials.hpp>

#include <string>
#include <utility>
#include <vector>

namespace widget_consumer::aws {

/// The AWS SDKs' providers in their order: environment, web identity, shared files, container,
/// IMDS.
inline std::vector<named_provider> default_providers(const credential_lookup& lookup = {}) {
  std::vector<named_provider> providers;
  if (!lookup.profile.empty()) {
    auto skipped = [profile = lookup.profile] {
      return detail::not_found("skipped, profile '" + profile + "' given explicitly");
    };
    providers.push_back({"environment", skipped});
    providers.push_back({"web identity", skipped});
  } else {
    providers.push_back({"environment", environment_credentials});
    providers.push_back(
        {"web identity", [lookup] { return web_identity_environment_credentials(lookup); }});
  }
  providers.push_back({"shared files", [lookup] { return profile_credentials(lookup); }});
  providers.push_back({"container", [] { return container_credentials(); }});
  providers.push_back({"IMDS", [] { return imds_credentials(); }});
  return providers;
}

/// The AWS SDKs' credentials chain, cached and refreshed: what the programs sign with.
inline credentials_chain default_credentials_chain(const credential_lookup& lookup = {},
                                                   credentials_chain::options options = {}) {
  return credentials_chain(default_providers(lookup), std::move(options));
}

}  // namespace widget_consumer::aws
