#pragma once
// The DynamoDB operations the widget store, the tests and the demo need, over
// the JSON protocol (X-Amz-Target: DynamoDB_20120810.<Op>). Knows nothing of
// widgets: callers build the item, key and expression JSON; this layer adds
// the table name, makes the call and hands the response back.
//
// A failed ConditionExpression is an expected answer, not an error (the store
// reads it as "no such widget"), so writes report it as
// write_status::condition_failed instead of throwing.

#include <widget_consumer/aws/client.hpp>
#include <widget_consumer/aws/error.hpp>
#include <widget_consumer/aws/response.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace widget_consumer::aws {

/// Whether a conditional write was carried out.
enum class write_status {
  written,           ///< the write happened
  condition_failed,  ///< ConditionalCheckFailedException: nothing was written
};

/// The answer to a PutItem, UpdateItem or DeleteItem.
struct write_result {
  write_status status = write_status::written;  ///< written, or refused by its condition
  /// The operation's response (e.g. Attributes when ReturnValues asked for
  /// them); empty when the condition failed.
  boost::json::object response;

  /// True when the write's condition did not hold and nothing was written.
  bool condition_failed() const noexcept { return status == write_status::condition_failed; }
};

/// One page of a Scan.
struct scan_page {
  std::vector<boost::json::object> items;  ///< the items, as DynamoDB's typed JSON
  /// Where the next page starts; empty on the last page.
  boost::json::object last_evaluated_key;

  /// True when another page follows.
  bool has_more() const noexcept { return !last_evaluated_key.empty(); }
};

namespace detail {

// The readers of the JSON answers, pure functions of the parsed body so that
// tests and fuzzers reach them without a server; errors as response.hpp says.
// A field of the wrong type is an error, never "no item": a store that took
// it for a missing widget would act on a falsehood.

inline std::optional<boost::json::object> dynamodb_read_get_item(const response_origin& origin,
                                                                 boost::json::object& response) {
  (void)optional_object(origin, response, "Item");
  auto* item = json_field(response, "Item");
  if (item == nullptr)
    return std::nullopt;
  return std::move(item->get_object());
}

inline scan_page dynamodb_read_scan(const response_origin& origin, boost::json::object& response) {
  if (optional_array(origin, response, "Items") == nullptr)
    throw origin.unexpected("Items is missing");
  scan_page page;
  auto& items = response.at("Items").get_array();
  for (std::size_t i = 0; i < items.size(); ++i) {
    (void)element_object(origin, items[i], "Items", i);
    page.items.push_back(std::move(items[i].get_object()));
  }
  if (optional_object(origin, response, "LastEvaluatedKey") != nullptr)
    page.last_evaluated_key = std::move(response.at("LastEvaluatedKey").get_object());
  return page;
}

// The object `name` (TableDescription, Table), which must be there.
inline boost::json::object dynamodb_read_object(const response_origin& origin,
                                                boost::json::object& response,
                                                std::string_view name) {
  if (optional_object(origin, response, name) == nullptr)
    throw origin.unexpected(std::string(name) + " is missing");
  return std::move(response.at(name).get_object());
}

struct dynamodb_object_reader {
  std::string_view name;
  boost::json::object operator()(const response_origin& origin,
                                 boost::json::object& response) const {
    return dynamodb_read_object(origin, response, name);
  }
};

// A write's answer: whatever ReturnValues asked for, Attributes an object.
inline boost::json::object dynamodb_read_write(const response_origin& origin,
                                               boost::json::object& response) {
  (void)optional_object(origin, response, "Attributes");
  return std::move(response);
}

}  // namespace detail

/// DynamoDB's item calls the store makes, on one service_client.
class dynamodb_client {
 public:
  /// A client of DynamoDB as `config` says.
  explicit dynamodb_client(client_config config) : client_("dynamodb", std::move(config)) {}

  /// The underlying client, for calls this class does not wrap.
  service_client& service() noexcept { return client_; }

  /// `request` holds everything but TableName: Item, ConditionExpression,
  /// ExpressionAttributeNames/Values, ReturnValues, ...
  write_result put_item(std::string_view table, boost::json::object request) {
    return write("PutItem", table, std::move(request));
  }

  /// `request`: Key, UpdateExpression, ConditionExpression, ...
  write_result update_item(std::string_view table, boost::json::object request) {
    return write("UpdateItem", table, std::move(request));
  }

  /// `request`: Key, ConditionExpression, ReturnValues (ALL_OLD tells whether
  /// the item existed), ...
  write_result delete_item(std::string_view table, boost::json::object request) {
    return write("DeleteItem", table, std::move(request));
  }

  /// `request`: Key, ConsistentRead, ProjectionExpression, ... Returns the
  /// item, or nullopt when there is none with that key.
  std::optional<boost::json::object> get_item(std::string_view table, boost::json::object request) {
    return call("GetItem", table, std::move(request), &detail::dynamodb_read_get_item);
  }

  /// One page. `request` may hold ExclusiveStartKey (a previous page's
  /// last_evaluated_key), Limit, FilterExpression, ConsistentRead, ...
  scan_page scan(std::string_view table, boost::json::object request = {}) {
    return call("Scan", table, std::move(request), &detail::dynamodb_read_scan);
  }

  /// Every page of a scan, in order. For tests and checking tools, not for
  /// tables of unbounded size.
  std::vector<boost::json::object> scan_all(std::string_view table,
                                            boost::json::object request = {}) {
    std::vector<boost::json::object> items;
    for (;;) {
      auto page = scan(table, request);
      std::move(page.items.begin(), page.items.end(), std::back_inserter(items));
      if (!page.has_more())
        return items;
      request["ExclusiveStartKey"] = std::move(page.last_evaluated_key);
    }
  }

  /// For tests and the demo. `request`: KeySchema, AttributeDefinitions,
  /// BillingMode, ... Returns the TableDescription; the table may still be
  /// CREATING (see wait_until_active).
  boost::json::object create_table(std::string_view table, boost::json::object request) {
    return call("CreateTable", table, std::move(request), object_named("TableDescription"));
  }

  /// The table's description, or nullopt when it does not exist.
  std::optional<boost::json::object> describe_table(std::string_view table) {
    try {
      return call("DescribeTable", table, {}, object_named("Table"));
    } catch (const service_error& error) {
      if (is_error(error, "ResourceNotFoundException"))
        return std::nullopt;
      throw;
    }
  }

  /// Polls DescribeTable until TableStatus is ACTIVE; throws when the table
  /// does not exist or is not active within `timeout`.
  boost::json::object wait_until_active(
      std::string_view table, std::chrono::milliseconds timeout = std::chrono::seconds(60),
      std::chrono::milliseconds interval = std::chrono::milliseconds(200)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      auto description = describe_table(table);
      if (!description)
        throw std::runtime_error("DynamoDB table " + std::string(table) + " does not exist");
      const auto* status = description->if_contains("TableStatus");
      if (status != nullptr && status->is_string() && status->get_string() == "ACTIVE")
        return std::move(*description);
      if (std::chrono::steady_clock::now() + interval > deadline)
        throw std::runtime_error("DynamoDB table " + std::string(table) + " not ACTIVE after " +
                                 std::to_string(timeout.count()) + " ms");
      std::this_thread::sleep_for(interval);
    }
  }

 private:
  // The code may arrive qualified ("com.amazonaws.dynamodb.v20120810#Name",
  // e.g. from the x-amzn-ErrorType header); compare the part after '#'.
  static bool is_error(const service_error& error, std::string_view name) {
    std::string_view code = error.code();
    if (const auto hash = code.rfind('#'); hash != std::string_view::npos)
      code.remove_prefix(hash + 1);
    return code == name;
  }

  static detail::dynamodb_object_reader object_named(std::string_view name) { return {name}; }

  template <class Read>
  auto call(std::string_view operation, std::string_view table, boost::json::object request,
            Read&& read)
      -> std::invoke_result_t<Read&, const response_origin&, boost::json::object&> {
    request["TableName"] = table;
    return client_.call_json("DynamoDB_20120810", operation, request, table,
                             std::forward<Read>(read));
  }

  write_result write(std::string_view operation, std::string_view table,
                     boost::json::object request) {
    try {
      return {write_status::written,
              call(operation, table, std::move(request), &detail::dynamodb_read_write)};
    } catch (const service_error& error) {
      if (is_error(error, "ConditionalCheckFailedException"))
        return {write_status::condition_failed, {}};
      throw;
    }
  }

  service_client client_;
};

}  // namespace widget_consumer::aws
