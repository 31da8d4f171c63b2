#pragma once
// The S3 operations the bucket source and store, the tests and the demo need,
// over S3's REST/XML protocol. Knows nothing of widgets: keys and bodies are
// opaque byte strings and come back exactly as they went in, whatever they
// hold (spaces, '+', '%', "../", UTF-8).
//
// "Not found" is an answer, not an error, where callers branch on it:
// get_object returns nullopt for NoSuchKey, head_object nullopt for 404 and
// head_bucket false for 404.
// Everything else that fails throws service_error / transport_error.
//
// A bucket in another region than the client's is found and used there
// (s3_region_redirect.hpp); the client's notice says so once per bucket.

#include <widget_consumer/aws/client.hpp>
#include <widget_consumer/aws/config.hpp>
#include <widget_consumer/aws/crypto.hpp>
#include <widget_consumer/aws/error.hpp>
#include <widget_consumer/aws/response.hpp>
#include <widget_consumer/aws/s3_region_redirect.hpp>
#include <widget_consumer/aws/uri.hpp>
#include <widget_consumer/aws/xml.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace widget_consumer::aws {

/// What one ListObjectsV2 page asks for.
struct s3_list_options {
  std::string prefix;              ///< only keys that begin so; "" = every key
  std::string continuation_token;  ///< a previous page's next_continuation_token
  std::string start_after;         ///< S3 ignores it once a continuation token is given
  std::optional<int> max_keys;     ///< 1..1000; S3's default is 1000
};

/// One page of keys from ListObjectsV2.
struct s3_object_list {
  std::vector<std::string> keys;        ///< in S3's order: ascending UTF-8 bytes
  std::string next_continuation_token;  ///< empty on the last page

  /// True when another page follows.
  bool has_more() const noexcept { return !next_continuation_token.empty(); }
};

/// What HeadObject tells about an object, without its bytes.
struct s3_object_info {
  std::uint64_t size = 0;  ///< Content-Length
  std::string etag;        ///< as S3 sends it, quotes included: "\"9b2cf535f27731c9\""
  /// nullopt when the server sent no Last-Modified or one that is not an HTTP
  /// date; S3 always sends one, to the second.
  std::optional<std::chrono::system_clock::time_point> last_modified;
  std::string content_type;  ///< Content-Type, as stored
  /// User metadata: `x-amz-meta-<name>` headers, keyed by `<name>` lower-cased
  /// (HTTP header names fold case, and S3 stores them lower-cased). Values as
  /// sent: S3 passes non-ASCII values on RFC 2047-encoded, not decoded.
  std::map<std::string, std::string> metadata;
};

/// What a conditional write (PutObject, DeleteObject) requires of the object
/// under the key: S3 answers 412 PreconditionFailed when it does not hold.
struct s3_write_condition {
  std::string if_match;        ///< the ETag the object must have; "" = no such condition
  bool if_none_match = false;  ///< there must be no object (If-None-Match: *)
};

/// An object with what the GetObject answer told about it.
struct s3_object {
  std::string body;                                                    ///< the object's bytes
  std::string etag;                                                    ///< quotes included, as sent
  std::optional<std::chrono::system_clock::time_point> last_modified;  ///< as in s3_object_info
  /// The server's clock when it answered (the Date header): compared with
  /// last_modified, it tells an object's age with no clock of ours involved.
  std::optional<std::chrono::system_clock::time_point> server_time;
  std::map<std::string, std::string> metadata;  ///< as s3_object_info's
};

/// User metadata to send with a PutObject: `x-amz-meta-<name>: <value>`. Names
/// lower-case; values printable ASCII (S3 refuses or re-encodes others), all
/// of them together at most 2 KB.
using s3_metadata = std::map<std::string, std::string>;

/// A key DeleteObjects did not delete, with S3's reason.
struct s3_delete_failure {
  std::string key;      ///< the key it failed on
  std::string code;     ///< S3's error code, e.g. "AccessDenied"
  std::string message;  ///< S3's message
};

/// "s3://bucket" or "s3://bucket/key": how error messages and logs name an
/// S3 bucket or object.
inline std::string s3_resource(std::string_view bucket, std::string_view key = {}) {
  std::string text = "s3://";
  text += bucket;
  if (!key.empty()) {
    text += '/';
    text += key;
  }
  return text;
}

namespace detail {

// ListObjectsV2 with encoding-type=url form-encodes keys ('+' for a space,
// %2B for '+'); decoding it lets keys that XML 1.0 cannot carry (control
// characters) through.
inline std::string s3_decode_listed(std::string_view text) {
  std::string plus_as_space(text);
  std::ranges::replace(plus_as_space, '+', ' ');
  return uri_decode(plus_as_space);
}

// XML 1.0 cannot carry control characters other than \t \r \n, not even as
// character references, so such keys cannot go into a DeleteObjects body.
inline bool s3_xml_safe(std::string_view text) noexcept {
  return std::ranges::none_of(text, [](char c) {
    const auto byte = static_cast<unsigned char>(c);
    return byte < 0x20 && c != '\t' && c != '\n' && c != '\r';
  });
}

// Character data for an XML request body. \t \r \n are written as references
// so that the parser on the other side cannot normalise them away.
inline std::string s3_xml_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      case '\t':
        out += "&#9;";
        break;
      case '\n':
        out += "&#10;";
        break;
      case '\r':
        out += "&#13;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

// The readers of the XML answers, pure functions of the response so that
// tests and fuzzers reach them without a server. Each throws as response.hpp
// says: transport_error for a body that does not parse, service_error for
// the wrong document.

inline s3_object_list s3_read_list_objects_v2(const response_origin& origin) {
  const auto document = read_xml_response(origin, "ListBucketResult");
  const auto root = document.root();
  // EncodingType echoes our request; a server that ignored it sends raw keys.
  const bool url_encoded = root.text_or("EncodingType") == "url";
  s3_object_list list;
  for (const auto& contents : root.children("Contents")) {
    auto key = contents.find_text("Key");
    if (!key || key->empty())
      throw origin.unexpected("a <Contents> without a <Key>");
    list.keys.push_back(url_encoded ? s3_decode_listed(*key) : std::move(*key));
  }
  // Read strictly: taking a missing or odd IsTruncated for "false" would end
  // a listing early without a word.
  const auto truncated = root.find_text("IsTruncated");
  if (!truncated || (*truncated != "true" && *truncated != "false"))
    throw origin.unexpected(truncated ? "<IsTruncated> is neither true nor false"
                                      : "<IsTruncated> is missing");
  if (*truncated == "true") {
    list.next_continuation_token = root.text_or("NextContinuationToken");
    if (list.next_continuation_token.empty())
      throw origin.unexpected("truncated listing without <NextContinuationToken>");
  }
  return list;
}

// The x-amz-meta-<name> headers of a HeadObject or GetObject answer.
inline std::map<std::string, std::string> s3_read_user_metadata(const http_response& response) {
  constexpr std::string_view meta_prefix = "x-amz-meta-";
  std::map<std::string, std::string> metadata;
  for (const auto& header : response.headers) {
    if (!istarts_with(header.name, meta_prefix))
      continue;
    auto name = lower(std::string_view(header.name).substr(meta_prefix.size()));
    // A header sent twice is one header with both values (RFC 9110 5.3).
    auto [it, inserted] = metadata.try_emplace(std::move(name), header.value);
    if (!inserted)
      it->second += "," + header.value;
  }
  return metadata;
}

// HeadObject answers in headers only. Content-Length is required: without it
// a size of 0 would be a guess, and S3 always sends it.
inline s3_object_info s3_read_head_object(const response_origin& origin) {
  const auto& response = origin.response;
  s3_object_info info;
  const auto length = response.header("Content-Length");
  if (!length)
    throw origin.unexpected("no Content-Length in the HeadObject answer");
  const auto [end, ec] =
      std::from_chars(length->data(), length->data() + length->size(), info.size);
  if (ec != std::errc{} || end != length->data() + length->size())
    throw origin.unexpected("Content-Length is not a byte count");
  info.etag = std::string(response.header("ETag").value_or(""));
  if (const auto modified = response.header("Last-Modified"))
    info.last_modified = parse_http_date(*modified);
  info.content_type = std::string(response.header("Content-Type").value_or(""));
  info.metadata = s3_read_user_metadata(response);
  return info;
}

// The keys DeleteObjects (Quiet mode) did not delete.
inline std::vector<s3_delete_failure> s3_read_delete_result(const response_origin& origin) {
  const auto document = read_xml_response(origin, "DeleteResult");
  std::vector<s3_delete_failure> failures;
  for (const auto& error : document.root().children("Error")) {
    auto key = error.find_text("Key");
    if (!key)
      throw origin.unexpected("an <Error> without a <Key>");
    failures.push_back({std::move(*key), error.text_or("Code"), error.text_or("Message")});
  }
  return failures;
}

// Only a CopyObjectResult means the copy exists.
inline void s3_read_copy_result(const response_origin& origin) {
  (void)read_xml_response(origin, "CopyObjectResult");
}

}  // namespace detail

/// The S3 object calls the sources and stores make, with each bucket's region learned.
class s3_client {
 public:
  static constexpr std::size_t max_delete_keys = 1000;  ///< DeleteObjects' limit

  /// A client of S3 as `config` says; copies share the learned bucket regions.
  explicit s3_client(client_config config)
      : client_("s3", std::move(config)), regions_(std::make_shared<s3_bucket_regions>()) {}

  /// The underlying client, for calls this class does not wrap.
  service_client& service() noexcept { return client_; }

  /// One page of keys under options.prefix. Follow next_continuation_token for
  /// the rest.
  s3_object_list list_objects_v2(std::string_view bucket, const s3_list_options& options = {}) {
    if (options.max_keys && (*options.max_keys < 1 || *options.max_keys > 1000))
      throw std::invalid_argument("S3 ListObjectsV2: max-keys must be 1..1000");
    // Sorted by name: what the signer canonicalises anyway.
    query_parameters query;
    if (!options.continuation_token.empty())
      query.emplace_back("continuation-token", options.continuation_token);
    query.emplace_back("encoding-type", "url");
    query.emplace_back("list-type", "2");
    if (options.max_keys)
      query.emplace_back("max-keys", std::to_string(*options.max_keys));
    if (!options.prefix.empty())
      query.emplace_back("prefix", options.prefix);
    if (!options.start_after.empty())
      query.emplace_back("start-after", options.start_after);

    const auto resource = s3_resource(bucket, options.prefix);
    return send(
        "GET", bucket, {}, make_query(query), {}, {}, "ListObjectsV2", resource,
        [&](const http_response& response) {
          return detail::s3_read_list_objects_v2({"s3", "ListObjectsV2", resource, response});
        });
  }

  /// The object's bytes, or nullopt when the bucket has no such key. A missing
  /// bucket is an error, not an absent object.
  std::optional<std::string> get_object(std::string_view bucket, std::string_view key) {
    try {
      return send("GET", bucket, require_key(key, "GetObject"), {}, {}, {}, "GetObject",
                  s3_resource(bucket, key))
          .body;
    } catch (const service_error& error) {
      if (error.code() == "NoSuchKey")
        return std::nullopt;
      throw;
    }
  }

  /// The same with the ETag, Last-Modified, the server's Date and the user
  /// metadata.
  std::optional<s3_object> get_object_with_info(std::string_view bucket, std::string_view key) {
    try {
      http_response response = send("GET", bucket, require_key(key, "GetObject"), {}, {}, {},
                                    "GetObject", s3_resource(bucket, key));
      s3_object object;
      object.body = std::move(response.body);
      object.etag = std::string(response.header("ETag").value_or(""));
      if (const auto modified = response.header("Last-Modified"))
        object.last_modified = detail::parse_http_date(*modified);
      if (const auto date = response.header("Date"))
        object.server_time = detail::parse_http_date(*date);
      object.metadata = detail::s3_read_user_metadata(response);
      return object;
    } catch (const service_error& error) {
      if (error.code() == "NoSuchKey")
        return std::nullopt;
      throw;
    }
  }

  /// The object's size, ETag, Last-Modified, Content-Type and user metadata,
  /// or nullopt on 404. A HEAD answer has no body to tell NoSuchKey from
  /// NoSuchBucket, so a missing bucket reads as absent too: callers to whom
  /// that matters ask head_bucket.
  std::optional<s3_object_info> head_object(std::string_view bucket, std::string_view key) {
    const auto resource = s3_resource(bucket, key);
    try {
      return send("HEAD", bucket, require_key(key, "HeadObject"), {}, {}, {}, "HeadObject",
                  resource, [&](const http_response& response) {
                    return detail::s3_read_head_object({"s3", "HeadObject", resource, response});
                  });
    } catch (const service_error& error) {
      if (error.status() == 404)
        return std::nullopt;
      throw;
    }
  }

  /// PutObject of `body` under `key`, sent with its Content-MD5.
  void put_object(std::string_view bucket, std::string_view key, std::string body,
                  std::string_view content_type = "application/octet-stream") {
    // Content-MD5 makes S3 refuse a body damaged on the way.
    std::vector<http_header> headers{{"Content-Type", std::string(content_type)},
                                     {"Content-MD5", base64_encode(md5(body))}};
    send("PUT", bucket, require_key(key, "PutObject"), {}, std::move(headers), std::move(body),
         "PutObject", s3_resource(bucket, key));
  }

  /// PutObject only when `condition` holds: the new object's ETag, or nullopt
  /// when it does not (412 PreconditionFailed; 409 ConditionalRequestConflict,
  /// another conditional write to the key was under way; 404 NoSuchKey for
  /// If-Match on a key that is gone).
  /// `metadata` goes with the object (s3_metadata).
  std::optional<std::string> put_object_if(std::string_view bucket, std::string_view key,
                                           std::string body, const s3_write_condition& condition,
                                           std::string_view content_type = "text/plain",
                                           const s3_metadata& metadata = {}) {
    std::vector<http_header> headers{{"Content-Type", std::string(content_type)},
                                     {"Content-MD5", base64_encode(md5(body))}};
    add_condition(headers, condition);
    for (const auto& [name, value] : metadata)
      headers.push_back({"x-amz-meta-" + name, value});
    try {
      const http_response response =
          send("PUT", bucket, require_key(key, "PutObject"), {}, std::move(headers),
               std::move(body), "PutObject", s3_resource(bucket, key));
      return std::string(response.header("ETag").value_or(""));
    } catch (const service_error& error) {
      if (condition_failed(error))
        return std::nullopt;
      throw;
    }
  }

  /// DeleteObject only when the object still has `etag`: false when it has
  /// another. A key that is gone already counts as deleted.
  bool delete_object_if_match(std::string_view bucket, std::string_view key,
                              std::string_view etag) {
    try {
      send("DELETE", bucket, require_key(key, "DeleteObject"), {},
           {{"If-Match", std::string(etag)}}, {}, "DeleteObject", s3_resource(bucket, key));
      return true;
    } catch (const service_error& error) {
      if (error.code() == "NoSuchKey")
        return true;
      if (condition_failed(error))
        return false;
      throw;
    }
  }

  /// Succeeds whether or not the key existed (S3's DeleteObject is idempotent).
  void delete_object(std::string_view bucket, std::string_view key) {
    send("DELETE", bucket, require_key(key, "DeleteObject"), {}, {}, {}, "DeleteObject",
         s3_resource(bucket, key));
  }

  /// Deletes in batches of 1,000 (Quiet mode: S3 reports only failures) and
  /// returns every key S3 did not delete. An empty result means all are gone.
  std::vector<s3_delete_failure> delete_objects(std::string_view bucket,
                                                std::span<const std::string> keys) {
    std::vector<s3_delete_failure> failures;
    std::vector<std::string_view> batch;
    auto flush = [&] {
      if (!batch.empty())
        delete_batch(bucket, batch, failures);
      batch.clear();
    };
    for (const auto& key : keys) {
      if (detail::s3_xml_safe(key)) {
        batch.push_back(key);
        if (batch.size() == max_delete_keys)
          flush();
        continue;
      }
      // A key XML cannot carry goes through the URL path instead.
      try {
        delete_object(bucket, key);
      } catch (const service_error& error) {
        failures.push_back({key, error.code(), error.message()});
      }
    }
    flush();
    return failures;
  }

  /// CopyObject within S3: the object under source_key becomes bucket/key too.
  void copy_object(std::string_view source_bucket, std::string_view source_key,
                   std::string_view bucket, std::string_view key) {
    require_key(source_key, "CopyObject");
    require_key(key, "CopyObject");
    std::string source = "/";
    source += source_bucket;
    source += '/';
    source += encode_s3_key(source_key);
    // S3 may answer 200 and then report a failure in the body: only a
    // CopyObjectResult means the copy exists.
    const auto resource = s3_resource(bucket, key);
    send("PUT", bucket, key, {}, {{"x-amz-copy-source", std::move(source)}}, {}, "CopyObject",
         resource, [&](const http_response& response) {
           detail::s3_read_copy_result({"s3", "CopyObject", resource, response});
           return 0;
         });
  }

  /// True when the bucket exists and we may use it; false when it does not
  /// exist. Throws on anything else (403: it exists but is not ours).
  bool head_bucket(std::string_view bucket) {
    try {
      send("HEAD", bucket, {}, {}, {}, {}, "HeadBucket", s3_resource(bucket));
      return true;
    } catch (const service_error& error) {
      if (error.status() == 404)
        return false;
      throw;
    }
  }

  /// For tests and the demo. Outside us-east-1 S3 needs the region as a
  /// LocationConstraint; in us-east-1 it refuses one.
  void create_bucket(std::string_view bucket) {
    const auto& region = client_.config().region;
    std::string body;
    std::vector<http_header> headers;
    if (!region.empty() && region != "us-east-1") {
      body = R"(<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">)"
             "<LocationConstraint>" +
             detail::s3_xml_escape(region) + "</LocationConstraint></CreateBucketConfiguration>";
      headers.push_back({"Content-Type", "application/xml"});
    }
    send("PUT", bucket, {}, {}, std::move(headers), std::move(body), "CreateBucket",
         s3_resource(bucket));
  }

 private:
  // An empty key would address the bucket itself.
  static std::string_view require_key(std::string_view key, std::string_view operation) {
    if (key.empty())
      throw std::invalid_argument("S3 " + std::string(operation) + ": empty object key");
    return key;
  }

  static void add_condition(std::vector<http_header>& headers,
                            const s3_write_condition& condition) {
    if (condition.if_none_match)
      headers.push_back({"If-None-Match", "*"});
    if (!condition.if_match.empty())
      headers.push_back({"If-Match", condition.if_match});
  }

  static bool condition_failed(const service_error& error) {
    return error.status() == 412 || error.status() == 409 || error.code() == "NoSuchKey";
  }

  http_response send(std::string method, std::string_view bucket, std::string_view key,
                     std::string_view query, std::vector<http_header> headers, std::string body,
                     std::string_view operation, std::string_view resource) {
    return send(std::move(method), bucket, key, query, std::move(headers), std::move(body),
                operation, resource, [](http_response& response) { return std::move(response); });
  }

  // The same, with the reader of the answer run inside the retry loop.
  // Signed for the bucket's region when it is known to differ.
  template <class Read>
  auto send(std::string method, std::string_view bucket, std::string_view key,
            std::string_view query, std::vector<http_header> headers, std::string body,
            std::string_view operation, std::string_view resource, Read&& read)
      -> std::invoke_result_t<Read&, http_response&> {
    s3_region_route route(client_, *regions_, bucket, key, query);
    http_request request{std::move(method), route.url(), std::move(headers), std::move(body)};
    return client_.send_routed(std::move(request), operation, resource, std::forward<Read>(read),
                               route);
  }

  void delete_batch(std::string_view bucket, std::span<const std::string_view> keys,
                    std::vector<s3_delete_failure>& failures) {
    std::string body =
        R"(<?xml version="1.0" encoding="UTF-8"?>)"
        R"(<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Quiet>true</Quiet>)";
    for (const auto key : keys) {
      body += "<Object><Key>";
      body += detail::s3_xml_escape(key);
      body += "</Key></Object>";
    }
    body += "</Delete>";
    // S3 refuses DeleteObjects without a body checksum.
    std::vector<http_header> headers{{"Content-Type", "application/xml"},
                                     {"Content-MD5", base64_encode(md5(body))}};
    const auto resource = s3_resource(bucket);
    auto failed =
        send("POST", bucket, {}, "delete=", std::move(headers), std::move(body), "DeleteObjects",
             resource, [&](const http_response& response) {
               return detail::s3_read_delete_result({"s3", "DeleteObjects", resource, response});
             });
    std::move(failed.begin(), failed.end(), std::back_inserter(failures));
  }

  service_client client_;
  std::shared_ptr<s3_bucket_regions> regions_;  // shared by copies, as the connections are
};

}  // namespace widget_consumer::aws
