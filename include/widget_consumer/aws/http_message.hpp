#pragma once
// The HTTP request and response as the AWS layer passes them around: the
// signer (sigv4.hpp) reads and extends a request, the transport (http.hpp)
// sends it. Plain values, no behaviour beyond header lookup.

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace widget_consumer::aws {

/// One HTTP header field, as sent or received.
struct http_header {
  std::string name;   ///< as written; compared ignoring case
  std::string value;  ///< the field's value
};

namespace detail {
inline bool iequals(std::string_view a, std::string_view b) noexcept {
  return std::ranges::equal(a, b, [](char x, char y) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
    return lower(x) == lower(y);
  });
}

inline std::optional<std::string_view> find_header(const std::vector<http_header>& headers,
                                                   std::string_view name) noexcept {
  for (const auto& header : headers)
    if (iequals(header.name, name))
      return header.value;
  return std::nullopt;
}
}  // namespace detail

/// A request as service_client signs it and the transport sends it.
struct http_request {
  std::string method;  ///< "GET", "PUT", "POST", "DELETE", "HEAD"
  /// Absolute URL, scheme://host[:port]/path[?query], with path and query
  /// already URI-encoded the way the service expects.
  std::string url;
  std::vector<http_header> headers;  ///< names as given; lookups ignore case
  std::string body;                  ///< the payload, signed as is

  /// The first header of that name (any case); nullopt when absent.
  std::optional<std::string_view> header(std::string_view name) const noexcept {
    return detail::find_header(headers, name);
  }
};

/// An answer as the transport received it.
struct http_response {
  long status = 0;                   ///< the HTTP status code
  std::vector<http_header> headers;  ///< in the order received
  std::string body;                  ///< decompressed
  /// Set by service_client (client.hpp), not the transport: an earlier
  /// attempt of the same call failed in a way that may have reached the
  /// service and taken effect (a 5xx, a connection lost or a timeout after
  /// the request went out). A retried delete answered "no such handle" may
  /// then mean that the first attempt deleted it.
  bool after_unknown_outcome = false;

  /// The first header of that name (any case); nullopt when absent.
  std::optional<std::string_view> header(std::string_view name) const noexcept {
    return detail::find_header(headers, name);
  }
};

}  // namespace widget_consumer::aws
