#pragma once
// How s3_bucket_source sets a request aside under the rejected prefix, and
// which read failures mean an object can never be read: apart from the
// source, which decides when.

#include <widget_consumer/aws/error.hpp>
#include <widget_consumer/aws/s3.hpp>

#include <exception>
#include <optional>
#include <string>

namespace widget_consumer::detail {

// Writes "{target}.reason" (text/plain), then copies the request to
// `target`; throws what fails. Reason first: a failure part-way leaves the
// request in place, to be rejected again, rather than a rejected request
// without its reason.
inline void s3_copy_rejected(aws::s3_client& client, const std::string& bucket,
                             const std::string& key, const std::string& rejected_bucket,
                             const std::string& target, const std::string& reason) {
  client.put_object(rejected_bucket, target + ".reason", reason, "text/plain; charset=utf-8");
  client.copy_object(bucket, key, rejected_bucket, target);
}

// Why GetObject can never succeed for this one key, or nullopt when the
// failure may heal or concerns more than the key (credentials, network).
inline std::optional<std::string> s3_unreadable_reason(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const aws::transport_error& e) {
    if (e.failure() == aws::transport_error::kind::too_large)
      return std::string(e.what());
  } catch (const aws::service_error& e) {
    if (e.code() == "AccessDenied" || e.code() == "InvalidObjectState" ||
        e.code().starts_with("KMS."))
      return std::string(e.what());
  } catch (...) {
  }
  return std::nullopt;
}

}  // namespace widget_consumer::detail
