#pragma once
// How s3_bucket_source sets a request aside under the rejected prefix (one,
// or the rejects of a flush side by side), and which read failures mean an
// object can never be read: apart from the source, which decides when.

#include <widget_consumer/aws/error.hpp>
#include <widget_consumer/aws/s3.hpp>
#include <widget_consumer/source/detail/batch_runner.hpp>
#include <widget_consumer/source/detail/worker_threads.hpp>

#include <cstddef>
#include <exception>
#include <optional>
#include <string>
#include <vector>

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

// Sets aside an object that cannot be read: the copy and its reason as
// s3_copy_rejected makes them. nullopt when they were made (the original is
// then to be deleted); else why the original is left in place, which is
// written to "{target}.reason" when it can be.
inline std::optional<std::string> s3_set_aside_unreadable(
    aws::s3_client& client, const std::string& bucket, const std::string& key,
    const std::string& rejected_bucket, const std::string& target, const std::string& reason) {
  try {
    s3_copy_rejected(client, bucket, key, rejected_bucket, target, reason);
    return std::nullopt;
  } catch (const std::exception& e) {
    std::string in_place =
        reason + "; it could not be copied either (" + e.what() + "), so it is left in place";
    try {
      client.put_object(rejected_bucket, target + ".reason", in_place, "text/plain; charset=utf-8");
    } catch (const std::exception&) {
      // The caller reports it all the same.
    }
    return in_place;
  }
}

// Copies every entry whose copy_reason is set as s3_copy_rejected does, to
// rejected_prefix + key, up to `threads` at once (each copy is two round
// trips); returns those that failed, with why.
template <class Entry>
std::vector<batch_undone<Entry>> s3_copy_rejected_entries(
    aws::s3_client& client, const std::string& bucket, const std::string& rejected_bucket,
    const std::string& rejected_prefix, const std::vector<Entry>& entries, std::size_t threads) {
  std::vector<const Entry*> rejects;
  for (const auto& each : entries)
    if (each.copy_reason)
      rejects.push_back(&each);
  std::vector<std::optional<std::string>> failures(rejects.size());
  run_concurrently(rejects.size(), threads, [&](std::size_t i) noexcept {
    const std::string target = rejected_prefix + rejects[i]->key;
    try {
      s3_copy_rejected(client, bucket, rejects[i]->key, rejected_bucket, target,
                       *rejects[i]->copy_reason);
    } catch (const std::exception& e) {
      failures[i] = "cannot copy to " + aws::s3_resource(rejected_bucket, target) + ": " + e.what();
    } catch (...) {
      failures[i] = "cannot copy to " + aws::s3_resource(rejected_bucket, target);
    }
  });
  std::vector<batch_undone<Entry>> failed;
  for (std::size_t i = 0; i < rejects.size(); ++i)
    if (failures[i])
      failed.push_back({.entry = *rejects[i], .reason = std::move(*failures[i])});
  return failed;
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
