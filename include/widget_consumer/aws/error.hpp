#pragma once
// The AWS layer's error model, stated once: every failure is an exception.
//
//   service_error    the service answered with a non-2xx status, or with a
//                    2xx whose body is not the operation's answer (code
//                    "UnexpectedResponse", response.hpp). Carries the
//                    service, operation, resource, HTTP status, AWS error code,
//                    message and request id, and classifies itself
//                    (retryable(), throttling(), clock_skew()).
//   transport_error  no usable answer: DNS, connect, TLS, timeout, reset, a
//                    2xx body that does not parse (cut short: response.hpp).
//                    Retryable unless the failure cannot heal by itself (a
//                    certificate that does not verify, a malformed URL, an
//                    answer larger than http_options::max_response_bytes).
//                    kind::cancelled: the caller stopped the call's
//                    std::stop_token (http.hpp); never retried.
//
// Both derive from std::runtime_error; their what() never holds a secret
// (no credentials, no signature, no query string of a presigned URL).
//
// parse_service_error() reads every body shape AWS uses: S3 REST XML
// (<Error><Code>), SQS query XML (<ErrorResponse><Error><Code>), the JSON
// protocol (DynamoDB, SQS JSON: "__type" / "message"), and falls back to the
// HTTP status when the body is HTML (a proxy, a load balancer) or empty (HEAD).

#include <widget_consumer/aws/http_message.hpp>
#include <widget_consumer/aws/xml.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <initializer_list>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace widget_consumer::aws {

namespace detail {

// Error codes the AWS SDKs' "standard" retry mode treats as throttling.
inline constexpr std::array<std::string_view, 14> throttling_codes{
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
};

// Error codes for failures that pass by themselves.
inline constexpr std::array<std::string_view, 4> transient_codes{
    "RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete", "InternalError"};

// Error codes that mean "your clock is off": the retry layer corrects the
// signing time from the response's Date header. The signature codes are only
// skew when the Date header says the clocks differ (see retry.hpp).
inline constexpr std::array<std::string_view, 3> clock_skew_codes{
    "RequestTimeTooSkewed", "RequestExpired", "RequestInTheFuture"};
inline constexpr std::array<std::string_view, 3> possible_clock_skew_codes{
    "SignatureDoesNotMatch", "InvalidSignatureException", "AuthFailure"};

template <std::size_t N>
bool contains(const std::array<std::string_view, N>& set, std::string_view code) noexcept {
  return std::ranges::find(set, code) != set.end();
}

inline std::string display_service_name(std::string_view service) {
  if (service == "s3")
    return "S3";
  if (service == "sqs")
    return "SQS";
  if (service == "dynamodb")
    return "DynamoDB";
  if (service == "sts")
    return "STS";
  if (service == "sso")
    return "SSO";
  return std::string(service);
}

inline std::string_view reason_phrase(long status) noexcept {
  switch (status) {
    case 301:
      return "Moved Permanently";
    case 307:
      return "Temporary Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 409:
      return "Conflict";
    case 411:
      return "Length Required";
    case 412:
      return "Precondition Failed";
    case 413:
      return "Payload Too Large";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return {};
  }
}

// An HTTP date (RFC 9110 IMF-fixdate, "Tue, 02 Feb 2021 22:52:48 GMT"), as in
// the Date response header. nullopt when it does not parse.
inline std::optional<std::chrono::system_clock::time_point> parse_http_date(std::string_view text) {
  static constexpr std::array<std::string_view, 12> months{
      "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  // "Www, DD Mon YYYY HH:MM:SS GMT"
  if (text.size() < 29 || text[3] != ',' || text.substr(26, 3) != "GMT")
    return std::nullopt;
  auto number = [&](std::size_t pos, std::size_t len) -> std::optional<int> {
    int value = 0;
    for (std::size_t i = pos; i < pos + len; ++i) {
      if (text[i] < '0' || text[i] > '9')
        return std::nullopt;
      value = value * 10 + (text[i] - '0');
    }
    return value;
  };
  const auto day = number(5, 2), year = number(12, 4), hour = number(17, 2), minute = number(20, 2),
             second = number(23, 2);
  const auto month = std::ranges::find(months, text.substr(8, 3));
  if (!day || !year || !hour || !minute || !second || month == months.end())
    return std::nullopt;
  const std::chrono::year_month_day date{
      std::chrono::year{*year},
      std::chrono::month{static_cast<unsigned>(month - months.begin() + 1)},
      std::chrono::day{static_cast<unsigned>(*day)}};
  if (!date.ok() || *hour > 23 || *minute > 59 || *second > 60)
    return std::nullopt;
  return std::chrono::sys_days{date} + std::chrono::hours{*hour} + std::chrono::minutes{*minute} +
         std::chrono::seconds{*second};
}

inline std::string_view trim_left(std::string_view text) noexcept {
  while (!text.empty() &&
         (text.front() == ' ' || text.front() == '\t' || text.front() == '\r' ||
          text.front() == '\n' || text.front() == '\xEF' || text.front() == '\xBB' ||
          text.front() == '\xBF'))  // whitespace and a UTF-8 byte order mark
    text.remove_prefix(1);
  return text;
}

}  // namespace detail

/// An AWS service answered, and the answer says no (4xx, 5xx, or an error in a 200).
class service_error : public std::runtime_error {
 public:
  /// Everything known of the refusal; what() is made from it.
  struct details {
    std::string service;     ///< signing name: "s3", "sqs", "dynamodb"
    std::string operation;   ///< "GetObject"
    std::string resource;    ///< "s3://requests/1612306368338", may be empty
    long status = 0;         ///< HTTP status
    std::string code;        ///< AWS error code, or "HTTP <status>" when the body had none
    std::string message;     ///< the service's error message, may be empty
    std::string request_id;  ///< x-amz-request-id, for AWS support
    /// The server's clock from the Date header, for clock-skew correction.
    std::optional<std::chrono::system_clock::time_point> server_time;
  };

  /// The error for `d`, its what() naming the call, the resource and the code.
  explicit service_error(details d) : std::runtime_error(describe(d)), details_(std::move(d)) {}

  /// The signing name of the service that answered.
  const std::string& service() const noexcept { return details_.service; }
  /// The call that failed, e.g. "GetObject".
  const std::string& operation() const noexcept { return details_.operation; }
  /// What the call was about, e.g. "s3://bucket/key"; may be empty.
  const std::string& resource() const noexcept { return details_.resource; }
  /// The HTTP status of the answer.
  long status() const noexcept { return details_.status; }
  /// The AWS error code, e.g. "NoSuchKey", or "HTTP <status>".
  const std::string& code() const noexcept { return details_.code; }
  /// The service's own message, may be empty.
  const std::string& message() const noexcept { return details_.message; }
  /// The request id AWS support asks for.
  const std::string& request_id() const noexcept { return details_.request_id; }
  /// The server's clock from the Date header, for clock-skew correction.
  const std::optional<std::chrono::system_clock::time_point>& server_time() const noexcept {
    return details_.server_time;
  }

  /// The same error with `note` added to its message: what the layer above
  /// knows of its cause (S3: the region the bucket is in).
  service_error with_note(std::string_view note) const {
    details d = details_;
    if (!d.message.empty())
      d.message += "; ";
    d.message += note;
    return service_error(std::move(d));
  }

  /// The service asked us to slow down. 429 counts even without a known code:
  /// it is HTTP's own word for it.
  bool throttling() const noexcept {
    return detail::contains(detail::throttling_codes, details_.code) || details_.status == 429;
  }

  /// Worth another attempt: throttling, a transient code, or a 5xx that
  /// signals a passing server-side condition.
  bool retryable() const noexcept {
    const long s = details_.status;
    return throttling() || detail::contains(detail::transient_codes, details_.code) || s == 500 ||
           s == 502 || s == 503 || s == 504;
  }

  /// The code names a clock problem outright, or may stem from one (a
  /// signature mismatch); retry.hpp decides with the Date header.
  bool clock_skew() const noexcept {
    return detail::contains(detail::clock_skew_codes, details_.code) ||
           detail::contains(detail::possible_clock_skew_codes, details_.code);
  }

 private:
  // "S3 GetObject s3://requests/1612306368338: 403 AccessDenied: Access Denied
  //  (request id 4442587FB7D0A2F9)"
  static std::string describe(const details& d) {
    std::string text = detail::display_service_name(d.service);
    text += ' ';
    text += d.operation;
    if (!d.resource.empty()) {
      text += ' ';
      text += d.resource;
    }
    text += ": ";
    text += std::to_string(d.status);
    text += ' ';
    text += d.code;
    if (!d.message.empty()) {
      text += ": ";
      text += d.message;
    }
    if (!d.request_id.empty()) {
      text += " (request id ";
      text += d.request_id;
      text += ')';
    }
    return text;
  }

  details details_;
};

/// No answer came from the service (connection, timeout, TLS), or one that cannot be read.
class transport_error : public std::runtime_error {
 public:
  /// malformed: an answer came, but its body does not parse or arrived
  /// damaged. too_large: the answer exceeded the size limit; the same request
  /// would only fetch it again, so it is not retried. cancelled: the caller
  /// gave up on the call (http.hpp); a retry would defeat the purpose.
  enum class kind { connect, timeout, tls, other, permanent, malformed, too_large, cancelled };

  /// A failure of kind `k`; `what` says what happened, without secrets.
  transport_error(kind k, const std::string& what) : std::runtime_error(what), kind_(k) {}

  /// What kind of failure it was.
  kind failure() const noexcept { return kind_; }
  /// True when the call ran out of time.
  bool timeout() const noexcept { return kind_ == kind::timeout; }
  /// A certificate that does not verify, a URL curl cannot use or an oversized
  /// answer will fail the same way every time, and a cancelled call was given
  /// up on; everything else may heal.
  bool retryable() const noexcept {
    return kind_ != kind::permanent && kind_ != kind::too_large && kind_ != kind::cancelled;
  }

 private:
  kind kind_;
};

/// Whether a call that failed so may still have been carried out: a 5xx
/// other than throttling, or a transport failure once the request may have
/// gone out (anything but a refused connection). A retry of such a call may
/// find its work done already.
inline bool may_have_taken_effect(const service_error& e) noexcept {
  return e.status() >= 500 && !e.throttling();
}
/// As above: a transport failure once the request may have gone out.
inline bool may_have_taken_effect(const transport_error& e) noexcept {
  return e.failure() != transport_error::kind::connect;
}

namespace detail {

// "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException" or
// "ResourceNotFoundException:http://internal.amazon.com/...": the code is what
// follows the last '#', up to any ':'.
inline std::string error_code_from_type(std::string_view type) {
  if (const auto colon = type.find(':'); colon != std::string_view::npos)
    type = type.substr(0, colon);
  if (const auto hash = type.rfind('#'); hash != std::string_view::npos)
    type.remove_prefix(hash + 1);
  return std::string(type);
}

inline void read_json_error(std::string_view body, service_error::details& d) {
  boost::system::error_code ec;
  const auto value = boost::json::parse(body, ec);
  if (ec || !value.is_object())
    return;
  const auto& obj = value.get_object();
  auto string_field = [&](std::initializer_list<std::string_view> names) -> std::string {
    for (auto name : names)
      if (const auto* field = obj.if_contains(name); field != nullptr && field->is_string())
        return std::string(field->get_string());
    return {};
  };
  if (d.code.empty())
    d.code = error_code_from_type(string_field({"__type", "code", "Code"}));
  d.message = string_field({"message", "Message", "errorMessage"});
}

inline void read_xml_error(std::string_view body, service_error::details& d) {
  std::optional<xml_document> doc;
  try {
    doc = xml_document::parse(body);
  } catch (const xml_error&) {
    return;  // HTML or garbage: the status will speak for it
  }
  const auto root = doc->root();
  std::optional<xml_node> error;
  if (root.name() == "Error")  // S3 REST
    error = root;
  else if (root.name() == "ErrorResponse")  // SQS query protocol
    error = root.child("Error");
  // The EC2-style shape (<Response><Errors><Error>), which some servers
  // (moto among them) also send inside <ErrorResponse>.
  if (!error && (root.name() == "ErrorResponse" || root.name() == "Response"))
    error = root.child("Errors/Error");
  if (!error)
    return;
  d.code = error->text_or("Code");
  d.message = error->text_or("Message");
  if (d.request_id.empty())
    d.request_id = error->text_or("RequestId");
  if (d.request_id.empty())
    d.request_id = root.text_or("RequestId");  // the query protocol puts it beside <Error>
}

}  // namespace detail

/// Builds the error for a non-2xx response. Never throws on a body it cannot
/// read: the status becomes the code ("HTTP 503") and its reason the message.
inline service_error parse_service_error(std::string_view service, std::string_view operation,
                                         std::string_view resource, const http_response& response) {
  service_error::details d;
  d.service = std::string(service);
  d.operation = std::string(operation);
  d.resource = std::string(resource);
  d.status = response.status;
  for (auto name : {"x-amzn-RequestId", "x-amz-request-id", "x-amzn-requestid"})
    if (auto id = response.header(name); id && !id->empty()) {
      d.request_id = std::string(*id);
      break;
    }
  // The JSON protocol may name the code in a header ("Code:http://...").
  if (auto type = response.header("x-amzn-ErrorType"); type && !type->empty())
    d.code = detail::error_code_from_type(*type);
  if (auto date = response.header("Date"))
    d.server_time = detail::parse_http_date(*date);

  const auto body = detail::trim_left(response.body);
  if (!body.empty() && body.front() == '{')
    detail::read_json_error(body, d);
  else if (!body.empty() && body.front() == '<')
    detail::read_xml_error(body, d);

  if (d.code.empty()) {
    d.code = "HTTP " + std::to_string(response.status);
    if (d.message.empty())
      d.message = std::string(detail::reason_phrase(response.status));
  }
  return service_error(std::move(d));
}

}  // namespace widget_consumer::aws
