#pragma once
// s3_bucket_store: one JSON document per widget in an S3 bucket, at
// widget_key(owner, widgetId, layout) (widgets/{owner}/{widgetId} by default).
//
// Decisions:
// - update is a read-modify-write (GetObject, apply_update, PutObject). The
//   consumer never applies two requests for one widget at once, so no
//   conditional write is needed between our own lanes.
// - delete reads the document (GetObject) before DeleteObject and compares
//   its owner exactly, like update and like the DynamoDB store's condition:
//   the key folds case and spaces ("SUE SMITH" and "Sue Smith" share one) or
//   leaves the owner out (owner_in_key off), so only the document tells whose
//   widget it is. The read also answers what S3's DeleteObject cannot (it
//   succeeds whether or not the key existed): missing -> not_found, and
//   NoSuchBucket stays a permanent failure. A delete retried after its first
//   attempt removed the object finds nothing and says not_found: the bucket
//   ends the same. Between the read and the delete no other request of the
//   widget runs (one lane per widget; the S3 source's claims across
//   processes), so the owner read is the owner deleted.
// - Failures: a key longer than S3's 1,024 bytes can never be stored
//   (bad_request); AWS errors as detail/store_failure.hpp says; a stored
//   document that does not parse is permanent.
// - A widget id such as "../x" is an ordinary S3 key ("widgets/sue/../x"):
//   the transport sends dot segments as they are (aws/config.hpp,
//   encode_s3_key), so the object lands under exactly that key.

#include <widget_consumer/concepts.hpp>
#include <widget_consumer/destination/detail/store_failure.hpp>
#include <widget_consumer/destination/detail/widget_document.hpp>
#include <widget_consumer/request.hpp>
#include <widget_consumer/widget.hpp>

#include <widget_consumer/aws/access_check.hpp>
#include <widget_consumer/aws/s3.hpp>

#include <cstddef>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace widget_consumer {

class s3_bucket_store {
 public:
  static constexpr std::size_t max_key_bytes = 1024;  // S3's limit

  s3_bucket_store(aws::s3_client client, std::string bucket, widget_key_layout layout = {})
      : client_(std::move(client)), bucket_(std::move(bucket)), layout_(std::move(layout)) {
    if (bucket_.empty())
      throw std::invalid_argument("s3_bucket_store: the widget bucket name is empty");
  }

  s3_bucket_store(aws::client_config config, std::string bucket, widget_key_layout layout = {})
      : s3_bucket_store(aws::s3_client(std::move(config)), std::move(bucket), std::move(layout)) {}

  // Before the first request (concepts.hpp, startup_checking): HeadBucket,
  // which writes nothing. Its answer has no body, so a refusal does not say
  // whether the key or the permission is wrong: the advice names both.
  void check_ready() {
    const auto& config = client_.service().config();
    const std::string action = "cannot use the widget bucket " + aws::s3_resource(bucket_);
    constexpr std::string_view advice =
        "that the bucket exists in this region, and that the access key id and secret are valid "
        "and may read, write and delete its objects";
    if (!aws::with_access_check(config, action, advice,
                                [&] { return client_.head_bucket(bucket_); }))
      throw aws::unrecoverable(config, action, "404 NoSuchBucket: the bucket does not exist",
                               advice);
  }

  // Thread-safe: the client is, and nothing else here changes.
  apply_outcome apply(const widget_request& request) {
    const std::string key = key_of(request.owner, request.widget_id);
    if (key.size() > max_key_bytes) {
      throw store_error(store_failure::bad_request, "widget key is " + std::to_string(key.size()) +
                                                        " bytes, over S3's limit of " +
                                                        std::to_string(max_key_bytes));
    }
    return guarded([&] {
      switch (request.type) {
        case request_type::create:
          put(key, make_widget(request));
          return apply_outcome::applied;
        case request_type::update: {
          auto stored = read(key);
          // The owner check is exact: the key folds case and spaces, so
          // "sue smith" would otherwise update "Sue Smith"'s widget.
          if (!stored || stored->owner != request.owner)
            return apply_outcome::not_found;
          apply_update(*stored, request);
          put(key, *stored);
          return apply_outcome::applied;
        }
        case request_type::remove: {
          const auto stored = read(key);
          if (!stored || stored->owner != request.owner)
            return apply_outcome::not_found;
          client_.delete_object(bucket_, key);
          return apply_outcome::applied;
        }
      }
      throw store_error(store_failure::bad_request, "unknown request type");
    });
  }

  // The stored widget, or nullopt. Throws store_error like apply().
  std::optional<widget> load(std::string_view owner, std::string_view widget_id) {
    return guarded([&] { return read(key_of(owner, widget_id)); });
  }

  std::string key_of(std::string_view owner, std::string_view widget_id) const {
    return widget_key(owner, widget_id, layout_);
  }

  const std::string& bucket() const noexcept { return bucket_; }
  const widget_key_layout& layout() const noexcept { return layout_; }

 private:
  std::optional<widget> read(const std::string& key) {
    auto body = client_.get_object(bucket_, key);
    if (!body)
      return std::nullopt;
    try {
      return widget_from_json(*body);
    } catch (const std::exception& e) {
      throw store_error(store_failure::permanent, aws::s3_resource(bucket_, key) + ": " + e.what());
    }
  }

  void put(const std::string& key, const widget& w) {
    client_.put_object(bucket_, key, to_json(w), "application/json");
  }

  template <class Operation>
  static auto guarded(Operation&& operation) -> decltype(operation()) {
    return detail::with_store_failures(detail::s3_store_failure,
                                       std::forward<Operation>(operation));
  }

  aws::s3_client client_;
  std::string bucket_;
  widget_key_layout layout_;
};

}  // namespace widget_consumer
