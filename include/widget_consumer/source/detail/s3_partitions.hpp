#pragma once
// The partitions that consumers sharing one request bucket divide between
// them (detail/s3_partition_claims.hpp): a request belongs to partition
// FNV-1a-64(widgetId) mod 32, so all requests of one widget belong to one
// partition, and only the consumer holding it applies them, in key order as
// a consumer alone would.
//
// Every consumer on a bucket must compute the same partition from the same
// bytes, whatever its version or options: the count is fixed, the hash is
// written out here (std::hash differs between libraries), and the widget id
// is read from the JSON text alone, valid request or not. A body with no
// string "widgetId" (it is rejected, never applied) and an object that
// cannot be read belong to the partition of their key: their one consumer
// rejects or sets them aside.

#include <widget_consumer/detail/json_text.hpp>

#include <boost/json.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace widget_consumer::detail {

// Fixed: consumers with different counts would not exclude each other.
inline constexpr std::uint32_t s3_partition_count = 32;

inline std::uint32_t s3_partition_of_text(std::string_view text) noexcept {
  std::uint64_t hash = 0xcbf29ce484222325ULL;  // FNV-1a 64 offset basis
  for (const char c : text) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001b3ULL;  // FNV-1a 64 prime
  }
  return static_cast<std::uint32_t>(hash % s3_partition_count);
}

// The "widgetId" string of a JSON object text, whether or not the rest is a
// valid request.
inline std::optional<std::string> s3_widget_id_of(std::string_view body) {
  auto parsed = parse_json_text(body);
  const auto* document = std::get_if<boost::json::value>(&parsed);
  if (document == nullptr || !document->is_object())
    return std::nullopt;
  const auto* id = document->get_object().if_contains("widgetId");
  if (id == nullptr || !id->is_string())
    return std::nullopt;
  return std::string(id->get_string());
}

inline std::uint32_t s3_partition_of_request(std::string_view key, std::string_view body) {
  const auto widget = s3_widget_id_of(body);
  return s3_partition_of_text(widget ? std::string_view(*widget) : key);
}

// How many partitions one of `live` consumers aims to hold: rounded up, so
// the shares cover every partition.
inline std::size_t s3_fair_share(std::size_t live) noexcept {
  live = live == 0 ? 1 : live;
  return (s3_partition_count + live - 1) / live;
}

}  // namespace widget_consumer::detail
