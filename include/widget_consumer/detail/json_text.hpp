#pragma once
// Shared by parse_request() and widget_from_json(): bytes to a JSON value with
// errors worded for people ("invalid JSON at offset 17"), and quoting of
// untrusted values inside error messages.

#include <boost/json.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <variant>

#include <widget_consumer/detail/utf8.hpp>

namespace widget_consumer::detail {

// Parse one complete JSON text. On failure the string is the problem, without
// a field name: "empty", "not UTF-8", "invalid JSON at offset 17".
inline std::variant<boost::json::value, std::string> parse_json_text(std::string_view text) {
  if (text.empty())
    return std::string("empty");
  // Checked before parsing: Boost.JSON would report bad UTF-8 inside a
  // string as a syntax error, which misleads whoever reads the reason.
  if (!is_valid_utf8(text))
    return std::string("not UTF-8");
  boost::json::stream_parser parser;
  boost::system::error_code error;
  const std::size_t consumed = parser.write(text.data(), text.size(), error);
  if (!error)
    parser.finish(error);
  if (error)
    return "invalid JSON at offset " + std::to_string(consumed);
  return parser.release();
}

inline std::string_view kind_name(boost::json::kind kind) noexcept {
  switch (kind) {
    case boost::json::kind::null:
      return "null";
    case boost::json::kind::bool_:
      return "boolean";
    case boost::json::kind::int64:
    case boost::json::kind::uint64:
    case boost::json::kind::double_:
      return "number";
    case boost::json::kind::string:
      return "string";
    case boost::json::kind::array:
      return "array";
    case boost::json::kind::object:
      return "object";
  }
  return "unknown";
}

// A value as a JSON string literal, cut to about max_bytes so that a hostile
// 1 MiB field cannot flood the logs.
inline std::string quoted(std::string_view value, std::size_t max_bytes = 64) {
  const std::string_view shown = utf8_prefix(value, max_bytes);
  std::string out = boost::json::serialize(boost::json::string_view(shown.data(), shown.size()));
  if (shown.size() < value.size())
    out += "...";
  return out;
}

}  // namespace widget_consumer::detail
