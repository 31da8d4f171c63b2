#include "widget_consumer/aws/http.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

namespace aws = widget_consumer::aws;
using namespace std::chrono_literals;

namespace {

// "hello gzip " * 20, gzip-compressed.
constexpr unsigned char gzipped[] = {0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,
                                     0x03, 0xcb, 0x48, 0xcd, 0xc9, 0xc9, 0x57, 0x48, 0xaf,
                                     0xca, 0x2c, 0x50, 0xc8, 0x18, 0x6e, 0x4c, 0x00, 0xd9,
                                     0x94, 0xfb, 0xac, 0xdc, 0x00, 0x00, 0x00};

// A tiny HTTP/1.1 server on 127.0.0.1 with keep-alive, one thread per
// connection, that counts the connections it accepted. Routes:
//   /echo   200, body "<METHOD> <body>", X-Echo-Test: the request's X-Test
//   /gzip   200, a gzip-encoded body
//   /slow   answers after 2 s
//   /never  does not answer until the server stops
//   /big    200, 4 MiB body
//   /status/<n>  status n, empty body
class test_server {
 public:
  test_server() {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int yes = 1;
    ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listener_, 64) != 0)
      throw std::runtime_error("test server cannot listen");
    socklen_t length = sizeof addr;
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &length);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }

  ~test_server() {
    stop_ = true;
    ::shutdown(listener_, SHUT_RDWR);
    acceptor_.join();
    ::close(listener_);
    std::lock_guard lock(mutex_);
    for (auto& t : connections_)
      t.join();
  }

  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  int accepted() const { return accepted_.load(); }

 private:
  void accept_loop() {
    while (!stop_) {
      pollfd p{listener_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0)
        continue;
      const int fd = ::accept(listener_, nullptr, nullptr);
      if (fd < 0)
        continue;
      ++accepted_;
      std::lock_guard lock(mutex_);
      connections_.emplace_back([this, fd] { serve(fd); });
    }
  }

  // Reads more bytes into `buffer`; false when the peer closed or we stop.
  bool read_more(int fd, std::string& buffer) {
    while (!stop_) {
      pollfd p{fd, POLLIN, 0};
      const int ready = ::poll(&p, 1, 50);
      if (ready == 0)
        continue;
      char chunk[65536];
      const auto n = ::recv(fd, chunk, sizeof chunk, 0);
      if (n <= 0)
        return false;
      buffer.append(chunk, static_cast<std::size_t>(n));
      return true;
    }
    return false;
  }

  static void send_all(int fd, const std::string& data) {
    std::size_t sent = 0;
    while (sent < data.size()) {
      const auto n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
      if (n <= 0)
        return;
      sent += static_cast<std::size_t>(n);
    }
  }

  void serve(int fd) {
    std::string buffer;
    for (;;) {
      std::size_t end;
      while ((end = buffer.find("\r\n\r\n")) == std::string::npos)
        if (!read_more(fd, buffer)) {
          ::close(fd);
          return;
        }
      const std::string head = buffer.substr(0, end);
      buffer.erase(0, end + 4);
      std::map<std::string, std::string> headers;
      std::size_t line_start = head.find("\r\n");
      const std::string request_line = head.substr(0, line_start);
      while (line_start != std::string::npos) {
        const auto next = head.find("\r\n", line_start + 2);
        const auto line = head.substr(
            line_start + 2, next == std::string::npos ? std::string::npos : next - line_start - 2);
        const auto colon = line.find(':');
        if (colon != std::string::npos) {
          std::string name = line.substr(0, colon);
          for (auto& c : name)
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
          headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
        }
        line_start = next;
      }
      const std::size_t length =
          headers.count("content-length") ? std::stoul(headers["content-length"]) : 0;
      while (buffer.size() < length)
        if (!read_more(fd, buffer)) {
          ::close(fd);
          return;
        }
      const std::string body = buffer.substr(0, length);
      buffer.erase(0, length);
      const auto sp1 = request_line.find(' ');
      const auto sp2 = request_line.find(' ', sp1 + 1);
      const std::string method = request_line.substr(0, sp1);
      std::string path = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
      path = path.substr(0, path.find('?'));
      send_all(fd, respond(method, path, headers, body));
    }
  }

  static std::string reply(int status, const std::string& body, const std::string& extra = {}) {
    return "HTTP/1.1 " + std::to_string(status) +
           " X\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" + extra + "\r\n" + body;
  }

  std::string respond(const std::string& method, const std::string& path,
                      std::map<std::string, std::string>& headers, const std::string& body) {
    if (path == "/echo")
      return reply(200, method + " " + body,
                   "X-Echo-Test: " + headers["x-test"] +
                       "\r\nX-Echo-Content-Type: " + headers["content-type"] +
                       "\r\nX-Echo-Expect: " + headers["expect"] + "\r\n");
    if (path == "/gzip")
      return reply(200, std::string(reinterpret_cast<const char*>(gzipped), sizeof gzipped),
                   "Content-Encoding: gzip\r\n");
    if (path == "/slow") {
      for (int i = 0; i < 40 && !stop_; ++i)
        std::this_thread::sleep_for(50ms);
      return reply(200, "late");
    }
    if (path == "/never") {
      while (!stop_)
        std::this_thread::sleep_for(20ms);
      return reply(200, "too late");
    }
    if (path == "/big")
      return reply(200, std::string(std::size_t{4} << 20, 'x'));
    if (path.starts_with("/status/"))
      return reply(std::stoi(path.substr(8)), "");
    return reply(404, "no route");
  }

  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::thread acceptor_;
  std::mutex mutex_;
  std::vector<std::thread> connections_;
};

}  // namespace

TEST(HttpClient, CapturesStatusHeadersAndBody) {
  test_server server;
  aws::http_client client;
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

TEST(HttpClient, MethodsAndEmptyBodies) {
  test_server server;
  aws::http_client client;
  EXPECT_EQ(client.send({"GET", server.url("/echo"), {}, {}}).body, "GET ");
  EXPECT_EQ(client.send({"PUT", server.url("/echo"), {}, {}}).body, "PUT ");
  EXPECT_EQ(client.send({"DELETE", server.url("/echo"), {}, {}}).body, "DELETE ");
  EXPECT_EQ(client.send({"PUT", server.url("/echo"), {}, "data"}).body, "PUT data");
  const auto head = client.send({"HEAD", server.url("/echo"), {}, {}});
  EXPECT_EQ(head.status, 200);
  EXPECT_TRUE(head.body.empty());
  EXPECT_EQ(client.send({"GET", server.url("/status/503"), {}, {}}).status, 503);
}

TEST(HttpClient, ReusesOneConnectionForSequentialCalls) {
  test_server server;
  aws::http_client client;
  for (int i = 0; i < 20; ++i)
    EXPECT_EQ(client.send({"POST", server.url("/echo"), {}, std::to_string(i)}).body,
              "POST " + std::to_string(i));
  EXPECT_EQ(server.accepted(), 1);
}

TEST(HttpClient, DecodesGzip) {
  test_server server;
  aws::http_client client;
  const auto response = client.send({"GET", server.url("/gzip"), {}, {}});
  std::string expected;
  for (int i = 0; i < 20; ++i)
    expected += "hello gzip ";
  EXPECT_EQ(response.body, expected);
}

TEST(HttpClient, LargeBodies) {
  test_server server;
  aws::http_client client;
  EXPECT_EQ(client.send({"GET", server.url("/big"), {}, {}}).body.size(), std::size_t{4} << 20);
  const std::string upload(std::size_t{3} << 20, 'u');
  EXPECT_EQ(client.send({"PUT", server.url("/echo"), {}, upload}).body.size(), upload.size() + 4);
}

TEST(HttpClient, TimeoutThrowsTransportError) {
  test_server server;
  aws::http_client client(aws::http_options{1000ms, 300ms, {}});
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

TEST(HttpClient, ConnectionRefusedThrowsTransportError) {
  int port = 0;
  {
    test_server server;  // take a free port, then close it
    port = std::stoi(server.url("").substr(17));
  }
  aws::http_client client;
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

TEST(HttpClient, UnsupportedSchemeIsPermanent) {
  aws::http_client client;
  try {
    client.send({"GET", "gopherz://127.0.0.1/", {}, {}});
    FAIL();
  } catch (const aws::transport_error& e) {
    EXPECT_FALSE(e.retryable()) << e.what();
  }
}

TEST(HttpClient, ManyThreadsAtOnce) {
  test_server server;
  aws::http_client client;
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

TEST(HttpClient, CancelAbortsAWaitForTheAnswerAtOnceAndThePoolStillWorks) {
  test_server server;
  aws::http_client client;
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

TEST(HttpClient, CancelFromManyThreadsAtOnce) {
  test_server server;
  aws::http_client client;
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
