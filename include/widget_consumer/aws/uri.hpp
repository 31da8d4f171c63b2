#pragma once
// URI encoding the way SigV4 defines it (RFC 3986 unreserved characters kept,
// everything else %XX with upper-case hex), the canonical query string, and
// splitting an absolute URL into the parts the signer and transport need.

#include <algorithm>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace widget_consumer::aws {

/// True for the characters SigV4 leaves unencoded: letters, digits, - . _ ~.
inline bool is_unreserved(char c) noexcept {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

namespace detail {
// uri_encode, appended to `out` (the signer builds its text in one buffer).
inline void append_uri_encoded(std::string& out, std::string_view text, bool keep_slash) {
  static constexpr char digits[] = "0123456789ABCDEF";
  for (char c : text) {
    if (is_unreserved(c) || (keep_slash && c == '/')) {
      out.push_back(c);
    } else {
      const auto byte = static_cast<unsigned char>(c);
      out.push_back('%');
      out.push_back(digits[byte >> 4]);
      out.push_back(digits[byte & 0x0f]);
    }
  }
}
}  // namespace detail

/// keep_slash is for S3 keys and paths: '/' separates segments and is sent as is.
inline std::string uri_encode(std::string_view text, bool keep_slash = false) {
  std::string out;
  out.reserve(text.size());
  detail::append_uri_encoded(out, text, keep_slash);
  return out;
}

/// Percent-decoding only: '+' stays '+' because SigV4 treats it as a literal
/// (we never produce form-encoded queries). A malformed escape is kept as text.
inline std::string uri_decode(std::string_view text) {
  auto hex_value = [](char c) -> int {
    if (c >= '0' && c <= '9')
      return c - '0';
    if (c >= 'a' && c <= 'f')
      return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
      return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size()) {
      const int high = hex_value(text[i + 1]);
      const int low = hex_value(text[i + 2]);
      if (high >= 0 && low >= 0) {
        out.push_back(static_cast<char>(high * 16 + low));
        i += 2;
        continue;
      }
    }
    out.push_back(text[i]);
  }
  return out;
}

/// A query's name-value pairs, in the caller's order; encoded when written.
using query_parameters = std::vector<std::pair<std::string, std::string>>;

/// Splits "a=1&b&c=" into decoded (name, value) pairs, in order.
inline query_parameters parse_query(std::string_view query) {
  query_parameters parameters;
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (pair.empty())
      continue;
    const auto eq = pair.find('=');
    if (eq == std::string_view::npos)
      parameters.emplace_back(uri_decode(pair), std::string{});
    else
      parameters.emplace_back(uri_decode(pair.substr(0, eq)), uri_decode(pair.substr(eq + 1)));
  }
  return parameters;
}

/// Encodes (name, value) pairs in the given order: "name=value&..." with both
/// sides URI-encoded, so the result is also what the signer will canonicalise.
inline std::string make_query(const query_parameters& parameters) {
  std::string out;
  for (const auto& [name, value] : parameters) {
    if (!out.empty())
      out.push_back('&');
    out += uri_encode(name);
    out.push_back('=');
    out += uri_encode(value);
  }
  return out;
}

/// SigV4's canonical query: every name and value decoded then re-encoded, a
/// missing value as "", sorted by encoded name then encoded value.
inline std::string canonical_query_string(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> encoded;
  for (const auto& [name, value] : parse_query(query))
    encoded.emplace_back(uri_encode(name), uri_encode(value));
  std::ranges::sort(encoded);
  std::string out;
  for (const auto& [name, value] : encoded) {
    if (!out.empty())
      out.push_back('&');
    out += name;
    out.push_back('=');
    out += value;
  }
  return out;
}

namespace detail {
// host[:port] as a Host header carries it: the scheme's default port omitted.
inline std::string host_header(std::string_view scheme, std::string_view host,
                               std::string_view port) {
  const bool default_port =
      port.empty() || (scheme == "https" && port == "443") || (scheme == "http" && port == "80");
  std::string out(host);
  if (!default_port)
    out.append(":").append(port);
  return out;
}
}  // namespace detail

/// A URL's parts as views into it: what the signer reads, without copies.
struct url_view {
  std::string_view scheme;  ///< as written (compare case-insensitively)
  std::string_view host;    ///< as written, IPv6 literals keep their brackets: "[::1]"
  std::string_view port;    ///< empty when the URL has none
  std::string_view path;    ///< as written, "/" when the URL has none
  std::string_view query;   ///< after '?', without it; fragment dropped
};

/// A URL's parts, copied out of it (url_view), the scheme in lower case.
struct url_parts {
  std::string scheme;  ///< lower case, e.g. "https"
  std::string host;    ///< as written, IPv6 literals keep their brackets: "[::1]"
  std::string port;    ///< empty when the URL has none
  std::string path;    ///< as written, "/" when the URL has none
  std::string query;   ///< after '?', without it; fragment dropped

  /// host[:port] as a Host header carries it: the scheme's default port omitted.
  std::string host_header() const { return detail::host_header(scheme, host, port); }
};

class url_error : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

/// Splits an absolute URL into views of its parts; throws url_error for one
/// without a scheme or a host.
inline url_view split_url_view(std::string_view url) {
  url_view parts;
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos || scheme_end == 0)
    throw url_error("not an absolute URL: " + std::string(url));
  parts.scheme = url.substr(0, scheme_end);
  std::string_view rest = url.substr(scheme_end + 3);
  if (const auto hash = rest.find('#'); hash != std::string_view::npos)
    rest = rest.substr(0, hash);
  const auto authority_end = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, authority_end);
  rest = authority_end == std::string_view::npos ? std::string_view{} : rest.substr(authority_end);
  if (const auto at = authority.rfind('@'); at != std::string_view::npos)
    authority = authority.substr(at + 1);  // user-info is never sent in Host
  // A colon after the closing bracket of an IPv6 literal, or the only colon
  // otherwise, starts the port.
  const auto bracket = authority.rfind(']');
  const auto colon = authority.rfind(':');
  if (colon != std::string_view::npos && (bracket == std::string_view::npos || colon > bracket)) {
    parts.host = authority.substr(0, colon);
    parts.port = authority.substr(colon + 1);
  } else {
    parts.host = authority;
  }
  if (parts.host.empty())
    throw url_error("URL without a host: " + std::string(url));
  const auto question = rest.find('?');
  parts.path = rest.substr(0, question);
  if (parts.path.empty())
    parts.path = "/";
  if (question != std::string_view::npos)
    parts.query = rest.substr(question + 1);
  return parts;
}

/// split_url_view(), copied, with the scheme in lower case.
inline url_parts split_url(std::string_view url) {
  const url_view view = split_url_view(url);
  url_parts parts{std::string(view.scheme), std::string(view.host), std::string(view.port),
                  std::string(view.path), std::string(view.query)};
  std::ranges::transform(parts.scheme, parts.scheme.begin(), [](char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
  });
  return parts;
}

}  // namespace widget_consumer::aws
