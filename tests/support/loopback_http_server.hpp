#pragma once
// A scripted HTTP/1.1 server on 127.0.0.1 (an ephemeral port) for the tests
// that need a server of their own: each request is answered with whatever
// bytes the test's handler returns, well-formed or not, at once or late, and
// the connection can then be kept (keep-alive), closed, held open without a
// word, or fed filler bytes. One thread per connection; the destructor stops
// and joins them all (a late answer or a held connection ends at once), so
// nothing outlives the test.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace widget_consumer::testing {

struct received_http_request {
  std::string method;
  std::string target;                          // path and query as sent
  std::map<std::string, std::string> headers;  // names lowercased
  std::string body;

  // The target without its query.
  std::string path() const { return target.substr(0, target.find('?')); }
};

struct scripted_reply {
  std::string bytes = {};              // written as is: status line, headers, body
  std::chrono::milliseconds delay{0};  // written this late (a slow server)
  std::size_t filler = 0;              // then this many 'x' bytes, in 64 KiB writes
  bool close = false;                  // then close the connection
  bool hold = false;                   // or keep it open, silent, until the client leaves
};

// "HTTP/1.1 <status>" with a correct Content-Length and the extra header
// lines given ("Name: value\r\n" each).
inline std::string http_reply(int status, const std::string& body, const std::string& extra = {}) {
  return "HTTP/1.1 " + std::to_string(status) +
         " X\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" + extra + "\r\n" + body;
}

// Whether the server keeps a copy of every request (for tests that check
// what a client sent; a benchmark's millions of requests are only counted).
enum class recording { off, on };

class loopback_http_server {
 public:
  using handler = std::function<scripted_reply(const received_http_request&)>;

  explicit loopback_http_server(handler respond, recording record = recording::off)
      : respond_(std::move(respond)), record_(record == recording::on) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int yes = 1;
    ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof addr;
    if (listener_ < 0 || ::bind(listener_, reinterpret_cast<sockaddr*>(&addr), length) != 0 ||
        ::listen(listener_, 64) != 0 ||
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &length) != 0)
      throw std::runtime_error("loopback server cannot listen");
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }

  loopback_http_server(const loopback_http_server&) = delete;
  loopback_http_server& operator=(const loopback_http_server&) = delete;

  ~loopback_http_server() {
    stop_ = true;
    acceptor_.join();
    ::close(listener_);
    std::lock_guard lock(mutex_);
    for (auto& connection : connections_)
      connection.join();
  }

  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  int requests() const { return requests_.load(); }
  int connections() const { return accepted_.load(); }

  // Every request so far, in the order they were read; needs recording::on.
  std::vector<received_http_request> received() const {
    if (!record_)
      throw std::logic_error("loopback_http_server: built without recording::on");
    std::lock_guard lock(received_mutex_);
    return received_;
  }

 private:
  void accept_loop() {
    while (!stop_) {
      pollfd p{.fd = listener_, .events = POLLIN, .revents = 0};
      if (::poll(&p, 1, 20) <= 0)
        continue;
      const int fd = ::accept(listener_, nullptr, nullptr);
      if (fd < 0)
        continue;
      ++accepted_;
      std::lock_guard lock(mutex_);
      connections_.emplace_back([this, fd] {
        serve(fd);
        ::close(fd);
      });
    }
  }

  // Waits for readable data (or the peer leaving); false when we stop.
  bool wait_readable(int fd) {
    while (!stop_) {
      pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
      if (::poll(&p, 1, 20) > 0)
        return true;
    }
    return false;
  }

  bool read_more(int fd, std::string& buffer) {
    if (!wait_readable(fd))
      return false;
    char chunk[65536];
    const auto n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0)
      return false;
    buffer.append(chunk, static_cast<std::size_t>(n));
    return true;
  }

  bool send_all(int fd, const char* data, std::size_t size) {
    std::size_t sent = 0;
    while (sent < size && !stop_) {
      pollfd p{.fd = fd, .events = POLLOUT, .revents = 0};
      if (::poll(&p, 1, 20) <= 0)
        continue;
      const auto n = ::send(fd, data + sent, size - sent, MSG_NOSIGNAL);
      if (n <= 0)
        return false;
      sent += static_cast<std::size_t>(n);
    }
    return sent == size;
  }

  // Sleeps up to `delay`, in short steps so that stopping is not held up;
  // false when we stop.
  bool wait(std::chrono::milliseconds delay) {
    const auto until = std::chrono::steady_clock::now() + delay;
    while (!stop_ && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return !stop_;
  }

  static received_http_request parse_head(const std::string& head) {
    received_http_request request;
    std::size_t line_end = head.find("\r\n");
    const std::string request_line = head.substr(0, line_end);
    const auto sp1 = request_line.find(' ');
    const auto sp2 = request_line.find(' ', sp1 + 1);
    request.method = request_line.substr(0, sp1);
    request.target = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
    while (line_end != std::string::npos) {
      const auto next = head.find("\r\n", line_end + 2);
      const auto line = head.substr(
          line_end + 2, next == std::string::npos ? std::string::npos : next - line_end - 2);
      if (const auto colon = line.find(':'); colon != std::string::npos) {
        std::string name = line.substr(0, colon);
        for (auto& c : name)
          c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        const auto value = line.find_first_not_of(' ', colon + 1);
        request.headers[name] = value == std::string::npos ? "" : line.substr(value);
      }
      line_end = next;
    }
    return request;
  }

  // Reads the next request from the connection into `request`; false when
  // the client left or we stop.
  bool read_request(int fd, std::string& buffer, received_http_request& request) {
    std::size_t end;
    while ((end = buffer.find("\r\n\r\n")) == std::string::npos)
      if (!read_more(fd, buffer))
        return false;
    request = parse_head(buffer.substr(0, end));
    buffer.erase(0, end + 4);
    const auto length = request.headers.contains("content-length")
                            ? std::stoul(request.headers["content-length"])
                            : std::size_t{0};
    while (buffer.size() < length)
      if (!read_more(fd, buffer))
        return false;
    request.body = buffer.substr(0, length);
    buffer.erase(0, length);
    return true;
  }

  // Writes the reply; false when the connection is to end.
  bool write_reply(int fd, const scripted_reply& reply) {
    if (!wait(reply.delay) || !send_all(fd, reply.bytes.data(), reply.bytes.size()))
      return false;
    const std::string filler(65536, 'x');
    for (std::size_t left = reply.filler; left > 0;) {
      const auto n = std::min(left, filler.size());
      if (!send_all(fd, filler.data(), n))
        return false;
      left -= n;
    }
    if (reply.hold) {  // silent until the client gives up and closes
      char sink[4096];
      while (wait_readable(fd) && ::recv(fd, sink, sizeof sink, 0) > 0) {
      }
      return false;
    }
    return !reply.close;
  }

  void serve(int fd) {
    std::string buffer;
    for (received_http_request request; read_request(fd, buffer, request);) {
      ++requests_;
      if (record_) {
        std::lock_guard lock(received_mutex_);
        received_.push_back(request);
      }
      if (!write_reply(fd, respond_(request)))
        return;
    }
  }

  handler respond_;
  bool record_;
  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::atomic<int> requests_{0};
  std::thread acceptor_;
  std::mutex mutex_;  // connections_
  std::vector<std::thread> connections_;
  mutable std::mutex received_mutex_;  // received_
  std::vector<received_http_request> received_;
};

}  // namespace widget_consumer::testing
