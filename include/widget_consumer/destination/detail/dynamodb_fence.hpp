#pragma once
// The fenced forms of the DynamoDB store's writes (position.hpp): the same
// one call per request as detail/dynamodb_widget.hpp, each with a
// ConditionExpression that lets it through only if the request's position is
// newer than the item's, and that writes the position with it. This is
// DynamoDB's documented optimistic-locking convention (a version attribute,
// as the Enhanced Client keeps one) in single-item conditions, which every
// DynamoDB server has (dynalite has no TransactWriteItems).
//
// The fence is attributes whose names start with _wc_, beside the widget's:
//   _wc_position  S  the position of the last request applied
//   _wc_expires   N  a tombstone's expiry (epoch seconds), for the table's TTL
// A delete leaves a tombstone: the item reduced to id, _wc_position and
// _wc_expires (no owner), so a late create is refused until TTL removes it.
// Names starting with _wc_ are refused as other attributes
// (detail::check_attribute_name), and widget_from_dynamodb_item() skips them.

#include <boost/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <widget_consumer/destination/detail/dynamodb_widget.hpp>
#include <widget_consumer/position.hpp>
#include <widget_consumer/request.hpp>
#include <widget_consumer/widget.hpp>

namespace widget_consumer {

inline constexpr std::string_view dynamodb_fence_prefix = "_wc_";
inline constexpr std::string_view dynamodb_position_attribute = "_wc_position";
inline constexpr std::string_view dynamodb_expires_attribute = "_wc_expires";

// An item that only records a delete (see the top of this file).
inline bool dynamodb_is_tombstone(const boost::json::object& item) {
  return !item.contains("owner") && item.contains(dynamodb_position_attribute);
}

// The position an item was last written at; "" when it has none (written
// without fencing, or no item).
inline std::string dynamodb_stored_position(const boost::json::object* item) {
  if (item == nullptr)
    return {};
  const auto* attribute = item->if_contains(dynamodb_position_attribute);
  const auto* typed = attribute != nullptr ? attribute->if_object() : nullptr;
  const auto* text = typed != nullptr ? typed->if_contains("S") : nullptr;
  return text != nullptr && text->is_string() ? std::string(text->get_string()) : std::string{};
}

namespace detail {

inline boost::json::object& object_member(boost::json::object& body, std::string_view name) {
  auto& member = body[name];
  if (!member.is_object())
    member = boost::json::object{};
  return member.get_object();
}

// Adds to body's ConditionExpression (ANDed with what is there, which is a
// conjunction): no position yet, an older one, one of another kind, or
// another of a standard message's millisecond (moves_forward()). Written
// with no parentheses, the conjunction repeated in each alternative (AND
// binds tighter than OR): the same condition to DynamoDB, and dynalite's
// parser backtracks on parentheses, which doubled its CPU per write and cost
// a fifth of a drain's rate there (BENCHMARKS.md, "What the fence costs").
inline void add_fence(boost::json::object& body, std::string_view position) {
  object_member(body, "ExpressionAttributeNames")["#wcp"] = dynamodb_position_attribute;
  auto& values = object_member(body, "ExpressionAttributeValues");
  values[":wcp"] = dynamodb_string(position);
  values[":wck"] = dynamodb_string(position_kind(position));
  std::vector<std::string_view> alternatives = {"attribute_not_exists(#wcp)", "#wcp < :wcp",
                                                "NOT begins_with(#wcp, :wck)"};
  if (const auto group = position_tie_group(position); !group.empty()) {
    values[":wcg"] = dynamodb_string(group);
    alternatives.push_back("begins_with(#wcp, :wcg) AND #wcp <> :wcp");
  }
  const auto* existing = body.if_contains("ConditionExpression");
  const std::string conjunction =
      existing != nullptr && existing->is_string() && !existing->get_string().empty()
          ? std::string(existing->get_string()) + " AND "
          : std::string{};
  std::string condition;
  for (const auto alternative : alternatives) {
    condition += condition.empty() ? "" : " OR ";
    condition += conjunction;
    condition += alternative;
  }
  body["ConditionExpression"] = std::move(condition);
}

}  // namespace detail

// Create: the full item and its position, if the position moves it forward
// (over a widget or a tombstone alike).
inline boost::json::object dynamodb_fenced_put_item(const widget_request& create,
                                                    std::string_view position) {
  boost::json::object body = dynamodb_put_item(make_widget(create));
  auto& item = body["Item"].get_object();
  item[dynamodb_position_attribute] = detail::dynamodb_string(position);
  detail::check_item_size(create.widget_id, detail::dynamodb_item_size(item), "the item");
  detail::add_fence(body, position);
  return body;
}

// Update: dynamodb_update_item() with the position set too and fenced;
// nullopt when the update needs the legacy form (no expression, so no
// fence in it: the store reads and then writes conditionally on what it read).
inline std::optional<boost::json::object> dynamodb_fenced_update_item(const widget_request& update,
                                                                      std::string_view position) {
  boost::json::object body = dynamodb_update_item(update);
  const auto* expression = body.if_contains("UpdateExpression");
  if (expression == nullptr)
    return std::nullopt;
  std::string text(expression->get_string());
  // The SET clause comes first when there is one (dynamodb_update_item).
  if (text.starts_with("SET ")) {
    const auto remove = text.find(" REMOVE ");
    text.insert(remove == std::string::npos ? text.size() : remove, ", #wcp = :wcp");
  } else {
    text = "SET #wcp = :wcp " + text;
  }
  if (text.size() > dynamodb_expression_limit)
    return std::nullopt;
  body["UpdateExpression"] = std::move(text);
  detail::add_fence(body, position);
  return body;
}

// The legacy-form update (no expression), conditioned on the owner and on
// the item still holding `stored` (what the store read; "" = none).
inline boost::json::object dynamodb_fenced_legacy_update_item(const widget_request& update,
                                                              std::string_view position,
                                                              std::string_view stored) {
  boost::json::object body =
      detail::dynamodb_update_item_without_expression(update, detail::dynamodb_changes_of(update));
  detail::object_member(body, "AttributeUpdates")[dynamodb_position_attribute] =
      boost::json::object{{"Action", "PUT"}, {"Value", detail::dynamodb_string(position)}};
  auto& expected = detail::object_member(body, "Expected");
  expected[dynamodb_position_attribute] =
      stored.empty() ? boost::json::object{{"ComparisonOperator", "NULL"}}
                     : boost::json::object{{"ComparisonOperator", "EQ"},
                                           {"AttributeValueList",
                                            boost::json::array{detail::dynamodb_string(stored)}}};
  return body;
}

// Delete: the item replaced by its tombstone, if the owner matches and the
// position moves it forward; ALL_OLD tells what was there.
inline boost::json::object dynamodb_tombstone_put_item(const widget_request& remove,
                                                       std::string_view position,
                                                       std::int64_t expires_epoch_seconds) {
  boost::json::object item{{"id", detail::dynamodb_string(remove.widget_id)},
                           {dynamodb_position_attribute, detail::dynamodb_string(position)},
                           {dynamodb_expires_attribute,
                            boost::json::object{{"N", std::to_string(expires_epoch_seconds)}}}};
  boost::json::object body{{"Item", std::move(item)}, {"ReturnValues", "ALL_OLD"}};
  detail::add_owner_condition(body, remove.owner);  // as the unfenced delete's
  detail::add_fence(body, position);
  return body;
}

}  // namespace widget_consumer
