#pragma once
// dynamodb_table_store: widgets as items of one DynamoDB table keyed by `id`
// (the layout of detail/dynamodb_widget.hpp). One call per request, so each
// request is applied atomically and a redelivered one gives the same item:
//   create -> PutItem (replaces any earlier item)
//   update -> UpdateItem conditioned on the id existing with the request's
//             owner; a failed condition is not_found
//   delete -> DeleteItem with the same condition; a failed condition (or no
//             old item) is not_found
//
// Failures, as concepts.hpp's store_failure: item_too_large, and an
// attribute named id (the table's key; parse_request() accepts it, the S3 and
// directory stores store it) or like the widget's own properties (only in a
// request built by hand), are bad_request (rejected); AWS errors as
// detail/store_failure.hpp says (a ValidationException is bad_request unless
// it is about the table's key schema); anything else is permanent.
//
// Fenced (apply(request, position); detail/dynamodb_fence.hpp): the same one
// call, conditioned on the position too. A failed condition is then read
// back (GetItem, consistent) to tell stale from not_found: only on that
// path, so a fenced write costs no extra call. A delete leaves a tombstone.
// Fencing off (fencing_options::enabled false, --no-fencing): the course's
// item layout exactly, and no tombstones.
//
// Thread-safe: the lanes call apply() concurrently; the client is (see
// aws/client.hpp) and the store keeps no other state.

#include <widget_consumer/concepts.hpp>
#include <widget_consumer/destination/detail/dynamodb_fence.hpp>
#include <widget_consumer/destination/detail/dynamodb_widget.hpp>
#include <widget_consumer/destination/detail/store_failure.hpp>
#include <widget_consumer/destination/fencing.hpp>
#include <widget_consumer/position.hpp>
#include <widget_consumer/request.hpp>
#include <widget_consumer/widget.hpp>

#include <widget_consumer/aws/access_check.hpp>
#include <widget_consumer/aws/dynamodb.hpp>

#include <boost/json.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace widget_consumer {

/// A widget store of one DynamoDB table, one item per widget keyed by its id.
class dynamodb_table_store {
 public:
  /// A store of `table` through `client`; throws std::invalid_argument for an empty name.
  dynamodb_table_store(aws::dynamodb_client client, std::string table, fencing_options fencing = {})
      : client_(std::move(client)), table_(std::move(table)), fencing_(fencing) {
    if (table_.empty())
      throw std::invalid_argument("dynamodb_table_store: the table name is empty");
  }

  /// A store of `table`, with a DynamoDB client made from `config`.
  dynamodb_table_store(aws::client_config config, std::string table, fencing_options fencing = {})
      : dynamodb_table_store(aws::dynamodb_client(std::move(config)), std::move(table), fencing) {}

  /// Before the first request (concepts.hpp, startup_checking): DescribeTable,
  /// which writes nothing: the table exists, these credentials may see it, and
  /// it is keyed by `id` (S) alone, as every item this store writes is.
  void check_ready() {
    const auto& config = client_.service().config();
    const std::string action = "cannot use the DynamoDB table " + table_;
    constexpr std::string_view advice =
        "that the table exists in this region and that these credentials may read and write it";
    const auto description = aws::with_access_check(config, action, advice,
                                                    [&] { return client_.describe_table(table_); });
    if (!description)
      throw aws::unrecoverable(config, action,
                               "400 ResourceNotFoundException: the table does not exist", advice);
    if (const auto key = key_schema_of(*description); key != "id (S)")
      throw aws::unrecoverable(config, action, "the table is keyed by " + key,
                               "that the table's partition key is id, of type S, with no sort "
                               "key: each widget is one item keyed by its widgetId");
  }

  /// Applies the request unfenced: the widget is written whatever it holds.
  apply_outcome apply(const widget_request& request) {
    return as_store_errors([&] { return write(request); });
  }

  /// Fenced (concepts.hpp, position_fencing): see the top of this file.
  fenced_outcome apply(const widget_request& request, std::string_view position) {
    if (!fencing_.enabled || position.empty())
      return {apply(request)};
    return as_store_errors([&] { return write_fenced(request, position); });
  }

  /// Whether and how long tombstones are kept.
  const fencing_options& fencing() const noexcept { return fencing_; }
  /// The table's name.
  const std::string& table() const noexcept { return table_; }
  /// The DynamoDB client it writes with.
  aws::dynamodb_client& client() noexcept { return client_; }

 private:
  // Every failure of a write as the store_error concepts.hpp names.
  template <class Write>
  static auto as_store_errors(Write&& write) -> decltype(std::forward<Write>(write)()) {
    try {
      return detail::with_store_failures(detail::dynamodb_store_failure,
                                         std::forward<Write>(write));
    } catch (const store_error&) {
      throw;
    } catch (const item_too_large& e) {
      throw store_error(store_failure::bad_request, e.what());
    } catch (const reserved_attribute_name& e) {
      throw store_error(store_failure::bad_request, e.what());
    } catch (const std::exception& e) {
      throw store_error(store_failure::permanent, e.what());
    }
  }

  // One call per request type; what DynamoDB's answer means for the widget.
  apply_outcome write(const widget_request& request) {
    switch (request.type) {
      case request_type::create:
        client_.put_item(table_, dynamodb_put_item(make_widget(request)));
        return apply_outcome::applied;
      case request_type::update:
        return client_.update_item(table_, dynamodb_update_item(request)).condition_failed()
                   ? apply_outcome::not_found
                   : apply_outcome::applied;
      case request_type::remove: {
        const auto result = client_.delete_item(table_, dynamodb_delete_item(request));
        if (result.condition_failed())
          return apply_outcome::not_found;
        // ALL_OLD: no Attributes means there was nothing to delete.
        const auto* old = result.response.if_contains("Attributes");
        return old != nullptr && old->is_object() && !old->get_object().empty()
                   ? apply_outcome::applied
                   : apply_outcome::not_found;
      }
    }
    throw store_error(store_failure::bad_request, "unknown request type");
  }

  // A condition that fails after a write between our read and our call is
  // tried again; this bounds how often.
  static constexpr int fenced_attempts = 4;

  fenced_outcome write_fenced(const widget_request& request, std::string_view position) {
    for (int attempt = 1; attempt <= fenced_attempts; ++attempt) {
      if (const auto outcome = try_fenced(request, position))
        return *outcome;
    }
    throw store_error(store_failure::transient, "widget " + detail::quoted(request.widget_id) +
                                                    " changed under every one of " +
                                                    std::to_string(fenced_attempts) +
                                                    " conditional writes");
  }

  // nullopt: the item changed between the condition and the read; try again.
  std::optional<fenced_outcome> try_fenced(const widget_request& request,
                                           std::string_view position) {
    switch (request.type) {
      case request_type::create:
        if (!client_.put_item(table_, dynamodb_fenced_put_item(request, position))
                 .condition_failed())
          return fenced_outcome{apply_outcome::applied};
        break;
      case request_type::update: {
        auto body = dynamodb_fenced_update_item(request, position);
        if (!body)
          return legacy_update(request, position);
        if (!client_.update_item(table_, std::move(*body)).condition_failed())
          return fenced_outcome{apply_outcome::applied};
        break;
      }
      case request_type::remove:
        if (!client_.put_item(table_, dynamodb_tombstone_put_item(request, position, expiry()))
                 .condition_failed())
          return fenced_outcome{apply_outcome::applied};
        break;
    }
    // Why the condition failed: the position (stale), or, for an update or a
    // delete, no widget of this owner (not_found). A create can only fail on
    // the position: read as newer, the item changed since, so try again.
    const auto item = read_item(request.widget_id);
    std::string stored = dynamodb_stored_position(item ? &*item : nullptr);
    if (!moves_forward(position, stored))
      return fenced_outcome{apply_outcome::stale, std::move(stored)};
    if (request.type == request_type::create)
      return std::nullopt;
    return fenced_outcome{apply_outcome::not_found};
  }

  // An update too large for an expression: read, decide, then write on the
  // condition that the item still holds what was read.
  std::optional<fenced_outcome> legacy_update(const widget_request& request,
                                              std::string_view position) {
    const auto item = read_item(request.widget_id);
    if (!item || dynamodb_is_tombstone(*item))
      return fenced_outcome{apply_outcome::not_found};
    std::string stored = dynamodb_stored_position(&*item);
    if (!moves_forward(position, stored))
      return fenced_outcome{apply_outcome::stale, std::move(stored)};
    if (!client_.update_item(table_, dynamodb_fenced_legacy_update_item(request, position, stored))
             .condition_failed())
      return fenced_outcome{apply_outcome::applied};
    // The owner differs, or the item changed since the read.
    const auto now = read_item(request.widget_id);
    if (now && dynamodb_stored_position(&*now) != stored)
      return std::nullopt;
    return fenced_outcome{apply_outcome::not_found};
  }

  std::optional<boost::json::object> read_item(std::string_view widget_id) {
    return client_.get_item(table_, boost::json::object{{"Key", detail::dynamodb_key(widget_id)},
                                                        {"ConsistentRead", true}});
  }

  std::int64_t expiry() const {
    return std::chrono::duration_cast<std::chrono::seconds>(
               (std::chrono::system_clock::now() + fencing_.tombstone_retention).time_since_epoch())
        .count();
  }

  // "id (S)", "id (N)", "id (S), sort key owner (S)": the key as a person
  // would describe it.
  static std::string key_schema_of(const boost::json::object& table) {
    auto text_of = [](const boost::json::value* value) {
      return value != nullptr && value->is_string() ? std::string(value->get_string())
                                                    : std::string("?");
    };
    auto type_of = [&](const std::string& name) {
      if (const auto* definitions = table.if_contains("AttributeDefinitions");
          definitions != nullptr && definitions->is_array())
        for (const auto& each : definitions->get_array())
          if (each.is_object() && text_of(each.get_object().if_contains("AttributeName")) == name)
            return text_of(each.get_object().if_contains("AttributeType"));
      return std::string("?");
    };
    std::string hash, range;
    if (const auto* schema = table.if_contains("KeySchema");
        schema != nullptr && schema->is_array())
      for (const auto& each : schema->get_array()) {
        if (!each.is_object())
          continue;
        const auto name = text_of(each.get_object().if_contains("AttributeName"));
        const auto described = name + " (" + type_of(name) + ")";
        (text_of(each.get_object().if_contains("KeyType")) == "HASH" ? hash : range) = described;
      }
    if (hash.empty())
      hash = "no partition key";
    return range.empty() ? hash : hash + ", sort key " + range;
  }

  aws::dynamodb_client client_;
  std::string table_;
  fencing_options fencing_;
};

}  // namespace widget_consumer
