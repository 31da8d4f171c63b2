#pragma once
// service_client: what every service operation (s3.hpp, sqs.hpp,
// dynamodb.hpp) is built on. One call = sign (SigV4) + send + retry per
// retry.hpp + turn a final non-2xx into a service_error + read the 2xx body
// (response.hpp) inside the same retry loop. Errors are
// exceptions, as error.hpp states: service_error for an answer that says no,
// transport_error when no answer came. A call may be routed (send_routed):
// S3 signs it for the bucket's region, and follows one redirect to it inside
// the attempt that met it (s3_region_redirect.hpp).
//
// A client may be used from many threads at once: the transport and the retry
// state are thread-safe, and copies of a client share them (one connection
// pool and one retry quota per client, as in the AWS SDKs). The credentials
// function is called once per attempt, from any of those threads, so a
// refreshing provider keeps long runs signed with valid keys.
//
// Every call takes an optional std::stop_token: stopping it aborts the
// attempt in progress at once (http.hpp) and the call throws transport_error
// kind::cancelled, never retried. A stop during a retry's backoff is seen when
// the next attempt begins.

#include <widget_consumer/aws/config.hpp>
#include <widget_consumer/aws/credentials.hpp>
#include <widget_consumer/aws/error.hpp>
#include <widget_consumer/aws/http.hpp>
#include <widget_consumer/aws/http_message.hpp>
#include <widget_consumer/aws/http_transport.hpp>
#include <widget_consumer/aws/response.hpp>
#include <widget_consumer/aws/retry.hpp>
#include <widget_consumer/aws/sigv4.hpp>
#include <widget_consumer/aws/xml.hpp>

#include <boost/json.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

/// The AWS side: SigV4, the HTTP transport, credentials, and the S3, SQS, DynamoDB clients.
namespace widget_consumer::aws {

/// Where and how a service_client reaches its service: region, endpoint, credentials, retries.
struct client_config {
  std::string region;  ///< signing region; empty: us-east-1
  /// scheme://host[:port], e.g. http://127.0.0.1:4566 or
  /// https://sqs.us-east-1.amazonaws.com. Empty: the service's AWS endpoint
  /// in `region`.
  std::string endpoint;
  bool path_style = true;  ///< S3: bucket in the path, not the host name
  int max_attempts = 3;    ///< attempts per call, the first included
  http_options http;       ///< timeouts and TLS of the transport
  /// What sends the requests (http_transport.hpp); empty: libcurl's
  /// (http.hpp), made with `http`. Shared by copies of the config, so clients
  /// made from one config share its connections. Tests give a double.
  std::shared_ptr<http_transport> transport;
  /// The clock, random source and sleep of the retry policy; empty: the
  /// system's. Tests inject a sleep that does not wait.
  std::optional<retry_environment> retry_env;
  /// Called once per attempt for the keys to sign it with (a credentials_chain).
  std::function<aws::credentials()> credentials;
  /// Where a client says what a person running the program should know and
  /// that is no error (S3: the region a bucket was found in, once per bucket).
  /// Called from any thread that makes calls; empty: not said. Never given a
  /// secret.
  std::function<void(std::string_view)> notice;
};

/// How the attempts of one call are signed and what a non-2xx answer leads to,
/// when not simply as the config says (config_route). s3_region_redirect.hpp's
/// route re-signs a call for the bucket's region. A Route has:
///   region()                   the region to sign the next sending for;
///   follow(request, response)  for a non-2xx answer: true when the request,
///                              given a new url and region(), is to be sent
///                              again at once, inside the same attempt (no
///                              backoff, no retry quota); at most once a call;
///   explain(error, request, response)
///                              the error to throw for the final non-2xx answer.
struct config_route {
  /// The region every attempt is signed for: the config's.
  std::string_view signing_region;

  /// The region to sign the next sending for.
  std::string_view region() const noexcept { return signing_region; }
  /// Never sends a request again: the config's route follows no redirect.
  bool follow(http_request&, const http_response&) noexcept { return false; }
  /// The error to throw for the final non-2xx answer: the one given.
  service_error explain(service_error error, const http_request&, const http_response&) const {
    return error;
  }
};

/// One AWS service's calls: signed, sent, retried, and their errors turned into exceptions.
class service_client {
 public:
  /// A client of `service` (its signing name: "s3", "sqs", "dynamodb") as `config` says.
  service_client(std::string service, client_config config)
      : service_(std::move(service)), config_(std::move(config)) {
    if (config_.region.empty())
      config_.region = "us-east-1";
    if (config_.endpoint.empty())
      config_.endpoint = aws_endpoint_url(service_, config_.region);  // config.hpp
    while (config_.endpoint.ends_with('/'))
      config_.endpoint.pop_back();
    if (!config_.credentials)
      throw std::invalid_argument(detail::display_service_name(service_) +
                                  " client: no credentials provider configured");
    http_ = config_.transport ? config_.transport : std::make_shared<http_client>(config_.http);
    retry_ = std::make_shared<retry_strategy>(
        config_.max_attempts, config_.retry_env.value_or(retry_environment::system()));
  }

  /// Signs (SigV4, S3 variant when service == "s3"), sends, retries per
  /// retry.hpp, and returns the 2xx response. Throws service_error (parsed for
  /// the protocol) for a non-2xx after retries, transport_error for network
  /// failures after retries.
  http_response send(http_request request, std::string_view operation, std::string_view resource,
                     std::stop_token cancel = {}) {
    return send(
        std::move(request), operation, resource,
        [](http_response& response) { return std::move(response); }, std::move(cancel));
  }

  /// As above, and `read(response)` turns the 2xx response into the result
  /// inside the retry loop (response.hpp): a body cut short (transport_error)
  /// or an S3 `<Error>` in a 200 is retried like any failed attempt.
  template <class Read>
  auto send(http_request request, std::string_view operation, std::string_view resource,
            Read&& read, std::stop_token cancel = {})
      -> std::invoke_result_t<Read&, http_response&> {
    config_route route{config_.region};
    return send_routed(std::move(request), operation, resource, std::forward<Read>(read), route,
                       std::move(cancel));
  }

  /// As above, signed and redirected as `route` says (config_route).
  template <class Read, class Route>
  auto send_routed(http_request request, std::string_view operation, std::string_view resource,
                   Read&& read, Route& route, std::stop_token cancel = {})
      -> std::invoke_result_t<Read&, http_response&> {
    // Each sending signs the caller's headers afresh: the first in place,
    // a retry or a redirect from a copy kept for it. The body is signed and
    // sent in place, never copied.
    const std::vector<http_header> original_headers = request.headers;
    bool first_sending = true;
    bool unknown_outcome = false;  // an earlier attempt may have taken effect
    auto sign_and_send = [&](std::chrono::system_clock::time_point signing_time) {
      if (!std::exchange(first_sending, false))
        request.headers = original_headers;
      sign(request, config_.credentials(), signing_for(route.region(), signing_time));
      try {
        return http_->send(request, cancel);
      } catch (const transport_error& e) {
        unknown_outcome = unknown_outcome || may_have_taken_effect(e);
        throw;
      }
    };
    return retry_->run([&](std::chrono::system_clock::time_point signing_time) {
      http_response response = sign_and_send(signing_time);
      // A redirect is no failed attempt: it is followed here, so that the
      // retry loop sees only the answer to the redirected request.
      if (!success(response) && route.follow(request, response))
        response = sign_and_send(signing_time);
      response.after_unknown_outcome = unknown_outcome;
      if (!success(response)) {
        service_error error = route.explain(
            parse_service_error(service_, operation, resource, response), request, response);
        unknown_outcome = unknown_outcome || may_have_taken_effect(error);
        throw error;
      }
      return read(response);
    });
  }

  /// Signs `request` for `region` and sends it once: the answer as it came,
  /// whatever its status; transport_error when none came. For a probe whose
  /// answer is in its headers even when it says no (S3's HeadBucket telling
  /// a bucket's region).
  http_response send_once(http_request request, std::string_view region,
                          std::stop_token cancel = {}) {
    sign(request, config_.credentials(), signing_for(region, retry_->signing_time()));
    return http_->send(request, cancel);
  }

  /// JSON-protocol helper (DynamoDB, SQS JSON protocol): POST to the endpoint
  /// with X-Amz-Target: target_prefix + "." + operation, Content-Type
  /// application/x-amz-json-1.0; `read(origin, object)` turns the response
  /// body, always a JSON object (empty for an empty body), into the result.
  template <class Read>
  auto call_json(std::string_view target_prefix, std::string_view operation,
                 const boost::json::object& body, std::string_view resource, Read&& read,
                 std::stop_token cancel = {})
      -> std::invoke_result_t<Read&, const response_origin&, boost::json::object&> {
    http_request request;
    request.method = "POST";
    request.url = config_.endpoint + "/";
    request.headers.push_back({"Content-Type", "application/x-amz-json-1.0"});
    request.headers.push_back(
        {"X-Amz-Target", std::string(target_prefix) + "." + std::string(operation)});
    request.body = boost::json::serialize(body);
    return send(
        std::move(request), operation, resource,
        [&](const http_response& response) {
          const response_origin origin{service_, operation, resource, response};
          boost::json::object parsed = read_json_response(origin);
          return read(origin, parsed);
        },
        std::move(cancel));
  }

  /// The same, returning the response as it came: always an object.
  boost::json::value call_json(std::string_view target_prefix, std::string_view operation,
                               const boost::json::object& body, std::string_view resource,
                               std::stop_token cancel = {}) {
    return call_json(
        target_prefix, operation, body, resource,
        [](const response_origin&, boost::json::object& parsed) {
          return boost::json::value(std::move(parsed));
        },
        std::move(cancel));
  }

  /// The configuration it was built with, defaults filled in.
  const client_config& config() const noexcept { return config_; }
  /// The signing name of its service.
  const std::string& service() const noexcept { return service_; }
  /// The retry state (quota, learned clock offset), shared by copies.
  const retry_strategy& retries() const noexcept { return *retry_; }

 private:
  static bool success(const http_response& response) noexcept {
    return response.status >= 200 && response.status <= 299;
  }

  signing_params signing_for(std::string_view region,
                             std::chrono::system_clock::time_point time) const {
    signing_params params;
    params.region = std::string(region);
    params.service = service_;
    params.time = time;
    params.s3 = service_ == "s3";
    return params;
  }

  std::string service_;
  client_config config_;
  std::shared_ptr<http_transport> http_;
  std::shared_ptr<retry_strategy> retry_;
};

}  // namespace widget_consumer::aws
