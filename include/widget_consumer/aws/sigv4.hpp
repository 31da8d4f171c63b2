#pragma once
// AWS Signature Version 4 (header signing) as pure functions of the request,
// the credentials, and signing_params (region, service, time): nothing here
// reads a clock, the environment or the network, so the AWS test suite's
// fixed vectors test it exactly.
//
// Path handling differs by service, as the spec says: S3 signs the path as it
// is sent (encoded once, never normalised); every other service signs the
// normalised path encoded a second time.

#include <widget_consumer/aws/credentials.hpp>
#include <widget_consumer/aws/crypto.hpp>
#include <widget_consumer/aws/http_message.hpp>
#include <widget_consumer/aws/uri.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace widget_consumer::aws {

/// What a SigV4 signature is made for: region, service, time, and the service's rules.
struct signing_params {
  std::string region;   ///< the region signed for, e.g. "us-east-1"
  std::string service;  ///< the signing name, e.g. "s3"
  /// The x-amz-date; an argument, so that the test vectors are fixed.
  std::chrono::system_clock::time_point time;
  bool s3 = false;                ///< S3 path rules and an x-amz-content-sha256 header
  bool unsigned_payload = false;  ///< sign "UNSIGNED-PAYLOAD" instead of the body's hash
  /// Non-S3 only: remove dot segments and duplicate slashes (the suite's "normalize").
  bool normalize_path = true;
  /// Send x-amz-content-sha256 for a non-S3 service too (the suite's "sign_body").
  bool content_sha256_header = false;
};

/// The Authorization header's algorithm name.
inline constexpr std::string_view sigv4_algorithm = "AWS4-HMAC-SHA256";
/// The payload hash of a request whose body is not signed.
inline constexpr std::string_view unsigned_payload_hash = "UNSIGNED-PAYLOAD";

namespace detail {
// "20150830T123600Z" in a buffer of the caller's: signing writes it three
// times per request and keeps none of them.
using amz_date_text = std::array<char, 16>;

inline amz_date_text amz_date_chars(std::chrono::system_clock::time_point time) {
  using namespace std::chrono;
  const auto seconds = floor<std::chrono::seconds>(time);
  const auto day = floor<days>(seconds);
  const year_month_day date{day};
  const hh_mm_ss clock{seconds - day};
  std::array<char, 32> buffer{};
  std::snprintf(buffer.data(), buffer.size(), "%04d%02u%02uT%02d%02d%02dZ",
                static_cast<int>(date.year()), static_cast<unsigned>(date.month()),
                static_cast<unsigned>(date.day()), static_cast<int>(clock.hours().count()),
                static_cast<int>(clock.minutes().count()),
                static_cast<int>(clock.seconds().count()));
  amz_date_text out{};
  std::copy_n(buffer.begin(), out.size(), out.begin());
  return out;
}
}  // namespace detail

/// "20150830T123600Z", the x-amz-date format.
inline std::string amz_date(std::chrono::system_clock::time_point time) {
  return std::string(detail::view(detail::amz_date_chars(time)));
}

/// "20150830/us-east-1/service/aws4_request"
inline std::string credential_scope(const signing_params& params) {
  return amz_date(params.time).substr(0, 8) + "/" + params.region + "/" + params.service +
         "/aws4_request";
}

/// RFC 3986 remove_dot_segments, plus collapsing "//" as the AWS SDKs do.
inline std::string normalize_path(std::string_view path) {
  std::vector<std::string_view> segments;
  bool trailing_slash = false;
  std::size_t start = 0;
  while (start <= path.size()) {
    const auto slash = std::min(path.find('/', start), path.size());
    const std::string_view segment = path.substr(start, slash - start);
    const bool last = slash == path.size();
    if (segment == "..") {
      if (!segments.empty())
        segments.pop_back();
      trailing_slash = true;
    } else if (segment == "." || segment.empty()) {
      trailing_slash = true;
    } else {
      segments.push_back(segment);
      trailing_slash = false;
    }
    if (last)
      break;
    start = slash + 1;
  }
  std::string out;
  for (const auto segment : segments) {
    out.push_back('/');
    out += segment;
  }
  if (out.empty() || trailing_slash)
    out.push_back('/');
  return out;
}

/// The canonical URI of a path: S3 paths re-encoded as S3 does, others normalised and encoded.
inline std::string canonical_uri(std::string_view path, const signing_params& params) {
  if (path.empty())
    return "/";
  // Decoding first makes an S3 path encoded by anyone sign as S3 itself
  // canonicalises it; a correctly encoded path comes out unchanged.
  if (params.s3)
    return uri_encode(uri_decode(path), true);
  return uri_encode(params.normalize_path ? normalize_path(path) : std::string(path), true);
}

namespace detail {
// Hop-by-hop or rewritten-in-transit headers: signing them breaks requests
// that pass through proxies, so the AWS SDKs leave them out too.
inline bool excluded_from_signing(std::string_view lower_name) noexcept {
  static constexpr std::array<std::string_view, 6> excluded = {"authorization", "connection",
                                                               "expect",        "transfer-encoding",
                                                               "user-agent",    "x-amzn-trace-id"};
  return std::ranges::find(excluded, lower_name) != excluded.end();
}

inline std::string lower(std::string_view text) {
  std::string out(text);
  std::ranges::transform(out, out.begin(), [](char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
  });
  return out;
}

inline std::vector<http_header>::iterator find_header(std::vector<http_header>& headers,
                                                      std::string_view name) {
  return std::ranges::find_if(
      headers, [&](const http_header& header) { return iequals(header.name, name); });
}

inline void remove_header(std::vector<http_header>& headers, std::string_view name) {
  std::erase_if(headers, [&](const http_header& header) { return iequals(header.name, name); });
}
}  // namespace detail

/// The canonical headers and the list of their names, both parts of the canonical request.
struct canonical_header_block {
  std::string headers;         ///< "name:value\n" for each signed header, sorted
  std::string signed_headers;  ///< "host;x-amz-date"
};

namespace detail {
inline char lower_char(char c) noexcept {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
}

// Orders header names as their lower-case forms sort bytewise.
inline bool lower_less(std::string_view a, std::string_view b) noexcept {
  const auto n = std::min(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i) {
    const auto x = static_cast<unsigned char>(lower_char(a[i]));
    const auto y = static_cast<unsigned char>(lower_char(b[i]));
    if (x != y)
      return x < y;
  }
  return a.size() < b.size();
}

// Appends `value` trimmed, with every run of whitespace one space.
inline void append_header_value(std::string& out, std::string_view value) {
  auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  bool pending_space = false;
  bool started = false;
  for (char c : value) {
    if (is_space(c)) {
      pending_space = started;
      continue;
    }
    if (pending_space)
      out.push_back(' ');
    pending_space = false;
    started = true;
    out.push_back(c);
  }
}

// Appends the canonical header lines ("name:value\n", names lower-cased and
// sorted, repeated names joined with ",") and writes the signed-header list.
// The headers are sorted as views in a buffer the thread keeps, so a
// signature costs no allocation for them once the buffer has grown.
inline void append_canonical_headers(std::string& out, std::string& signed_headers,
                                     const std::vector<http_header>& headers) {
  thread_local std::vector<const http_header*> sorted;
  sorted.clear();
  for (const auto& header : headers) {
    std::array<char, 20> lowered{};  // the longest excluded name fits
    if (header.name.size() < lowered.size()) {
      std::ranges::transform(header.name, lowered.begin(), lower_char);
      if (excluded_from_signing(std::string_view(lowered.data(), header.name.size())))
        continue;
    }
    sorted.push_back(&header);
  }
  // Stable: a repeated name's values are joined in the order they were given.
  std::ranges::stable_sort(sorted, [](const http_header* a, const http_header* b) {
    return lower_less(a->name, b->name);
  });
  signed_headers.clear();
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    const bool repeated = i > 0 && iequals(sorted[i]->name, sorted[i - 1]->name);
    if (repeated) {
      out.back() = ',';  // the previous line's newline
    } else {
      if (!signed_headers.empty())
        signed_headers.push_back(';');
      for (char c : sorted[i]->name) {
        out.push_back(lower_char(c));
        signed_headers.push_back(lower_char(c));
      }
      out.push_back(':');
    }
    append_header_value(out, sorted[i]->value);
    out.push_back('\n');
  }
}

inline void append_canonical_uri(std::string& out, std::string_view path,
                                 const signing_params& params) {
  // The paths of the JSON protocols and of most S3 keys need no decoding or
  // normalising: encoded as they are, without a copy.
  const bool plain = path.find_first_of("%.") == std::string_view::npos &&
                     path.find("//") == std::string_view::npos;
  if (!path.empty() && (plain || params.s3) && path.find('%') == std::string_view::npos) {
    append_uri_encoded(out, path, true);
    return;
  }
  out += canonical_uri(path, params);
}

// The payload hash the canonical request ends with: x-amz-content-sha256
// when the request carries one (S3 requires the two to agree), else the
// body's hash, written into `buffer`.
inline std::string_view payload_hash(const http_request& request, const signing_params& params,
                                     sha256_hex_text& buffer) {
  if (const auto declared = request.header("x-amz-content-sha256"))
    return *declared;
  if (params.unsigned_payload)
    return unsigned_payload_hash;
  buffer = sha256_hex_chars(request.body);
  return view(buffer);
}

// The canonical request, appended to `out`; its signed-header list in
// `signed_headers`.
inline void append_canonical_request(std::string& out, std::string& signed_headers,
                                     const http_request& request, const signing_params& params) {
  const auto url = split_url_view(request.url);
  out.append(request.method).push_back('\n');
  append_canonical_uri(out, url.path, params);
  out.push_back('\n');
  if (!url.query.empty())
    out += canonical_query_string(url.query);
  out.push_back('\n');
  append_canonical_headers(out, signed_headers, request.headers);
  out.push_back('\n');
  out.append(signed_headers).push_back('\n');
  sha256_hex_text hash;
  out.append(payload_hash(request, params, hash));
}
}  // namespace detail

/// The canonical header lines and signed-header list of `headers`.
inline canonical_header_block canonical_headers(const std::vector<http_header>& headers) {
  canonical_header_block block;
  detail::append_canonical_headers(block.headers, block.signed_headers, headers);
  return block;
}

/// The hash the canonical request ends with (detail::payload_hash).
inline std::string payload_hash(const http_request& request, const signing_params& params) {
  detail::sha256_hex_text buffer;
  return std::string(detail::payload_hash(request, params, buffer));
}

/// The canonical request SigV4 hashes: method, URI, query, headers and payload hash.
inline std::string canonical_request(const http_request& request, const signing_params& params) {
  std::string out;
  std::string signed_headers;
  detail::append_canonical_request(out, signed_headers, request, params);
  return out;
}

/// The string to sign: algorithm, time, credential scope and the canonical request's hash.
inline std::string string_to_sign(std::string_view canonical_request_text,
                                  const signing_params& params) {
  return std::string(sigv4_algorithm) + "\n" + amz_date(params.time) + "\n" +
         credential_scope(params) + "\n" + sha256_hex(canonical_request_text);
}

/// The day's signing key, derived from the secret by HMAC over date, region, service.
inline sha256_digest signing_key(const credentials& creds, const signing_params& params) {
  const auto date =
      hmac_sha256("AWS4" + creds.secret_access_key, amz_date(params.time).substr(0, 8));
  const auto region = hmac_sha256(date, params.region);
  const auto service = hmac_sha256(region, params.service);
  return hmac_sha256(service, "aws4_request");
}

namespace detail {
// The signing key only changes with the day, region, service and secret, yet
// deriving it is four HMACs; a process signs with a handful of such keys, so
// it keeps the last few. Shared by every thread and client.
class signing_key_cache {
 public:
  sha256_digest get(const credentials& creds, const signing_params& params, std::string_view day) {
    {
      std::lock_guard lock(mutex_);
      for (const auto& cached : entries_)
        if (cached.day == day && cached.region == params.region &&
            cached.service == params.service && cached.secret == creds.secret_access_key)
          return cached.key;
    }
    const sha256_digest key = signing_key(creds, params);
    std::lock_guard lock(mutex_);
    if (entries_.size() == capacity)
      entries_.erase(entries_.begin());
    entries_.push_back({.secret = creds.secret_access_key,
                        .day = std::string(day),
                        .region = params.region,
                        .service = params.service,
                        .key = key});
    return key;
  }

  static signing_key_cache& instance() {
    static signing_key_cache cache;
    return cache;
  }

 private:
  // Two regions of three services each, and a key rotation, fit.
  static constexpr std::size_t capacity = 8;
  struct entry {
    std::string secret;
    std::string day;
    std::string region;
    std::string service;
    sha256_digest key;
  };
  std::mutex mutex_;
  std::vector<entry> entries_;
};
}  // namespace detail

/// The hexadecimal signature of a string to sign (the signing key cached per day).
inline std::string signature(std::string_view string_to_sign_text, const credentials& creds,
                             const signing_params& params) {
  const std::string day = amz_date(params.time).substr(0, 8);
  return to_hex(hmac_sha256(detail::signing_key_cache::instance().get(creds, params, day),
                            string_to_sign_text));
}

/// The Authorization value for a request whose x-amz-* and host headers are
/// already in place (sign() puts them there). The same text canonical_request
/// and string_to_sign give, built in buffers the thread keeps: once they have
/// grown, a signature allocates only the value it returns.
inline std::string authorization_header(const http_request& request, const credentials& creds,
                                        const signing_params& params) {
  thread_local std::string canonical;
  thread_local std::string signed_headers;
  thread_local std::string to_sign;
  canonical.clear();
  detail::append_canonical_request(canonical, signed_headers, request, params);

  const auto date_text = detail::amz_date_chars(params.time);
  const std::string_view date = detail::view(date_text);
  const auto scope_start = sigv4_algorithm.size() + 1 + date.size() + 1;
  to_sign.clear();
  to_sign.append(sigv4_algorithm).append("\n").append(date).append("\n");
  to_sign.append(date.substr(0, 8)).append("/").append(params.region).append("/");
  to_sign.append(params.service).append("/aws4_request");
  const std::string_view scope = std::string_view(to_sign).substr(scope_start);
  const auto canonical_hash = detail::sha256_hex_chars(canonical);
  const auto scope_size = scope.size();
  to_sign.append("\n").append(detail::view(canonical_hash));

  const sha256_digest key =
      detail::signing_key_cache::instance().get(creds, params, date.substr(0, 8));
  const auto signature_hex = detail::hex_chars(hmac_sha256(key, to_sign));
  std::string out;
  out.reserve(sigv4_algorithm.size() + creds.access_key_id.size() + scope_size +
              signed_headers.size() + 110);
  out.append(sigv4_algorithm).append(" Credential=").append(creds.access_key_id).append("/");
  out.append(std::string_view(to_sign).substr(scope_start, scope_size));
  out.append(", SignedHeaders=").append(signed_headers);
  out.append(", Signature=").append(detail::view(signature_hex));
  return out;
}

/// Adds host (if absent), x-amz-date, x-amz-security-token (with a session
/// token), x-amz-content-sha256 (S3, or when asked) and Authorization. Headers
/// a previous sign() added are replaced, so a retry can re-sign the request.
inline void sign(http_request& request, const credentials& creds, const signing_params& params) {
  auto& headers = request.headers;
  for (auto name : {"authorization", "x-amz-date", "x-amz-security-token"})
    detail::remove_header(headers, name);
  headers.reserve(headers.size() + 5);  // what is added below: one growth at most
  if (detail::find_header(headers, "host") == headers.end()) {
    const auto url = split_url_view(request.url);
    std::string scheme(url.scheme);
    std::ranges::transform(scheme, scheme.begin(), detail::lower_char);
    headers.push_back({"Host", detail::host_header(scheme, url.host, url.port)});
  }
  headers.push_back({"X-Amz-Date", amz_date(params.time)});
  if (!creds.session_token.empty())
    headers.push_back({"X-Amz-Security-Token", creds.session_token});
  if (params.s3 || params.content_sha256_header) {
    detail::remove_header(headers, "x-amz-content-sha256");
    headers.push_back({"x-amz-content-sha256", params.unsigned_payload
                                                   ? std::string(unsigned_payload_hash)
                                                   : sha256_hex(request.body)});
  }
  headers.push_back({"Authorization", authorization_header(request, creds, params)});
}

}  // namespace widget_consumer::aws
