#pragma once
// Reading a 2xx answer's body, for every operation of s3.hpp, sqs.hpp and
// dynamodb.hpp. A body that is not the operation's answer is never a crash
// and never silently "nothing"; it is one of two errors, told apart by
// whether the same request could get a good answer next time:
//
//   malformed  (transport_error, kind::malformed, retried): the body does not
//              parse, or arrived damaged. Most likely it was cut short by a
//              connection that died where curl could not see it (no
//              Content-Length), or altered on the way (an MD5 mismatch).
//   unexpected (service_error, code "UnexpectedResponse", not retried): a
//              complete document, but the wrong one: an HTML page from a
//              proxy, JSON where XML belongs or the reverse, another root
//              element, a field of the wrong type, a required field missing.
//
// Both messages name the service, operation and resource, then what was
// wrong; neither quotes the body (it may hold message contents).

#include <widget_consumer/aws/error.hpp>
#include <widget_consumer/aws/http_message.hpp>
#include <widget_consumer/aws/xml.hpp>

#include <boost/json.hpp>

#include <cctype>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace widget_consumer::aws {

/// Where a response came from: what its errors are reported as.
struct response_origin {
  std::string_view service;       ///< "s3", "sqs", "dynamodb"
  std::string_view operation;     ///< "ListObjectsV2"
  std::string_view resource;      ///< "s3://bucket", a queue URL, a table name
  const http_response& response;  ///< the answer being read

  /// "S3 ListObjectsV2 s3://bucket: what", for an error's message.
  std::string describe(std::string_view what) const {
    std::string text = detail::display_service_name(service);
    text += ' ';
    text += operation;
    if (!resource.empty()) {
      text += ' ';
      text += resource;
    }
    text += ": ";
    text += what;
    return text;
  }

  /// The error for a 2xx answer that is not what the operation promises.
  service_error unexpected(std::string what) const {
    service_error::details d;
    d.service = std::string(service);
    d.operation = std::string(operation);
    d.resource = std::string(resource);
    d.status = response.status;
    d.code = "UnexpectedResponse";
    d.message = std::move(what);
    for (auto name : {"x-amzn-RequestId", "x-amz-request-id"})
      if (auto id = response.header(name); id && !id->empty()) {
        d.request_id = std::string(*id);
        break;
      }
    return service_error(std::move(d));
  }

  /// The error for a body that does not parse: retried like a broken connection.
  transport_error malformed(std::string_view what) const {
    return transport_error(
        transport_error::kind::malformed,
        describe(std::string(what) + " (status " + std::to_string(response.status) + ", " +
                 std::to_string(response.body.size()) + " bytes)"));
  }
};

namespace detail {

inline bool istarts_with(std::string_view text, std::string_view prefix) noexcept {
  return text.size() >= prefix.size() && iequals(text.substr(0, prefix.size()), prefix);
}

// A proxy's or load balancer's page, by its Content-Type or its first bytes.
inline bool looks_like_html(const http_response& response) noexcept {
  if (auto type = response.header("Content-Type"); type && istarts_with(*type, "text/html"))
    return true;
  const auto body = trim_left(response.body);
  return istarts_with(body, "<!doctype html") || istarts_with(body, "<html");
}

// What a body that is not in the expected format is, for the message.
inline std::string describe_foreign_body(const http_response& response) {
  const auto body = trim_left(response.body);
  if (looks_like_html(response))
    return "an HTML page";
  if (!body.empty() && (body.front() == '{' || body.front() == '['))
    return "JSON";
  if (!body.empty() && body.front() == '<')
    return "XML";
  return "text";
}

inline std::string_view json_kind_name(const boost::json::value& value) noexcept {
  switch (value.kind()) {
    case boost::json::kind::null:
      return "null";
    case boost::json::kind::bool_:
      return "a boolean";
    case boost::json::kind::int64:
    case boost::json::kind::uint64:
    case boost::json::kind::double_:
      return "a number";
    case boost::json::kind::string:
      return "a string";
    case boost::json::kind::array:
      return "an array";
    case boost::json::kind::object:
      return "an object";
  }
  return "a value";
}

}  // namespace detail

/// The JSON-protocol body of a 2xx answer: always an object (an empty body is
/// an empty object: some operations answer with nothing at all).
inline boost::json::object read_json_response(const response_origin& origin) {
  const auto body = detail::trim_left(origin.response.body);
  if (body.empty())
    return {};
  if (body.front() != '{' && body.front() != '[')
    throw origin.unexpected(detail::describe_foreign_body(origin.response) + " instead of JSON");
  boost::json::parse_options options;
  // DynamoDB documents nest 32 levels, two JSON levels each ({"M": {...}}).
  options.max_depth = 128;
  boost::system::error_code ec;
  boost::json::value value = boost::json::parse(body, ec, {}, options);
  if (ec == boost::json::error::too_deep)
    throw origin.unexpected("JSON nested deeper than 128 levels");
  if (ec)
    throw origin.malformed("JSON that does not parse (cut short?): " + ec.message());
  if (!value.is_object())
    throw origin.unexpected("JSON that is " + std::string(detail::json_kind_name(value)) +
                            ", not an object");
  return std::move(value.get_object());
}

/// The XML body of a 2xx answer, whose root must be `root`. An `<Error>` root
/// is S3 failing after it started answering 200 (CopyObject and friends):
/// reported like the 500 it really is, with the code and message it holds.
inline xml_document read_xml_response(const response_origin& origin, std::string_view root) {
  const auto body = detail::trim_left(origin.response.body);
  const std::string expected = "<" + std::string(root) + ">";
  if (body.empty())
    throw origin.malformed("empty body instead of " + expected);
  if (body.front() != '<' || detail::looks_like_html(origin.response))
    throw origin.unexpected(detail::describe_foreign_body(origin.response) + " instead of " +
                            expected + " XML");
  std::optional<xml_document> document;
  try {
    document = xml_document::parse(body);
  } catch (const xml_limit_error& e) {
    throw origin.unexpected(e.what());
  } catch (const xml_error& e) {
    throw origin.malformed(std::string(e.what()) + " (cut short?) instead of " + expected);
  }
  const auto name = document->root().name();
  if (name == "Error") {
    const service_error parsed =
        parse_service_error(origin.service, origin.operation, origin.resource, origin.response);
    service_error::details d{
        parsed.service(), parsed.operation(), parsed.resource(),   500,
        parsed.code(),    parsed.message(),   parsed.request_id(), parsed.server_time()};
    throw service_error(std::move(d));
  }
  if (name != root)
    throw origin.unexpected("<" + std::string(name) + "> instead of " + expected);
  return std::move(*document);
}

// Typed access to a JSON response's fields. `optional_*` return nullptr when
// the field is absent or null; a field of another type is an unexpected
// response that names it ("Messages is a number, expected an array").
namespace detail {

inline const boost::json::value* json_field(const boost::json::object& object,
                                            std::string_view name) {
  const auto* value = object.if_contains(name);
  return value == nullptr || value->is_null() ? nullptr : value;
}

[[noreturn]] inline void wrong_json_type(const response_origin& origin, std::string_view path,
                                         const boost::json::value& value,
                                         std::string_view expected) {
  throw origin.unexpected(std::string(path) + " is " + std::string(json_kind_name(value)) +
                          ", expected " + std::string(expected));
}

inline const boost::json::string* optional_string(const response_origin& origin,
                                                  const boost::json::object& object,
                                                  std::string_view name,
                                                  std::string_view path = {}) {
  const auto* value = json_field(object, name);
  if (value != nullptr && !value->is_string())
    wrong_json_type(origin, path.empty() ? name : path, *value, "a string");
  return value == nullptr ? nullptr : &value->get_string();
}

inline std::string required_string(const response_origin& origin, const boost::json::object& object,
                                   std::string_view name, std::string_view path = {}) {
  const auto* value = optional_string(origin, object, name, path);
  if (value == nullptr)
    throw origin.unexpected(std::string(path.empty() ? name : path) + " is missing");
  return std::string(*value);
}

inline const boost::json::array* optional_array(const response_origin& origin,
                                                const boost::json::object& object,
                                                std::string_view name, std::string_view path = {}) {
  const auto* value = json_field(object, name);
  if (value != nullptr && !value->is_array())
    wrong_json_type(origin, path.empty() ? name : path, *value, "an array");
  return value == nullptr ? nullptr : &value->get_array();
}

inline const boost::json::object* optional_object(const response_origin& origin,
                                                  const boost::json::object& object,
                                                  std::string_view name,
                                                  std::string_view path = {}) {
  const auto* value = json_field(object, name);
  if (value != nullptr && !value->is_object())
    wrong_json_type(origin, path.empty() ? name : path, *value, "an object");
  return value == nullptr ? nullptr : &value->get_object();
}

// An array's element that must be an object ("Messages[3]").
inline const boost::json::object& element_object(const response_origin& origin,
                                                 const boost::json::value& value,
                                                 std::string_view array, std::size_t index) {
  if (!value.is_object())
    wrong_json_type(origin, std::string(array) + "[" + std::to_string(index) + "]", value,
                    "an object");
  return value.get_object();
}

}  // namespace detail

}  // namespace widget_consumer::aws
