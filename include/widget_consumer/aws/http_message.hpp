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

struct http_header {
  std::string name;
  std::string value;
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

struct http_request {
  std::string method;  ///< "GET", "PUT", "POST", "DELETE", "HEAD"
  /// Absolute URL, scheme://host[:port]/path[?query], with path and query
  /// already URI-encoded the way the service expects.
  std::string url;
  std::vector<http_header> headers;  ///< names as given; lookups ignore case
  std::string body;

  std::optional<std::string_view> header(std::string_view name) const noexcept {
    return detail::find_header(headers, name);
  }
};

struct http_response {
  long status = 0;
  std::vector<http_header> headers;
  std::string body;
  /// Set by service_client (client.hpp), not the transport: an earlier
  /// attempt of the same call failed in a way that may have reached the
  /// service and taken effect (a 5xx, a connection lost or a timeout after
  /// the request went out). A retried delete answered "no such handle" may
  /// then mean that the first attempt deleted it.
  bool after_unknown_outcome = false;

  std::optional<std::string_view> header(std::string_view name) const noexcept {
    return detail::find_header(headers, name);
  }
};

}  // namespace widget_consumer::aws
