#pragma once
// A bucket in another region than the one the client signs for. S3 then
// answers 301 PermanentRedirect (or 307 TemporaryRedirect), or 400
// AuthorizationHeaderMalformed naming the expected <Region>; each carries an
// x-amz-bucket-region header, and a HEAD gets the status and the header with
// no body. As botocore's S3RegionRedirectorv2 and the Java SDK's cross-region
// access do, s3_region_route then learns the bucket's region (the header,
// else the body's <Region>, else a HeadBucket asked for its header), signs
// the same request again for that region, and remembers the region per
// bucket (s3_bucket_regions) so that later calls are signed for it from the
// start. On AWS's own regional endpoint the request also goes to the bucket's
// regional endpoint; a custom endpoint (an emulator, a proxy, another S3) is
// kept and only the signing region changes.
//
// Bounded: at most one redirect per call, followed inside the attempt that
// met it (client.hpp, send_routed), so that it costs no retry and no backoff;
// an answer that redirects again is the call's error. An error that follows a
// redirect, or a redirect that could not be followed, names the bucket's
// region, so that a failed start-up check says where the bucket is.

#include <widget_consumer/aws/client.hpp>
#include <widget_consumer/aws/config.hpp>
#include <widget_consumer/aws/error.hpp>
#include <widget_consumer/aws/http_message.hpp>
#include <widget_consumer/aws/xml.hpp>

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace widget_consumer::aws {

/// The region each bucket was found in, shared by the copies of one
/// s3_client. Only buckets that redirected are in it.
class s3_bucket_regions {
 public:
  /// The region a bucket redirected to; nullopt for one that never did.
  std::optional<std::string> find(std::string_view bucket) const {
    std::lock_guard lock(mutex_);
    const auto it = regions_.find(bucket);
    if (it == regions_.end())
      return std::nullopt;
    return it->second;
  }

  /// True when this is news: the bucket was not known, or known elsewhere.
  bool remember(std::string_view bucket, std::string_view region) {
    std::lock_guard lock(mutex_);
    const auto [it, inserted] = regions_.try_emplace(std::string(bucket), region);
    if (inserted)
      return true;
    if (it->second == region)
      return false;
    it->second = std::string(region);
    return true;
  }

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::string, std::less<>> regions_;
};

namespace detail {

// The code and <Region> of an S3 error body; empty for an empty or foreign
// body (a HEAD's answer has none).
struct s3_error_region {
  std::string code;
  std::string region;
};

inline s3_error_region s3_read_error_region(std::string_view body) {
  body = trim_left(body);
  if (body.empty() || body.front() != '<')
    return {};
  try {
    const auto document = xml_document::parse(body);
    const auto root = document.root();
    if (root.name() != "Error")
      return {};
    return {root.text_or("Code"), root.text_or("Region")};
  } catch (const xml_error&) {
    return {};
  }
}

// An answer that may mean "signed for the wrong region" (botocore's
// redirect_from_error): a redirect status (PermanentRedirect is a 301),
// AuthorizationHeaderMalformed, or a HEAD's bodiless 400.
// Other statuses (a 404 of a vanished key, a 412 of a lost race) are told
// apart without reading their body.
inline bool s3_wrong_region_answer(const http_request& request, const http_response& response) {
  const long status = response.status;
  if (status == 301 || status == 302 || status == 307)
    return true;
  if (status != 400)
    return false;
  return request.method == "HEAD" ||
         s3_read_error_region(response.body).code == "AuthorizationHeaderMalformed";
}

// The region the answer itself names: the x-amz-bucket-region header, else
// the error body's <Region>; "" when neither.
inline std::string s3_region_in_answer(const http_response& response) {
  if (const auto header = response.header("x-amz-bucket-region"); header && !header->empty())
    return std::string(*header);
  return s3_read_error_region(response.body).region;
}

// The endpoint a bucket in `region` is reached at: AWS's regional endpoint
// of that region when the client uses AWS's own, else the client's.
inline service_endpoint s3_endpoint_for(const client_config& config, std::string_view region) {
  // Virtual-hosted style on AWS's own endpoint (config.hpp keeps buckets
  // with dots path style), path style elsewhere unless the config says not.
  if (config.endpoint == aws_endpoint_url("s3", config.region))
    return {aws_endpoint_url("s3", region), false};
  return {config.endpoint, config.path_style};
}

inline std::string s3_request_url(const client_config& config, std::string_view region,
                                  std::string_view bucket, std::string_view key,
                                  std::string_view query) {
  const auto endpoint = s3_endpoint_for(config, region);
  std::string text =
      key.empty() ? s3_bucket_url(endpoint, bucket) : s3_object_url(endpoint, bucket, key);
  if (!query.empty()) {
    text += '?';
    text += query;
  }
  return text;
}

}  // namespace detail

/// The Route (client.hpp) of one S3 call on one bucket.
class s3_region_route {
 public:
  /// The route of a call on `bucket` (and `key`, `query`): signed for its known region.
  s3_region_route(service_client& client, s3_bucket_regions& regions, std::string_view bucket,
                  std::string_view key, std::string_view query)
      : client_(client),
        regions_(regions),
        bucket_(bucket),
        key_(key),
        query_(query),
        region_(regions.find(bucket).value_or(client.config().region)) {}

  /// Where the first sending goes.
  std::string url() const {
    return detail::s3_request_url(client_.config(), region_, bucket_, key_, query_);
  }

  /// The region to sign the next sending for: the bucket's as known so far.
  std::string_view region() const noexcept { return region_; }

  /// For a wrong-region answer: points the request at the bucket's region, once a call.
  bool follow(http_request& request, const http_response& response) {
    not_followed_.clear();
    if (!detail::s3_wrong_region_answer(request, response) || followed_from_)
      return false;
    std::string region = detail::s3_region_in_answer(response);
    // A HeadBucket's own answer is what the probe would get.
    const bool head_bucket = request.method == "HEAD" && key_.empty();
    const bool probe = region.empty() && !head_bucket;
    if (probe)
      region = probe_region();
    if (region.empty()) {
      if (not_followed_.empty())
        not_followed_ = probe ? "the bucket's region could not be learned: neither the answer "
                                "nor HeadBucket's names it"
                              : "the bucket's region could not be learned: the answer names none";
      return false;
    }
    if (region == region_) {
      not_followed_ = "the bucket is in region " + region + ", which the request was signed for";
      return false;
    }
    followed_from_ = std::exchange(region_, std::move(region));
    request.url = url();
    if (regions_.remember(bucket_, region_) && client_.config().notice)
      client_.config().notice("S3 bucket s3://" + std::string(bucket_) + " is in region " +
                              region_ + ", not " + *followed_from_ +
                              ": its requests are signed for " + region_ + " and sent to " +
                              detail::s3_endpoint_for(client_.config(), region_).url);
    return true;
  }

  /// The error to throw, saying which region was tried when the redirect was not followed.
  service_error explain(const service_error& error, const http_request& request,
                        const http_response& response) const {
    if (!not_followed_.empty())
      return error.with_note(not_followed_);
    // Signed for another region than the config's: the message's connection
    // details (access_check.hpp) name the config's, so the error says which.
    if (!followed_from_) {
      if (region_ == client_.config().region)
        return error;
      return error.with_note("the bucket is in region " + region_ +
                             " (learned from an earlier redirect)");
    }
    std::string note =
        "the bucket is in region " + region_ + " (redirected from " + *followed_from_ + ")";
    if (detail::s3_wrong_region_answer(request, response))
      note += ", and the answer redirected again: at most one redirect is followed per call";
    return error.with_note(note);
  }

 private:
  // HeadBucket answers with the bucket's region in its headers whatever its
  // status (301, 400, 403 or 200). A failed probe is no error of its own: the
  // answer that called for it stands.
  std::string probe_region() {
    try {
      const auto answer = client_.send_once(
          {"HEAD", detail::s3_request_url(client_.config(), region_, bucket_, {}, {}), {}, {}},
          region_);
      return std::string(answer.header("x-amz-bucket-region").value_or(""));
    } catch (const transport_error& e) {
      not_followed_ =
          std::string("the bucket's region could not be learned: HeadBucket failed: ") + e.what();
      return {};
    }
  }

  service_client& client_;
  s3_bucket_regions& regions_;
  std::string_view bucket_;
  std::string_view key_;
  std::string_view query_;
  std::string region_;                        // signs the next sending
  std::optional<std::string> followed_from_;  // set once redirected: one redirect per call
  std::string not_followed_;                  // why the latest answer was not followed
};

}  // namespace widget_consumer::aws
