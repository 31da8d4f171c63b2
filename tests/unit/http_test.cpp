#include "widget_consumer/aws/http.hpp"
#include "widget_consumer/aws/http_event_loop.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "support/loopback_http_server.hpp"

namespace aws = widget_consumer::aws;
using widget_consumer::testing::http_reply;
using widget_consumer::testing::loopback_http_server;
using widget_consumer::testing::received_http_request;
using widget_consumer::testing::scripted_reply;
using namespace std::chrono_literals;

namespace {

// "hello gzip " * 20, gzip-compressed.
constexpr unsigned char gzipped[] = {0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,
                                     0x03, 0xcb, 0x48, 0xcd, 0xc9, 0xc9, 0x57, 0x48, 0xaf,
                                     0xca, 0x2c, 0x50, 0xc8, 0x18, 0x6e, 0x4c, 0x00, 0xd9,
                                     0x94, 0xfb, 0xac, 0xdc, 0x00, 0x00, 0x00};

// The routes of the loopback server (tests/support) these tests talk to:
//   /echo   200, body "<METHOD> <body>", X-Echo-Test: the request's X-Test
//   /gzip   200, a gzip-encoded body
//   /slow   answers after 2 s
//   /never  does not answer until the client leaves or the server stops
//   /big    200, 4 MiB body
//   /status/<n>  status n, empty body
scripted_reply route(const received_http_request& request) {
  const std::string path = request.path();
  const auto header = [&](const std::string& name) {
    const auto found = request.headers.find(name);
    return found == request.headers.end() ? std::string() : found->second;
  };
  if (path == "/echo")
    return {.bytes = http_reply(200, request.method + " " + request.body,
                                "X-Echo-Test: " + header("x-test") +
                                    "\r\nX-Echo-Content-Type: " + header("content-type") +
                                    "\r\nX-Echo-Expect: " + header("expect") + "\r\n")};
  if (path == "/gzip")
    return {.bytes =
                http_reply(200, std::string(reinterpret_cast<const char*>(gzipped), sizeof gzipped),
                           "Content-Encoding: gzip\r\n")};
  if (path == "/slow")
    return {.bytes = http_reply(200, "late"), .delay = 2s};
  if (path == "/never")
    return {.hold = true};
  if (path == "/big")
    return {.bytes = http_reply(200, std::string(std::size_t{4} << 20, 'x'))};
  if (path.starts_with("/status/"))
    return {.bytes = http_reply(std::stoi(path.substr(8)), "")};
  return {.bytes = http_reply(404, "no route")};
}

// A loopback server with the routes above.
class test_server {
 public:
  std::string url(const std::string& path) const { return server_.endpoint() + path; }
  int accepted() const { return server_.connections(); }
  int port() const { return server_.port(); }

 private:
  loopback_http_server server_{route};
};

// Every test below runs on both transports: libcurl's pool, which works on
// the caller's thread, and the event loop, which works on its own. They
// share curl_transfer.hpp, so what is sent and how a failure is judged must
// come out the same.
template <class Transport>
class HttpTransport : public ::testing::Test {};
using transports = ::testing::Types<aws::http_client, aws::http_event_loop>;
TYPED_TEST_SUITE(HttpTransport, transports);

}  // namespace

TYPED_TEST(HttpTransport, CapturesStatusHeadersAndBody) {
  test_server server;
  TypeParam client;
  const auto response =
      client.send({"POST", server.url("/echo"), {{"X-Test", "value 1"}}, "payload"});
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "POST payload");
  EXPECT_EQ(response.header("x-echo-test"), "value 1");
  EXPECT_EQ(response.header("Content-Length"), "12");
  // curl adds neither a form Content-Type nor Expect: 100-continue.
  EXPECT_EQ(response.header("X-Echo-Content-Type"), "");
  EXPECT_EQ(response.header("X-Echo-Expect"), "");
}

TYPED_TEST(HttpTransport, MethodsAndEmptyBodies) {
  test_server server;
  TypeParam client;
  EXPECT_EQ(client.send({"GET", server.url("/echo"), {}, {}}).body, "GET ");
  EXPECT_EQ(client.send({"PUT", server.url("/echo"), {}, {}}).body, "PUT ");
  EXPECT_EQ(client.send({"DELETE", server.url("/echo"), {}, {}}).body, "DELETE ");
  EXPECT_EQ(client.send({"PUT", server.url("/echo"), {}, "data"}).body, "PUT data");
  const auto head = client.send({"HEAD", server.url("/echo"), {}, {}});
  EXPECT_EQ(head.status, 200);
  EXPECT_TRUE(head.body.empty());
  EXPECT_EQ(client.send({"GET", server.url("/status/503"), {}, {}}).status, 503);
}

TYPED_TEST(HttpTransport, ReusesOneConnectionForSequentialCalls) {
  test_server server;
  TypeParam client;
  for (int i = 0; i < 20; ++i)
    EXPECT_EQ(client.send({"POST", server.url("/echo"), {}, std::to_string(i)}).body,
              "POST " + std::to_string(i));
  EXPECT_EQ(server.accepted(), 1);
}

TYPED_TEST(HttpTransport, DecodesGzip) {
  test_server server;
  TypeParam client;
  const auto response = client.send({"GET", server.url("/gzip"), {}, {}});
  std::string expected;
  for (int i = 0; i < 20; ++i)
    expected += "hello gzip ";
  EXPECT_EQ(response.body, expected);
}

TYPED_TEST(HttpTransport, LargeBodies) {
  test_server server;
  TypeParam client;
  EXPECT_EQ(client.send({"GET", server.url("/big"), {}, {}}).body.size(), std::size_t{4} << 20);
  const std::string upload(std::size_t{3} << 20, 'u');
  EXPECT_EQ(client.send({"PUT", server.url("/echo"), {}, upload}).body.size(), upload.size() + 4);
}

TYPED_TEST(HttpTransport, TimeoutThrowsTransportError) {
  test_server server;
  TypeParam client(
      aws::http_options{.connect_timeout = 1000ms, .total_timeout = 300ms, .ca_bundle = {}});
  const auto start = std::chrono::steady_clock::now();
  try {
    client.send({"GET", server.url("/slow?X-Amz-Signature=secret"), {}, {}});
    FAIL() << "no timeout";
  } catch (const aws::transport_error& e) {
    EXPECT_TRUE(e.timeout()) << e.what();
    EXPECT_TRUE(e.retryable());
    const std::string what = e.what();
    EXPECT_NE(what.find("127.0.0.1"), std::string::npos) << what;
    EXPECT_EQ(what.find("secret"), std::string::npos) << what;
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1500ms);
  // The handle is usable again afterwards.
  EXPECT_EQ(client.send({"GET", server.url("/echo"), {}, {}}).status, 200);
}

TYPED_TEST(HttpTransport, ConnectionRefusedThrowsTransportError) {
  int port = 0;
  {
    test_server server;  // take a free port, then close it
    port = server.port();
  }
  TypeParam client;
  try {
    client.send({"GET", "http://user:pw@127.0.0.1:" + std::to_string(port) + "/x", {}, {}});
    FAIL() << "connected to a closed port";
  } catch (const aws::transport_error& e) {
    EXPECT_EQ(e.failure(), aws::transport_error::kind::connect) << e.what();
    const std::string what = e.what();
    EXPECT_NE(what.find("GET http://127.0.0.1:" + std::to_string(port)), std::string::npos) << what;
    EXPECT_EQ(what.find("pw"), std::string::npos) << what;
  }
}

TYPED_TEST(HttpTransport, UnsupportedSchemeIsPermanent) {
  TypeParam client;
  try {
    client.send({"GET", "gopherz://127.0.0.1/", {}, {}});
    FAIL();
  } catch (const aws::transport_error& e) {
    EXPECT_FALSE(e.retryable()) << e.what();
  }
}

TYPED_TEST(HttpTransport, ManyThreadsAtOnce) {
  test_server server;
  TypeParam client;
  constexpr int threads = 16, calls = 25;
  std::atomic<int> right{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t)
    workers.emplace_back([&, t] {
      for (int i = 0; i < calls; ++i) {
        const std::string body = std::to_string(t) + "/" + std::to_string(i);
        if (client.send({"POST", server.url("/echo"), {}, body}).body == "POST " + body)
          ++right;
      }
    });
  for (auto& worker : workers)
    worker.join();
  EXPECT_EQ(right.load(), threads * calls);
  // Each thread's handle keeps its connection: at most one per concurrent caller.
  EXPECT_LE(server.accepted(), threads);
}

TEST(HttpClient, MovedClientStillWorks) {
  test_server server;
  aws::http_client first;
  EXPECT_EQ(first.send({"GET", server.url("/echo"), {}, {}}).status, 200);
  aws::http_client second = std::move(first);
  EXPECT_EQ(second.send({"GET", server.url("/echo"), {}, {}}).status, 200);
  EXPECT_EQ(server.accepted(), 1);
}

TYPED_TEST(HttpTransport, CancelAbortsAWaitForTheAnswerAtOnceAndThePoolStillWorks) {
  test_server server;
  TypeParam client;
  std::stop_source live;
  // A token that is never stopped changes nothing, and the connection is kept.
  EXPECT_EQ(client.send({"GET", server.url("/echo"), {}, {}}, live.get_token()).status, 200);
  EXPECT_EQ(server.accepted(), 1);

  std::stop_source stop;
  std::atomic<std::chrono::steady_clock::time_point> stopped_at{};
  std::thread canceller([&] {
    std::this_thread::sleep_for(300ms);  // the request is sent and waits for its answer
    stopped_at = std::chrono::steady_clock::now();
    stop.request_stop();
  });
  try {
    client.send({"GET", server.url("/never"), {}, {}}, stop.get_token());
    ADD_FAILURE() << "an answer came from a route that never answers";
  } catch (const aws::transport_error& e) {
    EXPECT_EQ(e.failure(), aws::transport_error::kind::cancelled) << e.what();
    EXPECT_FALSE(e.retryable());
    EXPECT_FALSE(e.timeout());
  }
  const auto ended = std::chrono::steady_clock::now();
  canceller.join();
  EXPECT_LT(ended - stopped_at.load(), 100ms);

  // The aborted transfer's connection is closed, not handed out again: the
  // next call on the pool opens a new one and works.
  EXPECT_EQ(client.send({"GET", server.url("/echo"), {}, {}}).body, "GET ");
  EXPECT_EQ(client.send({"POST", server.url("/echo"), {}, "again"}).body, "POST again");
  EXPECT_EQ(server.accepted(), 2);

  // A token stopped already: nothing is sent at all.
  try {
    client.send({"GET", server.url("/echo"), {}, {}}, stop.get_token());
    ADD_FAILURE() << "a cancelled call was sent";
  } catch (const aws::transport_error& e) {
    EXPECT_EQ(e.failure(), aws::transport_error::kind::cancelled) << e.what();
  }
  EXPECT_EQ(server.accepted(), 2);
}

TYPED_TEST(HttpTransport, CancelFromManyThreadsAtOnce) {
  test_server server;
  TypeParam client;
  std::stop_source stop;
  std::atomic<int> cancelled{0};
  std::vector<std::thread> callers;
  for (int i = 0; i < 8; ++i)
    callers.emplace_back([&] {
      try {
        client.send({"GET", server.url("/never"), {}, {}}, stop.get_token());
      } catch (const aws::transport_error& e) {
        if (e.failure() == aws::transport_error::kind::cancelled)
          ++cancelled;
      }
    });
  std::this_thread::sleep_for(200ms);
  const auto start = std::chrono::steady_clock::now();
  stop.request_stop();
  for (auto& caller : callers)
    caller.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 500ms);
  EXPECT_EQ(cancelled.load(), 8);
  EXPECT_EQ(client.send({"GET", server.url("/echo"), {}, {}}).status, 200);
}

// Many requests in flight from one caller thread: each completion gets its
// own answer, on the loop's thread.
TEST(HttpEventLoop, ManyRequestsInFlightFromOneThread) {
  test_server server;
  constexpr int count = 64;
  std::vector<aws::http_request> requests;
  for (int i = 0; i < count; ++i)
    requests.push_back({"POST", server.url("/echo"), {}, std::to_string(i)});
  std::mutex mutex;
  std::condition_variable finished;
  int right = 0, done = 0;
  std::thread::id caller = std::this_thread::get_id();
  bool on_caller = false;
  {
    aws::http_event_loop loop;
    for (int i = 0; i < count; ++i)
      loop.start(requests[static_cast<std::size_t>(i)], {}, [&, i](aws::http_outcome outcome) {
        std::lock_guard lock(mutex);
        right += outcome.response && outcome.response->body == "POST " + std::to_string(i);
        on_caller = on_caller || std::this_thread::get_id() == caller;
        ++done;
        finished.notify_all();
      });
    std::unique_lock lock(mutex);
    EXPECT_TRUE(finished.wait_for(lock, 20s, [&] { return done == count; }));
  }
  EXPECT_EQ(right, count);
  EXPECT_FALSE(on_caller);
  EXPECT_LE(server.accepted(), count);
}

// Destroying the loop ends what is in flight as cancelled, each once.
TEST(HttpEventLoop, DestroyingTheLoopCancelsWhatIsInFlight) {
  test_server server;
  const aws::http_request never{"GET", server.url("/never"), {}, {}};
  std::atomic<int> cancelled{0}, other{0};
  {
    aws::http_event_loop loop;
    for (int i = 0; i < 3; ++i)
      loop.start(never, {}, [&](aws::http_outcome outcome) {
        try {
          (void)outcome.take();
          ++other;
        } catch (const aws::transport_error& e) {
          ++(e.failure() == aws::transport_error::kind::cancelled ? cancelled : other);
        }
      });
    std::this_thread::sleep_for(200ms);  // sent, waiting for an answer
  }
  EXPECT_EQ(cancelled.load(), 3);
  EXPECT_EQ(other.load(), 0);
}
