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
#include <map>
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

/// "20150830T123600Z", the x-amz-date format.
inline std::string amz_date(std::chrono::system_clock::time_point time) {
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
  return buffer.data();
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

// Trimmed, with every run of whitespace (folded lines included) one space.
inline std::string canonical_header_value(std::string_view value) {
  auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  std::string out;
  bool pending_space = false;
  for (char c : value) {
    if (is_space(c)) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space)
      out.push_back(' ');
    pending_space = false;
    out.push_back(c);
  }
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

/// The canonical headers of a request: lower-case names, trimmed values, sorted.
inline canonical_header_block canonical_headers(const std::vector<http_header>& headers) {
  std::map<std::string, std::string> merged;  // sorted by lower-case name
  for (const auto& header : headers) {
    auto name = detail::lower(header.name);
    if (detail::excluded_from_signing(name))
      continue;
    auto value = detail::canonical_header_value(header.value);
    auto [it, inserted] = merged.try_emplace(std::move(name), value);
    if (!inserted)
      it->second += "," + value;
  }
  canonical_header_block block;
  for (const auto& [name, value] : merged) {
    block.headers += name + ":" + value + "\n";
    if (!block.signed_headers.empty())
      block.signed_headers.push_back(';');
    block.signed_headers += name;
  }
  return block;
}

/// The hash the canonical request ends with: x-amz-content-sha256 when the
/// request carries one (S3 requires the two to agree), else the body's hash.
inline std::string payload_hash(const http_request& request, const signing_params& params) {
  if (const auto declared = request.header("x-amz-content-sha256"))
    return std::string(*declared);
  if (params.unsigned_payload)
    return std::string(unsigned_payload_hash);
  return sha256_hex(request.body);
}

/// The canonical request SigV4 hashes: method, URI, query, headers and payload hash.
inline std::string canonical_request(const http_request& request, const signing_params& params) {
  const auto url = split_url(request.url);
  const auto block = canonical_headers(request.headers);
  return request.method + "\n" + canonical_uri(url.path, params) + "\n" +
         canonical_query_string(url.query) + "\n" + block.headers + "\n" + block.signed_headers +
         "\n" + payload_hash(request, params);
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
/// and string_to_sign give, built once: the header block and the date are
/// worked out a single time per signature.
inline std::string authorization_header(const http_request& request, const credentials& creds,
                                        const signing_params& params) {
  const auto url = split_url(request.url);
  const auto block = canonical_headers(request.headers);
  std::string canonical;
  canonical.reserve(request.method.size() + url.path.size() + url.query.size() +
                    block.headers.size() + block.signed_headers.size() + 128);
  canonical.append(request.method).append("\n");
  canonical.append(canonical_uri(url.path, params)).append("\n");
  canonical.append(canonical_query_string(url.query)).append("\n");
  canonical.append(block.headers).append("\n");
  canonical.append(block.signed_headers).append("\n");
  canonical.append(payload_hash(request, params));

  const std::string date = amz_date(params.time);
  std::string scope;
  scope.reserve(8 + params.region.size() + params.service.size() + 16);
  scope.append(date, 0, 8).append("/").append(params.region).append("/");
  scope.append(params.service).append("/aws4_request");
  std::string to_sign;
  to_sign.reserve(sigv4_algorithm.size() + date.size() + scope.size() + 67);
  to_sign.append(sigv4_algorithm).append("\n").append(date).append("\n");
  to_sign.append(scope).append("\n").append(sha256_hex(canonical));

  const sha256_digest key =
      detail::signing_key_cache::instance().get(creds, params, std::string_view(date).substr(0, 8));
  std::string out;
  out.reserve(sigv4_algorithm.size() + creds.access_key_id.size() + scope.size() +
              block.signed_headers.size() + 110);
  out.append(sigv4_algorithm).append(" Credential=").append(creds.access_key_id).append("/");
  out.append(scope).append(", SignedHeaders=").append(block.signed_headers);
  out.append(", Signature=").append(to_hex(hmac_sha256(key, to_sign)));
  return out;
}

/// Adds host (if absent), x-amz-date, x-amz-security-token (with a session
/// token), x-amz-content-sha256 (S3, or when asked) and Authorization. Headers
/// a previous sign() added are replaced, so a retry can re-sign the request.
inline void sign(http_request& request, const credentials& creds, const signing_params& params) {
  auto& headers = request.headers;
  for (auto name : {"authorization", "x-amz-date", "x-amz-security-token"})
    detail::remove_header(headers, name);
  if (detail::find_header(headers, "host") == headers.end())
    headers.push_back({"Host", split_url(request.url).host_header()});
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
