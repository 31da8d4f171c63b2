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
//
// Fencing (position.hpp; on unless fencing_options say off): two consumers
// can hold one widget's requests at once (a stalled consumer after a claim
// handover, RELIABILITY.md), and a request can come again (a replayed key, a
// second delivery). The lane rule above then no longer holds, so each widget
// object carries the position of the request that wrote it, every write is
// conditional on the object read, and a delete leaves a tombstone
// {tombstone_prefix}{key without the widget prefix} with its position, so
// that a late create cannot bring the widget back. The protocol, its call
// counts and the window it leaves: detail/s3_widget_fence.hpp. The
// tombstones sit beside the widgets ("tombstones/" beside "widgets/"), never
// under the widget prefix, so that its readers see only widget bodies.
// The store never deletes a tombstone: a lifecycle rule on the tombstone
// prefix expiring objects after fencing.tombstone_retention keeps them
// bounded (scripts/demo_resources.py sets one for the demo). A create
// replayed later than that after its widget's delete finds no tombstone and
// brings the widget back; an update or delete replayed that late finds no
// widget (not_found) or a newer one (stale).
// Off: exactly the layout above, with no metadata, no tombstone and no
// condition; a replayed request is applied again.
// check_ready() refuses (fencing on) a server that ignores If-Match and
// If-None-Match, such as s3rver: there the fence would not hold.

#include <widget_consumer/concepts.hpp>
#include <widget_consumer/destination/detail/s3_widget_fence.hpp>
#include <widget_consumer/destination/detail/store_failure.hpp>
#include <widget_consumer/destination/detail/widget_document.hpp>
#include <widget_consumer/destination/fencing.hpp>
#include <widget_consumer/request.hpp>
#include <widget_consumer/widget.hpp>

#include <widget_consumer/aws/access_check.hpp>
#include <widget_consumer/aws/s3.hpp>
#include <widget_consumer/aws/s3_conditional_probe.hpp>
#include <widget_consumer/unrecoverable_error.hpp>

#include <cstddef>
#include <exception>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace widget_consumer {

/// A widget store of JSON objects in an S3 bucket, one per widget, keyed by owner and id.
class s3_bucket_store {
 public:
  static constexpr std::size_t max_key_bytes = 1024;  ///< S3's limit

  /// Where tombstones go unless the constructor is given another prefix.
  static constexpr std::string_view default_tombstone_prefix = "tombstones/";

  /// tombstone_prefix: where a fenced delete leaves its tombstone; neither it
  /// nor the layout's prefix may start with the other.
  s3_bucket_store(aws::s3_client client, std::string bucket, widget_key_layout layout = {},
                  fencing_options fencing = {},
                  std::string tombstone_prefix = std::string(default_tombstone_prefix))
      : client_(std::move(client)),
        bucket_(std::move(bucket)),
        layout_(std::move(layout)),
        fencing_(fencing),
        tombstone_prefix_(std::move(tombstone_prefix)) {
    if (bucket_.empty())
      throw std::invalid_argument("s3_bucket_store: the widget bucket name is empty");
    if (fencing_.enabled &&
        (tombstone_prefix_.empty() || tombstone_prefix_.starts_with(layout_.prefix) ||
         layout_.prefix.starts_with(tombstone_prefix_)))
      throw std::invalid_argument("s3_bucket_store: the tombstone prefix \"" + tombstone_prefix_ +
                                  "\" and the widget prefix \"" + layout_.prefix +
                                  "\" overlap; fencing needs them side by side");
  }

  /// A store of `bucket`, with an S3 client made from `config`.
  s3_bucket_store(aws::client_config config, std::string bucket, widget_key_layout layout = {},
                  fencing_options fencing = {},
                  std::string tombstone_prefix = std::string(default_tombstone_prefix))
      : s3_bucket_store(aws::s3_client(std::move(config)), std::move(bucket), std::move(layout),
                        fencing, std::move(tombstone_prefix)) {}

  /// Before the first request (concepts.hpp, startup_checking): HeadBucket,
  /// which writes nothing. Its answer has no body, so a refusal does not say
  /// whether the key or the permission is wrong: the advice names both.
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
    if (fencing_.enabled)
      check_conditional_writes();
  }

  /// Fenced (concepts.hpp, position_fencing; the top of this file).
  fenced_outcome apply(const widget_request& request, std::string_view position) {
    if (!fencing_.enabled || position.empty())
      return {apply(request)};
    const std::string key = checked_key(request);
    const std::string tombstone = tombstone_key_of(key);
    if (tombstone.size() > max_key_bytes)
      throw store_error(store_failure::bad_request,
                        "tombstone key is " + std::to_string(tombstone.size()) +
                            " bytes, over S3's limit of " + std::to_string(max_key_bytes));
    return guarded([&]() -> fenced_outcome {
      detail::s3_widget_fence fence(client_, bucket_);
      switch (request.type) {
        case request_type::create:
          return fence.create(key, tombstone, make_widget(request), position);
        case request_type::update:
          return fence.update(key, tombstone, request, position);
        case request_type::remove:
          return fence.remove(key, tombstone, request, position);
      }
      throw store_error(store_failure::bad_request, "unknown request type");
    });
  }

  /// Unfenced. Thread-safe: the client is, and nothing else here changes.
  apply_outcome apply(const widget_request& request) {
    const std::string key = checked_key(request);
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

  /// The stored widget, or nullopt. Throws store_error like apply().
  std::optional<widget> load(std::string_view owner, std::string_view widget_id) {
    return guarded([&] { return read(key_of(owner, widget_id)); });
  }

  /// The key the widget is stored under, as the layout says.
  std::string key_of(std::string_view owner, std::string_view widget_id) const {
    return widget_key(owner, widget_id, layout_);
  }

  /// Where a fenced delete of the widget at `key` leaves its tombstone.
  std::string tombstone_key_of(std::string_view key) const {
    return tombstone_prefix_ + std::string(key.substr(layout_.prefix.size()));
  }

  /// The widget bucket's name.
  const std::string& bucket() const noexcept { return bucket_; }
  /// How widget keys are made (prefix, owner, id).
  const widget_key_layout& layout() const noexcept { return layout_; }
  /// Whether and how long tombstones are kept.
  const fencing_options& fencing() const noexcept { return fencing_; }
  /// Where fenced deletes leave their tombstones.
  const std::string& tombstone_prefix() const noexcept { return tombstone_prefix_; }

 private:
  std::string checked_key(const widget_request& request) const {
    std::string key = key_of(request.owner, request.widget_id);
    if (key.size() > max_key_bytes) {
      throw store_error(store_failure::bad_request, "widget key is " + std::to_string(key.size()) +
                                                        " bytes, over S3's limit of " +
                                                        std::to_string(max_key_bytes));
    }
    return key;
  }

  // The probe object lives under the tombstone prefix, where no reader of
  // widgets looks, under a name of its own (a random one), so that stores
  // starting together do not meet.
  void check_conditional_writes() {
    const auto& config = client_.service().config();
    const std::string where =
        aws::s3_resource(bucket_, tombstone_prefix_) + " (endpoint " + config.endpoint + ")";
    std::random_device random;
    const std::string probe_key =
        tombstone_prefix_ + ".probe-" + std::to_string(random()) + std::to_string(random());
    std::string failure;
    aws::with_access_check(
        config, "cannot write under " + where,
        "that these credentials may put and delete objects under the tombstone prefix",
        [&] { failure = aws::probe_conditional_writes(client_, bucket_, probe_key); });
    if (!failure.empty())
      throw unrecoverable_error(
          "the S3 server of " + where + " does not honour conditional writes (" + failure +
          "), so the widget store cannot fence: a stalled consumer or a replayed request could "
          "move a widget backwards; to store without fencing, run with --no-fencing");
  }

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
  fencing_options fencing_;
  std::string tombstone_prefix_;
};

}  // namespace widget_consumer
