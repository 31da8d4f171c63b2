#include "widget_consumer/metrics/http_server.hpp"

#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/time.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using namespace widget_consumer;
using namespace std::chrono_literals;
using boost::asio::ip::tcp;

// A plain client socket on the loopback interface whose reads give up after
// five seconds, so a server that never answers fails the test, not hangs it.
class raw_client {
 public:
  explicit raw_client(std::uint16_t port) : socket_(io_) {
    socket_.connect({boost::asio::ip::make_address("127.0.0.1"), port});
    const timeval limit{.tv_sec = 5, .tv_usec = 0};
    ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  }

  // False when the server closed the connection first.
  bool send(std::string_view bytes) {
    boost::system::error_code ec;
    boost::asio::write(socket_, boost::asio::buffer(bytes.data(), bytes.size()), ec);
    return !ec;
  }

  // Everything until the server closes (or the read times out).
  std::string read_all() {
    std::string text;
    char chunk[4096];
    for (;;) {
      const std::size_t n = socket_.read_some(boost::asio::buffer(chunk), last_error_);
      text.append(chunk, n);
      if (last_error_)
        return text;
    }
  }

  // True when the last read_all ended because the server closed, not
  // because the read timed out.
  bool closed_by_server() const {
    return last_error_ == boost::asio::error::eof ||
           last_error_ == boost::asio::error::connection_reset;
  }

 private:
  boost::asio::io_context io_;
  tcp::socket socket_;
  boost::system::error_code last_error_;
};

// Connections that send nothing; each closes when destroyed.
std::vector<tcp::socket> idle_connections(boost::asio::io_context& io, std::uint16_t port,
                                          int count) {
  std::vector<tcp::socket> sockets;
  for (int i = 0; i < count; ++i)
    sockets.emplace_back(io).connect({boost::asio::ip::make_address("127.0.0.1"), port});
  return sockets;
}

std::string exchange(std::uint16_t port, std::string_view request) {
  raw_client client(port);
  client.send(request);
  return client.read_all();
}

std::string status_line(const std::string& response) {
  return response.substr(0, response.find("\r\n"));
}

struct serving : ::testing::Test {
  metrics_log log;
  metrics::metrics_server server{metrics::listen_address::parse("127.0.0.1:0"), log,
                                 metrics::metrics_server_options{.ready_within = 1s,
                                                                 .request_timeout = 300ms,
                                                                 .write_timeout = 1s,
                                                                 .header_limit = 1024,
                                                                 .max_connections = 4}};

  std::string get(std::string_view path) {
    return exchange(server.port(),
                    "GET " + std::string(path) + " HTTP/1.1\r\nHost: localhost\r\n\r\n");
  }
};

TEST(listen_address, takes_a_port_an_address_and_a_port_or_ipv6_in_brackets) {
  const auto port_only = metrics::listen_address::parse("9464");
  EXPECT_EQ(port_only.host, "127.0.0.1");
  EXPECT_EQ(port_only.port, 9464);
  EXPECT_EQ(metrics::listen_address::parse("0.0.0.0:80").host, "0.0.0.0");
  EXPECT_EQ(metrics::listen_address::parse("localhost:1").host, "127.0.0.1");
  EXPECT_EQ(metrics::listen_address::parse("[::1]:9464").host, "::1");
  for (const char* bad : {"", "x", "host.example:80", "1.2.3.4:", "1.2.3.4:65536", ":-1"})
    EXPECT_THROW(metrics::listen_address::parse(bad), std::invalid_argument) << bad;
}

TEST_F(serving, metrics_in_the_text_format_with_its_content_type) {
  const std::string response = get("/metrics");
  EXPECT_EQ(status_line(response), "HTTP/1.1 200 OK");
  EXPECT_NE(response.find("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"),
            std::string::npos);
  EXPECT_NE(response.find("# TYPE widget_consumer_requests_total counter\n"), std::string::npos);
}

TEST_F(serving, healthz_always_and_readyz_only_after_a_recent_poll) {
  EXPECT_EQ(status_line(get("/healthz")), "HTTP/1.1 200 OK");
  EXPECT_EQ(status_line(get("/readyz")), "HTTP/1.1 503 Service Unavailable");
  log.observe({.time = log_clock::now(), .last_poll_ok = log_clock::now()});
  EXPECT_EQ(status_line(get("/readyz")), "HTTP/1.1 200 OK");
  EXPECT_EQ(status_line(get("/readyz?verbose=1")), "HTTP/1.1 200 OK");
}

TEST_F(serving, other_paths_are_404_and_other_methods_405) {
  EXPECT_EQ(status_line(get("/")), "HTTP/1.1 404 Not Found");
  EXPECT_EQ(status_line(get("/metrics/x")), "HTTP/1.1 404 Not Found");
  const std::string post =
      exchange(server.port(), "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(status_line(post), "HTTP/1.1 405 Method Not Allowed");
  EXPECT_NE(post.find("Allow: GET\r\n"), std::string::npos);
  EXPECT_EQ(status_line(exchange(server.port(), "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n")),
            "HTTP/1.1 405 Method Not Allowed");
}

TEST_F(serving, garbage_gets_400_and_a_huge_header_431) {
  EXPECT_EQ(status_line(exchange(server.port(), "\x16\x03\x01 not http at all\r\n\r\n")),
            "HTTP/1.1 400 Bad Request");
  const std::string huge =
      "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(4096, 'a') + "\r\n\r\n";
  EXPECT_EQ(status_line(exchange(server.port(), huge)),
            "HTTP/1.1 431 Request Header Fields Too Large");
  EXPECT_EQ(status_line(get("/healthz")), "HTTP/1.1 200 OK");
}

TEST_F(serving, a_trickle_is_cut_off_and_others_are_served_meanwhile) {
  raw_client slow(server.port());
  const auto began = std::chrono::steady_clock::now();
  slow.send("GET /metrics HTTP/1.1\r\n");
  EXPECT_EQ(status_line(get("/healthz")), "HTTP/1.1 200 OK");
  for (int i = 0; i < 10 && slow.send("X-Slow: 1\r\n"); ++i)
    std::this_thread::sleep_for(50ms);
  EXPECT_EQ(slow.read_all(), "") << "closed without an answer";
  EXPECT_LT(std::chrono::steady_clock::now() - began, 3s);
}

TEST_F(serving, over_the_limit_the_oldest_waiting_connection_makes_room) {
  boost::asio::io_context io;
  auto idle = idle_connections(io, server.port(), 20);
  EXPECT_EQ(status_line(get("/metrics")), "HTTP/1.1 200 OK") << "not refused: limit 4";
  idle.clear();
  EXPECT_EQ(status_line(get("/metrics")), "HTTP/1.1 200 OK");
}

// Issue 28: 32 idle connections used to fill every slot, and /healthz was
// refused. With the shipped options, 100 idle connections (more than the
// limit, fewer than the read timeout lets time out) do not delay a probe
// past the 1 s a Kubernetes probe allows by default. Best of three, for a
// loaded machine; every attempt must be answered.
TEST(metrics_server, probes_are_answered_within_a_second_while_100_idle_connections_are_open) {
  metrics_log log;
  metrics::metrics_server server(metrics::listen_address::parse("127.0.0.1:0"), log);
  for (const std::string path : {"/healthz", "/readyz", "/metrics"}) {
    auto best = std::chrono::steady_clock::duration::max();
    for (int attempt = 0; attempt < 3 && best >= 1s; ++attempt) {
      boost::asio::io_context io;
      auto idle = idle_connections(io, server.port(), 100);
      const auto began = std::chrono::steady_clock::now();
      const std::string response =
          exchange(server.port(), "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n");
      const auto took = std::chrono::steady_clock::now() - began;
      ASSERT_NE(status_line(response), "") << path << ": closed without an answer";
      EXPECT_EQ(status_line(response),
                path == "/readyz" ? "HTTP/1.1 503 Service Unavailable" : "HTTP/1.1 200 OK")
          << path;
      best = std::min(best, took);
    }
    EXPECT_LT(best, 1s) << path << ": best of three "
                        << std::chrono::duration_cast<std::chrono::milliseconds>(best).count()
                        << " ms";
  }
}

// The shipped read timeout: a slot held by an idle connection is free again
// soon, and a slow network still gets its request in (issue 28: 2 to 5 s).
static_assert(metrics::default_request_timeout >= 2s && metrics::default_request_timeout <= 5s);

// The fixture's read timeout is 300 ms; the EOF must come from it, so not
// much earlier, and within a second of slack after.
TEST_F(serving, an_idle_connection_is_closed_after_the_read_timeout) {
  raw_client idle(server.port());
  const auto began = std::chrono::steady_clock::now();
  EXPECT_EQ(idle.read_all(), "");
  const auto took = std::chrono::steady_clock::now() - began;
  EXPECT_TRUE(idle.closed_by_server()) << "the client's own 5 s read timeout ran out first";
  EXPECT_GE(took, 250ms);
  EXPECT_LT(took, 1300ms);
}

TEST_F(serving, a_partial_request_head_is_closed_after_the_read_timeout) {
  raw_client slow(server.port());
  const auto began = std::chrono::steady_clock::now();
  ASSERT_TRUE(slow.send("GET /healthz HTTP/1.1\r\nHost: x\r\n"));
  EXPECT_EQ(slow.read_all(), "") << "closed without an answer";
  const auto took = std::chrono::steady_clock::now() - began;
  EXPECT_TRUE(slow.closed_by_server()) << "the client's own 5 s read timeout ran out first";
  EXPECT_GE(took, 250ms);
  EXPECT_LT(took, 1300ms);
}

TEST(metrics_server, says_when_it_cannot_listen) {
  metrics_log log;
  metrics::metrics_server first(metrics::listen_address::parse("127.0.0.1:0"), log);
  EXPECT_THROW(metrics::metrics_server(
                   metrics::listen_address{.host = "127.0.0.1", .port = first.port()}, log),
               boost::system::system_error);
}

}  // namespace
