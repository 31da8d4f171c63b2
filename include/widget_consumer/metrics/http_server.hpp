#pragma once
// metrics_server: serves a metrics_log over HTTP/1.1 (Boost.Beast) on a
// thread of its own: GET /metrics (the text exposition format), /healthz
// (200 while the process runs) and /readyz (200 when a poll succeeded
// within ready_within, else 503). Other paths are 404, other methods 405.
//
// Whoever connects must not be able to stall or crash the consumer, nor
// keep a probe out: the server shares nothing with it but the metrics_log's
// atomics; idle sockets cost no thread (one thread serves them all); each
// connection has a deadline for its whole request head from its accept
// (default_request_timeout: an idle connection or a trickle is cut off), a
// limit on its header and no body. Every connection is accepted: past
// max_connections, the oldest one not busy writing an answer is closed to
// make room, so idle connections cannot starve a new request (only when all
// of them are writing is the new one closed at once). An error in one
// connection ends that connection only. Each connection carries one request
// and is then closed.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <list>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include <widget_consumer/metrics/metrics_log.hpp>

namespace widget_consumer::metrics {

/// Where the server listens: "PORT" (on 127.0.0.1), "HOST:PORT" or
/// "[IPV6]:PORT". HOST is an IP address or "localhost"; an address other
/// than loopback is only ever used when it is written out.
struct listen_address {
  std::string host = "127.0.0.1";  ///< "localhost" becomes 127.0.0.1
  std::uint16_t port = 9464;       ///< 0 = any free port

  /// Throws std::invalid_argument, naming the text, when it is none of those.
  static listen_address parse(std::string_view text) {
    const auto bad = [&](std::string_view why) {
      return std::invalid_argument("bad listen address '" + std::string(text) +
                                   "': " + std::string(why));
    };
    listen_address address;
    std::string_view port = text;
    if (const auto colon = text.rfind(':'); colon != std::string_view::npos) {
      std::string_view host = text.substr(0, colon);
      if (host.starts_with('[') && host.ends_with(']'))
        host = host.substr(1, host.size() - 2);
      address.host = host == "localhost" ? "127.0.0.1" : std::string(host);
      port = text.substr(colon + 1);
      boost::system::error_code ec;
      boost::asio::ip::make_address(address.host, ec);
      if (ec)
        throw bad("the host must be an IP address or localhost");
    }
    unsigned long number = 0;
    if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != port.npos ||
        (number = std::stoul(std::string(port))) > 65535)
      throw bad("the port must be a number from 0 to 65535");
    address.port = static_cast<std::uint16_t>(number);
    return address;
  }
};

/// How long a connection may take, from its accept, to send a whole request
/// head before it is closed unanswered. A probe or a scrape sends its request
/// at once (a Kubernetes probe gives up after 1 s by default); an idle
/// connection or a slowloris trickle holds a slot no longer than this.
inline constexpr std::chrono::seconds default_request_timeout{5};

/// How the metrics server answers, and how it bounds slow or many connections.
struct metrics_server_options {
  /// /readyz is 200 when a poll succeeded at most this long ago.
  std::chrono::milliseconds ready_within{std::chrono::seconds{60}};
  /// A connection's request must have arrived whole by then.
  std::chrono::milliseconds request_timeout{default_request_timeout};
  std::chrono::milliseconds write_timeout{std::chrono::seconds{10}};  ///< to send a whole answer
  std::size_t header_limit = 8 * 1024;                                ///< bytes of a request head
  /// Open connections; a new one beyond them closes the oldest waiting one.
  std::size_t max_connections = 32;
};

/// Serves /metrics, /healthz and /readyz of a metrics_log over HTTP (Boost.Beast), on its own
/// thread.
class metrics_server {
 public:
  /// Listens at once (throws boost::system::system_error when it cannot, for
  /// instance when the port is taken) and serves on its own thread until
  /// destroyed.
  metrics_server(const listen_address& address, const metrics_log& log,
                 metrics_server_options options = {})
      : log_(log), options_(options), acceptor_(io_) {
    const boost::asio::ip::tcp::endpoint endpoint(boost::asio::ip::make_address(address.host),
                                                  address.port);
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(boost::asio::socket_base::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    accept();
    thread_ = std::thread([this] { serve(); });
  }

  metrics_server(const metrics_server&) = delete;
  metrics_server& operator=(const metrics_server&) = delete;

  ~metrics_server() {
    io_.stop();
    if (thread_.joinable())
      thread_.join();
  }

  /// The port listened on (the one chosen when 0 was asked for).
  std::uint16_t port() const noexcept { return port_; }

 private:
  using tcp = boost::asio::ip::tcp;
  using request_parser = boost::beast::http::request_parser<boost::beast::http::empty_body>;
  using response = boost::beast::http::response<boost::beast::http::string_body>;

  class connection : public std::enable_shared_from_this<connection> {
   public:
    connection(metrics_server& server, tcp::socket socket)
        : server_(server),
          stream_(std::move(socket)),
          place_(server_.open_.insert(server_.open_.end(), this)) {}
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;
    ~connection() { unlist(); }

    void start() {
      parser_.header_limit(static_cast<std::uint32_t>(server_.options_.header_limit));
      parser_.body_limit(0);
      stream_.expires_after(server_.options_.request_timeout);
      boost::beast::http::async_read(
          stream_, buffer_, parser_,
          [self = shared_from_this()](boost::beast::error_code ec, std::size_t) {
            self->on_read(ec);
          });
    }

    // True while the answer is being written: such a connection is not closed
    // to make room, so a scrape under way is not cut off.
    bool answering() const noexcept { return answering_; }

    // Idempotent; a pending operation ends with an error, and with it the
    // connection.
    void close() {
      unlist();
      boost::beast::error_code ignored;
      stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
      stream_.socket().close(ignored);
    }

   private:
    void on_read(boost::beast::error_code ec) {
      namespace http = boost::beast::http;
      if (ec == http::error::header_limit)
        return answer(plain(http::status::request_header_fields_too_large, "header too large\n"));
      const bool unparsable =
          ec && ec != http::error::end_of_stream &&
          ec.category() == http::make_error_code(http::error::bad_target).category();
      if (unparsable)
        return answer(plain(http::status::bad_request, "bad request\n"));
      if (ec)
        return close();  // closed, timed out or reset: nobody to answer
      answer(server_.page(parser_.get()));
    }

    void answer(response page) {
      answering_ = true;
      response_ = std::move(page);
      response_.keep_alive(false);
      response_.prepare_payload();
      stream_.expires_after(server_.options_.write_timeout);
      boost::beast::http::async_write(
          stream_, response_,
          [self = shared_from_this()](boost::beast::error_code ec, std::size_t) {
            if (ec)
              return self->close();
            self->finish();
          });
    }

    // Closing with bytes of the request still unread would reset the
    // connection, and the client might lose the answer before reading it:
    // so the answer is followed by a half-close, and what the client still
    // sends is read and dropped until it closes too, within the deadline.
    void finish() {
      answering_ = false;
      boost::beast::error_code ignored;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
      stream_.expires_after(server_.options_.request_timeout);
      drain();
    }
    void drain() {
      stream_.async_read_some(
          boost::asio::buffer(discard_),
          [self = shared_from_this()](boost::beast::error_code ec, std::size_t) {
            if (ec)
              return self->close();
            self->drain();
          });
    }

    // Out of the server's list of open connections: it no longer counts.
    void unlist() {
      if (listed_)
        server_.open_.erase(place_);
      listed_ = false;
    }

    metrics_server& server_;
    boost::beast::tcp_stream stream_;
    boost::beast::flat_buffer buffer_;
    request_parser parser_;
    response response_;
    std::array<char, 1024> discard_{};
    std::list<connection*>::iterator place_;  // in server_.open_
    bool listed_ = true;
    bool answering_ = false;
  };

  static response plain(boost::beast::http::status status, std::string body) {
    response page{status, 11};
    page.set(boost::beast::http::field::content_type, "text/plain; charset=utf-8");
    page.body() = std::move(body);
    return page;
  }

  response page(const request_parser::value_type& request) const {
    namespace http = boost::beast::http;
    std::string_view path = request.target();
    path = path.substr(0, path.find('?'));
    if (path != "/metrics" && path != "/healthz" && path != "/readyz")
      return plain(http::status::not_found, "not found: try /metrics, /healthz or /readyz\n");
    if (request.method() != http::verb::get) {
      response refused = plain(http::status::method_not_allowed, "only GET\n");
      refused.set(http::field::allow, "GET");
      return refused;
    }
    if (path == "/metrics") {
      response page = plain(http::status::ok, log_.exposition());
      page.set(http::field::content_type, text_exposition::content_type);
      return page;
    }
    if (path == "/healthz")
      return plain(http::status::ok, "ok\n");
    if (log_.ready(options_.ready_within))
      return plain(http::status::ok, "ready\n");
    return plain(http::status::service_unavailable,
                 "not ready: no poll of the source succeeded in the last " +
                     std::to_string(options_.ready_within.count()) + " ms\n");
  }

  void accept() {
    acceptor_.async_accept([this](boost::beast::error_code ec, tcp::socket socket) {
      if (ec == boost::asio::error::operation_aborted)
        return;
      if (ec) {  // out of descriptors, say: try again a little later, not in a spin
        retry_.expires_after(std::chrono::milliseconds{100});
        retry_.async_wait([this](boost::beast::error_code waited) {
          if (!waited)
            accept();
        });
        return;
      }
      if (open_.size() >= options_.max_connections)
        make_room();
      if (open_.size() < options_.max_connections)
        std::make_shared<connection>(*this, std::move(socket))->start();
      // else the socket goes out of scope here, closed: all are answering
      accept();
    });
  }

  // Closes the oldest open connection not writing an answer: the one that
  // waited longest for its request, or one that was answered and lingers.
  // A new connection is more likely a probe than the oldest idle one is.
  void make_room() {
    const auto oldest = std::find_if(open_.begin(), open_.end(),
                                     [](const connection* each) { return !each->answering(); });
    if (oldest != open_.end())
      (*oldest)->close();
  }

  // An exception from a handler ends that handler, not the server.
  void serve() noexcept {
    for (;;) {
      try {
        io_.run();
        return;
      } catch (...) {
      }
    }
  }

  const metrics_log& log_;
  metrics_server_options options_;
  std::uint16_t port_ = 0;
  // In the order they were accepted; the server thread's only. Before io_:
  // connections still pending when io_ goes unlist themselves from it.
  std::list<connection*> open_;
  boost::asio::io_context io_{1};
  tcp::acceptor acceptor_;
  boost::asio::steady_timer retry_{io_};
  std::thread thread_;  // last: started when the rest is ready
};

}  // namespace widget_consumer::metrics
