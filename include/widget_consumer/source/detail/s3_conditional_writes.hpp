#pragma once
// The start-up check of the S3 source's claims (detail/s3_partition_claims.hpp):
// the server must refuse a second PutObject If-None-Match: * and a PutObject
// If-Match with a stale ETag. One that lets them through would let two
// consumers hold one partition, and apply one request twice, so it is refused
// with unrecoverable_error before anything is claimed. Errors retrying
// cannot fix become unrecoverable_error too; others pass as they are (the
// consumer warns and starts).

#include <widget_consumer/aws/access_check.hpp>
#include <widget_consumer/aws/s3.hpp>
#include <widget_consumer/aws/s3_conditional_probe.hpp>
#include <widget_consumer/source/detail/s3_claim_settings.hpp>
#include <widget_consumer/unrecoverable_error.hpp>

#include <string>

namespace widget_consumer::detail {

// The probe object is named after the owner, so consumers starting together
// do not meet.
inline std::string probe_conditional_writes(aws::s3_client& client,
                                            const s3_claim_settings& settings,
                                            const std::string& owner) {
  return aws::probe_conditional_writes(client, settings.bucket,
                                       settings.prefix + ".probe-" + owner.substr(0, 16));
}

inline void check_conditional_writes(aws::s3_client& client, const s3_claim_settings& settings,
                                     const std::string& owner) {
  const aws::client_config& config = client.service().config();
  const std::string where =
      aws::s3_resource(settings.bucket, settings.prefix) + " (endpoint " + config.endpoint + ")";
  std::string failure;
  aws::with_access_check(config, "cannot write claims under " + where,
                         "that these credentials may put and delete objects under the claim prefix",
                         [&] { failure = probe_conditional_writes(client, settings, owner); });
  if (!failure.empty())
    throw unrecoverable_error(
        "the S3 server of " + where + " does not honour conditional writes (" + failure +
        "), so several consumers on this bucket could apply one request twice; if this "
        "consumer is alone on the bucket, run it with claims off (--single-consumer)");
}

}  // namespace widget_consumer::detail
