// delay_proxy: a TCP forwarder on loopback that adds a fixed round-trip time,
// for the drain benchmark (this machine's kernel has no netem, so tc cannot
// delay a veth). Compiled, so that it carries thousands of calls per second:
// the drain prints its ceiling (the limit client through it with nothing
// added, against the same client straight to the servers).
//
//   delay_proxy --upstream-port P[,P...] --rtt-ms D --port-file FILE [--threads N]
//
// For each upstream port it listens on a port of 127.0.0.1 chosen by the
// kernel and writes those ports to FILE, one line each in the order given,
// once listening. Every byte is held D/2 ms on its way to the server and D/2
// ms on its way back, like a link with that latency and no bandwidth limit:
// it does not parse HTTP, so keep-alive, pipelining and any number of
// connections behave as over a wire. Each client connection gets its own
// upstream connection. N event loops (epoll, one thread each) share the
// listening sockets; the default is 1, as the benchmark's consumer and
// servers need the machine's cores more. Stops on SIGTERM/SIGINT.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

// Past this many bytes held for one direction, reading from its sender
// pauses until the receiver has taken some: memory stays bounded when one
// side reads slowly.
constexpr std::size_t max_held_bytes = 8 * 1024 * 1024;
constexpr std::size_t read_size = 64 * 1024;

struct options {
  std::vector<int> upstream_ports;
  double rtt_ms = 0;
  std::string port_file;
  int threads = 1;
};

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc)
      throw std::invalid_argument(a + " needs a value");
    const std::string value = argv[++i];
    if (a == "--upstream-port") {
      std::size_t start = 0;
      while (start <= value.size()) {
        const auto comma = value.find(',', start);
        o.upstream_ports.push_back(std::stoi(value.substr(start, comma - start)));
        if (comma == std::string::npos)
          break;
        start = comma + 1;
      }
    } else if (a == "--rtt-ms") {
      o.rtt_ms = std::stod(value);
    } else if (a == "--port-file") {
      o.port_file = value;
    } else if (a == "--threads") {
      o.threads = std::stoi(value);
    } else {
      throw std::invalid_argument("unknown argument " + a);
    }
  }
  if (o.upstream_ports.empty() || o.port_file.empty())
    throw std::invalid_argument("--upstream-port and --port-file are required");
  if (o.threads < 1 || o.threads > 64 || o.rtt_ms < 0)
    throw std::invalid_argument("--threads must be 1..64, --rtt-ms at least 0");
  return o;
}

void check(bool ok, const char* what) {
  if (!ok)
    throw std::runtime_error(std::string(what) + ": " + std::strerror(errno));
}

sockaddr_in loopback(int port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return address;
}

// One chunk as read, due for delivery at `due`; an empty chunk stands for the
// sender's end of stream, passed on as a write shutdown.
struct chunk {
  clock_type::time_point due;
  std::string data;
};

// One way of one connection: bytes read from `from`, held, then written to `to`.
struct direction {
  int from = -1, to = -1;
  std::deque<chunk> held;
  std::size_t held_bytes = 0, written = 0;  // written: of held.front()
  bool eof_read = false, eof_sent = false, blocked = false;
  // The epoll events `from` is registered for; 0 = not registered, as a
  // socket the peer has closed reports EPOLLHUP whatever it asked for.
  std::uint32_t watching = EPOLLIN;
};

struct connection {
  direction up, down;  // up: client to server; down: server to client
};

class loop {
 public:
  loop(const std::vector<int>& listeners, const std::vector<int>& upstream_ports,
       clock_type::duration delay)
      : epoll_(epoll_create1(EPOLL_CLOEXEC)),
        listeners_(listeners),
        upstream_ports_(upstream_ports),
        delay_(delay) {
    check(epoll_ >= 0, "epoll_create1");
    for (std::size_t i = 0; i < listeners_.size(); ++i)
      watch(listeners_[i], EPOLLIN | EPOLLEXCLUSIVE, listener_tag(i), EPOLL_CTL_ADD);
  }

  [[noreturn]] void run() {
    std::vector<epoll_event> events(256);
    for (;;) {
      const int ready =
          epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), timeout_ms());
      if (ready < 0 && errno != EINTR)
        check(false, "epoll_wait");
      for (int i = 0; i < ready; ++i)
        handle(events[static_cast<std::size_t>(i)]);
      deliver_due();
    }
  }

 private:
  // epoll data: listeners are tagged with their index, sockets with their fd
  // plus an offset, so one 64-bit value tells them apart.
  static constexpr std::uint64_t socket_base = 1U << 20;
  static std::uint64_t listener_tag(std::size_t index) { return index; }

  void watch(int fd, std::uint32_t events, std::uint64_t tag, int op) {
    epoll_event event{};
    event.events = events;
    event.data.u64 = tag;
    check(epoll_ctl(epoll_, op, fd, &event) == 0, "epoll_ctl");
  }

  // A socket is read while its outgoing direction holds little enough, and
  // written while its incoming direction has due bytes it could not take.
  void rewatch(int fd) {
    const auto it = owners_.find(fd);
    if (it == owners_.end())
      return;
    connection& c = *it->second;
    direction& out = c.up.from == fd ? c.up : c.down;
    const direction& in = c.up.from == fd ? c.down : c.up;
    std::uint32_t events = 0;
    if (!out.eof_read && out.held_bytes < max_held_bytes)
      events |= EPOLLIN;
    if (in.blocked)
      events |= EPOLLOUT;
    if (events == out.watching)
      return;
    if (events == 0)
      epoll_ctl(epoll_, EPOLL_CTL_DEL, fd, nullptr);
    else
      watch(fd, events, socket_base + static_cast<std::uint64_t>(fd),
            out.watching == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD);
    out.watching = events;
  }

  int timeout_ms() const {
    if (pending_.empty())
      return -1;
    const auto wait = pending_.front().first - clock_type::now();
    if (wait <= clock_type::duration::zero())
      return 0;
    // Rounded up: waking early would only loop back here.
    return static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(wait).count());
  }

  void handle(const epoll_event& event) {
    if (event.data.u64 < socket_base) {
      accept_all(event.data.u64);
      return;
    }
    const int fd = static_cast<int>(event.data.u64 - socket_base);
    const auto it = owners_.find(fd);
    if (it == owners_.end())
      return;
    const std::shared_ptr<connection> c = it->second;
    direction& out = c->up.from == fd ? c->up : c->down;
    direction& in = c->up.from == fd ? c->down : c->up;
    if (event.events & (EPOLLIN | EPOLLHUP | EPOLLERR))
      if (!read_from(out))
        return close_connection(c);
    if (in.blocked || (event.events & EPOLLOUT))
      if (!write_due(in))
        return close_connection(c);
    finish_if_done(c);
  }

  void accept_all(std::uint64_t index) {
    for (;;) {
      const int client = accept4(listeners_[index], nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (client < 0)
        return;  // EAGAIN: another loop took it, or none left
      const int server = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      const sockaddr_in address = loopback(upstream_ports_[index]);
      // A blocking connect: on loopback it completes at once or fails.
      if (server < 0 ||
          connect(server, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
        if (server >= 0)
          close(server);
        close(client);
        continue;
      }
      fcntl(server, F_SETFL, fcntl(server, F_GETFL) | O_NONBLOCK);
      const int one = 1;
      setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      setsockopt(server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      auto c = std::make_shared<connection>();
      c->up.from = c->down.to = client;
      c->up.to = c->down.from = server;
      owners_[client] = owners_[server] = c;
      watch(client, EPOLLIN, socket_base + static_cast<std::uint64_t>(client), EPOLL_CTL_ADD);
      watch(server, EPOLLIN, socket_base + static_cast<std::uint64_t>(server), EPOLL_CTL_ADD);
    }
  }

  // Reads what is there; false when the connection must close.
  bool read_from(direction& d) {
    if (d.eof_read)
      return true;
    const auto due = clock_type::now() + delay_;
    bool got = false;
    while (d.held_bytes < max_held_bytes) {
      std::string buffer(read_size, '\0');
      const ssize_t n = read(d.from, buffer.data(), buffer.size());
      if (n < 0) {
        if (errno != EAGAIN && errno != EINTR)
          return false;
        break;
      }
      got = true;
      if (n == 0) {
        d.eof_read = true;
        d.held.push_back({.due = due, .data = {}});
        break;
      }
      buffer.resize(static_cast<std::size_t>(n));
      d.held_bytes += buffer.size();
      d.held.push_back({.due = due, .data = std::move(buffer)});
    }
    if (got) {
      if (delay_ == clock_type::duration::zero()) {
        if (!write_due(d))
          return false;
      } else {
        // The delay is the same for every chunk, so pending_ stays in due order.
        pending_.emplace_back(due, d.from);
      }
    }
    rewatch(d.from);
    return true;
  }

  // Writes every due chunk the receiver takes; false when the connection
  // must close (a write failed).
  bool write_due(direction& d) {
    const auto now = clock_type::now();
    d.blocked = false;
    while (!d.held.empty() && d.held.front().due <= now) {
      chunk& front = d.held.front();
      if (front.data.empty()) {
        shutdown(d.to, SHUT_WR);
        d.eof_sent = true;
        d.held.pop_front();
        continue;
      }
      const ssize_t n =
          send(d.to, front.data.data() + d.written, front.data.size() - d.written, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno != EAGAIN && errno != EINTR)
          return false;
        d.blocked = true;
        break;
      }
      d.written += static_cast<std::size_t>(n);
      if (d.written == front.data.size()) {
        d.held_bytes -= front.data.size();
        d.written = 0;
        d.held.pop_front();
      }
    }
    rewatch(d.to);
    rewatch(d.from);
    return true;
  }

  void deliver_due() {
    const auto now = clock_type::now();
    while (!pending_.empty() && pending_.front().first <= now) {
      const int fd = pending_.front().second;
      pending_.pop_front();
      const auto it = owners_.find(fd);
      if (it == owners_.end())
        continue;
      const std::shared_ptr<connection> c = it->second;
      direction& d = c->up.from == fd ? c->up : c->down;
      if (!write_due(d))
        close_connection(c);
      else
        finish_if_done(c);
    }
  }

  void finish_if_done(const std::shared_ptr<connection>& c) {
    if (owners_.count(c->up.from) && c->up.eof_sent && c->down.eof_sent)
      close_connection(c);
  }

  void close_connection(const std::shared_ptr<connection>& c) {
    for (const int fd : {c->up.from, c->down.from}) {
      if (owners_.erase(fd)) {
        epoll_ctl(epoll_, EPOLL_CTL_DEL, fd, nullptr);
        close(fd);
      }
    }
  }

  int epoll_;
  std::vector<int> listeners_;
  std::vector<int> upstream_ports_;
  clock_type::duration delay_;
  // (due, sender fd) in due order. A closed fd's entries are skipped; if a new
  // connection has reused the fd, its entry is harmless: write_due only
  // delivers chunks that are due.
  std::deque<std::pair<clock_type::time_point, int>> pending_;
  std::unordered_map<int, std::shared_ptr<connection>> owners_;
};

int listen_on_loopback() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  check(fd >= 0, "socket");
  const sockaddr_in address = loopback(0);
  check(bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0, "bind");
  check(listen(fd, 4096) == 0, "listen");
  return fd;
}

int port_of(int fd) {
  sockaddr_in address{};
  socklen_t size = sizeof address;
  check(getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) == 0, "getsockname");
  return ntohs(address.sin_port);
}

}  // namespace

int main(int argc, char** argv) try {
  const options o = parse(argc, argv);
  signal(SIGPIPE, SIG_IGN);
  std::vector<int> listeners;
  for (std::size_t i = 0; i < o.upstream_ports.size(); ++i)
    listeners.push_back(listen_on_loopback());
  const auto delay = std::chrono::duration_cast<clock_type::duration>(
      std::chrono::duration<double, std::milli>(o.rtt_ms / 2));

  const std::string temporary = o.port_file + ".tmp";
  {
    std::ofstream out(temporary);
    for (const int fd : listeners)
      out << port_of(fd) << '\n';
    if (!out)
      throw std::runtime_error("cannot write " + temporary);
  }
  check(std::rename(temporary.c_str(), o.port_file.c_str()) == 0, "rename");

  // Each thread has its own epoll set and connections; EPOLLEXCLUSIVE wakes
  // one of them per incoming connection. SIGTERM's default action ends the
  // process, which is all stopping needs.
  std::vector<std::thread> threads;
  for (int t = 1; t < o.threads; ++t)
    threads.emplace_back([&] { loop(listeners, o.upstream_ports, delay).run(); });
  loop(listeners, o.upstream_ports, delay).run();
} catch (const std::exception& e) {
  std::cerr << "delay_proxy: " << e.what() << '\n';
  return 2;
}
