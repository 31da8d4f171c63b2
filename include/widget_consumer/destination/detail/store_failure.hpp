#pragma once
// How the AWS stores turn the AWS layer's errors (aws/error.hpp) into the
// store_error the consumer understands (concepts.hpp), in one place:
//
//   the service refuses this request as it is: sending it again
//   cannot help (each service's rule below)          -> bad_request (rejected)
//   retryable service_error (throttling, 5xx) and
//   retryable transport_error                        -> transient
//   anything else (access denied, a missing bucket or
//   table, a certificate that does not verify, ...)  -> permanent
//
// Any other exception passes through unchanged: each store decides what its
// own refusals (a key too long, an item too large) mean.

#include <widget_consumer/aws/error.hpp>
#include <widget_consumer/concepts.hpp>

#include <string>
#include <utility>

namespace widget_consumer::detail {

// S3 refuses a key over 1,024 bytes (KeyTooLongError) whatever the status
// it sends with it: that widget's key can never be stored.
inline store_failure s3_store_failure(const aws::service_error& e) {
  if (e.code() == "KeyTooLongError")
    return store_failure::bad_request;
  return e.retryable() ? store_failure::transient : store_failure::permanent;
}

// A ValidationException refuses the request itself ("Item size has exceeded
// the maximum allowed size", an empty key, ...): held back as permanent, it
// would block its widget's later requests for good, so it is rejected with
// DynamoDB's reason. Except when the table's key is not what the store
// writes: that is the table's fault and would reject the whole stream, so it
// stays permanent.
inline store_failure dynamodb_store_failure(const aws::service_error& e) {
  if (e.retryable())
    return store_failure::transient;
  if (e.code() == "ValidationException") {
    const bool table_key_mismatch =
        e.message().find("does not match the schema") != std::string::npos ||
        e.message().find("Type mismatch for key") != std::string::npos ||
        e.message().find("Missing the key") != std::string::npos;
    return table_key_mismatch ? store_failure::permanent : store_failure::bad_request;
  }
  return store_failure::permanent;
}

inline store_failure transport_store_failure(const aws::transport_error& e) {
  return e.retryable() ? store_failure::transient : store_failure::permanent;
}

// operation(), with a service_error classified by `classify` (one of the
// rules above) and a transport_error leaving as store_error.
template <class Classify, class Operation>
auto with_store_failures(Classify classify, Operation&& operation)
    -> decltype(std::forward<Operation>(operation)()) {
  try {
    return std::forward<Operation>(operation)();
  } catch (const aws::service_error& e) {
    throw store_error(classify(e), e.what());
  } catch (const aws::transport_error& e) {
    throw store_error(transport_store_failure(e), e.what());
  }
}

}  // namespace widget_consumer::detail
